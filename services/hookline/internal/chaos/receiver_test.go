//go:build chaos

package chaos

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// hugeBody is what the "huge body" receiver streams: 100 MiB of a pattern.
const hugeBody = 100 << 20

var hugePattern = bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB

// Receivers that misbehave, through the real binaries: one upload of one page
// per case, and what the upload, the attempts log, the failure log and the
// receiver show afterwards.
func TestReceiverBehaviours(t *testing.T) {
	ns := startNATS(t)
	rs := redistest.Start(t)
	s := newStack(t, ns.url(), rs.URL, map[string]string{"HOOKLINE_ACK_WAIT": "2s"})
	s.startIngest()
	s.startWorker("worker-1", nil)

	var hugeWritten atomic.Int64
	hugeDone := make(chan struct{})

	type result struct {
		u     apitest.Upload
		atts  []apitest.Attempt
		fails []apitest.Failure
		hits  []apitest.Request
	}
	cases := []struct {
		name    string
		wh      map[string]any // template settings besides url and chunkSize
		respond apitest.Respond
		status  string   // final status of the upload
		want    []string // outcomes in the attempts log, in order
		check   func(t *testing.T, res result)
	}{
		{
			name: "hangs past the timeout",
			wh:   map[string]any{"timeout": 1000, "retryCount": 0},
			respond: func(w http.ResponseWriter, r *http.Request, _ apitest.Request, n int) {
				select { // never answers in time
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			},
			status: "failed", want: []string{"failed"},
			check: func(t *testing.T, res result) {
				a := res.atts[0]
				if a.StatusCode != 0 || !strings.Contains(a.Error, "timeout") || a.DurationMs < 1000 || a.DurationMs > 5000 {
					t.Errorf("attempt = %+v, want a timeout after about 1000ms", a)
				}
			},
		},
		{
			name: "resets the connection",
			wh:   map[string]any{"retryCount": 0},
			respond: func(w http.ResponseWriter, r *http.Request, _ apitest.Request, n int) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // close with RST
				}
				_ = conn.Close()
			},
			status: "failed", want: []string{"failed"},
			check: func(t *testing.T, res result) {
				a := res.atts[0]
				if a.StatusCode != 0 || !strings.Contains(a.Error, "connection") {
					t.Errorf("attempt = %+v, want a connection error", a)
				}
			},
		},
		{
			name: "answers 500",
			wh:   map[string]any{"retryCount": 0},
			respond: func(w http.ResponseWriter, r *http.Request, _ apitest.Request, n int) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte("boom"))
			},
			status: "failed", want: []string{"failed"},
			check: func(t *testing.T, res result) {
				a := res.atts[0]
				if a.StatusCode != 500 || a.ResponseBody != "boom" || a.Error == "" {
					t.Errorf("attempt = %+v, want status 500 with body boom", a)
				}
			},
		},
		{
			name:    "answers 503 with Retry-After: 1",
			wh:      map[string]any{"retryCount": 1, "retryInterval": 0},
			respond: failFirst(http.StatusServiceUnavailable, "1"),
			status:  "completed", want: []string{"retrying", "delivered"},
			check: func(t *testing.T, res result) {
				checkRetryGap(t, res.atts, res.hits, 503, time.Second)
			},
		},
		{
			name:    "answers 429 with Retry-After: 1",
			wh:      map[string]any{"retryCount": 1, "retryInterval": 0},
			respond: failFirst(http.StatusTooManyRequests, "1"),
			status:  "completed", want: []string{"retrying", "delivered"},
			check: func(t *testing.T, res result) {
				checkRetryGap(t, res.atts, res.hits, 429, time.Second)
			},
		},
		{
			name:    "answers 429 without Retry-After",
			wh:      map[string]any{"retryCount": 1, "retryInterval": 300},
			respond: failFirst(http.StatusTooManyRequests, ""),
			status:  "completed", want: []string{"retrying", "delivered"},
			check: func(t *testing.T, res result) {
				checkRetryGap(t, res.atts, res.hits, 429, 300*time.Millisecond)
			},
		},
		{
			name:    "answers slowly within the timeout",
			wh:      map[string]any{"timeout": 5000, "retryCount": 0},
			respond: slowOK(1500 * time.Millisecond),
			status:  "completed", want: []string{"delivered"},
			check: func(t *testing.T, res result) {
				if a := res.atts[0]; a.StatusCode != 200 || a.DurationMs < 1500 || a.DurationMs >= 5000 {
					t.Errorf("attempt = %+v, want delivered after about 1500ms", a)
				}
			},
		},
		{
			// HOOKLINE_ACK_WAIT is 2s: the worker's progress signals keep
			// the ticket from going to another worker meanwhile.
			name:    "answers after 2.5× AckWait, within the timeout",
			wh:      map[string]any{"timeout": 10000, "retryCount": 0},
			respond: slowOK(5 * time.Second),
			status:  "completed", want: []string{"delivered"},
			check: func(t *testing.T, res result) {
				if a := res.atts[0]; a.StatusCode != 200 || a.DurationMs < 5000 || a.DurationMs >= 10000 {
					t.Errorf("attempt = %+v, want delivered after about 5000ms", a)
				}
			},
		},
		{
			name: "answers 200 with a 100 MiB body",
			wh:   map[string]any{"timeout": 10000, "retryCount": 0},
			respond: func(w http.ResponseWriter, r *http.Request, _ apitest.Request, n int) {
				defer close(hugeDone)
				w.Header().Set("Content-Type", "application/octet-stream")
				w.WriteHeader(http.StatusOK)
				rc := http.NewResponseController(w)
				for hugeWritten.Load() < hugeBody {
					m, err := w.Write(hugePattern)
					hugeWritten.Add(int64(m))
					if err == nil {
						err = rc.Flush()
					}
					if err != nil {
						return // the client went away
					}
				}
			},
			status: "completed", want: []string{"delivered"},
			check: func(t *testing.T, res result) {
				a := res.atts[0]
				if a.StatusCode != 200 || len(a.ResponseBody) != 4096 || a.ResponseBody != string(hugePattern[:4096]) {
					t.Errorf("attempt: status %d, responseBody of %d bytes; want 200 and the first 4096 bytes of the body", a.StatusCode, len(a.ResponseBody))
				}
				select {
				case <-hugeDone:
				case <-time.After(20 * time.Second):
					t.Fatalf("the receiver was still writing the body 20s after delivery (%d bytes accepted)", hugeWritten.Load())
				}
				n := hugeWritten.Load()
				t.Logf("the receiver could write %d bytes (%.2f MiB) of the 100 MiB body before the worker closed the connection; attempt took %dms", n, float64(n)/(1<<20), a.DurationMs)
				if n >= 10<<20 {
					t.Errorf("the worker let %d bytes of the response body through, want far fewer than 100 MiB (< 10 MiB)", n)
				}
			},
		},
	}

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := apitest.NewReceiver(t, c.respond)
			code := fmt.Sprintf("RECV%d", i)
			wh := map[string]any{"url": rc.HookURL(), "chunkSize": 1}
			for k, v := range c.wh {
				wh[k] = v
			}
			s.api.PutTemplate(keyA, code, wh)
			acc := s.importRecords(keyA, code, 1)
			res := result{u: s.api.WaitFinishedThroughErrors(keyA, acc.UploadID, 30*time.Second)}
			res.atts, res.fails, res.hits = s.api.Attempts(keyA, acc.UploadID), s.api.Failures(keyA, acc.UploadID), rc.Requests()
			if res.u.Status != c.status {
				t.Errorf("upload status %q, want %q: %+v", res.u.Status, c.status, res.u)
			}
			var got []string
			for _, a := range res.atts {
				got = append(got, a.Outcome)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("attempts log outcomes %v, want %v: %+v", got, c.want, res.atts)
			}
			for j, a := range res.atts {
				if a.Page != 1 || a.Attempt != j+1 {
					t.Errorf("attempt %d = %+v, want page 1 attempt %d", j+1, a, j+1)
				}
			}
			if len(res.hits) != len(c.want) {
				t.Errorf("the receiver got %d requests, want %d (one per logged attempt)", len(res.hits), len(c.want))
			}
			if c.status == "failed" {
				if len(res.fails) != 1 || res.fails[0].Page != 1 || res.fails[0].Attempts != len(c.want) || res.fails[0].Error == "" {
					t.Errorf("failure log = %+v, want page 1 after %d attempts with its error", res.fails, len(c.want))
				}
			} else if len(res.fails) != 0 {
				t.Errorf("failure log = %+v, want empty", res.fails)
			}
			c.check(t, res)
		})
	}
}

