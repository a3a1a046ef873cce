package worker

import (
	"context"
	"sync"
	"time"

	"github.com/hookline/hookline/pkg/tracker"
)

// openFor is how long a template that only a pause by hand can hold (no
// rate limit, no pause after failures) stays open in a worker once the gate
// let one of its pages go: its pages skip the gate's round trip meanwhile,
// and a pause by hand reaches them within it.
const openFor = time.Second

// openGates remembers, per template, until when its gate is open.
type openGates struct {
	mu    sync.Mutex
	until map[templateRef]time.Time
}

type templateRef struct{ tenant, code string }

// gate asks the template's gate whether the page may go now. Whatever
// depends on each request (the rate limit's schedule, a pause after
// failures, a paused template's probes) is asked for every page; a template
// with none of them is asked once per openFor.
func (d *Deliverer) gate(ctx context.Context, u *tracker.Upload) (tracker.Gate, error) {
	p := u.Destination.Protection(pausedRecheck)
	ref := templateRef{u.Tenant, u.Template}
	byHandOnly := p.Limit.Requests == 0 && p.PauseAfterFailures == 0
	now := d.now()
	if byHandOnly && d.open.isOpen(ref, now) {
		return tracker.Gate{Kind: tracker.Go}, nil
	}
	g, err := d.tr.Gate(ctx, u.Tenant, u.Template, p)
	switch {
	case err != nil:
	case g.Kind != tracker.Go || g.Probe:
		// Held back or probing, through whichever upload asked: the
		// template's other uploads ask again too.
		d.open.close(ref)
	case byHandOnly:
		d.open.keep(ref, now.Add(openFor))
	}
	return g, err
}

func (o *openGates) close(ref templateRef) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.until, ref)
}

func (o *openGates) isOpen(ref templateRef, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return now.Before(o.until[ref])
}

func (o *openGates) keep(ref templateRef, until time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.until == nil || len(o.until) > 10000 { // bounded: drop everything rather than grow
		o.until = map[templateRef]time.Time{}
	}
	o.until[ref] = until
}
