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

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/records"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// PagePublisher is what an import needs of the queue.
type PagePublisher interface {
	PublishPageAsync(uploadID string, page int, data []byte) (jetstream.PubAckFuture, error)
	PublishTicket(ctx context.Context, t *hooklinev1.Ticket, gen int) error
	PurgeUpload(ctx context.Context, uploadID string) error
	MaxPayload() int64
}

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

// accepted is the 202 answer.
type accepted struct {
	UploadID     string `json:"uploadId"`
	Template     string `json:"template"`
	TotalRecords int    `json:"totalRecords"`
	TotalPages   int    `json:"totalPages"`
	Status       string `json:"status"`
}

// IdempotencyTTL is how long the answer of an import with an
// Idempotency-Key is replayed to a client that retries it.
const IdempotencyTTL = 24 * time.Hour

func (a *API) createImport(w http.ResponseWriter, r *http.Request) {
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
	prev, err := a.tracker.ReserveIdempotencyKey(r.Context(), tenant, key)
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
				_ = a.tracker.RefreshIdempotencyKey(ctx, tenant, key)
			case <-ctx.Done():
				return
			}
		}
	}()
	answer := a.runImport(w, r, tenant)
	stop()
	bg := context.WithoutCancel(r.Context())
	if answer == nil {
		if err := a.tracker.ReleaseIdempotencyKey(bg, tenant, key); err != nil {
			a.log.Warn("release idempotency key", zap.Error(err))
		}
		return
	}
	if err := a.tracker.CompleteIdempotencyKey(bg, tenant, key, answer, IdempotencyTTL); err != nil {
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
	var res *accepted
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
func (a *API) importJSON(ctx context.Context, tenant string, body io.Reader) (*accepted, error) {
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
	st, err := a.stage(ctx, &p.meta, records.ApplyPlan(rd, p.meta.plan)) // on an error, even mid-array, stage purges what it stored
	if err != nil {
		return nil, err
	}
	defer st.abandon(ctx)
	return a.commit(ctx, tenant, &p.meta, st)
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

func (a *API) importMultipart(ctx context.Context, tenant string, mr *multipart.Reader) (*accepted, error) {
	meta := &importMeta{}
	var st *staged
	defer func() {
		if st != nil {
			st.abandon(ctx) // no-op once committed
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
			st, err = a.stage(ctx, meta, rd)
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
	return a.commit(ctx, tenant, meta, st)
}

// staged is an upload whose pages are all stored in the queue but which is not
// yet accepted: no record, no tickets.
type staged struct {
	a             *API
	id            string
	totalRecords  int
	totalPages    int
	committed     bool
	stopHeartbeat context.CancelFunc
}

// startHeartbeat renews the staging mark until the upload is accepted or
// abandoned, however slowly the file arrives.
func (s *staged) startHeartbeat(ctx context.Context) {
	ctx, s.stopHeartbeat = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		t := time.NewTicker(StagingHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := s.a.tracker.Staging(ctx, s.id, time.Now()); err != nil && ctx.Err() == nil {
					s.a.log.Warn("renew staging mark", zap.String("upload", s.id), zap.Error(err))
				}
			case <-ctx.Done():
				return
			}
		}
	}()
}

// abandon removes the pages of an upload that was never accepted.
func (s *staged) abandon(ctx context.Context) {
	if s.stopHeartbeat != nil {
		s.stopHeartbeat()
	}
	if s.committed {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.a.queue.PurgeUpload(ctx, s.id); err != nil {
		// NATS is away: keep trying in the background so the pages go soon
		// after it is back. If this process dies first, the janitor of any
		// replica purges them (the upload stays in the staging set).
		s.a.log.Warn("purge pages of a rejected import; will retry", zap.String("upload", s.id), zap.Error(err))
		go s.purgeLater() // #nosec G118 -- outlives the refused request on purpose; bounded by AbandonedAfter
		return
	}
	_ = s.a.tracker.Staged(ctx, s.id)
}

// purgeLater retries the purge of a refused import's pages until it succeeds
// or the janitor's time comes.
func (s *staged) purgeLater() {
	ctx, cancel := context.WithTimeout(context.Background(), AbandonedAfter)
	defer cancel()
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := s.a.queue.PurgeUpload(ctx, s.id); err == nil {
			_ = s.a.tracker.Staged(ctx, s.id)
			s.a.log.Info("purged the pages of a rejected import", zap.String("upload", s.id))
			return
		}
	}
}

// stage reads every record, publishes the pages and waits until every page is
// stored. Memory stays bounded: two page buffers (one being filled, one being
// published), the compressed and encoded copy of the page being published,
// and a bounded window of pages waiting for their acknowledgement.
func (a *API) stage(ctx context.Context, meta *importMeta, rd records.Reader) (_ *staged, err error) {
	st := &staged{a: a, id: ulid.Make().String()}
	// Mark the upload as staging, so that if this process dies mid-file, a
	// janitor finds its pages and purges them.
	if err := a.tracker.Staging(ctx, st.id, time.Now()); err != nil {
		return nil, fmt.Errorf("%w: mark staging: %w", errUnavailable, err)
	}
	st.startHeartbeat(ctx)
	var window ackWindow
	defer func() {
		if err != nil {
			window.settle() // a page still in flight would be stored after the purge
			st.abandon(ctx)
		}
	}()
	chunk := meta.template.Webhook.ChunkSize
	limit := a.queue.MaxPayload() - 1024 // room for the message's subject and headers
	pub := a.startPublisher(ctx, st.id, limit, &window)
	defer pub.stop() // before the deferred settle and purge above: the window is the publisher's until it stopped
	buf := <-pub.free
	count := 0
	quota := a.recordQuota(ctx) // the tenant's records per import
	flush := func() error {
		buf = append(buf, ']')
		st.totalPages++
		next, err := pub.send(buf, st.totalPages, count)
		buf, count = next, 0
		return err
	}
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if a.cfg.MaxRecords > 0 && st.totalRecords >= a.cfg.MaxRecords {
			return nil, &APIError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Field: "records",
				Message: fmt.Sprintf("the import has more than %d records, the limit per import", a.cfg.MaxRecords)}
		}
		if err := quota.check(st.totalRecords); err != nil {
			return nil, err
		}
		if count == 0 {
			buf = append(buf, '[')
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, rec...)
		count++
		st.totalRecords++
		if int64(len(buf)) > limit {
			// Refuse as soon as the page cannot fit, not after chunkSize records:
			// memory stays bounded by one message.
			return nil, pageTooLarge(st.totalPages+1, count, len(buf), limit)
		}
		if count == chunk {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if count > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if st.totalRecords == 0 {
		return nil, badRequest("records", "the import has no records")
	}
	if err := pub.finish(); err != nil {
		return nil, err
	}
	if err := window.wait(ctx, 0); err != nil {
		return nil, err
	}
	a.metrics.records.Add(float64(st.totalRecords))
	return st, nil
}

// pagePublisher compresses, encodes and publishes an import's pages, in
// page order, on a goroutine of its own while the import's reader goes on
// parsing: the two halves of an import use two cores. Two page buffers go
// back and forth between them: the reader fills one while the other is
// published.
type pagePublisher struct {
	full   chan pageOut
	free   chan []byte
	done   chan struct{} // closed when the goroutine has returned
	cancel context.CancelFunc
	ctx    context.Context
	err    error // the goroutine's error, read after done is closed
	closed bool
}

// pageOut is one filled page: its records as a JSON array.
type pageOut struct {
	records     []byte
	page, count int
}

// startPublisher starts the publishing goroutine of upload id. The window w
// is its own until finish or stop has returned.
func (a *API) startPublisher(ctx context.Context, id string, limit int64, w *ackWindow) *pagePublisher {
	ctx, cancel := context.WithCancel(ctx)
	p := &pagePublisher{full: make(chan pageOut, 1), free: make(chan []byte, 2), done: make(chan struct{}), cancel: cancel, ctx: ctx}
	for range 2 {
		p.free <- make([]byte, 0, 64<<10)
	}
	go func() {
		defer close(p.done)
		enc := queue.PageEncoder{Compression: a.cfg.PageCompression}
		for out := range p.full {
			err := ctx.Err() // stopped: publish nothing more
			if err == nil {
				err = a.publishPage(ctx, &enc, id, out, limit, w)
			}
			if err != nil {
				p.err = err
				return
			}
			p.free <- out.records[:0] // the encoded page holds a copy
		}
	}()
	return p
}

func (a *API) publishPage(ctx context.Context, enc *queue.PageEncoder, id string, out pageOut, limit int64, w *ackWindow) error {
	data, err := enc.Encode(&hooklinev1.Page{
		// #nosec G115 -- count ≤ chunkSize (10000); pages of one file stay far below 2^32
		UploadId: id, Page: uint32(out.page), RecordCount: uint32(out.count), Records: out.records,
	})
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return pageTooLarge(out.page, out.count, len(data), limit)
	}
	fut, err := a.queue.PublishPageAsync(id, out.page, data)
	if err != nil {
		return fmt.Errorf("%w: publish page: %w", errUnavailable, err)
	}
	a.metrics.pages.Inc()
	return w.add(ctx, fut, len(data))
}

// send hands a filled page over and returns an empty buffer for the next;
// it answers the goroutine's error once publishing has failed.
func (p *pagePublisher) send(records []byte, page, count int) ([]byte, error) {
	select {
	case p.full <- pageOut{records: records, page: page, count: count}:
	case <-p.done:
		return nil, p.failed()
	}
	select {
	case b := <-p.free:
		return b, nil
	case <-p.done:
		return nil, p.failed()
	}
}

func (p *pagePublisher) failed() error {
	if p.err != nil {
		return p.err
	}
	return p.ctx.Err()
}

// finish waits until every page handed over is published (not yet
// acknowledged: the window holds their futures).
func (p *pagePublisher) finish() error {
	if !p.closed {
		p.closed = true
		close(p.full)
	}
	<-p.done
	return p.err
}

// stop ends the goroutine at once, a page still queued left unpublished; it
// may follow finish.
func (p *pagePublisher) stop() {
	p.cancel()
	if !p.closed {
		p.closed = true
		close(p.full)
	}
	<-p.done
}

func pageTooLarge(page, records, size int, limit int64) error {
	return &APIError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Field: "destination.webhook.chunkSize",
		Message: fmt.Sprintf("page %d (%d records so far) is %d bytes, over the queue's message limit of %d bytes: lower the template's chunkSize",
			page, records, size, limit)}
}

