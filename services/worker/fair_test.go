package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/hookline/hookline/pkg/natstest"
	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/sched"
	"github.com/hookline/hookline/pkg/tracker"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

func tenantTicket(tenant string, n int) fetched {
	return fetched{ticket: Ticket{Ticket: &hooklinev1.Ticket{Tenant: tenant, UploadId: fmt.Sprintf("%s-%d", tenant, n), Page: 1}}}
}

// TestFairQueueServesTheTenantHoldingFewestSlots: a free slot goes to the
// waiting tenant that holds the fewest, then to the one served longest ago;
// a tenant's own tickets keep their order.
func TestFairQueueServesTheTenantHoldingFewestSlots(t *testing.T) {
	q := newFairQueue()
	for i := range 5 {
		q.push(tenantTicket("a", i))
	}
	q.push(tenantTicket("b", 0))
	q.push(tenantTicket("b", 1))
	q.push(tenantTicket("c", 0))

	var got []string
	for range 6 {
		f, ok := q.pop()
		if !ok {
			t.Fatal("nothing to pop")
		}
		got = append(got, f.ticket.GetUploadId())
	}
	want := []string{"a-0", "b-0", "c-0", "a-1", "b-1", "a-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if q.othersWait("a") {
		// a holds 3 and is the only tenant waiting: nobody to yield to.
		t.Fatalf("othersWait(a) = %v, want false", q.othersWait("a"))
	}
	q.push(tenantTicket("d", 0))
	if !q.othersWait("a") || q.othersWait("d") {
		t.Fatalf("othersWait(a) = %v, othersWait(d) = %v; want true, false", q.othersWait("a"), q.othersWait("d"))
	}
	top, n := q.top(1)
	if n != 2 || len(top) != 1 || top[0] != (TenantWaiting{"a", 2}) {
		t.Fatalf("top(1) = %v, %d tenants; want [{a 2}], 2", top, n)
	}
	if h := q.held(); h != 9 {
		t.Fatalf("held %d, want 9", h)
	}
	if left := q.drain(); len(left) != 3 {
		t.Fatalf("drained %d, want 3", len(left))
	}
	for _, tenant := range []string{"a", "a", "a", "b", "b", "c"} {
		q.done(tenant)
	}
	if len(q.tenants) != 0 || q.held() != 0 {
		t.Fatalf("after every ticket ended: %d tenants, %d held", len(q.tenants), q.held())
	}
}

func sharedTicket(tenant string, n int, share uint32) fetched {
	f := tenantTicket(tenant, n)
	f.ticket.DeliveryShare = share
	return f
}

// TestFairQueueSplitsSlotsByShare: two tenants backlogged, every slot
// given back in the order it was taken and handed out again at once. From
// the moment the slots are full, they hold slots in the ratio of their
// delivery shares (6 and 2 of 8 with shares 3 and 1), at every step, and
// get hand-outs in that ratio. A ticket queued without a share counts 1.
func TestFairQueueSplitsSlotsByShare(t *testing.T) {
	for _, tc := range []struct {
		name         string
		shareA       uint32
		shareB       uint32
		slots        int
		wantA, wantB int // slots held in the steady state
	}{
		{"3:1 of 8", 3, 1, 8, 6, 2},
		{"3:1 of 4", 3, 1, 4, 3, 1},
		{"1:3 of 8", 1, 3, 8, 2, 6},
		{"2:1 of 3", 2, 1, 3, 2, 1},
		{"equal", 1, 1, 8, 4, 4},
		{"tickets without a share count 1", 0, 1, 8, 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newFairQueue()
			for i := range 500 {
				q.push(sharedTicket("a", i, tc.shareA))
				q.push(sharedTicket("b", i, tc.shareB))
			}
			var running []string // tenants of the slots, oldest first
			handed := map[string]int{}
			take := func() {
				f, ok := q.pop()
				if !ok {
					t.Fatal("nothing to pop")
				}
				running = append(running, f.ticket.GetTenant())
				handed[f.ticket.GetTenant()]++
			}
			for range tc.slots {
				take()
			}
			clear(handed)
			const rounds = 10
			for step := range rounds * tc.slots {
				q.done(running[0])
				running = running[1:]
				take()
				held := map[string]int{}
				for _, name := range running {
					held[name]++
				}
				if held["a"] != tc.wantA || held["b"] != tc.wantB {
					t.Fatalf("step %d: a holds %d, b %d; want %d and %d", step, held["a"], held["b"], tc.wantA, tc.wantB)
				}
			}
			if handed["a"] != rounds*tc.wantA || handed["b"] != rounds*tc.wantB {
				t.Fatalf("hand-outs a %d, b %d; want %d and %d", handed["a"], handed["b"], rounds*tc.wantA, rounds*tc.wantB)
			}
		})
	}
}

