package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/sched"
)

// TestImportPacerMarksLightImports: a tenant's only import is light up to
// sched.LightPages pages and marks its tenant; past them its mark ends; a
// second import under way is not light.
func TestImportPacerMarksLightImports(t *testing.T) {
	frozen := time.Unix(1000, 0) // marks never lapse
	deferred := prometheus.NewCounter(prometheus.CounterOpts{Name: "deferred"})
	for _, c := range []struct {
		name    string
		imports int // of tenant a under way
		pages   int
		light   bool
	}{
		{"its only import, at its start", 1, 0, true},
		{"its only import, at the last light page", 1, sched.LightPages, true},
		{"its only import, past the light pages", 1, sched.LightPages + 1, false},
		{"its only import, long past the light pages", 1, sched.LightPages + 5, false},
		{"one of two imports", 2, 1, false},
	} {
		light := sched.New(nil, zap.NewNop(), sched.WithClock(func() time.Time { return frozen }))
		p := &importPacer{light: light, deferred: deferred, under: map[string]int{"a": c.imports}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		for pages := range c.pages + 1 { // (a heavy import waits for nothing: nobody else is marked)
			p.pace(ctx, "a", pages)
		}
		cancel()
		if got := light.Other("b"); got != c.light {
			t.Errorf("%s: marked light = %v, want %v", c.name, got, c.light)
		}
	}
}

// TestImportPacerHoldsHeavyImports: a tenant with two imports under way
// waits between pages while another tenant's light work is marked, for at
// most maxDefer each time, and the wait is counted; a light import never
// waits.
func TestImportPacerHoldsHeavyImports(t *testing.T) {
	deferred := prometheus.NewCounter(prometheus.CounterOpts{Name: "deferred"})
	light := sched.New(nil, zap.NewNop())
	p := &importPacer{light: light, deferred: deferred, under: map[string]int{}}
	defer p.begin("a")()
	defer p.begin("a")()
	marking, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { // b's light work goes on
		defer close(stopped)
		for marking.Err() == nil {
			light.Mark("b")
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { stop(); <-stopped }()
	for !light.Other("a") {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	p.pace(context.Background(), "a", 1)
	if d := time.Since(start); d < maxDefer {
		t.Fatalf("a's heavy import went on after %v while b was marked, want it to wait %v", d, maxDefer)
	}
	if got := testutil.ToFloat64(deferred); got < maxDefer.Seconds() {
		t.Fatalf("deferred = %vs, want at least %vs", got, maxDefer.Seconds())
	}
	stop()
	<-stopped

	// On a frozen clock a wait would never end: b's light import must not
	// start one.
	frozen := time.Unix(1000, 0)
	p = &importPacer{light: sched.New(nil, zap.NewNop(), sched.WithClock(func() time.Time { return frozen })), deferred: deferred, under: map[string]int{}}
	p.light.Mark("c")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer p.begin("b")()
	if p.pace(ctx, "b", sched.LightPages); ctx.Err() != nil {
		t.Fatal("b's light import waited for c's mark")
	}
}
