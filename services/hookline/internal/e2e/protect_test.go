package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// mostInWindow is the most requests rc received within any window of
// length window (counted at the receiver, by arrival).
func mostInWindow(reqs []apitest.Request, window time.Duration) int {
	at := make([]time.Time, len(reqs))
	for i, r := range reqs {
		at[i] = r.At
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	most := 0
	for i := range at {
		n := 0
		for j := i; j < len(at) && at[j].Sub(at[i]) < window; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

// The rate limit holds across every worker and every upload of the
// template: no window of the interval holds more than its requests.
func TestRateLimitAcrossWorkers(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.startWorker()
	}
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "LIMITED", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 4,
		"rateLimit": map[string]any{"requests": 2, "interval": 1000}})
	a := e.client.ImportJSON(keyA, map[string]any{"template": "LIMITED", "records": apitest.Records(6)})
	b := e.client.ImportJSON(keyA, map[string]any{"template": "LIMITED", "records": apitest.Records(6)})
	for _, id := range []string{a.UploadID, b.UploadID} {
		if u := e.client.WaitFinished(keyA, id, 60*time.Second); u.Status != "completed" || u.DeliveredPages != 6 {
			t.Fatalf("upload %s = %+v, want 6 pages delivered", id, u)
		}
	}
	reqs := rc.Requests()
	if len(reqs) != 12 {
		t.Fatalf("%d requests, want 12 (one per page: waiting is not an attempt)", len(reqs))
	}
	// The limit spaces the requests it lets go; the margin is for the
	// requests' own way to the receiver.
	if n := mostInWindow(reqs, 900*time.Millisecond); n > 2 {
		t.Fatalf("%d requests arrived within 900ms, the limit is 2 per second", n)
	}
	for _, id := range []string{a.UploadID, b.UploadID} {
		for _, at := range e.client.Attempts(keyA, id) {
			if at.Attempt != 1 || at.Outcome != "delivered" {
				t.Fatalf("attempt %+v: waiting for the limit must not count as an attempt", at)
			}
		}
	}
}

// A page waiting for its template's limit holds no worker slot: with one
// slot, an unlimited template's upload finishes while the limited one is
// still waiting, and the limited upload keeps its page order.
func TestRateLimitDoesNotSlowOthers(t *testing.T) {
	e := newEnv(t, withVar("HOOKLINE_WORKER_CONCURRENCY", "1"))
	e.startWorker()
	slow := apitest.NewReceiver(t, nil)
	fast := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "SLOW", map[string]any{"url": slow.HookURL(), "chunkSize": 1,
		"rateLimit": map[string]any{"requests": 1, "interval": 3000}})
	e.client.PutTemplate(keyA, "FAST", map[string]any{"url": fast.HookURL(), "chunkSize": 1})
	s := e.client.ImportJSON(keyA, map[string]any{"template": "SLOW", "records": apitest.NumberedRecords(3)})
	apitest.Eventually(t, 10*time.Second, "the limited upload's first page", func() bool { return slow.Count() >= 1 })
	f := e.client.ImportJSON(keyA, map[string]any{"template": "FAST", "records": apitest.Records(10)})
	e.client.WaitFinished(keyA, f.UploadID, 20*time.Second)
	if n := slow.Count(); n >= 3 {
		t.Fatalf("the limited upload got all %d requests before the unlimited one finished: its waits held the slot", n)
	}
	if u := e.client.Upload(keyA, s.UploadID); u.Status != "delivering" {
		t.Fatalf("limited upload = %+v, want still delivering", u)
	}
	e.client.WaitFinished(keyA, s.UploadID, 30*time.Second)
	for i, r := range slow.Requests() {
		if r.Page.Page != i+1 {
			t.Fatalf("request %d carried page %d: order lost", i+1, r.Page.Page)
		}
	}
}

// templateState is the state part of GET /v1/templates/{code}.
type templateState struct {
	State       string     `json:"state"`
	PausedAt    *time.Time `json:"pausedAt"`
	PauseReason string     `json:"pauseReason"`
	Destination struct {
		Webhook struct {
			RateLimit *struct {
				Requests int `json:"requests"`
				Interval int `json:"interval"`
			} `json:"rateLimit"`
			PauseAfterFailures int    `json:"pauseAfterFailures"`
			ProbeInterval      int    `json:"probeInterval"`
			NotifyURL          string `json:"notifyUrl"`
		} `json:"webhook"`
	} `json:"destination"`
}

