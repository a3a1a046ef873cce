package tracker

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redistest"
)

// clusterEnv names the Redis Cluster the package's tests run against in
// TestEveryScriptOnRedisCluster's second run.
const clusterEnv = "HOOKLINE_TEST_REDIS_CLUSTER"

// testRedis is the Redis of a test: the cluster of clusterEnv when set,
// else redistest's.
func testRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	if url := os.Getenv(clusterEnv); url != "" {
		return redistest.UniversalFor(t, url)
	}
	return redistest.Client(t)
}

// Every test of the package runs again against a real Redis Cluster of
// three masters: a script or pipeline whose keys span two hash slots fails
// there with CROSSSLOT (or MOVED), so the whole suite passing proves that
// each touches one slot.
func TestEveryScriptOnRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 0)
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.v", "-test.run=.", "-test.skip=^TestEveryScriptOnRedisCluster$", "-test.bench=^$") // #nosec G204 -- this test binary
	cmd.Env = append(os.Environ(), clusterEnv+"="+c.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the package's tests on a Redis Cluster (%s): %v\n%s", c.URL, err, out)
	}
	if n := bytes.Count(out, []byte("--- PASS")); n < 10 {
		t.Fatalf("only %d tests passed on the Redis Cluster:\n%s", n, out)
	}
}