// failFirst answers the first request of a page with status (and
// Retry-After when not empty), the next ones with 200.
func failFirst(status int, retryAfter string) apitest.Respond {
	return func(w http.ResponseWriter, r *http.Request, _ apitest.Request, n int) {
		if n == 1 {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// checkRetryGap checks a retried-then-delivered page: the first attempt has
// the failing status, and the second request came at least minGap after the
// first one was answered.
func checkRetryGap(t *testing.T, atts []apitest.Attempt, hits []apitest.Request, status int, minGap time.Duration) {
	t.Helper()
	if atts[0].StatusCode != status || atts[1].StatusCode != 200 {
		t.Errorf("attempts = %+v, want %d then 200", atts, status)
	}
	if len(hits) != 2 {
		return
	}
	gap := hits[1].At.Sub(hits[0].End)
	t.Logf("second request %s after the %d answer", gap.Round(time.Millisecond), status)
	// 20ms of slack: the answer's end is taken in the handler, just before
	// the response reaches the worker.
	if gap < minGap-20*time.Millisecond {
		t.Errorf("second request came %s after the %d answer, want at least %s", gap, status, minGap)
	}
	if gap > minGap+10*time.Second {
		t.Errorf("second request came %s after the %d answer, far more than %s", gap, status, minGap)
	}
}
