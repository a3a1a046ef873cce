// Package sched lets the tenants with light work go first, across
// processes. A process that sees a tenant with light work (in ingest, an
// import that is its tenant's only one there and has few pages so far; in
// a worker, a small upload of a tenant holding few of its tickets) marks
// it light; the mark is published on hookline.sched.light, so every
// ingest and worker knows it within a network hop, and it lapses after
// TTL unless renewed. Tenants with much work hold back while another
// tenant is marked: workers run few of their deliveries at once outside
// the wait for a slow endpoint, and ingest pauses their imports between
// pages (for a bounded time each). On a host whose CPUs a flood keeps
// busy, the light tenant's steps then run nearly as fast as alone.
package sched

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// LightPages is the most pages an upload of light work has.
const LightPages = 16

// Subject carries light marks: the body is the tenant's name.
const Subject = "hookline.sched.light"

// TTL is how long a mark holds unless renewed. A process renews the marks
// of light work under way in it every TTL/4, and publishes a tenant's mark
// at most as often, so that other processes see it lapse at most TTL/4
// before it does here.
const TTL = 40 * time.Millisecond

// Light knows which tenants are marked light now. The zero value is not
// usable; New builds one. Safe for concurrent use.
type Light struct {
	nc  *nats.Conn // nil: marks stay in this process
	now func() time.Time
	log *zap.Logger

	mu sync.Mutex
	// The latest mark, and the latest of any other tenant: enough to
	// answer whether a tenant other than a given one is marked.
	top, second tenantUntil
	// What this process published in the current window of TTL/4: at
	// most two tenants, which is all a reader needs to know that a
	// tenant other than any given one is marked.
	window time.Time
	sent   []string
}

type tenantUntil struct {
	tenant string
	until  time.Time
}

// Option configures a Light.
type Option func(*Light)

// WithClock has the Light tell time with now (tests).
func WithClock(now func() time.Time) Option { return func(l *Light) { l.now = now } }

// New builds a Light that publishes and hears marks on nc (nil keeps
// them in this process). Run subscribes.
func New(nc *nats.Conn, log *zap.Logger, opts ...Option) *Light {
	l := &Light{nc: nc, now: time.Now, log: log}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Run hears other processes' marks until ctx ends. Marks are hints: if
// the subscription cannot be made, this process goes on with its own marks
// only.
func (l *Light) Run(ctx context.Context) error {
	if l.nc == nil {
		<-ctx.Done()
		return nil
	}
	sub, err := l.nc.Subscribe(Subject, func(m *nats.Msg) { l.note(string(m.Data)) })
	if err != nil {
		l.log.Warn("hear other processes' light marks", zap.Error(err))
		<-ctx.Done()
		return nil
	}
	<-ctx.Done()
	_ = sub.Unsubscribe() // best effort: the connection may close first, and takes it along
	return nil
}

// Mark marks tenant light for TTL, here and in every process. A process
// publishes at most two tenants' marks every TTL/4, however many tenants
// it marks.
func (l *Light) Mark(tenant string) {
	now := l.note(tenant)
	l.mu.Lock()
	if now.Sub(l.window) >= TTL/4 {
		l.window, l.sent = now, l.sent[:0]
	}
	send := l.nc != nil && len(l.sent) < 2 && !slices.Contains(l.sent, tenant)
	if send {
		l.sent = append(l.sent, tenant)
	}
	l.mu.Unlock()
	if send {
		if err := l.nc.Publish(Subject, []byte(tenant)); err != nil {
			l.log.Debug("publish a light mark", zap.Error(err))
		}
	}
}

// note records a mark of tenant, seen now.
func (l *Light) note(tenant string) time.Time {
	now := l.now()
	m := tenantUntil{tenant, now.Add(TTL)}
	l.mu.Lock()
	if l.top.tenant != tenant {
		l.second = l.top // the latest mark of a tenant other than the new top
	}
	l.top = m
	l.mu.Unlock()
	return now
}

// Marked returns the tenants of the two latest marks that have not
// lapsed, latest first ("" for none).
func (l *Light) Marked() [2]string {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [2]string
	n := 0
	for _, m := range []tenantUntil{l.top, l.second} {
		if m.tenant != "" && now.Before(m.until) {
			out[n] = m.tenant
			n++
		}
	}
	return out
}

// until is when the latest mark of a tenant other than tenant lapses.
func (l *Light) until(tenant string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.top.tenant != tenant {
		return l.top.until
	}
	return l.second.until
}

// Other reports whether a tenant other than tenant is marked light now.
func (l *Light) Other(tenant string) bool {
	return l.now().Before(l.until(tenant))
}

// Defer waits while a tenant other than tenant is marked light, for at
// most max, or until ctx ends, and returns how long it waited.
func (l *Light) Defer(ctx context.Context, tenant string, max time.Duration) time.Duration {
	start := l.now()
	deadline := start.Add(max)
	for {
		until := l.until(tenant)
		now := l.now()
		if !now.Before(until) || !now.Before(deadline) {
			return now.Sub(start)
		}
		wait := until.Sub(now)
		if until.After(deadline) {
			wait = deadline.Sub(now)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return l.now().Sub(start)
		}
	}
}
