package tracker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestPipeliningDeliversEveryPageOnce runs many concurrent deliveries through
// a pipelining tracker: every page is delivered exactly once, each Finish
// gets its own answer (the released pages cover the upload without gaps or
// repeats), and the upload completes once.
func TestPipeliningDeliversEveryPageOnce(t *testing.T) {
	tr := newTracker(t, WithPipelining(2))
	t.Cleanup(tr.Close)
	const uploads, pages, window = 16, 40, 4
	var wg sync.WaitGroup
	errs := make(chan error, uploads)
	for u := range uploads {
		id := fmt.Sprintf("PIPE%d", u)
		create(t, tr, id, pages, window)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- deliverConcurrently(tr, id, pages, window)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for u := range uploads {
		got, err := tr.Get(context.Background(), fmt.Sprintf("PIPE%d", u), "acme")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != StatusCompleted || got.DeliveredPages != pages {
			t.Fatalf("upload %d: status %s, %d delivered; want completed, %d", u, got.Status, got.DeliveredPages, pages)
		}
	}
}

// deliverConcurrently delivers an upload the way workers do: window pages at
// once, each finished page releasing the next.
func deliverConcurrently(tr *Tracker, id string, pages, window int) error {
	ctx := context.Background()
	seen := make([]bool, pages+1)
	var mu sync.Mutex
	completions := 0
	work := make(chan int, pages)
	for p := 1; p <= window; p++ {
		work <- p
	}
	var wg sync.WaitGroup
	errs := make(chan error, pages)
	for range window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for page := range work {
				tok := fmt.Sprintf("t%d", page)
				b, err := tr.Begin(ctx, id, page, 0, tok, time.Minute, time.Now())
				if err != nil || b.State != BeginGo {
					errs <- fmt.Errorf("page %d: begin %v, %v", page, b.State, err)
					return
				}
				if b.Upload.Destination.MaxInFlight != window || b.Upload.TotalPages != pages {
					errs <- fmt.Errorf("page %d: begin answered another upload's data: %+v", page, b.Upload)
					return
				}
				f, err := tr.Finish(ctx, id, page, Finish{Outcome: Delivered, Token: tok, Now: time.Now()})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if f.CompletedNow {
					completions++
				}
				if f.Released > 0 {
					if seen[f.Released] {
						mu.Unlock()
						errs <- fmt.Errorf("page %d released twice", f.Released)
						return
					}
					seen[f.Released] = true
					work <- f.Released
				}
				if f.CompletedNow {
					close(work) // every page is finished: the others stop
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for p := window + 1; p <= pages; p++ {
		if !seen[p] {
			return fmt.Errorf("page %d never released", p)
		}
	}
	if completions != 1 {
		return fmt.Errorf("%d completions, want 1", completions)
	}
	return nil
}

// TestPipeliningReloadsFlushedScripts: after Redis loses its scripts (a
// restart, SCRIPT FLUSH) the pipelined EVALSHA answers NOSCRIPT and the
// call is sent again with the script.
func TestPipeliningReloadsFlushedScripts(t *testing.T) {
	tr := newTracker(t, WithPipelining(1))
	t.Cleanup(tr.Close)
	create(t, tr, "FLUSH", 2, 2)
	if err := tr.rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if b := begin(t, tr, "FLUSH", 1, "a", time.Now()); b.State != BeginGo {
		t.Fatalf("begin after SCRIPT FLUSH: %v, want go", b.State)
	}
	if err := tr.rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if f := finish(t, tr, "FLUSH", 1, Finish{Outcome: Delivered, Token: "a"}); f.Delivered != 1 {
		t.Fatalf("finish after SCRIPT FLUSH: %+v, want 1 delivered", f)
	}
}

// TestPipeliningCallerGivesUp: a caller whose context ends gets its
// context's error; the tracker keeps answering others.
func TestPipeliningCallerGivesUp(t *testing.T) {
	tr := newTracker(t, WithPipelining(1))
	t.Cleanup(tr.Close)
	create(t, tr, "CANCEL", 2, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Begin(ctx, "CANCEL", 1, 0, "a", time.Minute, time.Now()); !errors.Is(err, context.Canceled) {
		t.Fatalf("begin with a cancelled context: %v, want context.Canceled", err)
	}
	if b := begin(t, tr, "CANCEL", 2, "b", time.Now()); b.State != BeginGo {
		t.Fatalf("begin after another caller gave up: %v, want go", b.State)
	}
}

// TestPipeliningAfterClose: calls made after Close still reach Redis, one by one.
func TestPipeliningAfterClose(t *testing.T) {
	tr := newTracker(t, WithPipelining(2))
	create(t, tr, "CLOSED", 1, 1)
	tr.Close()
	tr.Close() // twice is fine
	if b := begin(t, tr, "CLOSED", 1, "a", time.Now()); b.State != BeginGo {
		t.Fatalf("begin after Close: %v, want go", b.State)
	}
	if f := finish(t, tr, "CLOSED", 1, Finish{Outcome: Delivered, Token: "a"}); !f.CompletedNow {
		t.Fatalf("finish after Close: %+v, want the upload completed", f)
	}
}

// TestDestinationCacheKeysOnText: two uploads with different destinations
// each get their own, however often they are read.
func TestDestinationCacheKeysOnText(t *testing.T) {
	var c destCache
	a, err := c.decode(`{"url":"http://127.0.0.1:1/a","maxInFlight":2}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.decode(`{"url":"http://127.0.0.1:1/b","maxInFlight":3}`)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := c.decode(`{"url":"http://127.0.0.1:1/a","maxInFlight":2}`)
	if a.URL != "http://127.0.0.1:1/a" || b.URL != "http://127.0.0.1:1/b" || a2 != a || b.MaxInFlight != 3 {
		t.Fatalf("decoded %+v, %+v, %+v", a, b, a2)
	}
	if _, err := c.decode(`{"url":`); err == nil {
		t.Fatal("a broken snapshot decoded without error")
	}
	for i := range destCacheSize + 10 {
		if _, err := c.decode(fmt.Sprintf(`{"url":"http://127.0.0.1:1/%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.m); n > destCacheSize {
		t.Fatalf("cache holds %d entries, over its bound of %d", n, destCacheSize)
	}
}

// TestFinishLeasesTheReleasedPage: with a chain lease, finishing a delivered
// page leases the page it releases for the same token, as Begin would;
// without one, or when the released page is not free, it does not.
func TestFinishLeasesTheReleasedPage(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "CHAIN", 4, 1)
	now := time.Now()
	if b := begin(t, tr, "CHAIN", 1, "m1", now); b.State != BeginGo {
		t.Fatalf("begin page 1: %v", b.State)
	}
	f := finish(t, tr, "CHAIN", 1, Finish{Outcome: Delivered, Token: "m1", Now: now, ChainLease: time.Minute})
	if f.Released != 2 || !f.NextLeased || f.NextAttempts != 0 {
		t.Fatalf("finish page 1 = %+v, want page 2 released and leased", f)
	}
	if b := begin(t, tr, "CHAIN", 2, "other", now); b.State != BeginBusy {
		t.Fatalf("another token's begin of the leased page 2: %v, want busy", b.State)
	}
	if b := begin(t, tr, "CHAIN", 2, "m1", now); b.State != BeginGo {
		t.Fatalf("the chain's own begin of page 2: %v, want go", b.State)
	}

	// Page 2 fails once: its retry time is ahead, so finishing page 2's
	// attempt does not lease anything, and a later chain lease of page 3
	// carries page 3's attempts.
	if f := finish(t, tr, "CHAIN", 2, Finish{Outcome: Retrying, Token: "m1", Now: now, NextAt: now.Add(time.Hour), ChainLease: time.Minute}); f.NextLeased {
		t.Fatalf("a retrying page leased the next: %+v", f)
	}
	if b := begin(t, tr, "CHAIN", 2, "m1", now.Add(2*time.Hour)); b.State != BeginGo || b.Attempts != 1 {
		t.Fatalf("page 2 after its retry time: %+v", b)
	}
	// Someone else holds page 3: the chain does not take it.
	if _, err := tr.rdb.HSet(context.Background(), tr.keys("CHAIN")[1], "l:3", "other|"+ms(now.Add(time.Hour))).Result(); err != nil {
		t.Fatal(err)
	}
	f = finish(t, tr, "CHAIN", 2, Finish{Outcome: Delivered, Token: "m1", Now: now.Add(2 * time.Hour), ChainLease: time.Minute})
	if f.Released != 3 || f.NextLeased {
		t.Fatalf("finish page 2 = %+v, want page 3 released but not leased (held by another)", f)
	}
	// Without a chain lease nothing is leased.
	if b := begin(t, tr, "CHAIN", 3, "other", now.Add(2*time.Hour)); b.State != BeginGo {
		t.Fatalf("begin page 3: %v", b.State)
	}
	f = finish(t, tr, "CHAIN", 3, Finish{Outcome: Delivered, Token: "other", Now: now.Add(2 * time.Hour)})
	if f.Released != 4 || f.NextLeased {
		t.Fatalf("finish page 3 without a chain lease = %+v", f)
	}
	if b := begin(t, tr, "CHAIN", 4, "fresh", now.Add(2*time.Hour)); b.State != BeginGo {
		t.Fatalf("page 4 was leased without a chain lease: %v", b.State)
	}
	// The last page completes the upload: nothing to lease.
	if f := finish(t, tr, "CHAIN", 4, Finish{Outcome: Delivered, Token: "fresh", Now: now.Add(2 * time.Hour), ChainLease: time.Minute}); !f.CompletedNow || f.NextLeased {
		t.Fatalf("finish of the last page = %+v", f)
	}
}
