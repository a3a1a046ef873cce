package worker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/sched"
	"github.com/hookline/hookline/pkg/tracing"
	"github.com/hookline/hookline/pkg/tracker"
)

type drainingKey struct{}

// withDraining tells handlers, through ctx, that the pool stops taking work
// when done is closed: a delivery under way finishes, but starts nothing new.
func withDraining(ctx context.Context, done <-chan struct{}) context.Context {
	return context.WithValue(ctx, drainingKey{}, done)
}

// draining reports whether the pool that runs ctx's handler is shutting down.
func draining(ctx context.Context) bool {
	done, _ := ctx.Value(drainingKey{}).(<-chan struct{})
	select {
	case <-done: // a nil channel (no pool) never is
		return true
	default:
		return false
	}
}

type yieldKey struct{}

// yielding reports whether the delivery that runs ctx should leave its slot
// at the next page: another tenant, holding fewer of this worker's slots,
// has a ticket waiting.
func yielding(ctx context.Context) bool {
	y, ok := ctx.Value(yieldKey{}).(yieldTo)
	return ok && y.q.othersWait(y.tenant)
}

// lightWork marks the tenant whose delivery runs ctx light, for every
// process, when u is light work (fairQueue.lightWork).
func lightWork(ctx context.Context, u *tracker.Upload) {
	if y, ok := ctx.Value(yieldKey{}).(yieldTo); ok {
		y.q.lightWork(y.tenant, u.TotalPages, y.d)
	}
}

// sending counts the delivery that runs ctx as waiting for its endpoint
// until the returned func is called (fairQueue.sending).
func sending(ctx context.Context) (answered func(took time.Duration)) {
	if y, ok := ctx.Value(yieldKey{}).(yieldTo); ok {
		return y.q.sending(y.tenant)
	}
	return func(time.Duration) {}
}

// heldBack reports whether the delivery that runs ctx yields because its
// tenant is held back for another's light work.
func heldBack(ctx context.Context) bool {
	y, ok := ctx.Value(yieldKey{}).(yieldTo)
	return ok && y.q.heldBack(y.tenant)
}

type yieldTo struct {
	q      *fairQueue
	tenant string
	d      *delivery
}

// Handler is the shape of ticket handling; middleware wraps it.
type Handler func(ctx context.Context, t Ticket) error

// Pool pulls tickets from the workers' consumer, up to Lookahead more than
// it has slots, and runs up to Concurrency handlers at once. A free slot
// goes to the tenant with waiting tickets that holds the fewest slots
// (fairQueue), so one tenant's backlog does not hold back another's ticket
// fetched after it.
type Pool struct {
	cons        jetstream.Consumer
	q           Queue
	handle      Handler
	concurrency int
	lookahead   int
	grace       time.Duration
	ackWait     time.Duration
	metrics     *Metrics
	log         *zap.Logger
	beats       beats
	waiting     *fairQueue
}

// beats keeps fetched tickets alive: one goroutine for the whole pool
// tells JetStream a ticket is still being worked on (InProgress) when
// half of AckWait has passed since it last heard of it, so neither a slow
// endpoint nor a wait for a slot gets a page sent twice. (A goroutine and a ticker per ticket
// cost more than the rest of the bookkeeping of a page.)
type beats struct {
	mu   sync.Mutex
	msgs map[jetstream.Msg]time.Time // in-flight ticket -> last time JetStream heard of it
}

func (b *beats) add(m jetstream.Msg, now time.Time) {
	b.mu.Lock()
	if b.msgs == nil {
		b.msgs = make(map[jetstream.Msg]time.Time)
	}
	b.msgs[m] = now
	b.mu.Unlock()
}

func (b *beats) remove(m jetstream.Msg) {
	b.mu.Lock()
	delete(b.msgs, m)
	b.mu.Unlock()
}

// beat sends InProgress for every ticket JetStream last heard of before
// now - every.
func (b *beats) beat(now time.Time, every time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for m, last := range b.msgs {
		if now.Sub(last) >= every && m.InProgress() == nil {
			b.msgs[m] = now // a failed beat is tried again at the next tick
		}
	}
}

// run beats until ctx ends: checking every quarter of AckWait for tickets
// silent for half of it, so none stays silent for more than 3/4 of AckWait.
func (b *beats) run(ctx context.Context, ackWait time.Duration) {
	tick := time.NewTicker(max(ackWait/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			b.beat(now, ackWait/2)
		case <-ctx.Done():
			return
		}
	}
}

// NewPool builds a Pool. lookahead is how many tickets it fetches beyond
// its free slots, to choose among; grace is how long in-flight deliveries
// may run on after shutdown begins before they are cut off and handed back.
func NewPool(cons jetstream.Consumer, q Queue, h Handler, concurrency, lookahead int, grace, ackWait time.Duration, m *Metrics, log *zap.Logger) *Pool {
	p := &Pool{cons: cons, q: q, handle: h, concurrency: max(concurrency, 1), lookahead: max(lookahead, 0),
		grace: grace, ackWait: ackWait, metrics: m, log: log, waiting: newFairQueue()}
	m.waiting.q.Store(p.waiting)
	return p
}

