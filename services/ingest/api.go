// Package ingest is hookline's HTTP API: templates, imports (parsed as a
// stream, stored page by page in JetStream) and the state of uploads.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/records"
	"github.com/hookline/hookline/pkg/secrets"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
	"github.com/hookline/hookline/services/ingest/importer"
)

// UploadTracker is the upload state the API reads and retries.
type UploadTracker interface {
	Get(ctx context.Context, id, tenant string) (*tracker.Upload, error)
	ListPage(ctx context.Context, tenant string, f tracker.Filter) (tracker.UploadPage, error)
	AttemptsPage(ctx context.Context, id string, from int64, limit int) (tracker.AttemptPage, error)
	FailuresPage(ctx context.Context, id string, after int64, limit int) (tracker.FailurePage, error)
	Retry(ctx context.Context, id, tenant string, now time.Time) (tracker.Retried, error)
	RetryPublished(ctx context.Context, id string) error
	State(ctx context.Context, tenant, template string) (tracker.TemplateState, error)
	SetPaused(ctx context.Context, tenant, template string, pause bool, reason string, probeInterval time.Duration) (tracker.Change, time.Time, error)
	ForgetTemplate(ctx context.Context, tenant, template string) error
	Gate(ctx context.Context, tenant, template string, p tracker.Protection) (tracker.Gate, error)
}

// IdempotencyStore keeps the answers of imports sent with an Idempotency-Key.
type IdempotencyStore interface {
	ReserveIdempotencyKey(ctx context.Context, tenant, key string) ([]byte, error)
	RefreshIdempotencyKey(ctx context.Context, tenant, key string) error
	CompleteIdempotencyKey(ctx context.Context, tenant, key string, answer []byte, ttl time.Duration) error
	ReleaseIdempotencyKey(ctx context.Context, tenant, key string) error
}

// Store is the upload state behind the API: what it reads and retries, the
// idempotency keys of imports, and what the importer stages and commits.
type Store interface {
	UploadTracker
	IdempotencyStore
	importer.Store
}

// TicketPublisher publishes the tickets of retried pages.
type TicketPublisher interface {
	PublishTicket(ctx context.Context, t *hooklinev1.Ticket, gen int) error
}

// APIConfig are the API's limits.
type APIConfig struct {
	MaxBodyBytes int64 // JSON bodies (default 32 MiB)
	MaxFileBytes int64 // multipart bodies; 0: no limit
	MaxRecords   int   // records per import; 0: no limit
	RecordLimits records.Limits
	// MaxUnzipBytes bounds an XLSX file unzipped (HOOKLINE_MAX_UNZIP_BYTES;
	// 0: records.DefaultMaxUnzipBytes).
	MaxUnzipBytes int64
	// TempDir is where XLSX files are spooled while they are read
	// (HOOKLINE_TEMP_DIR; "": the system's).
	TempDir string
	// PageCompression is how pages are stored (HOOKLINE_PAGE_COMPRESSION;
	// the zero value is S2).
	PageCompression queue.Compression
}

// API serves the /v1 HTTP API.
type API struct {
	cfg       APIConfig
	auth      *authenticator // HOOKLINE_API_KEYS, then the stored keys (WithTenants)
	tenants   *Tenants       // nil: no stored tenants, no admin API
	admin     adminToken     // unset: the admin API answers 404
	quota     *QuotaLimiter  // nil: no rate or concurrency quotas
	templates *Templates
	tracker   UploadTracker
	idem      IdempotencyStore
	importer  *importer.Importer
	tickets   TicketPublisher
	secrets   *secrets.Box
	metrics   *Metrics
	log       *zap.Logger
	events    TemplateEvents // nil: changes of state are not announced
	sender    Sender         // test requests
	pacer     *importPacer   // nil: imports neither marked light nor paced
}

