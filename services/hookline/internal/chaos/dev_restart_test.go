//go:build chaos

package chaos

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// `hookline dev` is stopped in the middle of an upload, by SIGTERM (Ctrl-C)
// and by SIGKILL, and started again on the same data dir: its redis-server
// child keeps the upload's state in an append-only file there, so the
// upload carries on and every page reaches the receiver. The child never
// outlives dev mode, not even a SIGKILL of it.
func TestDevModeKeepsUploadsAcrossRestarts(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			const pages = 40
			dir := t.TempDir()
			rc := apitest.NewReceiver(t, slowOK(40*time.Millisecond))
			dev, api := startDev(t, dir)
			redisPID := devRedisPID(t, dir)
			api.PutTemplate(keyA, "DEV", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "retryCount": 0})
			acc := api.ImportJSON(keyA, map[string]any{"template": "DEV", "records": apitest.NumberedRecords(pages)})

			apitest.Eventually(t, 30*time.Second, "5 pages received", func() bool { return rc.Count() >= 5 })
			dev.signal(sig)
			if !dev.waitExit(30 * time.Second) {
				t.Fatalf("hookline dev did not exit within 30s of %s", sig)
			}
			atStop := rc.Count()
			if atStop >= pages {
				t.Fatalf("the upload was already over (%d requests) when dev mode was stopped", atStop)
			}
			apitest.Eventually(t, 15*time.Second, "the redis-server child to exit with dev mode", func() bool {
				return syscall.Kill(redisPID, 0) != nil
			})

			_, api = startDev(t, dir)
			u := api.WaitFinishedThroughErrors(keyA, acc.UploadID, 60*time.Second)
			if u.Status != "completed" || u.DeliveredPages != pages || u.FailedPages != 0 {
				t.Fatalf("upload after the restart = %+v, want completed with %d pages delivered", u, pages)
			}
			maxEach := 0 // a SIGKILL may cut a delivery short after the receiver got it: at least once
			if sig == syscall.SIGTERM {
				maxEach = 1 // a stop drains in-flight deliveries: exactly once
			}
			dups := checkEveryPage(t, rc, acc.UploadID, pages, maxEach)
			t.Logf("stopped by %s after %d requests; %d pages arrived in all, %d duplicates", sig, atStop, pages, dups)
		})
	}
}

// startDev runs `hookline dev` on dir with the test's API key and waits
// until its API is ready.
func startDev(t *testing.T, dir string) (*proc, *apitest.Client) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// Registered before the process, so run after it is killed: its Redis
	// child has exited before the data dir is removed.
	t.Cleanup(func() {
		if data, err := os.ReadFile(filepath.Join(dir, "redis", "redis.pid")); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			apitest.Poll(15*time.Second, func() bool { return pid <= 1 || syscall.Kill(pid, 0) != nil })
		}
	})
	p := startProc(t, "hookline dev", bin.hookline, []string{"dev"}, map[string]string{
		"HOOKLINE_DATA_DIR":       dir,
		"HOOKLINE_ADDR":           addr,
		"HOOKLINE_METRICS_ADDR":   "127.0.0.1:0",
		"HOOKLINE_API_KEYS":       "acme:" + keyA,
		"HOOKLINE_LOG_FORMAT":     "json",
		"HOOKLINE_SHUTDOWN_GRACE": "10s",
		"HOOKLINE_ACK_WAIT":       "2s", // a killed delivery's ticket comes back soon
	})
	api := apitest.NewClient(t, "http://"+addr, &http.Client{Timeout: 30 * time.Second})
	apitest.Eventually(t, 60*time.Second, "hookline dev /readyz", func() bool {
		st, _, err := api.TryCall("", http.MethodGet, "/readyz", nil)
		return err == nil && st == http.StatusOK
	})
	if strings.Contains(p.log.String(), "in-memory Redis") {
		t.Fatalf("hookline dev fell back to the in-memory Redis: %s", strings.Join(p.warnings(), "\n"))
	}
	return p, api
}

// devRedisPID is the pid of the redis-server child of the dev mode on dir.
func devRedisPID(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "redis", "redis.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}