// TestFairQueueYieldsBelowShare: a carried chain yields when the tenant
// waiting holds fewer slots per unit of share than the chain's tenant,
// and not at the split of the shares.
func TestFairQueueYieldsBelowShare(t *testing.T) {
	for _, tc := range []struct {
		name         string
		runA, runB   int // slots held: a has share 3, b share 1
		waits, chain string
		want         bool
	}{
		{"b waits with none, a holds 4", 4, 0, "b", "a", true},
		{"b waits with 1, a holds 3: the split", 3, 1, "b", "a", false},
		{"a waits with 3, b holds 1: the split", 3, 1, "a", "b", false},
		{"a waits with 2, b holds 1", 2, 1, "a", "b", true},
		{"a waits with 3, b holds 2", 3, 2, "a", "b", true},
		{"b waits with 1, a holds 4", 4, 1, "b", "a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newFairQueue()
			for i := range tc.runA {
				q.push(sharedTicket("a", i, 3))
			}
			for i := range tc.runB {
				q.push(sharedTicket("b", i, 1))
			}
			for range tc.runA + tc.runB {
				q.pop()
			}
			if q.tenants["a"] != nil && q.tenants["a"].running != tc.runA || q.tenants["b"] != nil && q.tenants["b"].running != tc.runB {
				t.Fatalf("setup: running a %+v, b %+v", q.tenants["a"], q.tenants["b"])
			}
			share := map[string]uint32{"a": 3, "b": 1}
			q.push(sharedTicket(tc.waits, 99, share[tc.waits]))
			if got := q.othersWait(tc.chain); got != tc.want {
				t.Fatalf("othersWait(%s) = %v, want %v", tc.chain, got, tc.want)
			}
		})
	}
}