// NewAPI builds the API. keys maps API keys to tenants (HOOKLINE_API_KEYS);
// options add stored tenants, the admin API and quotas.
func NewAPI(cfg APIConfig, keys map[string]string, templates *Templates, tr Store, q importer.Queue, box *secrets.Box, m *Metrics, log *zap.Logger, opts ...APIOption) *API {
	im := importer.New(tr, q, box, cfg.PageCompression, importer.Counters{Pages: m.pages, Records: m.records, Uploads: m.uploads}, log)
	a := &API{cfg: cfg, auth: newAuthenticator(keys), templates: templates, tracker: tr, idem: tr, importer: im, tickets: q,
		secrets: box, metrics: m, log: log}
	for _, o := range opts {
		o(a)
	}
	if a.sender == nil {
		a.sender = webhook.NewClient() // private networks refused
	}
	return a
}

// Mux is where routes are registered: an *http.ServeMux.
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the /v1 routes to mux. Each route is described in
// openapi.json (a test checks that none is missing).
func (a *API) Register(mux Mux) {
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, a.metrics.instrument(pattern, a.authenticate(h)))
	}
	mux.Handle("GET /v1/openapi.json", a.metrics.instrument("GET /v1/openapi.json", http.HandlerFunc(serveOpenAPI)))
	route("PUT /v1/templates/{code}", a.putTemplate)
	route("GET /v1/templates/{code}", a.getTemplate)
	route("DELETE /v1/templates/{code}", a.deleteTemplate)
	route("GET /v1/templates", a.listTemplates)
	route("POST /v1/templates/{code}/pause", a.pauseTemplate)
	route("POST /v1/templates/{code}/resume", a.resumeTemplate)
	route("POST /v1/templates/{code}/test", a.testTemplate)
	route("POST /v1/imports", a.createImport)
	route("GET /v1/uploads", a.listUploads)
	route("GET /v1/uploads/{id}", a.getUpload)
	route("GET /v1/uploads/{id}/attempts", a.getAttempts)
	route("GET /v1/uploads/{id}/failures", a.getFailures)
	route("POST /v1/uploads/{id}/retry", a.retryUpload)
	route("GET /v1/uploads/{id}/events", a.uploadEvents)
	a.registerAdmin(mux)
	mux.Handle("/v1/", a.metrics.instrument("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, a.log, &APIError{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})))
}

type tenantKey struct{}

func tenantOf(r *http.Request) string { return r.Context().Value(tenantKey{}).(string) }

func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			key = ""
		}
		p, err := a.auth.resolve(r.Context(), strings.TrimSpace(key))
		if errors.Is(err, errUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookline"`)
			writeError(w, a.log, &APIError{Status: http.StatusUnauthorized, Code: "unauthenticated",
				Message: "missing or unknown API key: send Authorization: Bearer <api key>"})
			return
		}
		if err != nil {
			writeError(w, a.log, err)
			return
		}
		ctx := context.WithValue(r.Context(), tenantKey{}, p.Tenant)
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, principalKey{}, p)))
	})
}

// storeErr marks an unexpected store failure as "unavailable".
func storeErr(err error) error {
	if err == nil || errors.Is(err, tracker.ErrNotFound) || errors.Is(err, tracker.ErrBusy) ||
		errors.Is(err, tracker.ErrInProgress) || errors.Is(err, ErrTemplateNotFound) {
		return err
	}
	return fmt.Errorf("%w: %w", errUnavailable, err)
}

