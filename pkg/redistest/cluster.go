package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redisconn"
)

// Cluster is a Redis Cluster of redis-server processes on loopback, owned
// by a test.
type Cluster struct {
	Nodes []*Server
	// URL names every node in go-redis's cluster form:
	// redis://first?addr=second&addr=third...
	URL string
}

// StartCluster runs masters*(1+replicas) redis-server processes with
// --cluster-enabled yes, joins them with `redis-cli --cluster create
// --cluster-replicas <replicas>` and waits until every node reports the
// cluster ok. A node timeout of 1 s lets a replica take over about two
// seconds after its master dies.
func StartCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redistest: redis-cli is not installed: install it (Debian/Ubuntu: apt-get install redis-tools)")
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range masters * (1 + replicas) {
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--appendonly", "no")
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput() // #nosec G204 -- the test's own nodes
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	addrs := make([]string, 0, len(c.Nodes)-1)
	for _, s := range c.Nodes[1:] {
		addrs = append(addrs, "addr="+s.Addr)
	}
	c.URL = c.Nodes[0].URL + "?" + strings.Join(addrs, "&")
	c.WaitOK(t, 30*time.Second)
	c.waitReplicas(t, masters, replicas, 30*time.Second)
	return c
}

// waitReplicas waits until each master has its replicas online.
func (c *Cluster) waitReplicas(t testing.TB, masters, replicas int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ready := 0
		for _, s := range c.Nodes {
			rdb := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: 200 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := rdb.Info(ctx, "replication").Result()
			cancel()
			_ = rdb.Close()
			if err == nil && strings.Contains(info, "role:master") &&
				strings.Count(info, "state=online") >= replicas {
				ready++
			}
		}
		if ready >= masters {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %d of %d masters have %d replicas online after %s", ready, masters, replicas, within)
		}
		time.Sleep(50 * time.Millisecond) // polling interval while replicas sync
	}
}

// WaitOK waits until every running node reports cluster_state:ok and sees
// the same number of masters.
func (c *Cluster) WaitOK(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for {
		last = c.check()
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not ok after %s: %s", within, last)
		}
		time.Sleep(50 * time.Millisecond) // polling interval while the nodes agree
	}
}

func (c *Cluster) check() string {
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := rdb.ClusterInfo(ctx).Result()
		cancel()
		_ = rdb.Close()
		if err != nil {
			return s.Addr + ": " + err.Error()
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return s.Addr + ": cluster_state is not ok"
		}
	}
	return ""
}

// MasterFor returns the node that is master of key's slot now.
func (c *Cluster) MasterFor(t testing.TB, key string) *Server {
	t.Helper()
	rdb := UniversalFor(t, c.URL).(*redis.ClusterClient)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := rdb.MasterForKey(ctx, key)
	if err != nil {
		t.Fatalf("redistest: master for %s: %v", key, err)
	}
	for _, s := range c.Nodes {
		if s.Addr == m.Options().Addr {
			return s
		}
	}
	t.Fatalf("redistest: master %s of %s is not a node of the cluster", m.Options().Addr, key)
	return nil
}

// UniversalFor returns a client of a REDIS_URL of any kind (single server,
// cluster, Sentinel), closed when the test ends.
func UniversalFor(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	rdb, err := redisconn.Open(url, redisconn.Durability{}, nil)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// ReplicaOf returns a replica of master now.
func (c *Cluster) ReplicaOf(t testing.TB, master *Server) *Server {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: master.Addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		t.Fatalf("redistest: replication info of %s: %v", master.Addr, err)
	}
	for _, s := range c.Nodes {
		_, port, _ := strings.Cut(s.Addr, ":")
		if s != master && strings.Contains(info, "port="+port+",") {
			return s
		}
	}
	t.Fatalf("redistest: %s has no replica among the nodes:\n%s", master.Addr, info)
	return nil
}

// TryMasterFor returns the node that is master of key's slot as the nodes
// still running see it, or an error while they do not agree on one.
func (c *Cluster) TryMasterFor(key string) (*Server, error) {
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		slot, err := rdb.ClusterKeySlot(ctx, key).Result()
		var shards []redis.ClusterShard
		if err == nil {
			shards, err = rdb.ClusterShards(ctx).Result()
		}
		cancel()
		_ = rdb.Close()
		if err != nil {
			return nil, err
		}
		for _, sh := range shards {
			if !servesSlot(sh, slot) {
				continue
			}
			for _, node := range sh.Nodes {
				if node.Role != "master" || node.Health != "online" {
					continue
				}
				addr := net.JoinHostPort(node.IP, strconv.FormatInt(node.Port, 10))
				for _, n := range c.Nodes {
					if n.Addr == addr && n.cmd != nil {
						return n, nil
					}
				}
				return nil, fmt.Errorf("master %s of slot %d is not running", addr, slot)
			}
			return nil, fmt.Errorf("slot %d has no master online", slot)
		}
		return nil, fmt.Errorf("no node serves slot %d", slot)
	}
	return nil, fmt.Errorf("no node is running")
}

// servesSlot reports whether sh holds slot.
func servesSlot(sh redis.ClusterShard, slot int64) bool {
	for _, r := range sh.Slots {
		if r.Start <= slot && slot <= r.End {
			return true
		}
	}
	return false
}
