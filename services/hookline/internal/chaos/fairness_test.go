//go:build chaos

package chaos

import (
	"net/http"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// Fairness under a fault: tenant A has 20 uploads to a dead endpoint (503,
// retryCount 10, retryInterval 2000ms, 8 pages in flight each: 160 tickets
// waiting for their retry), tenant B one 200-page upload to a healthy
// endpoint (10ms per page, one page at a time). B's upload is timed alone,
// then while A's retries are under way: it must complete, and take at most
// 5× its time alone plus 2s.
func TestFairnessUnderDeadEndpoint(t *testing.T) {
	const (
		deadUploads = 20
		deadPages   = 8
		livePages   = 200
	)
	ns := startNATS(t)
	rs := redistest.Start(t)
	s := newStack(t, ns.url(), rs.URL, nil)
	s.startIngest()
	s.startWorker("worker-1", nil)

	dead := apitest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ apitest.Request, n int) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	live := apitest.NewReceiver(t, slowOK(10*time.Millisecond))
	s.api.PutTemplate(keyA, "DEAD", map[string]any{"url": dead.HookURL(), "chunkSize": 1, "maxInFlight": deadPages, "retryCount": 10, "retryInterval": 2000})
	s.api.PutTemplate(keyB, "LIVE", map[string]any{"url": live.HookURL(), "chunkSize": 1, "maxInFlight": 1, "retryCount": 0})

	// run imports B's upload and returns how long it took to complete, seen
	// by the client (import sent → status completed) and by the server
	// (completedAt − createdAt).
	run := func(what string) (wall, server time.Duration) {
		t.Helper()
		start := time.Now()
		acc := s.importRecords(keyB, "LIVE", livePages)
		u := s.api.WaitFinishedThroughErrors(keyB, acc.UploadID, 40*time.Second)
		wall = time.Since(start)
		if u.Status != "completed" || u.DeliveredPages != livePages {
			t.Fatalf("%s: tenant B's upload = %+v, want completed", what, u)
		}
		checkEveryPage(t, live, acc.UploadID, livePages, 1)
		return wall, u.CompletedAt.Sub(u.CreatedAt)
	}
	run("warm-up")
	aloneWall, aloneServer := run("alone")

	var stuck []apitest.Accepted
	for range deadUploads {
		stuck = append(stuck, s.importRecords(keyA, "DEAD", deadPages))
	}
	// Start B while the dead endpoint's second round of attempts is under way.
	apitest.Eventually(t, 30*time.Second, "the dead uploads' retries to be under way", func() bool {
		return dead.Count() >= deadUploads*deadPages*3/2
	})
	before := dead.Count()
	loadedWall, loadedServer := run("with dead uploads pending")
	during := dead.Count() - before

	t.Logf("tenant B's %d-page upload: alone %s (server %s), with %d dead uploads pending %s (server %s); the dead endpoint got %d requests meanwhile",
		livePages, aloneWall.Round(time.Millisecond), aloneServer.Round(time.Millisecond), deadUploads,
		loadedWall.Round(time.Millisecond), loadedServer.Round(time.Millisecond), during)
	if during == 0 {
		t.Errorf("the dead endpoint got no request while B was measured: the load was not there")
	}
	if limit := 5*aloneWall + 2*time.Second; loadedWall > limit {
		t.Errorf("with dead uploads pending tenant B's upload took %s, more than 5× alone (%s) + 2s = %s", loadedWall, aloneWall, limit)
	}
	for _, a := range stuck {
		u, err := s.api.TryUpload(keyA, a.UploadID)
		if err != nil {
			t.Fatal(err)
		}
		if u.Status != "delivering" {
			t.Errorf("dead upload %s = %+v, want still delivering (retries pending while B was measured)", a.UploadID, u)
		}
	}
}