// TestPoolServesAnotherTenantAheadOfABacklog: with one slot, tenant B's
// ticket published behind 50 of tenant A's is handled after at most one
// of A's more.
func TestPoolServesAnotherTenantAheadOfABacklog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, err := jetstream.New(natstest.Connect(t, natstest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(tenant, upload string) {
		data, _ := proto.Marshal(&hooklinev1.Ticket{Tenant: tenant, UploadId: upload, Page: 1})
		if _, err := js.Publish(ctx, "t."+upload, data); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		publish("a", fmt.Sprintf("A%d", i))
	}
	publish("b", "B")

	var (
		mu    sync.Mutex
		order []string
	)
	gate := make(chan struct{})
	handle := func(ctx context.Context, tk Ticket) error {
		<-gate // the first ticket holds the slot until every ticket is fetched
		mu.Lock()
		order = append(order, tk.GetUploadId())
		mu.Unlock()
		return nil
	}
	reg := prometheus.NewRegistry()
	pool := NewPool(cons, nil, handle, 1, 100, time.Second, 5*time.Second, NewMetrics(reg), zap.NewNop())
	done := make(chan error, 1)
	go func() { done <- pool.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for pool.waiting.held() < 51 {
		if time.Now().After(deadline) {
			t.Fatalf("%d tickets fetched, want 51", pool.waiting.held())
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := map[string]string{
		"hookline_worker_tickets_waiting":        "50",
		"hookline_worker_tenants_waiting":        "2",
		"hookline_worker_tenant_tickets_waiting": `[tenant="a"] 49 [tenant="b"] 1`,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		w, ok := want[mf.GetName()]
		if !ok {
			continue
		}
		var got []string
		for _, m := range mf.GetMetric() {
			s := fmt.Sprint(m.GetGauge().GetValue())
			if l := m.GetLabel(); len(l) > 0 {
				s = fmt.Sprintf("[%s=%q] %s", l[0].GetName(), l[0].GetValue(), s)
			}
			got = append(got, s)
		}
		if g := strings.Join(got, " "); g != w {
			t.Errorf("%s = %s, want %s", mf.GetName(), g, w)
		}
		delete(want, mf.GetName())
	}
	if len(want) > 0 {
		t.Errorf("metrics missing: %v", want)
	}
	close(gate)
	for {
		mu.Lock()
		n := len(order)
		mu.Unlock()
		if n == 51 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tickets handled, want 51", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if order[1] != "B" {
		t.Fatalf("tenant B's ticket handled %v, want second (after the one A held the slot with)", order[:5])
	}
}

// BenchmarkPoolTakesTickets: tickets of one tenant taken from a real
// JetStream consumer and handed to a handler that does nothing, 64 slots:
// what taking tickets costs, fetched only for free slots (lookahead 0, queue
// order) against fetched ahead and shared fairly (lookahead 4096).
func BenchmarkPoolTakesTickets(b *testing.B) {
	for _, lookahead := range []int{0, 4096} {
		b.Run(fmt.Sprintf("lookahead=%d", lookahead), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			js, err := jetstream.New(natstest.Connect(b, natstest.Start(b)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
				b.Fatal(err)
			}
			cons, err := js.CreateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			data, _ := proto.Marshal(&hooklinev1.Ticket{Tenant: "a", UploadId: "U", Page: 1})
			for range b.N {
				if _, err := js.PublishAsync("t.U", data); err != nil {
					b.Fatal(err)
				}
			}
			<-js.PublishAsyncComplete()
			var handled atomic.Int64
			all := make(chan struct{})
			handle := func(ctx context.Context, tk Ticket) error {
				if handled.Add(1) == int64(b.N) {
					close(all)
				}
				return nil
			}
			pool := NewPool(cons, nil, handle, 64, lookahead, time.Second, 30*time.Second, NewMetrics(prometheus.NewRegistry()), zap.NewNop())
			b.ResetTimer()
			done := make(chan error, 1)
			go func() { done <- pool.Run(ctx) }()
			<-all
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestChainYieldsToAWaitingTenant: while a tenant holding fewer of the
// worker's slots has a ticket waiting, a delivery does not carry its
// upload's next page: the page gets a ticket of its own, behind the waiting
// ones, and the slot is given up after the page under way.
func TestChainYieldsToAWaitingTenant(t *testing.T) {
	s := &fakeSender{}
	d, tr, q, id := chainEnv(t, 4, s)
	ctx := context.Background()
	fq := newFairQueue()
	fq.push(tenantTicket("acme", 0))
	if _, ok := fq.pop(); !ok { // acme's delivery holds a slot
		t.Fatal("nothing to pop")
	}
	fq.push(tenantTicket("bravo", 0)) // bravo waits, holding none
	yctx := context.WithValue(ctx, yieldKey{}, yieldTo{fq, "acme", &delivery{}})
	if err := d.Handle(yctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme", DeliveryShare: 3}, Token: "1.1"}); err != nil {
		t.Fatal(err)
	}
	if got := s.pages(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("a yielding delivery sent pages %v, want only 1", got)
	}
	info, err := q.JetStream().Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("%d tickets published, want 1 (for page 2)", n)
	}
	raw, err := info.GetMsg(ctx, info.CachedInfo().State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	if next, err := queue.DecodeTicket(raw.Data); err != nil || next.GetPage() != 2 || next.GetDeliveryShare() != 3 {
		t.Fatalf("published ticket %v, %v; want page 2 with the delivery share 3 of the one before", next, err)
	}
	if u := upload(t, tr, id); u.DeliveredPages != 1 || u.Status != tracker.StatusDelivering {
		t.Fatalf("upload %+v, want 1 delivered and still delivering", u)
	}
	// Nobody waits any more: the next delivery carries the rest.
	if _, ok := fq.pop(); !ok {
		t.Fatal("bravo's ticket is gone")
	}
	if err := d.Handle(yctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 2, Tenant: "acme"}, Token: "2.1"}); err != nil {
		t.Fatal(err)
	}
	if u := upload(t, tr, id); u.DeliveredPages != 4 || u.Status != tracker.StatusCompleted {
		t.Fatalf("upload %+v, want completed", u)
	}
}

// lightQueue is a fair queue with light work on a clock that moves only
// when advance says.
func lightQueue() (q *fairQueue, advance func(time.Duration)) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	q = newFairQueue()
	q.light = sched.New(nil, zap.NewNop(), sched.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now }))
	return q, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
}

// TestFairQueueHoldsHeavyTenantsBackForLightWork: while another tenant's
// light work is marked, a tenant holding more than light work does starts
// nothing beyond heavyWhileLight running, and its chains yield down to it;
// light work starts at once; once the mark lapses the heavy tenant goes on.
func TestFairQueueHoldsHeavyTenantsBackForLightWork(t *testing.T) {
	q, advance := lightQueue()
	for i := range 20 {
		q.push(tenantTicket("a", i))
	}
	for range heavyWhileLight + 2 {
		if _, ok := q.pop(); !ok {
			t.Fatal("a's ticket not started with no light work marked")
		}
	}
	if q.othersWait("a") {
		t.Fatal("a yields with nobody else")
	}
	q.push(tenantTicket("b", 0))
	q.lightWork("b", 5, &delivery{}) // b's upload has 5 pages, b holds 1 ticket: light
	if !q.othersWait("a") {
		t.Fatalf("a holds %d running while b's light work is marked, and its chains do not yield", heavyWhileLight+2)
	}
	f, ok := q.pop()
	if !ok || f.ticket.GetTenant() != "b" {
		t.Fatalf("pop = %v, %v; want b's ticket", f.ticket.GetTenant(), ok)
	}
	if f, ok := q.pop(); ok {
		t.Fatalf("a's ticket %s started beyond %d running while b's light work is marked", f.ticket.GetUploadId(), heavyWhileLight)
	}
	q.done("a")
	q.done("a")
	if q.othersWait("a") {
		t.Fatalf("a yields at %d running", heavyWhileLight)
	}
	if _, ok := q.pop(); ok {
		t.Fatalf("a's ticket started at %d running while b's light work is marked", heavyWhileLight)
	}
	q.done("b") // b's light work here is over: its mark holds until it lapses
	if _, ok := q.pop(); ok {
		t.Fatal("a's ticket started before b's mark lapsed")
	}
	advance(sched.TTL)
	if f, ok := q.pop(); !ok || f.ticket.GetTenant() != "a" {
		t.Fatal("a's ticket not started once b's mark lapsed")
	}
	// Uploads of more than sched.LightPages pages are not light work.
	q.lightWork("b", sched.LightPages+1, &delivery{})
	if q.othersWait("a") {
		t.Fatal("a yields to a large upload of b's")
	}
	// Nor is a tenant's work when it holds more than lightTickets tickets.
	for i := range lightTickets + 1 {
		q.push(tenantTicket("c", i))
	}
	q.lightWork("c", 1, &delivery{})
	if q.heavy(q.tenants["a"]) { // (a's chains yield to c anyway: c holds fewer slots)
		t.Fatalf("a held back for c holding %d tickets", lightTickets+1)
	}
}

// TestFairQueueHoldsBackOnlyForLightWork: a mark of a tenant that holds
// much in this worker holds nobody back; deliveries waiting for their
// endpoint are not held back; a running light tenant's mark is renewed.
func TestFairQueueHoldsBackOnlyForLightWork(t *testing.T) {
	q, advance := lightQueue()
	for i := range 10 {
		q.push(tenantTicket("a", i))
		q.push(tenantTicket("c", i))
	}
	for range 2 * (heavyWhileLight + 1) {
		if _, ok := q.pop(); !ok {
			t.Fatal("nothing started")
		}
	}
	q.light.Mark("c") // c imports a little now and then, but holds much here
	if q.othersWait("a") || q.heldBack("a") {
		t.Fatal("a held back for c, which holds much here itself")
	}

	// b's light work: a is held back, but its deliveries waiting for the
	// endpoint do not count.
	q.push(tenantTicket("b", 0))
	if f, ok := q.pop(); !ok || f.ticket.GetTenant() != "b" {
		t.Fatal("b's ticket not started first")
	}
	bd := &delivery{}
	q.lightWork("b", 1, bd)
	if !q.heldBack("a") {
		t.Fatalf("a has %d busy while b's light work is marked, yet is not held back", heavyWhileLight+1)
	}
	answered := q.sending("a")
	if !q.heldBack("a") {
		t.Fatal("a's delivery waiting for a fast endpoint is not counted busy")
	}
	for range 30 { // a's endpoint is slow
		q.sending("a")(100 * time.Millisecond)
	}
	if q.heldBack("a") {
		t.Fatal("a held back for a delivery that waits for its slow endpoint")
	}
	var answeredC []func(time.Duration)
	for range 30 {
		q.sending("c")(100 * time.Millisecond)
	}
	for range heavyWhileLight + 1 { // c, held back too, waits for its slow endpoint on all its deliveries
		answeredC = append(answeredC, q.sending("c"))
	}
	if f, ok := q.pop(); !ok || f.ticket.GetTenant() != "c" {
		t.Fatal("c's ticket, with no delivery busy, not started")
	}
	answered(100 * time.Millisecond)
	for _, f := range answeredC {
		f(100 * time.Millisecond)
	}

	// b's delivery runs on for a slow endpoint: its mark is renewed.
	for range 3 {
		advance(sched.TTL / 2)
		q.renewOnce()
		if !q.light.Other("a") {
			t.Fatal("b's running light work not marked again")
		}
	}
	q.unlight("b", bd)
	q.done("b")
	advance(sched.TTL)
	q.renewOnce()
	if q.light.Other("a") {
		t.Fatal("b's mark renewed after its work ended")
	}
}

// TestFairQueueRenewsLightDeliveriesOnly: a tenant's mark is renewed while
// a delivery of its light work runs, not while its other deliveries do.
func TestFairQueueRenewsLightDeliveriesOnly(t *testing.T) {
	q, advance := lightQueue()
	q.push(tenantTicket("b", 0))
	q.push(tenantTicket("b", 1))
	q.pop()
	q.pop()
	small, large := &delivery{}, &delivery{}
	q.lightWork("b", 1, small)
	q.lightWork("b", sched.LightPages+1, large)
	q.unlight("b", small) // the small upload is done; the large one runs on
	q.done("b")
	advance(sched.TTL)
	q.renewOnce()
	if q.light.Other("a") {
		t.Fatal("b's mark renewed for its large upload")
	}
}