// PreferLight has the pool mark light work in l and hold heavy tenants
// back while another tenant's light work is marked (package sched).
func (p *Pool) PreferLight(l *sched.Light) { p.waiting.light = l }

// Run pulls and handles tickets until ctx ends, then stops pulling, hands back
// what it pulled but did not start, and waits for in-flight deliveries.
func (p *Pool) Run(ctx context.Context) error {
	// Deliveries outlive ctx by up to grace, so shutdown drains them.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	work = withDraining(work, ctx.Done())
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.grace, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stop()

	var wg sync.WaitGroup
	// Heartbeats go on until the last delivery has ended, past the grace
	// (after it, deliveries are cut short but still record their outcome).
	hb, stopHB := context.WithCancel(context.WithoutCancel(work))
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); p.beats.run(hb, p.ackWait) }()
	defer func() { wg.Wait(); stopHB(); <-hbDone }()
	go p.waiting.renew(hb)
	fetching := make(chan struct{})
	go func() { defer close(fetching); p.fetch(ctx) }()
	defer func() {
		<-fetching
		for _, f := range p.waiting.drain() {
			_ = f.msg.Nak() // fetched but not started: hand it back at once
			p.beats.remove(f.msg)
		}
	}()

	slots := make(chan struct{}, p.concurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		f, ok := p.waiting.pop()
		for !ok {
			var recheck <-chan time.Time // tickets wait, held back while light work is marked: until it lapses
			if p.waiting.light != nil && p.waiting.heldBackOnly() {
				recheck = time.After(sched.TTL / 4)
			}
			select {
			case <-p.waiting.pushed:
			case <-p.waiting.ended:
			case <-recheck:
			case <-ctx.Done():
				return nil
			}
			f, ok = p.waiting.pop()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant, d := f.ticket.GetTenant(), &delivery{}
			defer func() { p.waiting.unlight(tenant, d); p.waiting.done(tenant); <-slots }()
			p.process(context.WithValue(work, yieldKey{}, yieldTo{p.waiting, tenant, d}), f)
		}()
	}
}

// fetch pulls tickets into p.waiting until ctx ends, keeping at most
// concurrency + lookahead fetched and not finished.
func (p *Pool) fetch(ctx context.Context) {
	for ctx.Err() == nil {
		room := p.concurrency + p.lookahead - p.waiting.held()
		if room <= 0 {
			select {
			case <-p.waiting.freed:
			case <-ctx.Done():
			}
			continue
		}
		fetchCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := p.cons.Fetch(room, jetstream.FetchContext(fetchCtx))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("fetch tickets", zap.Error(err))
			select { // back off while NATS is unreachable
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		for msg := range batch.Messages() {
			if ctx.Err() != nil {
				_ = msg.Nak() // pulled but not started: hand it back at once
				continue
			}
			if t, ok := p.decode(msg); ok {
				p.beats.add(msg, time.Now())
				p.waiting.push(fetched{msg: msg, ticket: t})
			}
		}
		cancel()
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			p.log.Debug("fetch batch", zap.Error(err))
		}
	}
}

// decode reads a ticket message; a message that is not a ticket is dropped.
func (p *Pool) decode(msg jetstream.Msg) (Ticket, bool) {
	meta, err := msg.Metadata()
	if err != nil {
		p.log.Error("ticket without metadata", zap.Error(err))
		_ = msg.Term()
		return Ticket{}, false
	}
	tk, err := queue.DecodeTicket(msg.Data())
	if err != nil {
		p.log.Error("malformed ticket dropped", zap.Error(err))
		_ = msg.TermWithReason("malformed ticket")
		return Ticket{}, false
	}
	// The token names this delivery of the message: a later delivery of it
	// may take over the pages this one leased (see tracker.Begin).
	return Ticket{Ticket: tk, Token: strconv.FormatUint(meta.Sequence.Stream, 10) + "." + strconv.FormatUint(meta.NumDelivered, 10)}, true
}

func (p *Pool) process(ctx context.Context, f fetched) {
	herr := p.handle(tracing.Extract(ctx, f.msg.Headers()), f.ticket) // in the trace of the import that queued it
	p.beats.remove(f.msg)
	settle(context.WithoutCancel(ctx), p.q, f.msg, f.ticket, herr, p.metrics, p.log)
}

// Recover turns a panic in a handler into an infrastructure error, so the
// ticket is handed back instead of the process dying.
func Recover(log *zap.Logger) func(Handler) Handler {
	return func(next Handler) Handler {
		return func(ctx context.Context, t Ticket) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("panic in delivery", zap.Any("panic", r), zap.String("upload", t.GetUploadId()), zap.Uint32("page", t.GetPage()))
					err = errors.New("panic in delivery")
				}
			}()
			return next(ctx, t)
		}
	}
}
