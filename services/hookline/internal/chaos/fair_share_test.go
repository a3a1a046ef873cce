//go:build chaos

package chaos

import (
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// A worker killed with SIGKILL while it holds tenant B's share (B's tickets
// fetched ahead and waiting for a slot, beside tenant A's) gives it back:
// after AckWait every ticket it held comes back to the other worker, and
// both tenants' uploads complete with every page delivered.
func TestWorkerKilledHoldingATenantsShare(t *testing.T) {
	const (
		floodUploads = 8
		pages        = 20
	)
	ns := startNATS(t)
	rs := redistest.Start(t)
	s := newStack(t, ns.url(), rs.URL, map[string]string{"HOOKLINE_ACK_WAIT": "2s", "HOOKLINE_WORKER_CONCURRENCY": "2"})
	s.startIngest()
	victim := s.startWorker("worker-1", nil)

	rc := apitest.NewReceiver(t, slowOK(50*time.Millisecond))
	s.api.PutTemplate(keyA, "FLOOD", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 4, "retryCount": 0})
	s.api.PutTemplate(keyB, "SMALL", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 4, "retryCount": 0})
	var uploads []apitest.Accepted
	for range floodUploads {
		uploads = append(uploads, s.importRecords(keyA, "FLOOD", pages))
	}
	small := s.importRecords(keyB, "SMALL", pages)

	// The only worker holds every ticket: 2 running, the rest waiting,
	// tenant B's among them.
	apitest.Eventually(t, 20*time.Second, "tenant B's tickets waiting in worker-1", func() bool {
		v, err := victim.metric(`hookline_worker_tenant_tickets_waiting{tenant="bravo"}`)
		return err == nil && v > 0
	})
	waiting, _ := victim.metric("hookline_worker_tickets_waiting")
	survivor := s.startWorker("worker-2", nil)
	victim.kill()
	atKill := rc.Count()
	t.Logf("killed worker-1 holding %.0f waiting tickets after %d requests", waiting, atKill)
	if atKill >= (floodUploads+1)*pages {
		t.Fatalf("the uploads were already over (%d requests) when the worker was killed", atKill)
	}

	u := s.api.WaitFinishedThroughErrors(keyB, small.UploadID, 60*time.Second)
	if u.Status != "completed" || u.DeliveredPages != pages {
		t.Fatalf("tenant B's upload = %+v, want completed with %d pages", u, pages)
	}
	checkEveryPage(t, rc, small.UploadID, pages, 2)
	for _, a := range uploads {
		u := s.api.WaitFinishedThroughErrors(keyA, a.UploadID, 60*time.Second)
		if u.Status != "completed" || u.DeliveredPages != pages {
			t.Fatalf("tenant A's upload %s = %+v, want completed with %d pages", a.UploadID, u, pages)
		}
		checkEveryPage(t, rc, a.UploadID, pages, 2)
	}
	apitest.Eventually(t, 10*time.Second, "worker-2 to hold no waiting ticket", func() bool {
		v, err := survivor.metric("hookline_worker_tickets_waiting")
		return err == nil && v == 0
	})
	if survivor.exited() {
		t.Errorf("worker-2 exited: %v", survivor.err)
	}
}
