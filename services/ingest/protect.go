package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/records"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
)

// ReasonByHand is the pauseReason of a template paused with POST .../pause.
const ReasonByHand = "paused by hand"

func (a *API) pauseTemplate(w http.ResponseWriter, r *http.Request)  { a.setPaused(w, r, true) }
func (a *API) resumeTemplate(w http.ResponseWriter, r *http.Request) { a.setPaused(w, r, false) }

// setPaused pauses or resumes a template by hand and answers the template.
// A template paused by hand sends no probes: only a resume ends the pause.
// The change is announced on hookline.events.<tenant>.template.paused or
// .resumed; a call that changes nothing announces nothing.
func (a *API) setPaused(w http.ResponseWriter, r *http.Request, pause bool) {
	tenant, code := tenantOf(r), r.PathValue("code")
	t, err := a.templates.Get(r.Context(), tenant, code)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	reason := ""
	if pause {
		reason = ReasonByHand
	}
	change, at, err := a.tracker.SetPaused(r.Context(), tenant, code, pause, reason, 0)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	if change != tracker.NoChange && a.events != nil {
		a.log.Info("template "+string(change)+" by hand", zap.String("tenant", tenant), zap.String("template", code))
		a.metrics.stateChanges.WithLabelValues(string(change)).Inc()
		ev := queue.TemplateEvent{Type: "template." + string(change), Tenant: tenant, Template: code, Reason: reason, At: at}
		if err := a.events.PublishTemplateEvent(context.WithoutCancel(r.Context()), ev); err != nil {
			a.log.Warn("publish template event", zap.String("template", code), zap.Error(err))
		}
		if err := a.notify(context.WithoutCancel(r.Context()), t, ev); err != nil {
			a.log.Warn("queue template notification", zap.String("template", code), zap.Error(err))
		}
	}
	view, err := a.view(r.Context(), t)
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// TemplateEvents publishes templates' changes of state.
type TemplateEvents interface {
	PublishTemplateEvent(ctx context.Context, ev queue.TemplateEvent) error
	PublishNotification(ctx context.Context, n queue.Notification, dedup string) error
}

// notify queues the notification of a template event for its notifyUrl,
// signed with its secret. A change by hand has no import's auth header
// value to send.
func (a *API) notify(ctx context.Context, t *Template, ev queue.TemplateEvent) error {
	wh := t.Webhook
	if wh.NotifyURL == "" {
		return nil
	}
	body, id := ev.Notice()
	return a.events.PublishNotification(ctx, queue.Notification{ID: id, Tenant: t.Tenant, Template: t.Code, Type: ev.Type,
		URL: wh.NotifyURL, SealedSigningSecret: wh.SealedSigningSecret, RetryCount: wh.RetryCount,
		RetryIntervalMs: wh.RetryInterval.Milliseconds(), TimeoutMs: wh.Timeout.Milliseconds(), Body: body}, t.Tenant+"."+id)
}

// WithTemplateEvents announces pauses and resumes by hand with p.
func WithTemplateEvents(p TemplateEvents) APIOption { return func(a *API) { a.events = p } }

// Sender sends one webhook request (the test request).
type Sender interface {
	Send(ctx context.Context, req webhook.Request) webhook.Result
}

// WithSender sends test requests with s: the same hardened client, SSRF
// guard included, that the workers send pages with.
func WithSender(s Sender) APIOption { return func(a *API) { a.sender = s } }

// testInput is the body of POST /v1/templates/{code}/test.
type testInput struct {
	AuthHeaderValue string            `json:"authHeaderValue"`
	Records         []json.RawMessage `json:"records"`
}

// testResult is what the endpoint answered a test request.
type testResult struct {
	Delivered    bool   `json:"delivered"`
	StatusCode   int    `json:"statusCode"`
	DurationMs   int64  `json:"durationMs"`
	ResponseBody string `json:"responseBody"`
	Error        string `json:"error"`
}

// sampleRecord is the test request's record when none is given and the
// template has no recordFormat.
var sampleRecord = []byte(`{"example":"record"}`)

// testTemplate sends one request now, exactly as a page of a one-page
// upload test_<id> is sent. It is not an upload: nothing is stored. It
// counts against the template's rate limit (429 when the limit has no room
// now) and is sent while the template is paused: checking the endpoint is
// how one learns it is back.
func (a *API) testTemplate(w http.ResponseWriter, r *http.Request) {
	tenant, code := tenantOf(r), r.PathValue("code")
	t, err := a.templates.Get(r.Context(), tenant, code)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	var in testInput
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max(a.cfg.MaxBodyBytes, 1<<20)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, a.log, jsonError(err))
		return
	}
	if len(in.AuthHeaderValue) > MaxAuthHeaderValue {
		writeError(w, a.log, badRequest("authHeaderValue", fmt.Sprintf("authHeaderValue must be at most %d bytes", MaxAuthHeaderValue)))
		return
	}
	if err := webhook.ValidateAuthHeaderValue(in.AuthHeaderValue); err != nil {
		writeError(w, a.log, badRequest("authHeaderValue", err.Error()))
		return
	}
	if len(in.Records) > MaxChunkSize {
		writeError(w, a.log, badRequest("records", fmt.Sprintf("a test sends at most %d records", MaxChunkSize)))
		return
	}
	data := []byte{'['}
	for i, rec := range in.Records {
		if rec = bytes.TrimSpace(rec); len(rec) == 0 || rec[0] != '{' {
			writeError(w, a.log, badRequest("records["+strconv.Itoa(i)+"]", "each record must be a JSON object"))
			return
		}
		if i > 0 {
			data = append(data, ',')
		}
		var c bytes.Buffer
		_ = json.Compact(&c, rec)
		data = append(data, c.Bytes()...)
	}
	if len(in.Records) == 0 {
		data = append(data, sample(t)...)
	}
	data = append(data, ']')

	dest, err := a.testDestination(t, in.AuthHeaderValue)
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	p := Snapshot(t.Webhook, "").Protection(0)
	p.Test = true
	g, err := a.tracker.Gate(r.Context(), tenant, code, p)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	if g.Kind == tracker.Limited {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((g.Wait+time.Second-1)/time.Second), 10))
		writeError(w, a.log, &APIError{Status: http.StatusTooManyRequests, Code: "rate_limited", Field: "destination.webhook.rateLimit",
			Message: fmt.Sprintf("the template's rate limit allows its next request in %s", g.Wait)})
		return
	}
	id := "test_" + ulid.Make().String()
	records := bytes.Count(data, []byte("},{")) + 1
	body := webhook.AppendBody(nil, webhook.Page{Template: t.Code, UploadID: id, Data: data,
		TotalRecords: records, TotalPages: 1, Page: 1, PageSize: records, Extra: json.RawMessage(`""`)})
	res := a.sender.Send(r.Context(), webhook.Request{Destination: dest, ID: id + ".1", Body: body})
	out := testResult{Delivered: res.Delivered(), StatusCode: res.StatusCode, DurationMs: res.Duration.Milliseconds(), ResponseBody: string(res.ResponseBody)}
	if res.Err != nil {
		out.Error = res.Err.Error()
	}
	outcome := "failed"
	if out.Delivered {
		outcome = "delivered"
	}
	a.metrics.tests.WithLabelValues(outcome).Inc()
	a.log.Info("test request sent", zap.String("tenant", tenant), zap.String("template", code), zap.String("uploadId", id),
		zap.Bool("delivered", out.Delivered), zap.Int("status", out.StatusCode), zap.String("error", out.Error))
	writeJSON(w, http.StatusOK, out)
}

// sample is the test request's record made from the template's recordFormat.
func sample(t *Template) []byte {
	if len(t.Webhook.RecordFormat) > 0 {
		if p, err := records.CompilePlan(t.Webhook.RecordFormat); err == nil {
			if rec := p.Sample(); rec != nil {
				return rec
			}
		}
	}
	return sampleRecord
}

// testDestination is where and how the test request goes: as the
// workers send a page, signing secrets included.
func (a *API) testDestination(t *Template, auth string) (webhook.Destination, error) {
	dest := webhook.Destination{URL: t.Webhook.URL, AuthHeaderName: t.Webhook.AuthHeaderName, AuthHeaderValue: auth, Timeout: t.Webhook.Timeout}
	current, previous := t.Webhook.SigningSecrets(time.Now())
	var err error
	if dest.SigningSecret, err = a.secrets.Open(current); err != nil {
		return webhook.Destination{}, fmt.Errorf("open signing secret: %w", err)
	}
	if dest.PreviousSigningSecret, err = a.secrets.Open(previous); err != nil {
		return webhook.Destination{}, fmt.Errorf("open previous signing secret: %w", err)
	}
	return dest, nil
}
