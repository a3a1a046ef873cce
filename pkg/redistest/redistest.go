// Package redistest gives tests a real Redis: the one named by REDIS_URL when
// the environment sets it, otherwise a redis-server started on a free loopback
// port for the test.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process owned by a test.
type Server struct {
	Addr string
	URL  string
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs redis-server on a free loopback port, with its files in
// t.TempDir(), until the test ends. Extra arguments are passed to redis-server
// (for example "--appendonly", "yes"). The test fails with a message that says
// what to install when redis-server is missing.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redistest: redis-server is not installed: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL")
	}
	s := &Server{dir: t.TempDir(), args: args}
	if err := s.start(t); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(t testing.TB) error {
	var lastErr error
	for range 5 {
		port := 0
		if s.Addr != "" { // a restart keeps its address
			_, p, _ := net.SplitHostPort(s.Addr)
			port, _ = strconv.Atoi(p)
		} else {
			p, err := freePort()
			if err != nil {
				return err
			}
			port = p
		}
		args := append([]string{
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", s.dir,
			"--save", "", "--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"),
		}, s.args...)
		cmd := exec.Command("redis-server", args...) // #nosec G204 -- a test's own redis-server with the test's arguments
		if err := cmd.Start(); err != nil {
			return err
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := waitReady(addr, done, 10*time.Second); err != nil {
			_ = cmd.Process.Kill()
			<-done
			lastErr = err
			continue
		}
		s.cmd, s.done, s.Addr, s.URL = cmd, done, addr, "redis://"+addr
		return nil
	}
	return fmt.Errorf("redis-server did not start: %w", lastErr)
}

func waitReady(addr string, exited <-chan struct{}, within time.Duration) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited before answering on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval while waiting for the process
	}
}

// Stop kills the server (SIGKILL: what an abrupt crash looks like).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart stops the server and starts it again on the same address with the
// same files (so an AOF, when enabled, is replayed).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(t); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// URL returns a Redis URL for the test: REDIS_URL when set, else the URL of a
// redis-server started for the test.
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return Start(t).URL
}

// Client returns a client of URL(t), closed when the test ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	return ClientFor(t, URL(t))
}

// Prefix returns a key prefix unique to this test, so tests that share one
// Redis (REDIS_URL) never see each other's keys.
func Prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "hltest:" + hex.EncodeToString(b) + ":"
}

// ClientFor returns a client of url, closed when the test ends.
func ClientFor(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Signal sends sig to the server process (SIGSTOP freezes it as a hung
// server would be, SIGCONT lets it go on).
func (s *Server) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if s.cmd == nil {
		t.Fatal("redistest: the server is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("redistest: signal %s: %v", sig, err)
	}
}
