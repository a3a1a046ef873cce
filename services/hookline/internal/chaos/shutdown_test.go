//go:build chaos

package chaos

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// A worker gets SIGTERM while it has webhook requests under way to a slow
// receiver. With HOOKLINE_ACK_WAIT=30s, a ticket that is not handed back
// explicitly would only come back after 30s, so "at once" is measurable.
//
//   - drain: the grace (10s) outlasts the receiver (500ms per page): the
//     pages under way finish, are received once and count as delivered; the
//     worker exits 0 long before the grace ends.
//   - cut: the receiver (3s) outlasts the grace (1s): the pages under way are
//     handed back when the grace ends, logged as "released" (not a customer
//     attempt), and another worker sends them again within seconds; the
//     worker exits 0 shortly after the grace.
//
// In both cases the attempts log has no "retrying" or "failed" entry: the
// receiver never failed.
func TestWorkerGracefulShutdown(t *testing.T) {
	t.Run("drain", func(t *testing.T) { testGracefulShutdown(t, 10*time.Second, 500*time.Millisecond, 12) })
	t.Run("cut", func(t *testing.T) { testGracefulShutdown(t, time.Second, 3*time.Second, 8) })
}

func testGracefulShutdown(t *testing.T, grace, answerAfter time.Duration, pages int) {
	const window = 4 // maxInFlight
	ns := startNATS(t)
	rs := redistest.Start(t)
	s := newStack(t, ns.url(), rs.URL, map[string]string{
		"HOOKLINE_ACK_WAIT":       "30s",
		"HOOKLINE_SHUTDOWN_GRACE": grace.String(),
	})
	s.startIngest()
	a := s.startWorker("worker-A", nil)

	// The first request of each page waits for the gate (opened once worker
	// A has been told to stop), then answers after answerAfter; a page sent
	// again (after a cut) is answered at once, so the test does not wait twice.
	gate := make(chan struct{})
	var openGate sync.Once
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, req apitest.Request, n int) {
		if n == 1 {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
			slowOK(answerAfter)(w, r, req, n)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(func() { openGate.Do(func() { close(gate) }) })
	s.api.PutTemplate(keyA, "STOP", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": window, "retryCount": 0, "timeout": 30000})
	acc := s.importRecords(keyA, "STOP", pages)

	// Worker A alone holds the first pages; then B starts and A is told to stop.
	var held []string
	apitest.Eventually(t, 20*time.Second, "worker A to have 4 requests under way", func() bool {
		held = rc.InFlightIDs()
		return len(held) == window
	})
	heldPages := map[int]bool{}
	for _, id := range held {
		p, _ := strconv.Atoi(id[strings.LastIndexByte(id, '.')+1:])
		heldPages[p] = true
	}
	if a.inFlight() != window {
		t.Fatalf("worker A has %v requests under way, want %d", a.inFlight(), window)
	}
	b := s.startWorker("worker-B", nil)
	if rc.Count() != window {
		t.Fatalf("before the stop the receiver got %d requests, want exactly the %d held by worker A (%v)", rc.Count(), window, held)
	}
	sigAt := time.Now()
	a.signal(syscall.SIGTERM)
	// Let the shutdown begin before the receiver starts answering: the
	// worker's metrics server closes its listener when it does.
	apitest.Eventually(t, 5*time.Second, "worker A to begin its shutdown (metrics endpoint closed)", func() bool {
		_, err := a.metric("hookline_worker_requests_in_flight")
		return err != nil
	})
	openGate.Do(func() { close(gate) })
	if !a.waitExit(grace + 5*time.Second) {
		t.Fatalf("worker A still running %s after SIGTERM (grace %s)", time.Since(sigAt).Round(time.Millisecond), grace)
	}
	exitAfter := time.Since(sigAt)
	t.Logf("worker A exited with code %d %s after SIGTERM (grace %s, receiver %s)", a.exitCode(), exitAfter.Round(time.Millisecond), grace, answerAfter)
	if a.exitCode() != 0 {
		t.Errorf("worker A exit code %d, want 0", a.exitCode())
	}
	if limit := grace + 2*time.Second; exitAfter > limit {
		t.Errorf("worker A took %s to exit, more than the grace %s plus 2s", exitAfter, grace)
	}

	u := s.api.WaitFinishedThroughErrors(keyA, acc.UploadID, 25*time.Second)
	doneAfter := time.Since(sigAt)
	if u.Status != "completed" || u.DeliveredPages != pages || u.FailedPages != 0 {
		t.Fatalf("upload = %+v, want completed with %d delivered pages", u, pages)
	}
	if doneAfter > 20*time.Second {
		t.Errorf("upload completed %s after SIGTERM: some ticket waited for AckWait (30s) instead of being handed back", doneAfter)
	}
	t.Logf("upload completed %s after SIGTERM", doneAfter.Round(time.Millisecond))
	checkEveryPage(t, rc, acc.UploadID, pages, 2)
	atts := s.api.Attempts(keyA, acc.UploadID)
	checkAttemptsExact(t, atts, pages)

	released := map[int]int{}
	for _, at := range atts {
		if at.Outcome == "released" {
			released[at.Page]++
		}
	}
	seen := receivedPages(rc, acc.UploadID)
	drains := grace > answerAfter
	for p := range heldPages {
		if drains {
			// Finished by A: received once, delivered, nothing released.
			if seen[p] != 1 || released[p] != 0 {
				t.Errorf("page %d held by worker A: received %d times, %d released entries; want it finished by A (once, none released)", p, seen[p], released[p])
			}
			continue
		}
		// Cut off by A: released once, sent again by B soon after the grace.
		if released[p] != 1 || seen[p] != 2 {
			t.Errorf("page %d held by worker A: received %d times, %d released entries; want handed back once and sent again", p, seen[p], released[p])
		}
		for _, h := range rc.Requests() {
			if h.ID == acc.UploadID+"."+strconv.Itoa(p) && h.At.After(sigAt.Add(grace/2)) {
				if d := h.At.Sub(sigAt); d > grace+8*time.Second {
					t.Errorf("page %d was sent again %s after SIGTERM: not handed back at once (AckWait is 30s)", p, d)
				}
			}
		}
	}
	for p, n := range released {
		if !heldPages[p] {
			t.Errorf("page %d, not held by worker A, has %d released entries", p, n)
		}
	}
	if b.exited() {
		t.Errorf("worker B exited: %v", b.err)
	}
}
