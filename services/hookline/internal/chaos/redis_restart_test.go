//go:build chaos

package chaos

import (
	"testing"
	"time"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// Redis (AOF on, fsync on every write) is killed with SIGKILL in the middle
// of an upload and, once the workers have run into its absence, started
// again with the same files. The workers hand their tickets back while it is
// away; afterwards the tracking is right: the upload ends
// completed with deliveredPages == totalPages, every page was received and
// the attempts log counts each page once.
func TestRedisRestartMidUpload(t *testing.T) {
	const pages = 200
	ns := startNATS(t)
	rs := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	s := newStack(t, ns.url(), rs.url(), map[string]string{"HOOKLINE_ACK_WAIT": "2s"})
	s.startIngest()
	w1, w2 := s.startWorker("worker-1", nil), s.startWorker("worker-2", nil)

	rc := apitest.NewReceiver(t, slowOK(20*time.Millisecond))
	s.api.PutTemplate(keyA, "REDIS", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 4, "retryCount": 0})
	acc := s.importRecords(keyA, "REDIS", pages)

	apitest.Eventually(t, 30*time.Second, "50 pages received", func() bool { return rc.Count() >= 50 })
	rs.kill()
	atKill := rc.Count()
	if atKill >= pages {
		t.Fatalf("the upload was already over (%d requests) when Redis was killed", atKill)
	}
	// Keep Redis away until a worker has handed a ticket back because of it.
	down := time.Now()
	apitest.Eventually(t, 20*time.Second, "a worker to count an infrastructure error", func() bool {
		return infraErrors(w1, w2) > 0
	})
	rs.start() // the same port and files: the AOF is replayed
	t.Logf("redis-server killed after %d requests, started again %s later", atKill, time.Since(down).Round(time.Millisecond))

	u := s.api.WaitFinishedThroughErrors(keyA, acc.UploadID, 45*time.Second)
	if u.Status != "completed" || u.DeliveredPages != pages || u.TotalPages != pages || u.FailedPages != 0 || u.PendingPages != 0 {
		t.Fatalf("upload = %+v, want completed with deliveredPages == totalPages == %d", u, pages)
	}
	if u.CompletedAt == nil {
		t.Errorf("completed upload without completedAt: %+v", u)
	}
	dups := checkEveryPage(t, rc, acc.UploadID, pages, 0)
	released := checkAttemptsExact(t, s.api.Attempts(keyA, acc.UploadID), pages)
	t.Logf("attempts log: one delivered entry per page, %d released entries (deliveries our side cut short)", released)
	for _, w := range []*workerProc{w1, w2} {
		if w.exited() {
			t.Errorf("%s exited: %v", w.name, w.err)
		}
	}
	infra := infraErrors(w1, w2)
	t.Logf("receiver got %d requests for %d pages (%d duplicates); tickets handed back for infrastructure errors: %v; longest pause between two requests: %s",
		len(rc.Requests()), pages, dups, infra, longestPause(rc).Round(time.Millisecond))
}

// infraErrors sums the workers' count of tickets handed back because NATS or
// Redis failed.
func infraErrors(ws ...*workerProc) float64 {
	var sum float64
	for _, w := range ws {
		if v, err := w.metric("hookline_worker_infrastructure_errors_total"); err == nil {
			sum += v
		}
	}
	return sum
}
