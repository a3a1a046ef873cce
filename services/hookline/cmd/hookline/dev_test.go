package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// hookline dev takes a REDIS_URL of any form: here a Redis Cluster's.
func TestDevWithRedisClusterURL(t *testing.T) {
	cluster := redistest.StartCluster(t, 3, 0)
	api := freeLoopbackAddr(t)
	t.Setenv("REDIS_URL", cluster.URL)
	t.Setenv("HOOKLINE_ADDR", api)
	t.Setenv("HOOKLINE_METRICS_ADDR", freeLoopbackAddr(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev(ctx, t.TempDir()) }()

	var body string
	ready := func() bool {
		resp, err := http.Get("http://" + api + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	}
	apitest.Eventually(t, 30*time.Second, "hookline dev ready on a Redis Cluster", ready)
	if !strings.Contains(body, "redis: ok") {
		t.Fatalf("/readyz = %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30s of its context's end")
	}
}
