package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/pkg/sched"
)

// maxDefer bounds how long a heavy import waits, between two of its pages,
// for another tenant's light work: a stream of light work slows a heavy
// import down but never stops it. (A bound relative to the page's own
// time, to keep a share of the speed, was measured: at any share that
// keeps much of the heavy import going, its parsing and the pages it
// stores take the CPUs the light work needs; docs/benchmarks.md, step 6.)
const maxDefer = 50 * time.Millisecond

// WithLight has imports mark light work in l and pace heavy ones
// (package sched).
func WithLight(l *sched.Light) APIOption {
	return func(a *API) { a.pacer = &importPacer{light: l, deferred: a.metrics.deferred, under: map[string]int{}} }
}

// importPacer counts each tenant's imports under way in this process. An
// import is light while it is its tenant's only one and has at most
// sched.LightPages pages: it is marked light for every process. Any other
// import is heavy: between its pages it waits while another tenant's light
// work is marked (at most maxDefer each time). A nil pacer does neither.
type importPacer struct {
	light    *sched.Light
	deferred prometheus.Counter // seconds heavy imports waited
	mu       sync.Mutex
	under    map[string]int // tenant -> imports under way
}

// begin counts an import of tenant under way until the returned func is
// called, and marks it light if it is.
func (p *importPacer) begin(tenant string) (end func()) {
	if p == nil {
		return func() {}
	}
	p.mu.Lock()
	p.under[tenant]++
	light := p.under[tenant] == 1
	p.mu.Unlock()
	if light {
		p.light.Mark(tenant)
	}
	return func() {
		p.mu.Lock()
		if p.under[tenant]--; p.under[tenant] <= 0 {
			delete(p.under, tenant)
		}
		p.mu.Unlock()
	}
}

// pace is called by an import of tenant once it has the given pages.
func (p *importPacer) pace(ctx context.Context, tenant string, pages int) {
	p.mu.Lock()
	only := p.under[tenant] <= 1
	p.mu.Unlock()
	switch {
	case only && pages <= sched.LightPages:
		p.light.Mark(tenant)
		return
	case only && pages == sched.LightPages+1:
		p.light.End(tenant) // it was marked, and is not light after all
	}
	if d := p.light.Defer(ctx, tenant, maxDefer); d > 0 {
		p.deferred.Add(d.Seconds())
	}
}

// pacing is the importer's hook for an import of tenant.
func (p *importPacer) pacing(tenant string) func(ctx context.Context, pages int) {
	if p == nil {
		return nil
	}
	return func(ctx context.Context, pages int) { p.pace(ctx, tenant, pages) }
}
