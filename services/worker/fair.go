package worker

import (
	"cmp"
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookline/hookline/pkg/sched"
)

// fetched is a ticket message taken from the consumer and decoded, waiting
// for a slot.
type fetched struct {
	msg    jetstream.Msg
	ticket Ticket
}

// fairQueue holds the tickets a worker has fetched ahead of its free slots,
// one FIFO per tenant, and hands the next free slot to the tenant with
// waiting tickets that holds the fewest slots per unit of its delivery
// share (the one served longest ago among equals): with shares 3 and 1 and
// both backlogged, the first holds three slots for each of the second's.
// Shares are all 1 unless tenants have quotas.deliveryShare. A tenant's
// FIFO is fair between its uploads by itself: an upload has at most
// maxInFlight tickets, and a carried chain that ends puts its ticket at
// the back. Safe for concurrent use.
type fairQueue struct {
	mu      sync.Mutex
	tenants map[string]*tenantQueue // tenants with waiting or running tickets
	ready   readyHeap               // tenants with waiting tickets
	waiting int                     // tickets waiting, all tenants
	running int                     // tickets being handled, all tenants
	turn    uint64                  // counts hand-outs, orders equals
	pushed  chan struct{}           // a ticket was pushed (capacity 1)
	freed   chan struct{}           // a ticket was finished, for the fetcher (capacity 1)
	ended   chan struct{}           // a ticket was finished, for the starter (capacity 1)
	light   *sched.Light            // light work marked across processes; nil: none
	lit     map[string]int          // tenant -> its light deliveries running here: their marks are renewed
}

// Light and heavy work (package sched): a tenant is light in a worker
// while the upload it delivers has at most sched.LightPages pages and it
// holds at most lightTickets of the worker's tickets; it is marked light
// for every process, and the mark is renewed while that work runs. A
// tenant holding more than lightTickets is heavy: while another tenant is
// marked (one not holding much here itself), it starts no ticket while
// heavyWhileLight of its deliveries are busy (running, and not waiting for
// a slow endpoint: see busy), and its carried chains yield down to that.
// Its work that uses the CPUs at once (the Redis and NATS calls, building
// and reading requests) shrinks to a few deliveries, so the light tenant's
// steps wait behind few others; deliveries waiting for a slow endpoint
// take no CPU and are not held back.
const (
	lightTickets    = 4
	heavyWhileLight = 2
)

type tenantQueue struct {
	name    string
	tickets []fetched // FIFO
	running int
	share   uint64        // weight: the delivery share of its latest ticket, at least 1
	turn    uint64        // when this tenant was last served, or arrived if never
	index   int           // in ready; -1 when it has no waiting ticket
	fresh   bool          // never served: goes before tenants served already
	sending int           // running and waiting for the endpoint's answer
	answer  time.Duration // how long its endpoints take to answer, a moving average
}

func newFairQueue() *fairQueue {
	return &fairQueue{tenants: make(map[string]*tenantQueue), pushed: make(chan struct{}, 1), freed: make(chan struct{}, 1), ended: make(chan struct{}, 1),
		lit: make(map[string]int)}
}

// much reports whether tq holds more tickets than light work does.
func much(tq *tenantQueue) bool { return len(tq.tickets)+tq.running > lightTickets }

// heavy reports whether tq is held back: it holds much, and another
// tenant's light work is marked (a tenant holding much here too does not
// count, so a tenant cannot hold others back by importing little now and
// then). Called with mu held.
func (q *fairQueue) heavy(tq *tenantQueue) bool {
	return q.light != nil && much(tq) && q.light.Marked(tq.name, q.holdsMuch)
}

// holdsMuch reports whether tenant holds much here. Called with mu held.
func (q *fairQueue) holdsMuch(tenant string) bool {
	tq := q.tenants[tenant]
	return tq != nil && much(tq)
}

// slowAnswer is how long a tenant's endpoints take to answer, on average,
// for its deliveries waiting for them not to count as busy: a fast answer
// comes back before the CPUs are free anyway.
const slowAnswer = 5 * time.Millisecond

// busy is how many of tq's deliveries use the CPUs: running, and not
// waiting for a slow endpoint.
func busy(tq *tenantQueue) int {
	if tq.answer >= slowAnswer {
		return tq.running - tq.sending
	}
	return tq.running
}

// capped reports whether tq may start no more tickets now.
func (q *fairQueue) capped(tq *tenantQueue) bool {
	return busy(tq) >= heavyWhileLight && q.heavy(tq)
}

