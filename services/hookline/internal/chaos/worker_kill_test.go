//go:build chaos

package chaos

import (
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// A worker killed with SIGKILL while it is sending pages: its tickets come
// back after AckWait and the other workers finish the upload. Every page
// arrives, none more often than (workers killed + 1), the upload ends
// completed and the attempts log counts each page once.
func TestWorkerKilledMidUpload(t *testing.T) {
	const pages, killed = 200, 1
	ns := startNATS(t)
	rs := redistest.Start(t)
	s := newStack(t, ns.url(), rs.URL, map[string]string{"HOOKLINE_ACK_WAIT": "2s"})
	s.startIngest()
	workers := []*workerProc{s.startWorker("worker-1", nil), s.startWorker("worker-2", nil), s.startWorker("worker-3", nil)}

	rc := apitest.NewReceiver(t, slowOK(20*time.Millisecond))
	s.api.PutTemplate(keyA, "KILL", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 4, "retryCount": 0})
	acc := s.importRecords(keyA, "KILL", pages)
	if acc.TotalPages != pages {
		t.Fatalf("accepted %+v, want %d pages", acc, pages)
	}

	// Kill the first worker seen with a request under way, once the upload is going.
	apitest.Eventually(t, 30*time.Second, "20 pages received", func() bool { return rc.Count() >= 20 })
	var victim *workerProc
	apitest.Eventually(t, 20*time.Second, "a worker with a webhook request in flight", func() bool {
		for _, w := range workers {
			if w.inFlight() > 0 {
				victim = w
				return true
			}
		}
		return false
	})
	victim.kill()
	killedAt := time.Now()
	atKill := rc.Count()
	t.Logf("killed %s (pid %d) with SIGKILL after %d requests", victim.name, victim.pid(), atKill)
	if atKill >= pages {
		t.Fatalf("the upload was already over (%d requests) when the worker was killed", atKill)
	}

	u := s.api.WaitFinishedThroughErrors(keyA, acc.UploadID, 45*time.Second)
	t.Logf("upload finished %s after the kill (AckWait 2s); longest pause between two requests: %s",
		time.Since(killedAt).Round(time.Millisecond), longestPause(rc).Round(time.Millisecond))
	if u.Status != "completed" || u.DeliveredPages != pages || u.FailedPages != 0 || u.PendingPages != 0 {
		t.Fatalf("upload = %+v, want completed with %d delivered pages", u, pages)
	}
	dup := checkEveryPage(t, rc, acc.UploadID, pages, killed+1)
	t.Logf("receiver got %d requests for %d pages (%d duplicates from the killed worker)", len(rc.Requests()), pages, dup)
	released := checkAttemptsExact(t, s.api.Attempts(keyA, acc.UploadID), pages)
	t.Logf("attempts log: one delivered entry per page, %d released entries (deliveries our side cut short)", released)
	for _, w := range workers {
		if w != victim && w.exited() {
			t.Errorf("%s exited: %v", w.name, w.err)
		}
	}
}
