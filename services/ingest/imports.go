package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/records"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
	"github.com/hookline/hookline/services/ingest/importer"
)

// Limits of an import.
const (
	MaxAuthHeaderValue = 4096
	MaxExtraBytes      = 64 << 10
	maxFieldBytes      = 64 << 10 // a multipart text field
)

// importMeta is what an import says besides its records.
type importMeta struct {
	template    *Template
	plan        *records.Plan // the template's recordFormat, compiled; nil: none
	authValue   string
	extra       json.RawMessage
	hasTemplate bool
	sheet       string // XLSX: the worksheet to read ("": the first)
	delimiter   rune   // CSV: 0 detects it
}

// IdempotencyTTL is how long the answer of an import with an
// Idempotency-Key is replayed to a client that retries it.
const IdempotencyTTL = 24 * time.Hour

// tracer makes the span of each import; its context reaches the tickets'
// headers, so the deliveries join the import's trace.
var tracer = otel.Tracer("github.com/hookline/hookline/services/ingest")

func (a *API) createImport(w http.ResponseWriter, r *http.Request) {
	ctx, span := tracer.Start(otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header)),
		"import", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	r = r.WithContext(ctx)
	tenant := tenantOf(r)
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		a.runImport(w, r, tenant)
		return
	}
	if err := validIdempotencyKey(key); err != nil {
		writeError(w, a.log, err)
		return
	}
	prev, err := a.idem.ReserveIdempotencyKey(r.Context(), tenant, key)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	if prev != nil { // a retry of an import that was accepted: the same answer
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(prev) // #nosec G705 -- our own stored JSON answer, served as application/json
		return
	}
	// Keep the reservation alive while the file streams in.
	ctx, stop := context.WithCancel(r.Context())
	go func() {
		t := time.NewTicker(tracker.IdempotencyLock / 4)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = a.idem.RefreshIdempotencyKey(ctx, tenant, key)
			case <-ctx.Done():
				return
			}
		}
	}()
	answer := a.runImport(w, r, tenant)
	stop()
	bg := context.WithoutCancel(r.Context())
	if answer == nil {
		if err := a.idem.ReleaseIdempotencyKey(bg, tenant, key); err != nil {
			a.log.Warn("release idempotency key", zap.Error(err))
		}
		return
	}
	if err := a.idem.CompleteIdempotencyKey(bg, tenant, key, answer, IdempotencyTTL); err != nil {
		a.log.Warn("store idempotent answer", zap.Error(err))
	}
}

func validIdempotencyKey(k string) error {
	if len(k) > 255 {
		return badRequest("Idempotency-Key", "Idempotency-Key must be at most 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return badRequest("Idempotency-Key", "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return nil
}

// multipartReadBuffer is how much of a multipart import's body is read from
// the connection at a time.
const multipartReadBuffer = 256 << 10

// runImport handles one import and returns the body of its 202 answer, or nil
// when it was refused.
func (a *API) runImport(w http.ResponseWriter, r *http.Request, tenant string) []byte {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	adm, ok := a.admitImport(w, r, tenant) // quotas: rate and uploads delivering at once
	if !ok {
		return nil
	}
	defer adm.Release(r.Context()) // no-op once accepted
	defer a.pacer.begin(tenant)()
	var res *importer.Accepted
	switch mt {
	case "application/json":
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
		res, err = a.importJSON(r.Context(), tenant, r.Body)
	case "multipart/form-data":
		if a.cfg.MaxFileBytes > 0 {
			r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxFileBytes)
		}
		// The multipart reader fills 4 KiB at a time: reading the body
		// through a larger buffer takes it from the socket in far fewer
		// system calls (one per 4 KiB was 16 % of a CSV import's time).
		body := bufio.NewReaderSize(r.Body, multipartReadBuffer)
		res, err = a.importMultipart(r.Context(), tenant, multipart.NewReader(body, params["boundary"]))
	default:
		err = &APIError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "Content-Type must be application/json or multipart/form-data"}
	}
	if err != nil {
		a.metrics.rejected.Inc()
		writeError(w, a.log, err)
		return nil
	}
	adm.Accepted(r.Context(), res.UploadID)
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("hookline.upload_id", res.UploadID))
	body, err := json.Marshal(res)
	if err != nil {
		writeError(w, a.log, err)
		return nil
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(body)
	return body
}