// next is the waiting tenant the next slot goes to: the first of ready
// that is not capped. ok is false when every waiting tenant is capped.
func (q *fairQueue) next() (*tenantQueue, bool) {
	if len(q.ready) == 0 {
		return nil, false
	}
	if top := q.ready[0]; !q.capped(top) {
		return top, true
	}
	var best *tenantQueue
	for i, tq := range q.ready {
		if !q.capped(tq) && (best == nil || q.ready.Less(i, best.index)) {
			best = tq
		}
	}
	return best, best != nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push adds a fetched ticket at the back of its tenant's FIFO.
func (q *fairQueue) push(f fetched) {
	q.mu.Lock()
	name := f.ticket.GetTenant()
	tq := q.tenants[name]
	if tq == nil {
		q.turn++
		tq = &tenantQueue{name: name, turn: q.turn, index: -1, fresh: true}
		q.tenants[name] = tq
	}
	share := shareOf(f.ticket)
	changed := share != tq.share
	tq.share = share
	tq.tickets = append(tq.tickets, f)
	q.waiting++
	switch {
	case tq.index < 0:
		heap.Push(&q.ready, tq)
	case changed: // tickets queued with another share (before an upgrade)
		heap.Fix(&q.ready, tq.index)
	}
	q.mu.Unlock()
	signal(q.pushed)
}

// pop takes the next ticket to start, if any waits, and counts it running
// until done is called with its tenant.
func (q *fairQueue) pop() (fetched, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	tq, ok := q.next()
	if !ok {
		return fetched{}, false
	}
	f := tq.tickets[0]
	tq.tickets[0] = fetched{}
	tq.tickets = tq.tickets[1:]
	q.turn++
	tq.running, tq.turn, tq.fresh = tq.running+1, q.turn, false
	q.waiting--
	q.running++
	if len(tq.tickets) == 0 {
		tq.tickets = nil
		heap.Remove(&q.ready, tq.index)
	} else {
		heap.Fix(&q.ready, tq.index)
	}
	return f, true
}

// done ends a ticket pop handed out.
func (q *fairQueue) done(tenant string) {
	q.mu.Lock()
	tq := q.tenants[tenant]
	tq.running--
	q.running--
	switch {
	case tq.index >= 0:
		heap.Fix(&q.ready, tq.index)
	case tq.running == 0:
		delete(q.tenants, tenant)
	}
	q.mu.Unlock()
	signal(q.freed)
	signal(q.ended)
}

// sending counts one of tenant's running deliveries as waiting for its
// endpoint until the returned func is called with how long the answer
// took. answer is the tenant's average over its endpoints, kept while it
// has tickets here.
func (q *fairQueue) sending(tenant string) (answered func(took time.Duration)) {
	if q.light == nil { // nothing is held back: nothing to count
		return func(time.Duration) {}
	}
	q.mu.Lock()
	tq := q.tenants[tenant]
	tq.sending++
	slow := tq.answer >= slowAnswer
	q.mu.Unlock()
	if slow {
		signal(q.ended) // one fewer busy: a held tenant may start again
	}
	return func(took time.Duration) {
		q.mu.Lock()
		tq.sending--
		tq.answer += (took - tq.answer) / 8
		q.mu.Unlock()
		signal(q.ended) // a capped tenant may start again
	}
}

// heldBackOnly reports whether tickets wait while no tenant with waiting
// tickets may start one (heavy tenants held back for light work).
func (q *fairQueue) heldBackOnly() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.next()
	return q.waiting > 0 && !ok
}

// held is how many tickets the worker holds: waiting and running.
func (q *fairQueue) held() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting + q.running
}

// shareOf is a ticket's delivery share; tickets queued before tickets had
// one (0) count as 1.
func shareOf(t Ticket) uint64 { return uint64(max(t.GetDeliveryShare(), 1)) }

// perShare returns a's and b's slots per unit of share on one scale, so
// that x < y when a holds fewer per share than b (x/y is
// (a.running/a.share) / (b.running/b.share), without division).
func perShare(a, b *tenantQueue) (x, y uint64) {
	return uint64(a.running) * b.share, uint64(b.running) * a.share // #nosec G115 -- running counts slots, never negative
}

