package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// deliveryResult is one run of the delivery workload.
type deliveryResult struct {
	pages       int
	elapsed     time.Duration // first import sent → last page received
	importsDone time.Duration // first import sent → last 202
	pagesAt202  int64         // pages received when the last 202 came
	tail        time.Duration // last 202 → last page received
	dups        int64
}

func (r deliveryResult) rate() float64 { return float64(r.pages) / r.elapsed.Seconds() }

// tailRate is the delivery rate once every import was accepted (no ingest
// work competing).
func (r deliveryResult) tailRate() float64 {
	if r.tail <= 0 {
		return 0
	}
	return float64(int64(r.pages)-r.pagesAt202) / r.tail.Seconds()
}

// runDelivery imports uploads copies of body (each pages pages) from
// importers concurrent clients and waits until the receiver has every page.
func runDelivery(ctx context.Context, a *api, rc *receiver, body []byte, uploads, pages, importers int) (deliveryResult, []string, error) {
	total := uploads * pages
	rc.reset(int64(total))
	var next atomic.Int64
	var mu sync.Mutex
	var ids []string
	var firstErr error
	var lastAccepted time.Time
	var pagesAt202 int64
	start := time.Now()
	var wg sync.WaitGroup
	for range importers {
		wg.Go(func() {
			for next.Add(1) <= int64(uploads) && ctx.Err() == nil {
				acc, err := a.importJSON(ctx, body)
				now := time.Now()
				got := rc.count.Load()
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					ids = append(ids, acc.UploadID)
					if acc.TotalPages != pages {
						firstErr = fmt.Errorf("upload %s has %d pages, want %d", acc.UploadID, acc.TotalPages, pages)
					}
					if now.After(lastAccepted) {
						lastAccepted, pagesAt202 = now, got
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return deliveryResult{}, ids, firstErr
	}
	last, ok := rc.wait(10 * time.Minute)
	if !ok {
		return deliveryResult{}, ids, fmt.Errorf("only %d of %d pages received within 10 minutes", rc.count.Load(), total)
	}
	res := deliveryResult{
		pages: total, elapsed: last.Sub(start), importsDone: lastAccepted.Sub(start),
		pagesAt202: pagesAt202, tail: last.Sub(lastAccepted), dups: rc.dups.Load(),
	}
	return res, ids, nil
}

// runBareHTTP is the delivery baseline: concurrency goroutines POST the same
// webhook bodies a worker would send, with the same headers, straight to the
// receiver: no queue, no Redis, no ingest. One request per page of uploads
// uploads.
func runBareHTTP(ctx context.Context, rc *receiver, bodies [][]byte, uploads, concurrency int) (deliveryResult, error) {
	pages := len(bodies)
	total := uploads * pages
	p := newPoster(rc.url, concurrency)
	defer p.close()
	rc.reset(int64(total))
	var next atomic.Int64
	var failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				u, pg := i/pages, i%pages
				if !p.post(ctx, "BASELINE"+strconv.Itoa(u)+"."+strconv.Itoa(pg+1), bodies[pg]) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return deliveryResult{}, fmt.Errorf("bare HTTP baseline: %d requests failed", n)
	}
	last, ok := rc.wait(time.Minute)
	if !ok {
		return deliveryResult{}, fmt.Errorf("bare HTTP baseline: %d of %d pages received", rc.count.Load(), total)
	}
	return deliveryResult{pages: total, elapsed: last.Sub(start)}, nil
}

// latencyResult holds per-upload timings of 1-page uploads.
type latencyResult struct {
	toPage []time.Duration // import call sent → page received
	to202  []time.Duration // import call sent → 202 read
}

// runLatency imports n 1-page uploads one at a time and times each.
func runLatency(ctx context.Context, a *api, rc *receiver, body []byte, n int) (latencyResult, []string, error) {
	var res latencyResult
	var ids []string
	rc.reset(int64(n))
	rc.watch.Store(true)
	defer rc.watch.Store(false)
	for len(rc.notify) > 0 {
		<-rc.notify
	}
	for range n {
		start := time.Now()
		acc, err := a.importJSON(ctx, body)
		if err != nil {
			return res, ids, err
		}
		accepted := time.Now()
		ids = append(ids, acc.UploadID)
		arrived, ok := rc.firstArrival(acc.UploadID, 10*time.Second)
		if !ok {
			return res, ids, fmt.Errorf("upload %s: page not received within 10s", acc.UploadID)
		}
		res.toPage = append(res.toPage, arrived.Sub(start))
		res.to202 = append(res.to202, accepted.Sub(start))
		// Let the worker finish its bookkeeping (finish script, completion
		// event, purge) so that the next sample starts at idle.
		time.Sleep(20 * time.Millisecond)
	}
	return res, ids, nil
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// runDeliveryOnly imports every upload first with the workers stopped, then
// starts workers workers and times delivery alone: from the first page
// received to the last.
func runDeliveryOnly(ctx context.Context, c *cluster, a *api, rc *receiver, body []byte, uploads, pages, importers, workers int, during func() func()) (deliveryResult, []string, error) {
	c.stopWorkers()
	total := uploads * pages
	rc.reset(int64(total))
	var next atomic.Int64
	var mu sync.Mutex
	var ids []string
	var firstErr error
	var wg sync.WaitGroup
	for range importers {
		wg.Go(func() {
			for next.Add(1) <= int64(uploads) && ctx.Err() == nil {
				acc, err := a.importJSON(ctx, body)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				} else if err == nil {
					ids = append(ids, acc.UploadID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return deliveryResult{}, ids, firstErr
	}
	var done func()
	if during != nil {
		done = during()
	}
	err := c.setWorkers(ctx, workers)
	if err != nil {
		return deliveryResult{}, ids, err
	}
	last, ok := rc.wait(10 * time.Minute)
	if done != nil {
		done()
	}
	if !ok {
		return deliveryResult{}, ids, fmt.Errorf("only %d of %d pages received within 10 minutes", rc.count.Load(), total)
	}
	rc.mu.Lock()
	var first time.Time
	for _, t := range rc.first {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	rc.mu.Unlock()
	// The first page is not counted: the clock starts when it arrives.
	return deliveryResult{pages: total - 1, elapsed: last.Sub(first), dups: rc.dups.Load()}, ids, nil
}