// importJSON reads a JSON import (jsonimport.go) and stages its records as
// they come when the template comes first, else once the body is read.
func (a *API) importJSON(ctx context.Context, tenant string, body io.Reader) (*importer.Accepted, error) {
	p := newJSONImport(body, a.cfg.RecordLimits, func(code string) (*importMeta, error) {
		return a.meta(ctx, tenant, code)
	})
	if err := p.open(); err != nil {
		return nil, err
	}
	rd, err := p.reader()
	if err != nil {
		return nil, err
	}
	st, err := a.stage(ctx, tenant, &p.meta, records.ApplyPlan(rd, p.meta.plan)) // on an error, even mid-array, stage purges what it stored
	if err != nil {
		return nil, err
	}
	defer st.Abandon(ctx)
	return commit(ctx, st, &p.meta)
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.As(err, &syntax):
		return badRequest("", fmt.Sprintf("request body is not valid JSON (at byte %d): %v", syntax.Offset, syntax))
	case errors.As(err, &typ):
		return badRequest(typ.Field, fmt.Sprintf("%s must be %s, not a JSON %s", typ.Field, kindName(typ.Type.Kind().String()), typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(name, fmt.Sprintf("unknown field %q", name))
	case errors.Is(err, io.EOF):
		return badRequest("", "request body is empty")
	}
	return badRequest("", "request body is not valid JSON: "+err.Error())
}

func kindName(k string) string {
	switch k {
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value"
	}
	return "a " + k
}

func (a *API) meta(ctx context.Context, tenant, code string) (*importMeta, error) {
	if code == "" {
		return nil, templateRequired()
	}
	t, err := a.templates.Get(ctx, tenant, code)
	if err != nil {
		if errors.Is(err, ErrTemplateNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	m := &importMeta{template: t, hasTemplate: true}
	if len(t.Webhook.RecordFormat) > 0 {
		// Checked when the template was stored: an error here is ours.
		if m.plan, err = records.CompilePlan(t.Webhook.RecordFormat); err != nil {
			return nil, fmt.Errorf("template %q: stored recordFormat: %w", code, err)
		}
	}
	return m, nil
}

func templateRequired() error {
	return badRequest("template", "template is required: the code of one of your templates")
}

func setAuthValue(m *importMeta, v string) error {
	if len(v) > MaxAuthHeaderValue {
		return badRequest("authHeaderValue", fmt.Sprintf("authHeaderValue must be at most %d bytes", MaxAuthHeaderValue))
	}
	if err := webhook.ValidateAuthHeaderValue(v); err != nil {
		return badRequest("authHeaderValue", "authHeaderValue must not contain CR, LF or other control characters: "+err.Error())
	}
	m.authValue = v
	return nil
}

// setExtraJSON takes "extra" from a JSON body: a string stays a string, any
// other JSON value is passed as JSON, null or absent means none.
func setExtraJSON(m *importMeta, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if len(raw) > MaxExtraBytes {
		return badRequest("extra", fmt.Sprintf("extra must be at most %d bytes", MaxExtraBytes))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return badRequest("extra", "extra is not valid JSON")
	}
	m.extra = buf.Bytes()
	return nil
}

// setFileOption takes the form fields that say how to read the file: sheet
// (an XLSX worksheet's name) and delimiter (a CSV file's: , ; | or a tab,
// also written "tab").
func setFileOption(m *importMeta, name, v string) error {
	if name == "sheet" {
		m.sheet = v
		return nil
	}
	d := []rune(v)
	if strings.EqualFold(v, "tab") {
		d = []rune{'\t'}
	}
	if len(d) != 1 || !records.ValidDelimiter(d[0]) {
		return badRequest("delimiter", `delimiter must be one of , ; | or a tab (also written "tab")`)
	}
	m.delimiter = d[0]
	return nil
}

// setExtraText takes "extra" from a form field: JSON objects and arrays are
// passed as JSON, anything else as a string.
func setExtraText(m *importMeta, v string) error {
	if len(v) > MaxExtraBytes {
		return badRequest("extra", fmt.Sprintf("extra must be at most %d bytes", MaxExtraBytes))
	}
	if v == "" {
		return nil
	}
	t := strings.TrimSpace(v)
	if (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid([]byte(t)) {
		return setExtraJSON(m, json.RawMessage(t))
	}
	s, _ := json.Marshal(v)
	m.extra = s
	return nil
}

func (a *API) importMultipart(ctx context.Context, tenant string, mr *multipart.Reader) (*importer.Accepted, error) {
	meta := &importMeta{}
	var st *importer.Staged
	defer func() {
		if st != nil {
			st.Abandon(ctx) // no-op once committed
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, err
			}
			return nil, badRequest("", "malformed multipart body: "+err.Error())
		}
		name := part.FormName()
		switch name {
		case "template", "authHeaderValue", "extra", "sheet", "delimiter":
			v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			if err != nil {
				return nil, badRequest(name, "cannot read field "+name+": "+err.Error())
			}
			if len(v) > maxFieldBytes {
				return nil, badRequest(name, fmt.Sprintf("%s must be at most %d bytes", name, maxFieldBytes))
			}
			switch name {
			case "template":
				if st != nil {
					return nil, badRequest("template", "field template must come before file")
				}
				m, err := a.meta(ctx, tenant, string(v))
				if err != nil {
					return nil, err
				}
				meta.template, meta.plan, meta.hasTemplate = m.template, m.plan, true
			case "sheet", "delimiter":
				if st != nil {
					return nil, badRequest(name, "field "+name+" must come before file")
				}
				err = setFileOption(meta, name, string(v))
			case "authHeaderValue":
				err = setAuthValue(meta, string(v))
			case "extra":
				err = setExtraText(meta, string(v))
			}
			if err != nil {
				return nil, err
			}
		case "file":
			if !meta.hasTemplate {
				return nil, badRequest("template", "field template is required and must come before file")
			}
			if st != nil {
				return nil, badRequest("file", "only one file per import")
			}
			rd, err := records.Open(part, part.Header.Get("Content-Type"), part.FileName(), records.Options{
				Limits: a.cfg.RecordLimits, Delimiter: meta.delimiter, Sheet: meta.sheet,
				TempDir: a.cfg.TempDir, MaxUnzipBytes: a.cfg.MaxUnzipBytes, Plan: meta.plan,
			})
			if err != nil {
				return nil, err
			}
			st, err = a.stage(ctx, tenant, meta, rd)
			if cerr := rd.Close(); cerr != nil {
				a.log.Warn("remove the spooled copy of an import", zap.Error(cerr))
			}
			if err != nil {
				return nil, err
			}
		default:
			return nil, badRequest(name, fmt.Sprintf("unknown field %q: expected template, authHeaderValue, extra, sheet, delimiter and file", name))
		}
	}
	if !meta.hasTemplate {
		return nil, templateRequired()
	}
	if st == nil {
		return nil, badRequest("file", "file is required: a CSV, TSV, XLSX, JSON or NDJSON file")
	}
	return commit(ctx, st, meta)
}

// batch is what the importer needs to know of an import before its records.
func (a *API) batch(ctx context.Context, tenant string, meta *importMeta) importer.Batch {
	wh := meta.template.Webhook
	quota := a.recordQuota(ctx) // the tenant's records per import
	_, quotas := quotasOf(ctx)
	return importer.Batch{
		Tenant: tenant, Template: meta.template.Code,
		Destination:   Snapshot(wh, ""), // the importer seals the auth header value
		MaxRecords:    a.cfg.MaxRecords,
		CheckRecords:  quota.check,
		DeliveryShare: quotas.ticketShare(),
		Pace:          a.pacer.pacing(tenant),
	}
}

func (a *API) stage(ctx context.Context, tenant string, meta *importMeta, rd records.Reader) (*importer.Staged, error) {
	return a.importer.Stage(ctx, a.batch(ctx, tenant, meta), rd)
}

func commit(ctx context.Context, st *importer.Staged, meta *importMeta) (*importer.Accepted, error) {
	return st.Commit(ctx, importer.Meta{AuthHeaderValue: meta.authValue, Extra: meta.extra})
}
