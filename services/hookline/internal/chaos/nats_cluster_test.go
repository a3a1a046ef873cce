//go:build chaos

package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// A 3-server NATS cluster with R3 streams (HOOKLINE_STREAM_REPLICAS=3,
// NATS_URL listing the three servers). The leader of HOOKLINE_DELIVERIES is
// killed with SIGKILL in the middle of an upload: the two other servers elect
// a new leader, ingest and the workers move over, and the upload completes
// with every page received.
func TestNATSClusterLeaderKilled(t *testing.T) {
	const pages = 200
	nodes := startNATSCluster(t)
	url := clusterURL(nodes)
	rs := redistest.Start(t)
	s := newStack(t, url, rs.URL, map[string]string{"HOOKLINE_ACK_WAIT": "2s", "HOOKLINE_STREAM_REPLICAS": "3"})
	s.startIngest()
	w1, w2 := s.startWorker("worker-1", nil), s.startWorker("worker-2", nil)
	_, js := natsClient(t, url)

	for _, name := range []string{pagesStream, deliveriesStream} {
		info := streamInfo(t, js, name, "")
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d, cluster %+v; want R3", name, info.Config.Replicas, info.Cluster)
		}
	}

	rc := apitest.NewReceiver(t, slowOK(20*time.Millisecond))
	s.api.PutTemplate(keyA, "R3", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 4, "retryCount": 0})
	acc := s.importRecords(keyA, "R3", pages)

	apitest.Eventually(t, 30*time.Second, "30 pages received", func() bool { return rc.Count() >= 30 })
	deliveries := streamInfo(t, js, deliveriesStream, "")
	pagesInfo := streamInfo(t, js, pagesStream, "")
	leader := deliveries.Cluster.Leader
	var victim *natsNode
	for _, n := range nodes {
		if n.name == leader {
			victim = n
		}
	}
	if victim == nil {
		t.Fatalf("no server is named like the leader %q of %s", leader, deliveriesStream)
	}
	victim.kill()
	killedAt := time.Now()
	atKill := rc.Count()
	t.Logf("killed %s, leader of %s (leader of %s: %s), after %d requests", leader, deliveriesStream, pagesStream, pagesInfo.Cluster.Leader, atKill)
	if atKill >= pages {
		t.Fatalf("the upload was already over (%d requests) when the leader was killed", atKill)
	}

	apitest.Eventually(t, 30*time.Second, "a new leader of "+deliveriesStream, func() bool {
		info := streamInfo(t, js, deliveriesStream, "")
		return info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != leader
	})
	u := s.api.WaitFinishedThroughErrors(keyA, acc.UploadID, 50*time.Second)
	t.Logf("upload finished %s after the kill; longest pause between two requests: %s",
		time.Since(killedAt).Round(time.Millisecond), longestPause(rc).Round(time.Millisecond))
	if u.Status != "completed" || u.DeliveredPages != pages || u.FailedPages != 0 {
		t.Fatalf("upload = %+v, want completed with %d delivered pages", u, pages)
	}
	dups := checkEveryPage(t, rc, acc.UploadID, pages, 0)
	released := checkAttemptsExact(t, s.api.Attempts(keyA, acc.UploadID), pages)
	t.Logf("attempts log: one delivered entry per page, %d released entries (deliveries our side cut short)", released)
	t.Logf("new leader of %s: %s; receiver got %d requests for %d pages (%d duplicates)",
		deliveriesStream, streamInfo(t, js, deliveriesStream, "").Cluster.Leader, len(rc.Requests()), pages, dups)
	for _, p := range []*proc{s.ingest, w1.proc, w2.proc} {
		if ws := p.warnings(); len(ws) > 0 {
			t.Logf("%s warnings:\n  %s", p.name, strings.Join(ws, "\n  "))
		}
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