// commit stores the upload record and publishes the first tickets. Only then
// is the upload accepted.
func (a *API) commit(ctx context.Context, tenant string, meta *importMeta, st *staged) (*accepted, error) {
	sealed, err := a.secrets.Seal(meta.authValue)
	if err != nil {
		return nil, err
	}
	wh := meta.template.Webhook
	if wh.AuthHeaderName == "" {
		sealed = "" // no header to carry it: do not keep it
	}
	u := &tracker.Upload{
		ID: st.id, Tenant: tenant, Template: meta.template.Code,
		TotalRecords: st.totalRecords, TotalPages: st.totalPages, Extra: meta.extra, CreatedAt: time.Now(),
		Destination: tracker.Destination{
			URL: wh.URL, AuthHeaderName: wh.AuthHeaderName, SealedAuthHeaderValue: sealed,
			SealedSigningSecret: wh.SealedSigningSecret, ChunkSize: wh.ChunkSize, RetryCount: wh.RetryCount,
			RetryIntervalMs: wh.RetryInterval.Milliseconds(), TimeoutMs: wh.Timeout.Milliseconds(), MaxInFlight: wh.MaxInFlight,
		},
	}
	// Take the upload out of the staging set before it gets a record: if the
	// janitor took it first (its heartbeat went stale), its pages may be gone.
	st.stopHeartbeat()
	claimed, err := a.tracker.Claim(ctx, st.id)
	if err != nil {
		return nil, fmt.Errorf("%w: clear staging mark: %w", errUnavailable, err)
	}
	if !claimed {
		return nil, fmt.Errorf("%w: the import stalled and its pages were cleaned up", errUnavailable)
	}
	release, err := a.tracker.Create(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("%w: store upload: %w", errUnavailable, err)
	}
	for page := 1; page <= release; page++ {
		err := a.queue.PublishTicket(ctx, &hooklinev1.Ticket{UploadId: st.id, Page: uint32(page), Tenant: tenant}, 0)
		if err != nil {
			// Tickets already published find no upload and are dropped.
			_ = a.tracker.Delete(context.WithoutCancel(ctx), st.id, tenant)
			return nil, fmt.Errorf("%w: publish ticket: %w", errUnavailable, err)
		}
	}
	st.committed = true
	a.metrics.uploads.Inc()
	a.log.Info("upload accepted", zap.String("upload", st.id), zap.String("tenant", tenant),
		zap.String("template", u.Template), zap.Int("records", st.totalRecords), zap.Int("pages", st.totalPages))
	return &accepted{UploadID: st.id, Template: u.Template, TotalRecords: st.totalRecords, TotalPages: st.totalPages, Status: string(tracker.StatusDelivering)}, nil
}