func (e *env) templateState(code string) templateState {
	e.t.Helper()
	var st templateState
	if err := json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/templates/"+code, nil, http.StatusOK), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// The protection fields are stored and shown; a new template is active.
func TestProtectionFieldsShown(t *testing.T) {
	e := newEnv(t)
	e.client.PutTemplate(keyA, "SHOWN", map[string]any{"url": "https://example.com/hook",
		"rateLimit": map[string]any{"requests": 1, "interval": 5000}, "pauseAfterFailures": 5, "notifyUrl": "https://example.com/notify"})
	st := e.templateState("SHOWN")
	wh := st.Destination.Webhook
	if st.State != "active" || st.PausedAt != nil || wh.RateLimit == nil || wh.RateLimit.Requests != 1 || wh.RateLimit.Interval != 5000 ||
		wh.PauseAfterFailures != 5 || wh.ProbeInterval != 60000 || wh.NotifyURL != "https://example.com/notify" {
		t.Fatalf("template = %+v", st)
	}
}

// templateEvents reads the template events published so far for tenant acme.
func (e *env) templateEvents(within time.Duration, want int) []queue.TemplateEvent {
	e.t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	var got []queue.TemplateEvent
	apitest.Eventually(e.t, within, "template events", func() bool {
		got = nil
		cons, err := js.OrderedConsumer(context.Background(), "HOOKLINE_EVENTS", jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{"hookline.events.acme.template.>"},
		})
		if err != nil {
			return false
		}
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			return false
		}
		for msg := range batch.Messages() {
			var ev queue.TemplateEvent
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				e.t.Fatal(err)
			}
			got = append(got, ev)
		}
		return len(got) >= want
	})
	return got
}

// failingReceiver answers 500 while failing is set, 200 otherwise.
func failingReceiver(t *testing.T, failing *atomic.Bool) *apitest.Receiver {
	return apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ apitest.Request, _ int) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// N failed attempts in a row pause the template; while paused only probes
// go out, one per probeInterval, and they spend no attempts; a delivered
// probe resumes the template, which then delivers everything that waited.
func TestPauseAfterFailuresAndProbe(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	e.startWorker()
	var failing atomic.Bool
	failing.Store(true)
	rc := failingReceiver(t, &failing)
	e.client.PutTemplate(keyA, "FLAKY", map[string]any{"url": rc.HookURL(), "chunkSize": 1,
		"retryCount": 3, "retryInterval": 50, "pauseAfterFailures": 3, "probeInterval": 500})
	up := e.client.ImportJSON(keyA, map[string]any{"template": "FLAKY", "records": apitest.NumberedRecords(4)})
	apitest.Eventually(t, 20*time.Second, "the template paused", func() bool { return e.templateState("FLAKY").State == "paused" })
	st := e.templateState("FLAKY")
	if st.PausedAt == nil || !strings.Contains(st.PauseReason, "3 failed attempts in a row") {
		t.Fatalf("paused template = %+v, want pausedAt and the reason", st)
	}
	paused := rc.Count()
	if paused != 3 {
		t.Fatalf("%d requests before the pause, want 3", paused)
	}
	// Only probes while paused: more of them than the page has attempts left.
	apitest.Eventually(t, 20*time.Second, "three probes", func() bool { return rc.Count() >= paused+3 })
	probes := rc.Requests()[paused:]
	if n := mostInWindow(probes, 450*time.Millisecond); n > 1 {
		t.Fatalf("%d probes within 450ms, want one per probeInterval (500ms)", n)
	}
	if u := e.client.Upload(keyA, up.UploadID); u.FailedPages != 0 || u.DeliveredPages != 0 {
		t.Fatalf("upload while paused = %+v, want nothing failed", u)
	}
	failing.Store(false)
	u := e.client.WaitFinished(keyA, up.UploadID, 20*time.Second)
	if u.Status != "completed" || u.DeliveredPages != 4 {
		t.Fatalf("upload = %+v, want every page delivered after the probe resumed the template", u)
	}
	if st := e.templateState("FLAKY"); st.State != "active" || st.PausedAt != nil {
		t.Fatalf("template after a delivered probe = %+v, want active", st)
	}
	spent := 0
	for _, a := range e.client.Attempts(keyA, up.UploadID) {
		if a.Outcome == "retrying" || a.Outcome == "failed" {
			spent++
		}
	}
	if spent != 3 {
		t.Fatalf("%d attempts spent, want the 3 before the pause (failed probes spend none)", spent)
	}
	evs := e.templateEvents(10*time.Second, 2)
	if len(evs) != 2 || evs[0].Type != "template.paused" || evs[1].Type != "template.resumed" || evs[0].Template != "FLAKY" || evs[0].Reason == "" {
		t.Fatalf("template events = %+v, want paused then resumed", evs)
	}
}