// othersWait reports whether a carried chain of tenant should yield its
// slot: a tenant holding fewer slots per unit of share has a ticket
// waiting, or tenant is held back for light work (heldBack).
func (q *fairQueue) othersWait(tenant string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	tq := q.tenants[tenant]
	if q.over(tq) {
		return true
	}
	if len(q.ready) == 0 {
		return false
	}
	x, y := perShare(q.ready[0], tq)
	return q.ready[0] != tq && x < y
}

// over reports whether tq is held back and has more than heavyWhileLight
// deliveries busy: its carried chains yield. Called with mu held.
func (q *fairQueue) over(tq *tenantQueue) bool {
	return busy(tq) > heavyWhileLight && q.heavy(tq)
}

// heldBack reports whether a chain of tenant yields for light work.
func (q *fairQueue) heldBack(tenant string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.over(q.tenants[tenant])
}

// delivery is what the fair queue knows of one ticket being handled.
type delivery struct {
	light bool // counted in lit
}

// lightWork marks tenant light, for every process, when the upload its
// delivery d delivers has at most sched.LightPages pages and tenant holds
// at most lightTickets of this worker's tickets; renew keeps the mark
// while such deliveries run (until unlight).
func (q *fairQueue) lightWork(tenant string, pages int, d *delivery) {
	if q.light == nil || pages > sched.LightPages {
		return
	}
	q.mu.Lock()
	tq := q.tenants[tenant]
	light := tq != nil && !much(tq)
	if light && !d.light {
		d.light = true
		q.lit[tenant]++
	}
	q.mu.Unlock()
	if light {
		q.light.Mark(tenant)
	}
}

// unlight ends d's count as light work.
func (q *fairQueue) unlight(tenant string, d *delivery) {
	if !d.light {
		return
	}
	q.mu.Lock()
	if q.lit[tenant]--; q.lit[tenant] <= 0 {
		delete(q.lit, tenant)
	}
	q.mu.Unlock()
	d.light = false
}

// renew marks again, every TTL/4 until ctx ends, the tenants whose light
// work runs here: a page waiting for a slow endpoint keeps its tenant
// marked.
func (q *fairQueue) renew(ctx context.Context) {
	if q.light == nil {
		return
	}
	t := time.NewTicker(sched.TTL / 4)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			q.renewOnce()
		case <-ctx.Done():
			return
		}
	}
}

// renewOnce marks again the tenants whose light work runs here.
func (q *fairQueue) renewOnce() {
	var names []string
	q.mu.Lock()
	for name := range q.lit {
		if tq := q.tenants[name]; tq != nil && !much(tq) {
			names = append(names, name)
		}
	}
	q.mu.Unlock()
	for _, name := range names {
		q.light.Mark(name)
	}
}

// drain removes and returns every waiting ticket.
func (q *fairQueue) drain() []fetched {
	q.mu.Lock()
	defer q.mu.Unlock()
	var all []fetched
	for _, tq := range q.ready {
		all = append(all, tq.tickets...)
		tq.tickets, tq.index = nil, -1
		if tq.running == 0 {
			delete(q.tenants, tq.name)
		}
	}
	q.ready, q.waiting = nil, 0
	return all
}

// TenantWaiting is one tenant's waiting tickets.
type TenantWaiting struct {
	Tenant  string
	Tickets int
}

// top returns the n tenants with the most waiting tickets, most first, and
// how many tenants have tickets waiting.
func (q *fairQueue) top(n int) (top []TenantWaiting, tenants int) {
	q.mu.Lock()
	for _, tq := range q.ready {
		top = append(top, TenantWaiting{tq.name, len(tq.tickets)})
	}
	q.mu.Unlock()
	slices.SortFunc(top, func(a, b TenantWaiting) int {
		return cmp.Or(cmp.Compare(b.Tickets, a.Tickets), cmp.Compare(a.Tenant, b.Tenant))
	})
	return top[:min(n, len(top))], len(top)
}

// readyHeap orders tenants by the slots they hold per unit of share, then
// by when they were last served (never first, in the order they came).
type readyHeap []*tenantQueue

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if x, y := perShare(h[i], h[j]); x != y {
		return x < y
	}
	if h[i].fresh != h[j].fresh {
		return h[i].fresh
	}
	return h[i].turn < h[j].turn
}
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *readyHeap) Push(x any) {
	tq := x.(*tenantQueue)
	tq.index = len(*h)
	*h = append(*h, tq)
}
func (h *readyHeap) Pop() any {
	old := *h
	tq := old[len(old)-1]
	old[len(old)-1] = nil
	tq.index = -1
	*h = old[:len(old)-1]
	return tq
}
