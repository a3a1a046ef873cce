package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Step 6's tenants besides the bench's own (tenant A, the flood): tenant B
// and the neighbours that each import one page.
const (
	bravoTenant = "bravo"
	bravoKey    = "hookline-bench-key-bravo" // #nosec G101 -- a key of the services the bench starts on loopback for itself
	neighbours  = 1000
)

func neighbourKey(i int) string { return fmt.Sprintf("hookline-bench-nb-key-%04d", i) }

// apiKeys is ingest's HOOKLINE_API_KEYS: every tenant the bench acts for.
func apiKeys() string {
	keys := []string{tenant + ":" + apiKey, bravoTenant + ":" + bravoKey}
	for i := range neighbours {
		keys = append(keys, fmt.Sprintf("nb%04d:%s", i, neighbourKey(i)))
	}
	return strings.Join(keys, ",")
}

// Step 6's workload.
const (
	floodUploads   = 300
	floodPages     = 50
	floodImporters = 8
	smallPages     = 5
	smallSamples   = 20
)

// flood is tenant A importing floodUploads uploads in the background.
type flood struct {
	accepted chan struct{} // closed once every import was answered
	err      error         // the first import error (read after accepted)
	ids      []string
}

func startFlood(ctx context.Context, a *api, rc *receiver, body []byte) *flood {
	f := &flood{accepted: make(chan struct{})}
	rc.reset(floodUploads * floodPages)
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range floodImporters {
		wg.Go(func() {
			for next.Add(1) <= floodUploads && ctx.Err() == nil {
				acc, err := a.importJSON(ctx, body)
				mu.Lock()
				if err != nil && f.err == nil {
					f.err = err
				} else if err == nil {
					f.ids = append(f.ids, acc.UploadID)
				}
				mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(f.accepted) }()
	return f
}

func (f *flood) importing() bool {
	select {
	case <-f.accepted:
		return false
	default:
		return true
	}
}

// sample is one timed upload: from the import request sent to its 202, to
// its first page received and to its last.
type sample struct {
	to202, first, done time.Duration
	id                 string
}

// timedUpload imports body for a and times it.
func timedUpload(ctx context.Context, a *api, rc *receiver, body []byte, pages int) (sample, error) {
	start := time.Now()
	acc, err := a.importJSON(ctx, body)
	if err != nil {
		return sample{}, err
	}
	sm := sample{to202: time.Since(start), id: acc.UploadID}
	at, ok := rc.complete(acc.UploadID, pages, time.Minute)
	if !ok {
		return sm, fmt.Errorf("upload %s: not every page received within a minute", acc.UploadID)
	}
	rc.mu.Lock()
	sm.first = rc.first[acc.UploadID].Sub(start)
	rc.mu.Unlock()
	sm.done = at.Sub(start)
	return sm, nil
}

// samples is a series of timed uploads.
type samples []sample

func (ss samples) pick(f func(sample) time.Duration) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}
func (ss samples) done() []time.Duration  { return ss.pick(func(s sample) time.Duration { return s.done }) }
func (ss samples) to202() []time.Duration { return ss.pick(func(s sample) time.Duration { return s.to202 }) }

// waits are the parts of each upload's time: 202 → first page, first page →
// last.
func (ss samples) waits() (queued, pages []time.Duration) {
	return ss.pick(func(s sample) time.Duration { return s.first - s.to202 }), ss.pick(func(s sample) time.Duration { return s.done - s.first })
}

func (ss samples) ids() []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.id
	}
	return out
}

// smallRuns are tenant B's uploads, one at a time, 20 ms apart, while more
// says so (at most smallSamples).
func smallRuns(ctx context.Context, b *api, rc *receiver, body []byte, more func() bool) (samples, error) {
	var ss samples
	for len(ss) < smallSamples && more() {
		sm, err := timedUpload(ctx, b, rc, body, smallPages)
		if err != nil {
			return ss, err
		}
		ss = append(ss, sm)
		time.Sleep(20 * time.Millisecond)
	}
	return ss, nil
}

