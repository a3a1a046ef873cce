package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is the customer's endpoint: it reads each body and answers 200 at
// once. It counts pages by webhook-id (duplicates apart) and notes when the
// first page of each upload arrived.
type receiver struct {
	srv *http.Server
	url string

	mu     sync.Mutex
	seen   map[string]struct{}  // webhook-ids seen since reset
	first  map[string]time.Time // upload id → arrival of its first page
	latest map[string]time.Time // upload id → arrival of its latest new page
	pages  map[string]int       // upload id → distinct pages received
	target int64
	done   chan struct{} // closed when count reaches target
	last   time.Time     // arrival of the page that reached target

	count atomic.Int64 // distinct pages since reset
	dups  atomic.Int64 // repeated webhook-ids since reset
	total atomic.Int64 // requests since start

	watch  atomic.Bool
	notify chan string // upload ids of arrivals, while watch is on
}

func startReceiver() (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + l.Addr().String() + "/hook", notify: make(chan string, 4096)}
	r.reset(0)
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	now := time.Now()
	r.total.Add(1)
	id := req.Header.Get("webhook-id")
	upload := id
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		upload = id[:i]
	}
	r.mu.Lock()
	if _, dup := r.seen[id]; dup {
		r.mu.Unlock()
		r.dups.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}
	r.seen[id] = struct{}{}
	if _, ok := r.first[upload]; !ok {
		r.first[upload] = now
	}
	r.latest[upload] = now
	r.pages[upload]++
	if n := r.count.Add(1); n == r.target {
		r.last = now
		close(r.done)
	}
	r.mu.Unlock()
	if r.watch.Load() {
		select {
		case r.notify <- upload:
		default:
		}
	}
	w.WriteHeader(http.StatusOK)
}

// reset clears the counters; done closes when target distinct pages arrived.
func (r *receiver) reset(target int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = make(map[string]struct{}, target)
	r.first = map[string]time.Time{}
	r.latest = map[string]time.Time{}
	r.pages = map[string]int{}
	r.target = target
	r.done = make(chan struct{})
	r.last = time.Time{}
	r.count.Store(0)
	r.dups.Store(0)
}

// wait blocks until target pages arrived or timeout; it returns the arrival
// time of the last one.
func (r *receiver) wait(timeout time.Duration) (time.Time, bool) {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	select {
	case <-done:
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.last, true
	case <-time.After(timeout):
		return time.Time{}, false
	}
}

// firstArrival returns when the first page of upload arrived, waiting up to
// timeout for it (watch must be on).
func (r *receiver) firstArrival(upload string, timeout time.Duration) (time.Time, bool) {
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		t, ok := r.first[upload]
		r.mu.Unlock()
		if ok {
			return t, true
		}
		select {
		case <-r.notify:
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// complete returns when the last of an upload's pages arrived, waiting up to
// timeout for all pages of them.
func (r *receiver) complete(upload string, pages int, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n, at := r.pages[upload], r.latest[upload]
		r.mu.Unlock()
		if n >= pages {
			return at, true
		}
		time.Sleep(time.Millisecond) // the arrival time is the receiver's, not this poll's
	}
	return time.Time{}, false
}

func (r *receiver) close() { _ = r.srv.Close() }