// templateView is a template as the API shows it: secrets masked, with its
// delivery state.
type templateView struct {
	Code        string `json:"code"`
	Name        string `json:"name"`
	Destination struct {
		Webhook webhookView `json:"webhook"`
	} `json:"destination"`
	State       string     `json:"state"` // active | paused
	PausedAt    *time.Time `json:"pausedAt,omitempty"`
	PauseReason string     `json:"pauseReason,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
}

type webhookView struct {
	URL            string          `json:"url"`
	AuthHeaderName string          `json:"authHeaderName,omitempty"`
	ChunkSize      int             `json:"chunkSize"`
	RetryCount     int             `json:"retryCount"`
	RetryInterval  int64           `json:"retryInterval"`
	Timeout        int64           `json:"timeout"`
	MaxInFlight    int             `json:"maxInFlight"`
	SigningSecret  string          `json:"signingSecret,omitempty"`
	RecordFormat   json.RawMessage `json:"recordFormat,omitempty"`
	// PreviousSecretExpiresAt: until then the replaced secret signs too.
	PreviousSecretExpiresAt *time.Time     `json:"previousSigningSecretExpiresAt,omitempty"`
	RateLimit               *rateLimitView `json:"rateLimit,omitempty"`
	PauseAfterFailures      int            `json:"pauseAfterFailures"`
	ProbeInterval           int64          `json:"probeInterval"`
	NotifyURL               string         `json:"notifyUrl,omitempty"`
}

type rateLimitView struct {
	Requests int   `json:"requests"`
	Interval int64 `json:"interval"`
}

func viewTemplate(t *Template, st tracker.TemplateState) templateView {
	wh := webhookView{
		URL: t.Webhook.URL, AuthHeaderName: t.Webhook.AuthHeaderName, ChunkSize: t.Webhook.ChunkSize,
		RetryCount: t.Webhook.RetryCount, RetryInterval: t.Webhook.RetryInterval.Milliseconds(),
		Timeout: t.Webhook.Timeout.Milliseconds(), MaxInFlight: t.Webhook.MaxInFlight,
		RecordFormat: t.Webhook.RecordFormat, PauseAfterFailures: t.Webhook.PauseAfterFailures,
		ProbeInterval: t.Webhook.ProbeInterval.Milliseconds(), NotifyURL: t.Webhook.NotifyURL,
	}
	if rl := t.Webhook.RateLimit; rl != nil {
		wh.RateLimit = &rateLimitView{Requests: rl.Requests, Interval: rl.Interval.Milliseconds()}
	}
	if t.Webhook.SealedSigningSecret != "" {
		wh.SigningSecret = "whsec_…" + t.Webhook.SigningSecretHint
	}
	if _, prev := t.Webhook.SigningSecrets(time.Now()); prev != "" {
		exp := t.Webhook.PreviousSecretExpiresAt
		wh.PreviousSecretExpiresAt = &exp
	}
	v := templateView{Code: t.Code, Name: t.Name, State: "active", CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
	if st.Paused {
		at := st.PausedAt
		v.State, v.PausedAt, v.PauseReason = "paused", &at, st.Reason
	}
	v.Destination.Webhook = wh
	return v
}

// view shows a template with its state, read from the tracker.
func (a *API) view(ctx context.Context, t *Template) (templateView, error) {
	st, err := a.tracker.State(ctx, t.Tenant, t.Code)
	if err != nil {
		return templateView{}, storeErr(err)
	}
	return viewTemplate(t, st), nil
}

func (a *API) putTemplate(w http.ResponseWriter, r *http.Request) {
	tenant, code := tenantOf(r), r.PathValue("code")
	var in TemplateInput
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, a.log, jsonError(err))
		return
	}
	old, err := a.templates.Get(r.Context(), tenant, code)
	if err != nil && !errors.Is(err, ErrTemplateNotFound) {
		writeError(w, a.log, storeErr(err))
		return
	}
	created := time.Now().UTC()
	if old != nil {
		created = old.CreatedAt
	}
	t, generated, err := in.Build(code, tenant, old, a.secrets.Seal, time.Now())
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	t.CreatedAt, t.UpdatedAt = created, time.Now().UTC()
	if err := a.templates.Put(r.Context(), t); err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	status := http.StatusOK
	if old == nil {
		status = http.StatusCreated
	}
	view, err := a.view(r.Context(), t)
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	if generated != "" {
		view.Destination.Webhook.SigningSecret = generated // shown in this answer only
	}
	writeJSON(w, status, view)
}

func (a *API) getTemplate(w http.ResponseWriter, r *http.Request) {
	t, err := a.templates.Get(r.Context(), tenantOf(r), r.PathValue("code"))
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	view, err := a.view(r.Context(), t)
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

func (a *API) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	tenant, code := tenantOf(r), r.PathValue("code")
	if err := a.templates.Delete(r.Context(), tenant, code); err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	if err := a.tracker.ForgetTemplate(r.Context(), tenant, code); err != nil {
		a.log.Warn("forget a deleted template's state", zap.String("template", code), zap.Error(err))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := listParams(r.URL.Query())
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	after, err := parseTemplatesCursor(cursor)
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	ts, more, err := a.templates.Page(r.Context(), tenantOf(r), after, limit)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	out := templateList{Templates: make([]templateView, 0, len(ts))}
	for _, t := range ts {
		v, err := a.view(r.Context(), t)
		if err != nil {
			writeError(w, a.log, err)
			return
		}
		out.Templates = append(out.Templates, v)
	}
	if more && len(ts) > 0 {
		out.NextCursor = templatesCursor(ts[len(ts)-1].Code)
	}
	writeJSON(w, http.StatusOK, out)
}

type templateList struct {
	Templates  []templateView `json:"templates"`
	NextCursor string         `json:"nextCursor,omitempty"`
}

type uploadView struct {
	UploadID       string     `json:"uploadId"`
	Template       string     `json:"template"`
	Status         string     `json:"status"`
	TotalRecords   int        `json:"totalRecords"`
	TotalPages     int        `json:"totalPages"`
	DeliveredPages int        `json:"deliveredPages"`
	FailedPages    int        `json:"failedPages"`
	PendingPages   int        `json:"pendingPages"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	CompletedAt    *time.Time `json:"completedAt"`
}

