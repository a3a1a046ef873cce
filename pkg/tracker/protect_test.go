package tracker

import (
	"context"
	"testing"
	"time"
)

// The gate spaces requests interval/requests apart, with no burst: of a
// burst of calls only the first goes, and the others learn when the next
// may.
func TestGateRateLimit(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	p := Protection{Limit: Limit{Requests: 2, Interval: time.Hour}}
	g, err := tr.Gate(ctx, "acme", "T", p)
	if err != nil || g.Kind != Go || g.Probe {
		t.Fatalf("first call = %+v, %v, want Go", g, err)
	}
	for range 3 {
		g, err = tr.Gate(ctx, "acme", "T", p)
		if err != nil || g.Kind != Limited || g.Wait <= 29*time.Minute || g.Wait > 30*time.Minute {
			t.Fatalf("call within the limit's spacing = %+v, %v, want Limited for up to 30m", g, err)
		}
	}
	if g, _ := tr.Gate(ctx, "acme", "OTHER", p); g.Kind != Go {
		t.Fatalf("another template's gate = %+v, want its own schedule", g)
	}
	if g, _ := tr.Gate(ctx, "acme", "FREE", Protection{}); g.Kind != Go {
		t.Fatalf("no limit = %+v", g)
	}
}

// Failures in a row pause at pauseAfterFailures; a delivered attempt resets
// the count; only one caller takes a due probe; a delivered probe resumes.
func TestReportPauseAndProbe(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	p := Protection{PauseAfterFailures: 2, ProbeInterval: time.Hour, Recheck: 5 * time.Second}
	report := func(delivered, probe bool) Change {
		t.Helper()
		c, _, err := tr.Report(ctx, "acme", "T", p, delivered, probe, "two failures")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if report(false, false) != NoChange || report(true, false) != NoChange || report(false, false) != NoChange {
		t.Fatal("a delivered attempt between failures must reset the count")
	}
	if c := report(false, false); c != Paused {
		t.Fatalf("second failure in a row = %q, want paused", c)
	}
	st, err := tr.State(ctx, "acme", "T")
	if err != nil || !st.Paused || st.Reason != "two failures" || st.PausedAt.IsZero() || st.NextProbeAt.Before(st.PausedAt.Add(59*time.Minute)) {
		t.Fatalf("state = %+v, %v", st, err)
	}
	if g, _ := tr.Gate(ctx, "acme", "T", p); g.Kind != Held || g.Wait != 5*time.Second {
		t.Fatalf("gate while paused, probe not due = %+v, want Held for the recheck", g)
	}
	if g, _ := tr.Gate(ctx, "acme", "T", Protection{Test: true}); g.Kind != Go {
		t.Fatalf("a test request while paused = %+v, want Go", g)
	}
	// Make the probe due: the first caller takes it, the next waits for the next one.
	if err := tr.rdb.HSet(ctx, tr.templateKey("acme", "T"), "probeAt", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if g, _ := tr.Gate(ctx, "acme", "T", p); g.Kind != Go || !g.Probe {
		t.Fatalf("gate with a probe due = %+v, want a probe", g)
	}
	if g, _ := tr.Gate(ctx, "acme", "T", p); g.Kind != Held {
		t.Fatalf("second caller = %+v, want Held: the probe is taken", g)
	}
	if c := report(false, true); c != NoChange {
		t.Fatalf("a failed probe = %q, want still paused", c)
	}
	if c := report(true, true); c != Resumed {
		t.Fatalf("a delivered probe = %q, want resumed", c)
	}
	if st, _ := tr.State(ctx, "acme", "T"); st.Paused || st.Failures != 0 {
		t.Fatalf("state after the probe = %+v", st)
	}
	// By hand: no probes; a second pause changes nothing.
	if c, _, _ := tr.SetPaused(ctx, "acme", "T", true, "by hand", 0); c != Paused {
		t.Fatalf("pause by hand = %q", c)
	}
	if c, _, _ := tr.SetPaused(ctx, "acme", "T", true, "by hand", 0); c != NoChange {
		t.Fatalf("second pause = %q", c)
	}
	if g, _ := tr.Gate(ctx, "acme", "T", p); g.Kind != Held || g.Probe {
		t.Fatalf("gate while paused by hand = %+v", g)
	}
	if n, list, err := tr.PausedTemplates(ctx, 10); err != nil || n != 1 || len(list) != 1 || list[0].Tenant != "acme" || list[0].Template != "T" || list[0].PausedAt.IsZero() {
		t.Fatalf("paused templates = %d %+v %v", n, list, err)
	}
	if c, _, _ := tr.SetPaused(ctx, "acme", "T", false, "", 0); c != Resumed {
		t.Fatalf("resume = %q", c)
	}
	if n, _, err := tr.PausedTemplates(ctx, 10); err != nil || n != 0 {
		t.Fatalf("paused templates after the resume = %d %v", n, err)
	}
}
