package sched

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/natstest"
)

// clock is a settable time for Light.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func local(c *clock) *Light {
	return New(nil, zap.NewNop(), WithClock(c.now))
}

// TestOtherSeesMarksOfOtherTenantsUntilTheyLapse: a tenant's own mark never
// holds it back; another's does, for TTL after its latest mark.
func TestOtherSeesMarksOfOtherTenantsUntilTheyLapse(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := local(c)
	if l.Other("a") {
		t.Fatal("Other(a) with no marks")
	}
	l.Mark("b")
	if !l.Other("a") || l.Other("b") {
		t.Fatalf("after b's mark: Other(a) = %v, Other(b) = %v; want true, false", l.Other("a"), l.Other("b"))
	}
	c.add(TTL / 2)
	l.Mark("a") // a is now the latest: b's mark still counts for a
	if !l.Other("a") || !l.Other("b") || !l.Other("c") {
		t.Fatalf("after a's mark: Other(a) = %v, Other(b) = %v, Other(c) = %v; want all true", l.Other("a"), l.Other("b"), l.Other("c"))
	}
	l.Mark("a")
	c.add(TTL/2 + time.Millisecond) // b's mark lapsed, a's holds
	if l.Other("a") || !l.Other("b") {
		t.Fatalf("b's mark lapsed: Other(a) = %v, Other(b) = %v; want false, true", l.Other("a"), l.Other("b"))
	}
	c.add(TTL)
	if l.Other("b") || l.Other("z") {
		t.Fatal("every mark lapsed, yet Other is true")
	}
}

// TestMarkedSkipsTheTenantsItIsTold: Marked looks past the marks skip
// names, however many, and past lapsed ones; the marks kept are bounded.
func TestMarkedSkipsTheTenantsItIsTold(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := local(c)
	l.Mark("light")
	c.add(TTL / 2)
	for _, heavy := range []string{"h1", "h2", "h3"} { // marked after it
		l.Mark(heavy)
	}
	isHeavy := func(tenant string) bool { return tenant != "light" }
	if !l.Marked("a", isHeavy) {
		t.Fatal("the light tenant's mark, older than three skipped ones, was not seen")
	}
	if l.Marked("light", isHeavy) {
		t.Fatal("a tenant held back for its own mark")
	}
	c.add(TTL/2 + time.Millisecond)
	if l.Marked("a", isHeavy) || !l.Marked("a", nil) {
		t.Fatalf("the light mark lapsed: Marked(a, skip) = %v, Marked(a, nil) = %v; want false, true", l.Marked("a", isHeavy), l.Marked("a", nil))
	}
	for i := range 2 * maxMarks {
		l.Mark(fmt.Sprintf("t%d", i))
	}
	l.mu.Lock()
	n := len(l.marks)
	l.mu.Unlock()
	if n > maxMarks {
		t.Fatalf("%d marks kept, want at most %d", n, maxMarks)
	}
}

// TestEndDropsThatTenantsMarkEverywhere: End forgets the tenant's mark
// here and in the processes that hear it, and leaves others' marks.
func TestEndDropsThatTenantsMarkEverywhere(t *testing.T) {
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	frozen := func() time.Time { return time.Unix(1000, 0) } // marks never lapse by themselves
	a := New(natstest.Connect(t, srv), zap.NewNop(), WithClock(frozen))
	b := New(natstest.Connect(t, srv), zap.NewNop(), WithClock(frozen))
	go func() { _ = b.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !b.Marked("x", func(t string) bool { return t != "u" }) || !b.Marked("x", func(t string) bool { return t != "v" }) { // b's subscriptions may not be in place yet
		if time.Now().After(deadline) {
			t.Fatal("b never heard a's mark of u")
		}
		a.mu.Lock()
		a.since = time.Time{}
		a.mu.Unlock()
		a.Mark("u")
		a.Mark("v")
		time.Sleep(time.Millisecond)
	}
	a.End("u")
	if a.Marked("x", func(t string) bool { return t != "u" }) || !a.Other("x") {
		t.Fatal("End(u) here did not drop u's mark only")
	}
	for b.Marked("x", func(t string) bool { return t != "u" }) {
		if time.Now().After(deadline) {
			t.Fatal("b never heard the end of u's mark")
		}
		time.Sleep(time.Millisecond)
	}
	if !b.Other("x") {
		t.Fatal("the end of u's mark dropped v's in b")
	}
}

// TestDeferWaitsForTheMarkOrTheBound: Defer returns at once without a mark
// of another tenant, waits while one holds, and never longer than max.
func TestDeferWaitsForTheMarkOrTheBound(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)} // frozen: a mark never lapses by itself
	l := local(c)
	l.Mark("a")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.Defer(ctx, "a", time.Hour) // its own mark
	if ctx.Err() != nil {
		t.Fatal("Defer waited for the tenant's own mark")
	}
	l.Mark("b")
	short, cancelShort := context.WithTimeout(context.Background(), 3*TTL)
	defer cancelShort()
	l.Defer(short, "a", time.Hour)
	if short.Err() == nil {
		t.Fatal("Defer returned while b's mark held")
	}
	go func() {
		for ctx.Err() == nil && l.Other("a") {
			c.add(TTL / 10)
			time.Sleep(time.Millisecond)
		}
	}()
	l.Defer(ctx, "a", time.Hour) // the clock moves: b's mark lapses
	if ctx.Err() != nil {
		t.Fatal("Defer did not return once b's mark lapsed")
	}

	r := New(nil, zap.NewNop()) // the real clock: max bounds the wait
	r.Mark("b")
	start := time.Now()
	r.Defer(ctx, "a", TTL/10)
	if d := time.Since(start); d < TTL/10 {
		t.Fatalf("Defer with max %v returned after %v", TTL/10, d)
	}
	if !r.Other("a") && time.Since(start) < TTL {
		t.Fatal("b's mark lapsed early")
	}
}

// TestMarksCrossProcesses: a mark made by one Light is seen by another on
// the same NATS, and a process publishes at most two tenants' marks every
// TTL/4.
func TestMarksCrossProcesses(t *testing.T) {
	srv := natstest.Start(t)
	nc1, nc2 := natstest.Connect(t, srv), natstest.Connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := New(nc1, zap.NewNop()), New(nc2, zap.NewNop())
	go func() { _ = b.Run(ctx) }()
	heard := make(chan string, 100)
	sub, err := nc2.Subscribe(Subject, func(m *nats.Msg) { heard <- string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc2.Flush(); err != nil {
		t.Fatal(err)
	}
	// b's subscription may not be in place yet: mark until it hears.
	deadline := time.Now().Add(5 * time.Second)
	for !b.Other("x") {
		if time.Now().After(deadline) {
			t.Fatal("b never heard a's mark of tenant t")
		}
		a.mu.Lock()
		a.since = time.Time{} // publish again
		a.mu.Unlock()
		a.Mark("t")
		if err := nc1.Flush(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if b.Other("t") {
		t.Fatal("b holds tenant t back for its own mark")
	}
	a.mu.Lock()
	a.since = time.Time{}
	a.mu.Unlock()
	for range 10 {
		a.Mark("u")
		a.Mark("v")
		a.Mark("w")
	}
	if err := nc1.Publish(Subject, []byte("end")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for tenant := "t"; tenant != "end"; {
		select {
		case tenant = <-heard:
			if tenant != "t" && tenant != "end" {
				got = append(got, tenant)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the end marker never came; heard %v", got)
		}
	}
	if fmt.Sprint(got) != "[u v]" {
		t.Fatalf("10 marks each of u, v and w in a row published %v, want [u v]", got)
	}
}
