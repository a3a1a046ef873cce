//go:build chaos

package chaos

import (
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// A Redis Cluster of 3 masters and 3 replicas (REDIS_URL in go-redis's
// cluster form) with a 3-server NATS cluster and R3 streams. Mid-delivery
// the master holding an upload's hash slot is killed with SIGKILL and its
// replica takes over; later one NATS server is killed too. Every page is
// delivered and every upload ends completed: nothing the tracker promised
// (records, final page states: written with WAIT) was lost with the master.
func TestRedisClusterMasterKilled(t *testing.T) {
	const pages = 120
	nodes := startNATSCluster(t)
	url := clusterURL(nodes)
	rc := redistest.StartCluster(t, 3, 1)
	s := newStack(t, url, rc.URL, map[string]string{"HOOKLINE_STREAM_REPLICAS": "3", "HOOKLINE_ACK_WAIT": "2s"})
	s.startIngest()
	w1, w2 := s.startWorker("worker-1", nil), s.startWorker("worker-2", nil)

	recv := apitest.NewReceiver(t, slowOK(20*time.Millisecond))
	s.api.PutTemplate(keyA, "RC", map[string]any{"url": recv.HookURL(), "chunkSize": 1, "maxInFlight": 4, "retryCount": 0})
	var ids []string
	for range 3 {
		ids = append(ids, s.importRecords(keyA, "RC", pages).UploadID)
	}
	first := ids[0]
	apitest.Eventually(t, 60*time.Second, "20 pages of the first upload received", func() bool {
		return len(receivedPages(recv, first)) >= 20
	})
	slotKey := s.prefix + "u:{" + first + "}"
	victim := rc.MasterFor(t, slotKey)
	victim.Stop()
	killedAt := time.Now()
	t.Logf("killed Redis master %s (slot of %s) after %d pages of it", victim.Addr, first, len(receivedPages(recv, first)))
	apitest.Eventually(t, 30*time.Second, "a replica to take over the slot", func() bool {
		m, err := rc.TryMasterFor(slotKey)
		return err == nil && m != victim
	})
	t.Logf("replica took over after %s", time.Since(killedAt).Round(time.Millisecond))

	// A page leased just before the kill, whose give-back could not reach
	// Redis, waits for its lease to lapse (the worker's leaseFor, 4 min):
	// delivery may stall that long, and must then go on.
	const afterLease = 5 * time.Minute
	second := ids[1]
	apitest.Eventually(t, afterLease, "more pages of the second upload", func() bool {
		return len(receivedPages(recv, second)) >= 30
	})
	nodes[1].kill()
	t.Logf("killed NATS server %s", nodes[1].name)

	for _, id := range ids {
		u := s.api.WaitFinishedThroughErrors(keyA, id, afterLease)
		if u.Status != "completed" || u.DeliveredPages != pages || u.FailedPages != 0 {
			t.Errorf("upload %s = %+v, want completed with %d delivered pages", id, u, pages)
		}
		dups := checkEveryPage(t, recv, id, pages, 0)
		t.Logf("upload %s: %d duplicate requests", id, dups)
	}
	for _, w := range []*workerProc{w1, w2} {
		if w.exited() {
			t.Errorf("%s exited: %v", w.name, w.err)
		}
	}
	if s.ingest.exited() {
		t.Errorf("ingest exited: %v", s.ingest.err)
	}
}