func viewUpload(u *tracker.Upload) uploadView {
	v := uploadView{
		UploadID: u.ID, Template: u.Template, Status: string(u.Status), TotalRecords: u.TotalRecords,
		TotalPages: u.TotalPages, DeliveredPages: u.DeliveredPages, FailedPages: u.FailedPages,
		PendingPages: u.PendingPages(), CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
	if !u.CompletedAt.IsZero() {
		v.CompletedAt = &u.CompletedAt
	}
	return v
}

func (a *API) getUpload(w http.ResponseWriter, r *http.Request) {
	u, err := a.tracker.Get(r.Context(), r.PathValue("id"), tenantOf(r))
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	writeJSON(w, http.StatusOK, viewUpload(u))
}

func (a *API) getAttempts(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	limit, cursor, err := listParams(r.URL.Query())
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	from, err := parseUploadListCursor(cursor, "attempts", id)
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	if _, err := a.tracker.Get(r.Context(), id, tenantOf(r)); err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	page, err := a.tracker.AttemptsPage(r.Context(), id, from, limit)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	out := attemptList{Attempts: page.Attempts}
	if !page.Last {
		out.NextCursor = uploadListCursor("attempts", id, page.Next)
	}
	writeJSON(w, http.StatusOK, out)
}

type attemptList struct {
	Attempts   []tracker.Attempt `json:"attempts"`
	NextCursor string            `json:"nextCursor,omitempty"`
}

func (a *API) getFailures(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	limit, cursor, err := listParams(r.URL.Query())
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	after, err := parseUploadListCursor(cursor, "failures", id)
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	if _, err := a.tracker.Get(r.Context(), id, tenantOf(r)); err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	page, err := a.tracker.FailuresPage(r.Context(), id, after, limit)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	out := failureList{Failures: page.Failures}
	if !page.Last {
		out.NextCursor = uploadListCursor("failures", id, page.Next)
	}
	writeJSON(w, http.StatusOK, out)
}

type failureList struct {
	Failures   []tracker.Failure `json:"failures"`
	NextCursor string            `json:"nextCursor,omitempty"`
}

func (a *API) retryUpload(w http.ResponseWriter, r *http.Request) {
	id, tenant := r.PathValue("id"), tenantOf(r)
	res, err := a.tracker.Retry(r.Context(), id, tenant, time.Now())
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	// Publish even if the client goes away: the pages are already queued in
	// the tracker. If publishing fails, the next retry call publishes again.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	_, quotas := quotasOf(r.Context())
	for _, page := range res.Release {
		ticket := &hooklinev1.Ticket{UploadId: id, Page: uint32(page), Tenant: tenant, Template: res.Template, DeliveryShare: quotas.ticketShare()} // #nosec G115 -- page numbers come from the tracker, far below 2^32
		if err := a.tickets.PublishTicket(pctx, ticket, res.Gen); err != nil {
			writeError(w, a.log, fmt.Errorf("%w: publish ticket: %w", errUnavailable, err))
			return
		}
	}
	if err := a.tracker.RetryPublished(pctx, id); err != nil {
		a.log.Warn("confirm retry tickets", zap.String("upload", id), zap.Error(err)) // a repeated call republishes, de-duplicated
	}
	a.log.Info("failed pages queued again", zap.String("upload", id), zap.Int("pages", res.Requeued))
	writeJSON(w, http.StatusOK, map[string]int{"requeuedPages": res.Requeued})
}

func (a *API) listUploads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := tracker.Filter{Template: q.Get("template"), Status: tracker.Status(q.Get("status"))}
	switch f.Status {
	case "", tracker.StatusDelivering, tracker.StatusCompleted, tracker.StatusFailed:
	default:
		writeError(w, a.log, badRequest("status", "status must be delivering, completed or failed"))
		return
	}
	var cursor string
	var err error
	if f.Limit, cursor, err = listParams(q); err == nil {
		f.After, err = parseUploadsCursor(cursor)
	}
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	page, err := a.tracker.ListPage(r.Context(), tenantOf(r), f)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	out := uploadList{Uploads: make([]uploadView, 0, len(page.Uploads)), NextCursor: uploadsCursor(page.Next)}
	for _, u := range page.Uploads {
		out.Uploads = append(out.Uploads, viewUpload(u))
	}
	writeJSON(w, http.StatusOK, out)
}

