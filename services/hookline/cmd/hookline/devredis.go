package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// devRedis is the redis-server `hookline dev` runs as its child, its
// append-only file in the data dir, so that upload state survives a stop
// and a start of dev mode, a SIGKILL included.
type devRedis struct {
	URL  string
	cmd  *exec.Cmd
	done chan error // cmd.Wait's result
}

// startDevRedis starts redis-server on a free loopback port with its files
// in dir. A redis-server left from a dev mode that was killed a moment ago
// is waited for first: two servers must not share one append-only file.
func startDevRedis(ctx context.Context, path, dir string) (*devRedis, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pidFile := filepath.Join(dir, "redis.pid")
	if err := waitGone(pidFile, 15*time.Second); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	args := []string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		"--daemonize", "no", "--pidfile", pidFile, "--logfile", "redis.log",
		"--protected-mode", "yes",
	}
	r := &devRedis{URL: fmt.Sprintf("redis://127.0.0.1:%d", port), done: make(chan error, 1)}
	started := make(chan error, 1)
	// Pdeathsig is sent when the thread that started the child ends, not
	// the process: the child is started and waited for on one locked thread
	// that lives as long as the child does.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cmd := exec.Command(path, args...) // #nosec G204 -- redis-server from PATH with dev mode's own arguments
		cmd.SysProcAttr = childAttr()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		r.cmd = cmd
		started <- nil
		r.done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	opt, _ := redis.ParseURL(r.URL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Loading a long append-only file answers LOADING until it is done.
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return r, nil
		}
		select {
		case werr := <-r.done:
			return nil, fmt.Errorf("redis-server exited at start (%v): see %s", werr, filepath.Join(dir, "redis.log"))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Stop()
			return nil, fmt.Errorf("redis-server did not answer within 30s: %w (see %s)", err, filepath.Join(dir, "redis.log"))
		}
	}
}

// Stop asks redis-server to finish (it flushes its append-only file on
// SIGTERM) and waits for it.
func (r *devRedis) Stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// waitGone waits until the process whose id pidFile holds has exited.
func waitGone(pidFile string, within time.Duration) error {
	data, err := os.ReadFile(pidFile) // #nosec G304 -- the dev data dir its user chose
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return nil
	}
	deadline := time.Now().Add(within)
	for syscall.Kill(pid, 0) == nil && isRedis(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("a redis-server (pid %d) still runs on %s: stop it first", pid, filepath.Dir(pidFile))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// isRedis reports whether process pid is a redis-server (a pid file may
// outlive its process, and the number be reused).
func isRedis(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) // no /proc (not Linux): trust the pid
	}
	return strings.Contains(string(cmdline), "redis-server")
}