// burst imports a 1-page upload for each neighbour at once (from 32
// clients) and returns each one's time from request sent to page received.
func burst(ctx context.Context, a *api, rc *receiver, body []byte) ([]time.Duration, error) {
	type sent struct {
		id    string
		start time.Time
	}
	out := make([]sent, neighbours)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < neighbours && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				start := time.Now()
				acc, err := a.as(neighbourKey(i)).importJSON(ctx, body)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				out[i] = sent{acc.UploadID, start}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	ds := make([]time.Duration, neighbours)
	for i, s := range out {
		at, ok := rc.complete(s.id, 1, time.Minute)
		if !ok {
			return nil, fmt.Errorf("neighbour %d's upload %s: page not received within a minute", i, s.id)
		}
		ds[i] = at.Sub(s.start)
	}
	return ds, nil
}

// noisyStep is step 6: tenant B's small upload and 1,000 tenants' 1-page
// uploads, alone and behind tenant A's flood, with 2 workers.
func noisyStep(ctx context.Context, c *cluster, a *api, rcFlood *receiver, s settings, rep *report) error {
	rc, err := startReceiver()
	if err != nil {
		return err
	}
	defer rc.close()
	rc.reset(0)
	b := a.as(bravoKey)
	if err := a.putTemplate(ctx, "NB_FLOOD", rcFlood.url, s.perPage, s.maxInFlight); err != nil {
		return err
	}
	if err := b.putTemplate(ctx, "NB_SMALL", rc.url, s.perPage, 1); err != nil {
		return err
	}
	for i := range neighbours {
		if err := a.as(neighbourKey(i)).putTemplate(ctx, "NB_ONE", rc.url, 100, 1); err != nil {
			return err
		}
	}
	if err := c.setWorkers(ctx, 2); err != nil {
		return err
	}
	floodBody := importBody("NB_FLOOD", floodPages*s.perPage)
	smallBody := importBody("NB_SMALL", smallPages*s.perPage)
	oneBody := importBody("NB_ONE", 10)
	always := func() bool { return true }
	if _, err := smallRuns(ctx, b, rc, smallBody, always); err != nil { // warm-up
		return err
	}

	waitIdle("step 6")
	cw := startCPU(c)
	alone, err := smallRuns(ctx, b, rc, smallBody, always)
	if err != nil {
		return err
	}
	floodStart := time.Now()
	f := startFlood(ctx, a, rcFlood, floodBody)
	for rcFlood.count.Load() == 0 && f.importing() {
		time.Sleep(time.Millisecond)
	}
	during, err := smallRuns(ctx, b, rc, smallBody, f.importing)
	if err != nil {
		return err
	}
	<-f.accepted
	floodAccepted := time.Since(floodStart)
	left := int64(floodUploads*floodPages) - rcFlood.count.Load()
	draining, err := smallRuns(ctx, b, rc, smallBody, func() bool { return rcFlood.count.Load() < floodUploads*floodPages*9/10 })
	if err != nil {
		return err
	}
	floodEnd, ok := rcFlood.wait(10 * time.Minute)
	if !ok {
		return fmt.Errorf("the flood: only %d pages received", rcFlood.count.Load())
	}
	cpuNote(rep, "step 6, tenant B", cw.end())
	if f.err != nil {
		return f.err
	}
	if err := a.verify(ctx, f.ids); err != nil {
		return err
	}
	if err := b.verify(ctx, append(append(alone.ids(), during.ids()...), draining.ids()...)); err != nil {
		return err
	}

	// 1,000 tenants: a 1-page upload alone, the burst without the flood,
	// then the burst once the flood's imports are all accepted.
	waitIdle("step 6, 1,000 tenants")
	cw = startCPU(c)
	one := a.as(neighbourKey(0))
	var single []time.Duration
	for range smallSamples {
		sm, err := timedUpload(ctx, one, rc, oneBody, 1)
		if err != nil {
			return err
		}
		single = append(single, sm.done)
		time.Sleep(20 * time.Millisecond)
	}
	quiet, err := burst(ctx, a, rc, oneBody)
	if err != nil {
		return err
	}
	secondStart := time.Now()
	f = startFlood(ctx, a, rcFlood, floodBody)
	<-f.accepted
	if f.err != nil {
		return f.err
	}
	secondAccepted := time.Since(secondStart)
	behindLeft := int64(floodUploads*floodPages) - rcFlood.count.Load()
	behind, err := burst(ctx, a, rc, oneBody)
	if err != nil {
		return err
	}
	afterBurst := int64(floodUploads*floodPages) - rcFlood.count.Load()
	secondEnd, ok := rcFlood.wait(10 * time.Minute)
	if !ok {
		return fmt.Errorf("the second flood: only %d pages received", rcFlood.count.Load())
	}
	cpuNote(rep, "step 6, 1,000 tenants", cw.end())
	if err := a.verify(ctx, f.ids); err != nil {
		return err
	}

	p := func(ds []time.Duration, q float64) time.Duration { return percentile(ds, q) }
	figure := func(ds []time.Duration) string {
		return fmt.Sprintf("p50 %s, p99 %s (%d samples)", ms(p(ds, 50)), ms(p(ds, 99)), len(ds))
	}
	ratio := func(ds, base []time.Duration, q float64) float64 {
		return p(ds, q).Seconds() / p(base, q).Seconds()
	}
	floodDesc := fmt.Sprintf("tenant A's flood of %d × %d pages (maxInFlight %d, %d clients), 2 workers", floodUploads, floodPages, s.maxInFlight, floodImporters)
	rep.add(row{"6", fmt.Sprintf("Noisy neighbour: tenant B's %d-page upload (maxInFlight 1), import sent → last page received, alone, 2 workers", smallPages),
		figure(alone.done()), "—", "—", "—", "—"})
	for _, r := range []struct {
		what string
		ss   samples
	}{
		{"alone", alone},
		{"during " + floodDesc, during},
		{fmt.Sprintf("after A's imports were accepted, while A's backlog drains (%s pages left)", num(float64(left))), draining},
	} {
		if r.what != "alone" {
			r50, r99 := ratio(r.ss.done(), alone.done(), 50), ratio(r.ss.done(), alone.done(), 99)
			rep.add(row{"6", "Noisy neighbour: the same upload " + r.what, figure(r.ss.done()), "alone: " + figure(alone.done()),
				fmt.Sprintf("p50 %.2f, p99 %.2f", r50, r99), "≤ 2 × alone", yesNo(len(r.ss) > 0 && r50 <= 2 && r99 <= 2)})
		}
		if len(r.ss) > 1 {
			rest := r.ss[1:].done()
			f := r.ss[0]
			rep.note("Step 6, tenant B %s: its first upload took %s (import call %s, 202 → first page %s, first page → last %s); the other %d p50 %s, p99 %s (%.2f × alone's p99).",
				r.what, ms(f.done), ms(f.to202), ms(f.first-f.to202), ms(f.done-f.first), len(rest), ms(p(rest, 50)), ms(p(rest, 99)), p(rest, 99).Seconds()/p(alone.done(), 99).Seconds())
		}
		queued, pages := r.ss.waits()
		rep.note("Step 6, tenant B %s: import call (request → 202) p50 %s, p99 %s; 202 → first page p50 %s, p99 %s; first page → last p50 %s, p99 %s.",
			r.what, ms(p(r.ss.to202(), 50)), ms(p(r.ss.to202(), 99)), ms(p(queued, 50)), ms(p(queued, 99)), ms(p(pages, 50)), ms(p(pages, 99)))
	}
	r99 := ratio(behind, quiet, 99)
	rep.add(row{"6", fmt.Sprintf("Noisy neighbour: %s tenants each import a 1-page upload at once (32 clients), no flood; import sent → page received", num(neighbours)),
		figure(quiet), "one 1-page upload alone: " + figure(single), fmt.Sprintf("p99 %.2f", ratio(quiet, single, 99)), "—", "—"})
	rep.add(row{"6", fmt.Sprintf("Noisy neighbour: the same %s uploads behind %s (its imports accepted, %s pages queued)", num(neighbours), floodDesc, num(float64(behindLeft))),
		figure(behind), "the same burst, no flood: " + figure(quiet), fmt.Sprintf("p99 %.2f (%.2f against one upload alone)", r99, ratio(behind, single, 99)),
		"p99 ≤ 3 × alone", yesNo(r99 <= 3)})
	rep.note("Step 6: %s of the second flood's pages were still queued when the last of the 1,000 tenants' pages had arrived.", num(float64(afterBurst)))
	total := float64(floodUploads * floodPages)
	rep.note("Step 6, tenant A's floods, from the first import sent: with tenant B's uploads, imports all accepted after %s, last page received after %s (%s pages/s); with the 1,000 tenants' burst, %s and %s (%s pages/s).",
		secs(floodAccepted), secs(floodEnd.Sub(floodStart)), num(total/floodEnd.Sub(floodStart).Seconds()),
		secs(secondAccepted), secs(secondEnd.Sub(secondStart)), num(total/secondEnd.Sub(secondStart).Seconds()))
	return nil
}