// ackWindow bounds the pages published and not yet acknowledged.
type ackWindow struct {
	futs  []jetstream.PubAckFuture
	sizes []int
	bytes int
}

const (
	windowPages = 256
	windowBytes = 8 << 20
)

func (w *ackWindow) add(ctx context.Context, f jetstream.PubAckFuture, size int) error {
	w.futs, w.sizes = append(w.futs, f), append(w.sizes, size)
	w.bytes += size
	if len(w.futs) >= windowPages || w.bytes >= windowBytes {
		return w.wait(ctx, len(w.futs)/2)
	}
	return nil
}

// settle waits until every outstanding page is stored or refused (each
// future ends within the publish timeout: Run sets one), so that a purge
// removes them all.
func (w *ackWindow) settle() {
	for _, f := range w.futs {
		select {
		case <-f.Ok():
		case <-f.Err():
		}
	}
}

// wait blocks until at most keep futures are outstanding.
func (w *ackWindow) wait(ctx context.Context, keep int) error {
	for len(w.futs) > keep {
		select {
		case <-w.futs[0].Ok():
		case err := <-w.futs[0].Err():
			w.pop() // settled: settle must not wait for it again
			return fmt.Errorf("%w: store page: %w", errUnavailable, err)
		case <-ctx.Done():
			return ctx.Err()
		}
		w.pop()
	}
	return nil
}

// pop drops the oldest future. Its slot is cleared: the future holds its
// whole encoded page, which must not stay reachable from the backing array.
func (w *ackWindow) pop() {
	w.bytes -= w.sizes[0]
	w.futs[0] = nil
	w.futs, w.sizes = w.futs[1:], w.sizes[1:]
}