// A template paused by hand sends nothing, not even probes; its pages wait
// without attempts, and a resume by hand delivers them all.
func TestPauseAndResumeByHand(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "HAND", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "probeInterval": 100})
	var st templateState
	if err := json.Unmarshal(e.client.MustCall(keyA, http.MethodPost, "/v1/templates/HAND/pause", nil, http.StatusOK), &st); err != nil {
		t.Fatal(err)
	}
	if st.State != "paused" || st.PauseReason != "paused by hand" || st.PausedAt == nil {
		t.Fatalf("pause answered %+v", st)
	}
	up := e.client.ImportJSON(keyA, map[string]any{"template": "HAND", "records": apitest.NumberedRecords(3)})
	apitest.Eventually(t, 20*time.Second, "a page held back twice", func() bool {
		return strings.Count(e.logs.String(), "the template is paused") >= 2
	})
	if n := rc.Count(); n != 0 {
		t.Fatalf("%d requests to a template paused by hand, want none", n)
	}
	e.client.MustCall(keyA, http.MethodPost, "/v1/templates/HAND/resume", nil, http.StatusOK)
	u := e.client.WaitFinished(keyA, up.UploadID, 20*time.Second)
	if u.Status != "completed" || u.DeliveredPages != 3 {
		t.Fatalf("upload = %+v, want every page delivered after the resume", u)
	}
	for _, a := range e.client.Attempts(keyA, up.UploadID) {
		if a.Attempt != 1 {
			t.Fatalf("attempt %+v: waiting while paused must not count", a)
		}
	}
	evs := e.templateEvents(10*time.Second, 2)
	if evs[0].Type != "template.paused" || evs[0].Reason != "paused by hand" || evs[1].Type != "template.resumed" {
		t.Fatalf("template events = %+v", evs)
	}
	// Resuming an active template changes nothing and announces nothing.
	e.client.MustCall(keyA, http.MethodPost, "/v1/templates/HAND/resume", nil, http.StatusOK)
	if n := len(e.templateEvents(10*time.Second, 2)); n != 2 {
		t.Fatalf("%d events after a second resume, want 2", n)
	}
	e.client.MustCall(keyA, http.MethodPost, "/v1/templates/NOPE/pause", nil, http.StatusNotFound)
}

// A pause by hand reaches a template with no protection at once, in the
// middle of an upload whose pages one delivery carries one after another:
// once the pause call has answered, the endpoint gets no request beyond the
// one already under way when it was written (held open here until then).
// The next page is held back without an attempt, and a resume delivers
// the rest.
func TestPauseByHandStopsDeliveryAtOnce(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	e.startWorker()
	const pages, blockAt = 20, 3
	var arrived atomic.Int32
	underWay, release := make(chan struct{}), make(chan struct{})
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ apitest.Request, _ int) {
		if arrived.Add(1) == blockAt {
			close(underWay)
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "NOW", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 1})
	up := e.client.ImportJSON(keyA, map[string]any{"template": "NOW", "records": apitest.NumberedRecords(pages)})
	select {
	case <-underWay:
	case <-time.After(20 * time.Second):
		t.Fatalf("request %d never arrived (%d did)", blockAt, rc.Count())
	}
	e.client.MustCall(keyA, http.MethodPost, "/v1/templates/NOW/pause", nil, http.StatusOK)
	heldBefore := strings.Count(e.logs.String(), "the template is paused")
	close(release)
	// The page after the one under way is held back by the pause...
	apitest.Eventually(t, 20*time.Second, "the next page held back", func() bool {
		return strings.Count(e.logs.String(), "the template is paused") > heldBefore
	})
	// ...and nothing went to the endpoint after the pause was written.
	if n := rc.Count(); n != blockAt {
		t.Fatalf("%d requests, want %d: %d arrived after the pause by hand", n, blockAt, n-blockAt)
	}
	if u := e.client.Upload(keyA, up.UploadID); u.DeliveredPages != blockAt || u.Status != "delivering" {
		t.Fatalf("upload while paused = %+v, want %d pages delivered, still delivering", u, blockAt)
	}
	e.client.MustCall(keyA, http.MethodPost, "/v1/templates/NOW/resume", nil, http.StatusOK)
	if u := e.client.WaitFinished(keyA, up.UploadID, 30*time.Second); u.Status != "completed" || u.DeliveredPages != pages {
		t.Fatalf("upload = %+v, want every page delivered after the resume", u)
	}
	for _, a := range e.client.Attempts(keyA, up.UploadID) {
		if a.Attempt != 1 || a.Outcome != "delivered" {
			t.Fatalf("attempt %+v: a page held back by the pause spends no attempt", a)
		}
	}
}
