package redisconn_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redisconn"
	"github.com/hookline/hookline/pkg/redistest"
)

func TestKindOf(t *testing.T) {
	for url, want := range map[string]redisconn.Kind{
		"redis://127.0.0.1:6379/0":                                            redisconn.Single,
		"rediss://user:pw@redis.example:6380/2?dial_timeout=3s":               redisconn.Single,
		"redis://10.0.0.1:6379?addr=10.0.0.2:6379&addr=10.0.0.3:6379":         redisconn.Cluster,
		"redis://s1:26379/0?master_name=mymaster&addr=s2:26379&addr=s3:26379": redisconn.Sentinel,
	} {
		got, err := redisconn.KindOf(url)
		if err != nil || got != want {
			t.Errorf("KindOf(%q) = %q, %v; want %q", url, got, err, want)
		}
	}
	if _, err := redisconn.Open("redis://127.0.0.1:6379?addr=127.0.0.1:6380&bogus=1", redisconn.Durability{}, nil); err == nil {
		t.Error("a cluster URL with an unknown parameter was accepted")
	}
}

func open(t *testing.T, url string, d redisconn.Durability) (redis.UniversalClient, *atomic.Int64) {
	t.Helper()
	var short atomic.Int64
	rdb, err := redisconn.Open(url, d, func() { short.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, &short
}

// On a master without replicas a durable write waits for one in vain and
// is counted short; other writes send no WAIT.
func TestDurableWriteWithoutReplica(t *testing.T) {
	s := redistest.Start(t)
	rdb, short := open(t, s.URL, redisconn.Durability{WaitReplicas: 1, WaitTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	if err := rdb.Set(ctx, "plain", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "plain2", "1", 0); return nil }); err != nil {
		t.Fatal(err)
	}
	if n := short.Load(); n != 0 {
		t.Fatalf("writes not marked durable waited for replicas (%d short)", n)
	}
	if err := rdb.Set(redisconn.Durable(ctx), "durable", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(redisconn.Durable(ctx), func(p redis.Pipeliner) error { p.HSet(ctx, "h", "f", "v"); return nil }); err != nil {
		t.Fatal(err)
	}
	if n := short.Load(); n != 2 {
		t.Fatalf("%d durable writes counted short, want 2 (one command, one pipeline)", n)
	}
	if v, err := rdb.HGet(ctx, "h", "f").Result(); err != nil || v != "v" {
		t.Fatalf("the durable pipeline's write: %q, %v", v, err)
	}
}

// With a replica, a durable write returns once the replica has it; with
// the replica stopped (SIGSTOP) it waits WaitTimeout and is counted short,
// while a plain write still answers at once.
func TestDurableWriteWaitsForReplica(t *testing.T) {
	m := redistest.Start(t)
	host, port := splitAddr(t, m.Addr)
	r := redistest.Start(t, "--replicaof", host, port)
	ctx := context.Background()
	rdb, short := open(t, m.URL, redisconn.Durability{WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond})
	replica := redistest.ClientFor(t, r.URL)
	waitFor(t, 10*time.Second, "the replica to sync", func() bool {
		info, _ := rdb.Info(ctx, "replication").Result()
		return contains(info, "connected_slaves:1") && contains(info, "state=online")
	})
	if err := rdb.Set(redisconn.Durable(ctx), "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := short.Load(); n != 0 {
		t.Fatalf("a durable write with a live replica was counted short (%d)", n)
	}
	if v, err := replica.Get(ctx, "k").Result(); err != nil || v != "v1" {
		t.Fatalf("replica after a durable write: %q, %v; want v1", v, err)
	}

	r.Signal(t, syscall.SIGSTOP)
	defer r.Signal(t, syscall.SIGCONT)
	if err := rdb.Set(ctx, "k", "plain", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := short.Load(); n != 0 {
		t.Fatalf("a plain write waited for the replica (%d short)", n)
	}
	if err := rdb.Set(redisconn.Durable(ctx), "k", "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := short.Load(); n != 1 {
		t.Fatalf("a durable write while the replica is stopped: %d short, want 1", n)
	}
}

// On a Redis Cluster WAIT must reach the master that took the write, on the
// same connection: with that master's replica stopped, a durable write is
// counted short (a WAIT sent elsewhere would answer at once), and a durable
// write to another master is not.
func TestDurableWriteOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	ctx := context.Background()
	// A live replica acknowledges well within WaitTimeout even on a loaded
	// machine (300 ms was not always enough under -race); only the writes
	// to the stopped replica's master wait it out.
	rdb, short := open(t, c.URL, redisconn.Durability{WaitReplicas: 1, WaitTimeout: 2 * time.Second})
	cc := rdb.(*redis.ClusterClient)
	keyA, keyB := "{a}k", "{b}k"
	masterA := c.MasterFor(t, keyA)
	if c.MasterFor(t, keyB) == masterA {
		keyB = "{c}k"
		if c.MasterFor(t, keyB) == masterA {
			t.Fatal("keys a, b and c all hash to one master")
		}
	}
	// A fresh cluster's replicas may still be in their first sync: wait
	// until each master has one acknowledging.
	deadline := time.Now().Add(30 * time.Second)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		for {
			n, err := m.Do(ctx, "WAIT", 1, 100).Int()
			if err == nil && n >= 1 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("master %s: no replica in sync after 30 s (%d, %v)", m.Options().Addr, n, err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{keyA, keyB} {
		if err := rdb.Set(redisconn.Durable(ctx), k, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n := short.Load(); n != 0 {
		t.Fatalf("durable writes with live replicas counted short (%d)", n)
	}
	replicaOfA := c.ReplicaOf(t, masterA)
	replicaOfA.Signal(t, syscall.SIGSTOP)
	defer replicaOfA.Signal(t, syscall.SIGCONT)
	if err := rdb.Set(redisconn.Durable(ctx), keyB, "2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := short.Load(); n != 0 {
		t.Fatalf("a durable write to the other master counted short (%d)", n)
	}
	// A script and a pipeline, as the tracker sends them.
	script := redis.NewScript(`return redis.call('INCR', KEYS[1])`)
	if err := script.Run(redisconn.Durable(ctx), cc, []string{keyA}).Err(); err != nil {
		t.Fatal(err)
	}
	afterScript := short.Load()
	if afterScript == 0 {
		t.Fatal("a durable script on the master whose replica is stopped was not counted short")
	}
	if _, err := cc.Pipelined(redisconn.Durable(ctx), func(p redis.Pipeliner) error {
		p.Incr(ctx, keyA)
		p.Incr(ctx, keyB)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := short.Load() - afterScript; n != 1 {
		t.Fatalf("a durable pipeline to two masters, one with its replica stopped: %d short, want 1", n)
	}
}

func splitAddr(t *testing.T, addr string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}
