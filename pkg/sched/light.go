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

// Subject carries light marks, SubjectEnd the end of a tenant's mark
// where its work turned out not to be light: the body is the tenant's
// name.
const (
	Subject    = "hookline.sched.light"
	SubjectEnd = "hookline.sched.end"
)

// TTL is how long a mark holds unless renewed. A process renews the marks
// of light work under way in it every TTL/4 and publishes them as it does,
// so that other processes see a mark lapse at most TTL/4 before it does
// here; it publishes at most two tenants' marks every window (a little
// shorter than TTL/4, so that each renewal falls in a window of its own).
const (
	TTL    = 40 * time.Millisecond
	window = TTL / 5
)

// maxMarks bounds the marks a process keeps: when more are alive at once,
// the oldest are forgotten (light work enough to need more holds heavy
// work back anyway).
const maxMarks = 64

// Light knows which tenants are marked light now. The zero value is not
// usable; New builds one. Safe for concurrent use.
type Light struct {
	nc  *nats.Conn // nil: marks stay in this process
	now func() time.Time
	log *zap.Logger

	mu    sync.Mutex
	marks map[string]time.Time // tenant -> when its mark lapses
	// What this process published in the current window: at most two
	// tenants.
	since time.Time
	sent  []string
}

// Option configures a Light.
type Option func(*Light)

// WithClock has the Light tell time with now (tests).
func WithClock(now func() time.Time) Option { return func(l *Light) { l.now = now } }

// New builds a Light that publishes and hears marks on nc (nil keeps
// them in this process). Run subscribes.
func New(nc *nats.Conn, log *zap.Logger, opts ...Option) *Light {
	l := &Light{nc: nc, now: time.Now, log: log, marks: make(map[string]time.Time)}
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
	var subs []*nats.Subscription
	for subject, hear := range map[string]func(string){Subject: func(t string) { l.note(t) }, SubjectEnd: l.drop} {
		sub, err := l.nc.Subscribe(subject, func(m *nats.Msg) { hear(string(m.Data)) })
		if err != nil {
			l.log.Warn("hear other processes' light marks", zap.String("subject", subject), zap.Error(err))
			continue
		}
		subs = append(subs, sub)
	}
	<-ctx.Done()
	for _, sub := range subs {
		_ = sub.Unsubscribe() // best effort: the connection may close first, and takes it along
	}
	return nil
}

// Mark marks tenant light for TTL, here and in every process. A process
// publishes at most two tenants' marks every window, however many tenants
// it marks.
func (l *Light) Mark(tenant string) {
	now := l.note(tenant)
	l.mu.Lock()
	if now.Sub(l.since) >= window {
		l.since, l.sent = now, l.sent[:0]
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

// End ends tenant's mark here and in every process: its work turned out
// not to be light. (Light work of it elsewhere marks it again within
// TTL/4.)
func (l *Light) End(tenant string) {
	l.drop(tenant)
	if l.nc == nil {
		return
	}
	if err := l.nc.Publish(SubjectEnd, []byte(tenant)); err != nil {
		l.log.Debug("publish the end of a light mark", zap.Error(err))
	}
}

// drop forgets tenant's mark.
func (l *Light) drop(tenant string) {
	l.mu.Lock()
	delete(l.marks, tenant)
	l.mu.Unlock()
}

// note records a mark of tenant, seen now.
func (l *Light) note(tenant string) time.Time {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.marks[tenant]; !ok && len(l.marks) >= maxMarks {
		l.prune(now)
	}
	l.marks[tenant] = now.Add(TTL)
	return now
}

// prune forgets lapsed marks and, if that leaves maxMarks, the oldest.
// Called with mu held.
func (l *Light) prune(now time.Time) {
	oldest, first := "", time.Time{}
	for tenant, until := range l.marks {
		if !now.Before(until) {
			delete(l.marks, tenant)
		} else if oldest == "" || until.Before(first) {
			oldest, first = tenant, until
		}
	}
	if len(l.marks) >= maxMarks {
		delete(l.marks, oldest)
	}
}

// Marked reports whether a tenant other than tenant, and for which skip
// is false (skip may be nil), is marked light now.
func (l *Light) Marked(tenant string, skip func(string) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.marks) == 0 { // the usual case, asked for every page: no clock read
		return false
	}
	now := l.now()
	for other, until := range l.marks {
		if other != tenant && now.Before(until) && (skip == nil || !skip(other)) {
			return true
		}
	}
	return false
}

// until is when the latest mark of a tenant other than tenant lapses.
func (l *Light) until(tenant string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var latest time.Time
	for other, until := range l.marks {
		if other != tenant && until.After(latest) {
			latest = until
		}
	}
	return latest
}

// Other reports whether a tenant other than tenant is marked light now.
func (l *Light) Other(tenant string) bool { return l.Marked(tenant, nil) }

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
