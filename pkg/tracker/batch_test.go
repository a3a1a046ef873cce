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
				c := Call{Upload: id, Page: page, Token: tok}
				b, err := tr.Begin(ctx, c, time.Minute, time.Now())
				if err != nil || b.Kind != Send {
					errs <- fmt.Errorf("page %d: begin %v, %v", page, b.Kind, err)
					return
				}
				if b.Upload.Destination.MaxInFlight != window || b.Upload.TotalPages != pages {
					errs <- fmt.Errorf("page %d: begin answered another upload's data: %+v", page, b.Upload)
					return
				}
				f, err := tr.Finish(ctx, c, Finish{Outcome: Delivered, Now: time.Now()})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if f.Completion != nil {
					completions++
				}
				if f.Next > 0 {
					if seen[f.Next] {
						mu.Unlock()
						errs <- fmt.Errorf("page %d let go twice", f.Next)
						return
					}
					seen[f.Next] = true
					work <- f.Next
				}
				if f.Completion != nil {
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
	if b := begin(t, tr, "FLUSH", 1, "a", time.Now()); b.Kind != Send {
		t.Fatalf("begin after SCRIPT FLUSH: %v, want go", b.Kind)
	}
	if err := tr.rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if f := finish(t, tr, Call{Upload: "FLUSH", Page: 1, Token: "a"}, Finish{Outcome: Delivered}); f.Kind != Done || !f.Recorded {
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
	if _, err := tr.Begin(ctx, Call{Upload: "CANCEL", Page: 1, Token: "a"}, time.Minute, time.Now()); !errors.Is(err, context.Canceled) {
		t.Fatalf("begin with a cancelled context: %v, want context.Canceled", err)
	}
	if b := begin(t, tr, "CANCEL", 2, "b", time.Now()); b.Kind != Send {
		t.Fatalf("begin after another caller gave up: %v, want go", b.Kind)
	}
}

// TestPipeliningAfterClose: calls made after Close still reach Redis, one by one.
func TestPipeliningAfterClose(t *testing.T) {
	tr := newTracker(t, WithPipelining(2))
	create(t, tr, "CLOSED", 1, 1)
	tr.Close()
	tr.Close() // twice is fine
	if b := begin(t, tr, "CLOSED", 1, "a", time.Now()); b.Kind != Send {
		t.Fatalf("begin after Close: %v, want go", b.Kind)
	}
	if f := finish(t, tr, Call{Upload: "CLOSED", Page: 1, Token: "a"}, Finish{Outcome: Delivered}); f.Completion == nil {
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

// TestFinishLeasesTheReleasedPage: with carry, finishing a delivered
// page leases its next page for the same token, as Begin would;
// without one, or when the released page is not free, it does not.
func TestFinishLeasesTheReleasedPage(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "CHAIN", 4, 1)
	now := time.Now()
	if b := begin(t, tr, "CHAIN", 1, "m1", now); b.Kind != Send {
		t.Fatalf("begin page 1: %v", b.Kind)
	}
	f := finish(t, tr, Call{Upload: "CHAIN", Page: 1, Token: "m1"}, Finish{Outcome: Delivered, Now: now, Carry: time.Minute})
	if f.Kind != Send || f.Page != 2 || f.Attempts != 0 || !f.Recorded {
		t.Fatalf("finish page 1 = %+v, want page 2 released and leased", f)
	}
	if b := begin(t, tr, "CHAIN", 2, "other", now); b.Kind != Busy {
		t.Fatalf("another token's begin of the leased page 2: %v, want busy", b.Kind)
	}
	if b := begin(t, tr, "CHAIN", 2, "m1", now); b.Kind != Send {
		t.Fatalf("the chain's own begin of page 2: %v, want go", b.Kind)
	}

	// Page 2 fails once: its retry time is ahead, so finishing page 2's
	// attempt does not lease anything, and a later chain lease of page 3
	// carries page 3's attempts.
	if f := finish(t, tr, Call{Upload: "CHAIN", Page: 2, Token: "m1"}, Finish{Outcome: Retrying, Now: now, NextAt: now.Add(time.Hour), Carry: time.Minute}); f.Kind != Wait {
		t.Fatalf("a retrying page leased the next: %+v", f)
	}
	if b := begin(t, tr, "CHAIN", 2, "m1", now.Add(2*time.Hour)); b.Kind != Send || b.Attempts != 1 {
		t.Fatalf("page 2 after its retry time: %+v", b)
	}
	// Someone else holds page 3: the chain does not take it.
	if _, err := tr.rdb.HSet(context.Background(), tr.upload("CHAIN").pages, "l:3", "other|"+ms(now.Add(time.Hour))).Result(); err != nil {
		t.Fatal(err)
	}
	f = finish(t, tr, Call{Upload: "CHAIN", Page: 2, Token: "m1"}, Finish{Outcome: Delivered, Now: now.Add(2 * time.Hour), Carry: time.Minute})
	if f.Kind != Done || f.Next != 3 {
		t.Fatalf("finish page 2 = %+v, want page 3 released but not leased (held by another)", f)
	}
	// Without a chain lease nothing is leased.
	if b := begin(t, tr, "CHAIN", 3, "other", now.Add(2*time.Hour)); b.Kind != Send {
		t.Fatalf("begin page 3: %v", b.Kind)
	}
	f = finish(t, tr, Call{Upload: "CHAIN", Page: 3, Token: "other"}, Finish{Outcome: Delivered, Now: now.Add(2 * time.Hour)})
	if f.Kind != Done || f.Next != 4 {
		t.Fatalf("finish page 3 without a chain lease = %+v", f)
	}
	if b := begin(t, tr, "CHAIN", 4, "fresh", now.Add(2*time.Hour)); b.Kind != Send {
		t.Fatalf("page 4 was leased without a chain lease: %v", b.Kind)
	}
	// The last page completes the upload: nothing to lease.
	if f := finish(t, tr, Call{Upload: "CHAIN", Page: 4, Token: "fresh"}, Finish{Outcome: Delivered, Now: now.Add(2 * time.Hour), Carry: time.Minute}); f.Kind != Done || f.Completion == nil {
		t.Fatalf("finish of the last page = %+v", f)
	}
}