type uploadList struct {
	Uploads    []uploadView `json:"uploads"`
	NextCursor string       `json:"nextCursor,omitempty"`
}

// Metrics are the ingest service's Prometheus metrics.
type Metrics struct {
	uploads  prometheus.Counter
	records  prometheus.Counter
	pages    prometheus.Counter
	rejected prometheus.Counter
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// stateChanges: templates paused or resumed by hand (no template label:
	// tenants' template codes are unbounded).
	stateChanges *prometheus.CounterVec
	tests        *prometheus.CounterVec
	deferred     prometheus.Counter // seconds heavy imports waited for light work (light.go)
}

// NewMetrics registers the ingest metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		uploads:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_uploads_accepted_total", Help: "Imports accepted (answered 202)."}),
		records:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_records_ingested_total", Help: "Records of accepted imports."}),
		pages:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_pages_published_total", Help: "Pages stored in the PAGES stream."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_imports_rejected_total", Help: "Imports refused (bad input, limits, unavailable)."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookline_http_requests_total", Help: "API requests by route and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hookline_http_request_duration_seconds", Help: "API request duration by route.",
			Buckets: prometheus.DefBuckets}, []string{"route"}),
		stateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookline_templates_set_by_hand_total",
			Help: "Templates paused or resumed with POST /v1/templates/{code}/pause or /resume, by change."}, []string{"change"}),
		tests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookline_template_tests_total",
			Help: "Test requests (POST /v1/templates/{code}/test) by outcome (delivered, failed)."}, []string{"outcome"}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_import_deferred_seconds_total",
			Help: "Time imports of tenants with much work under way waited between pages while another tenant's light work was marked."}),
	}
	reg.MustRegister(m.uploads, m.records, m.pages, m.rejected, m.requests, m.latency, m.stateChanges, m.tests, m.deferred)
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (Flush,
// SetWriteDeadline: the event stream).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (m *Metrics) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
