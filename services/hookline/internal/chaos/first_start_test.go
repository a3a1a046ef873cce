//go:build chaos

package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// The first start of a deployment on a fresh 3-server NATS cluster: the
// servers, ingest and a worker start together, as a first rollout starts
// them; ingest creates the R3 streams, the consumer and the key-value
// buckets while the cluster is still forming. Both must be ready within a
// few seconds (a Kubernetes startupProbe gives them 60 s), and an upload
// then completes.
func TestFirstStartOnFreshR3Cluster(t *testing.T) {
	nodes := startNATSClusterNoWait(t)
	url := clusterURL(nodes)
	rs := redistest.Start(t)
	s := newStack(t, url, rs.URL, map[string]string{"HOOKLINE_STREAM_REPLICAS": "3"})
	start := time.Now()
	w := s.startWorker("worker-1", nil)
	workerReady := time.Since(start)
	s.startIngest()
	ingestReady := time.Since(start)
	t.Logf("on a fresh R3 cluster: worker started after %s, ingest ready after %s",
		workerReady.Round(time.Millisecond), ingestReady.Round(time.Millisecond))
	if ingestReady > 20*time.Second {
		t.Errorf("ingest took %s to start on a fresh cluster, want a few seconds", ingestReady.Round(time.Millisecond))
	}

	rc := apitest.NewReceiver(t, slowOK(0))
	s.api.PutTemplate(keyA, "FIRST", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 4, "retryCount": 0})
	acc := s.importRecords(keyA, "FIRST", 20)
	u := s.api.WaitFinishedThroughErrors(keyA, acc.UploadID, 30*time.Second)
	if u.Status != "completed" || u.DeliveredPages != 20 {
		t.Fatalf("upload = %+v, want completed with 20 delivered pages", u)
	}
	checkEveryPage(t, rc, acc.UploadID, 20, 0)
	for _, p := range []*proc{s.ingest, w.proc} {
		if ws := p.warnings(); len(ws) > 0 {
			t.Logf("%s warnings:\n  %s", p.name, strings.Join(ws, "\n  "))
		}
	}
}
