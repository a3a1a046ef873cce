//go:build chaos

package chaos

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// templateStateOf reads a template's state ("active" or "paused"); "" while
// the API cannot answer.
func templateStateOf(s *stack, code string) string {
	status, data, err := s.api.TryCall(keyA, http.MethodGet, "/v1/templates/"+code, nil)
	if err != nil || status != http.StatusOK {
		return ""
	}
	var v struct {
		State string `json:"state"`
	}
	_ = json.Unmarshal(data, &v)
	return v.State
}

// holdingReceiver answers 500 while failing is set; while hold is set it
// answers nothing until the request is given up.
func holdingReceiver(t *testing.T, failing, hold *atomic.Bool) *apitest.Receiver {
	return apitest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ apitest.Request, _ int) {
		for hold.Load() && r.Context().Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// Workers killed with SIGKILL while the template is paused, and while its
// probe is in flight: the pause holds, the next probe goes out from another
// worker, and once the endpoint is back the probe resumes the template and
// every page is delivered, none failed.
func TestWorkerKilledWhilePausedAndProbing(t *testing.T) {
	const pages = 5
	ns := startNATS(t)
	rs := redistest.Start(t)
	s := newStack(t, ns.url(), rs.URL, map[string]string{"HOOKLINE_ACK_WAIT": "2s"})
	s.startIngest()
	workers := []*workerProc{s.startWorker("worker-1", nil), s.startWorker("worker-2", nil), s.startWorker("worker-3", nil)}

	var failing, hold atomic.Bool
	failing.Store(true)
	rc := holdingReceiver(t, &failing, &hold)
	s.api.PutTemplate(keyA, "PAUSE", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "retryCount": 3, "retryInterval": 100,
		"timeout": 60000, "pauseAfterFailures": 2, "probeInterval": 1000})
	acc := s.importRecords(keyA, "PAUSE", pages)
	apitest.Eventually(t, 30*time.Second, "the template paused", func() bool { return templateStateOf(s, "PAUSE") == "paused" })

	workers[0].kill()
	t.Logf("killed %s while the template is paused", workers[0].name)
	hold.Store(true)
	var prober *workerProc
	apitest.Eventually(t, 30*time.Second, "a probe in flight", func() bool {
		for _, w := range workers[1:] {
			if w.inFlight() > 0 {
				prober = w
				return true
			}
		}
		return false
	})
	prober.kill()
	t.Logf("killed %s with its probe in flight", prober.name)
	s.startWorker("worker-4", nil)
	hold.Store(false)
	if st := templateStateOf(s, "PAUSE"); st != "paused" {
		t.Fatalf("state after the kills = %q, want paused", st)
	}
	failing.Store(false)
	u := s.api.WaitFinishedThroughErrors(keyA, acc.UploadID, 60*time.Second)
	if u.Status != "completed" || u.DeliveredPages != pages || u.FailedPages != 0 {
		t.Fatalf("upload = %+v, want every page delivered", u)
	}
	apitest.Eventually(t, 10*time.Second, "the template active", func() bool { return templateStateOf(s, "PAUSE") == "active" })
	checkEveryPage(t, rc, acc.UploadID, pages, 0)
	for _, a := range s.api.Attempts(keyA, acc.UploadID) {
		if a.Outcome == "failed" {
			t.Fatalf("attempt %+v: no page may fail while the template is paused", a)
		}
	}
}

// The failures in a row and the paused state live in Redis (AOF): a count
// begun before a Redis crash goes on after it, and a pause survives one.
func TestProtectionSurvivesRedisRestart(t *testing.T) {
	ns := startNATS(t)
	rs := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	s := newStack(t, ns.url(), rs.url(), map[string]string{"HOOKLINE_ACK_WAIT": "2s"})
	s.startIngest()
	w := s.startWorker("worker-1", nil)
	var failing, hold atomic.Bool
	failing.Store(true)
	rc := holdingReceiver(t, &failing, &hold)
	s.api.PutTemplate(keyA, "SURVIVE", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "pauseAfterFailures": 3, "probeInterval": 0})

	first := s.importRecords(keyA, "SURVIVE", 2) // two failures in a row
	if u := s.api.WaitFinishedThroughErrors(keyA, first.UploadID, 30*time.Second); u.FailedPages != 2 {
		t.Fatalf("first upload = %+v, want 2 failed pages", u)
	}
	restart := func() {
		rs.kill()
		rs.start()
	}
	restart()
	second := s.importRecords(keyA, "SURVIVE", 1) // the third failure in a row
	s.api.WaitFinishedThroughErrors(keyA, second.UploadID, 30*time.Second)
	apitest.Eventually(t, 20*time.Second, "the template paused by its third failure", func() bool { return templateStateOf(s, "SURVIVE") == "paused" })
	restart()
	apitest.Eventually(t, 20*time.Second, "the API answering", func() bool { return templateStateOf(s, "SURVIVE") != "" })
	if st := templateStateOf(s, "SURVIVE"); st != "paused" {
		t.Fatalf("state after a Redis restart = %q, want paused", st)
	}
	failing.Store(false)
	sent := rc.Count()
	third := s.importRecords(keyA, "SURVIVE", 2)
	apitest.Eventually(t, 20*time.Second, "a page held back", func() bool {
		v, err := w.metric("hookline_pages_held_paused_total")
		return err == nil && v > 0
	})
	if n := rc.Count(); n != sent {
		t.Fatalf("%d requests to the paused template", n-sent)
	}
	s.api.MustCall(keyA, http.MethodPost, "/v1/templates/SURVIVE/resume", nil, http.StatusOK)
	if u := s.api.WaitFinishedThroughErrors(keyA, third.UploadID, 30*time.Second); u.Status != "completed" || u.DeliveredPages != 2 {
		t.Fatalf("upload after the resume = %+v", u)
	}
}
