package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// A page that fails twice and then succeeds, with retryCount 3: three
// attempts, each at least retryInterval after the one before.
func TestRetryThenSuccess(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("temporarily broken"))
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	const interval = 400 * time.Millisecond
	e.client.PutTemplate(keyA, "R", map[string]any{"url": rc.HookURL(), "retryCount": 3, "retryInterval": interval.Milliseconds()})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "R", "records": apitest.Records(1)})
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "completed" {
		t.Fatalf("upload = %+v", u)
	}
	reqs := rc.Requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d attempts, want 3", len(reqs))
	}
	for i := 1; i < len(reqs); i++ {
		if gap := reqs[i].At.Sub(reqs[i-1].At); gap < interval {
			t.Fatalf("attempt %d came %s after the one before, want at least %s", i+1, gap, interval)
		}
		if reqs[i].Header.Get("webhook-id") != reqs[0].Header.Get("webhook-id") {
			t.Fatal("webhook-id changed between retries")
		}
	}
	atts := e.client.Attempts(keyA, acc.UploadID)
	want := []string{"retrying", "retrying", "delivered"}
	if len(atts) != 3 {
		t.Fatalf("attempts log = %+v", atts)
	}
	for i, a := range atts {
		if a.Outcome != want[i] || a.Attempt != i+1 || a.Page != 1 {
			t.Fatalf("attempt %d = %+v, want outcome %s", i+1, a, want[i])
		}
	}
	if atts[0].StatusCode != 500 || atts[0].ResponseBody != "temporarily broken" || atts[0].Error == "" {
		t.Fatalf("failed attempt = %+v", atts[0])
	}
}

// A page that always fails: exactly 1+retryCount attempts, then the failure
// log and status failed; the other pages still go; /retry delivers it later.
func TestAlwaysFailingPageThenManualRetry(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	healed := make(chan struct{})
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		select {
		case <-healed:
		default:
			if r.Page.Page == 2 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "F", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "retryCount": 2, "retryInterval": 50})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "F", "records": apitest.Records(3)})
	u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second)
	if u.Status != "failed" || u.FailedPages != 1 || u.DeliveredPages != 2 || u.PendingPages != 0 {
		t.Fatalf("upload = %+v", u)
	}
	page2 := 0
	for _, r := range rc.Requests() {
		if r.Page.Page == 2 {
			page2++
		}
	}
	if page2 != 3 {
		t.Fatalf("page 2 was sent %d times, want 1 + retryCount = 3", page2)
	}
	var fl struct {
		Failures []struct {
			Page, Attempts, StatusCode int
			Error                      string
		}
	}
	_ = json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/uploads/"+acc.UploadID+"/failures", nil, 200), &fl)
	if len(fl.Failures) != 1 || fl.Failures[0].Page != 2 || fl.Failures[0].Attempts != 3 || fl.Failures[0].StatusCode != 502 {
		t.Fatalf("failure log = %+v", fl)
	}
	if n := e.streamMsgs("HOOKLINE_DEAD"); n != 1 {
		t.Fatalf("dead letters = %d, want 1", n)
	}

	close(healed)
	data := e.client.MustCall(keyA, http.MethodPost, "/v1/uploads/"+acc.UploadID+"/retry", nil, http.StatusOK)
	if string(data) != "{\"requeuedPages\":1}\n" {
		t.Fatalf("retry answer = %s", data)
	}
	u = e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second)
	if u.Status != "completed" || u.DeliveredPages != 3 || u.FailedPages != 0 {
		t.Fatalf("upload after retry = %+v", u)
	}
	_ = json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/uploads/"+acc.UploadID+"/failures", nil, 200), &fl)
	if len(fl.Failures) != 0 {
		t.Fatalf("failure log after retry = %+v", fl)
	}
	if reqs := rc.Requests(); reqs[len(reqs)-1].Page.Page != 2 {
		t.Fatalf("last request was page %d, want the retried page 2", reqs[len(reqs)-1].Page.Page)
	}
}

// retryCount 0 (the default): one attempt only.
func TestNoRetriesByDefault(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	e.client.PutTemplate(keyA, "Z", map[string]any{"url": rc.HookURL()})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "Z", "records": apitest.Records(1)})
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "failed" {
		t.Fatalf("upload = %+v", u)
	}
	if n := len(rc.Requests()); n != 1 {
		t.Fatalf("receiver got %d attempts, want 1", n)
	}
	if atts := e.client.Attempts(keyA, acc.UploadID); len(atts) != 1 || atts[0].Outcome != "failed" {
		t.Fatalf("attempts = %+v", atts)
	}
}

// 429 with Retry-After waits max(retryInterval, Retry-After).
func TestRetryAfter(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "RA", map[string]any{"url": rc.HookURL(), "retryCount": 1, "retryInterval": 10})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "RA", "records": apitest.Records(1)})
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "completed" {
		t.Fatalf("upload = %+v", u)
	}
	reqs := rc.Requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests", len(reqs))
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < time.Second {
		t.Fatalf("retry came after %s, want at least the Retry-After of 1s", gap)
	}
}

// A receiver slower than the template's timeout is a failed attempt.
func TestTimeout(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		time.Sleep(3 * time.Second) // much slower than the 200ms timeout
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "TO", map[string]any{"url": rc.HookURL(), "timeout": 200})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "TO", "records": apitest.Records(1)})
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "failed" {
		t.Fatalf("upload = %+v", u)
	}
	atts := e.client.Attempts(keyA, acc.UploadID)
	if len(atts) != 1 || atts[0].StatusCode != 0 || !strings.Contains(atts[0].Error, "timeout") || atts[0].DurationMs > 2500 {
		t.Fatalf("attempts = %+v, want one timed-out attempt of about 200ms", atts)
	}
}

// Redirects are not followed: a 3xx is a failed attempt.
func TestRedirectIsAFailure(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	target := apitest.NewReceiver(t, nil)
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		w.Header().Set("Location", target.HookURL())
		w.WriteHeader(http.StatusFound)
	})
	e.client.PutTemplate(keyA, "RD", map[string]any{"url": rc.HookURL()})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "RD", "records": apitest.Records(1)})
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "failed" {
		t.Fatalf("upload = %+v", u)
	}
	if n := len(target.Requests()); n != 0 {
		t.Fatalf("the redirect target got %d requests: the redirect was followed", n)
	}
	if atts := e.client.Attempts(keyA, acc.UploadID); len(atts) != 1 || atts[0].StatusCode != http.StatusFound {
		t.Fatalf("attempts = %+v", atts)
	}
}

// Without HOOKLINE_ALLOW_PRIVATE_NETWORKS the worker refuses loopback targets
// at dial time, and says so in the attempts log. (The refusal happens before
// any connection is made.)
func TestPrivateNetworksRefused(t *testing.T) {
	e := newEnv(t, withVar("HOOKLINE_ALLOW_PRIVATE_NETWORKS", "false"))
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "SSRF", map[string]any{"url": rc.HookURL()})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "SSRF", "records": apitest.Records(1)})
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "failed" {
		t.Fatalf("upload = %+v", u)
	}
	if n := len(rc.Requests()); n != 0 {
		t.Fatalf("a loopback receiver got %d requests with private networks refused", n)
	}
	atts := e.client.Attempts(keyA, acc.UploadID)
	if len(atts) != 1 || !strings.Contains(atts[0].Error, "127.0.0.1") {
		t.Fatalf("attempts = %+v, want the refusal naming the address", atts)
	}
}
