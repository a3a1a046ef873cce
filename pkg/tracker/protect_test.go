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

// Begin and Finish that name the upload's template read its paused state
// in their own round trip (piped or not): the state of the page Begin
// leases, and of the page a delivered Finish carries on to.
func TestBeginAndFinishReadTheTemplatesPause(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"one call at a time", nil}, {"pipelined", []Option{WithPipelining(2)}}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(t, tc.opts...)
			t.Cleanup(tr.Close)
			ctx := context.Background()
			create(t, tr, "PAUSE", 3, 1)
			now := time.Now()
			c := Call{Upload: "PAUSE", Page: 1, Token: "1.1", Tenant: "acme", Template: "CUSTOMERS"}

			unnamed := c
			unnamed.Template = ""
			d, err := tr.Begin(ctx, unnamed, time.Minute, now)
			if err != nil || d.Kind != Send || d.Pause != PauseUnknown {
				t.Fatalf("begin naming no template = %+v, %v; want send, pause unknown", d, err)
			}
			if d, err = tr.Begin(ctx, c, time.Minute, now); err != nil || d.Kind != Send || d.Pause != TemplateActive {
				t.Fatalf("begin of an active template's page = %+v, %v; want send, active", d, err)
			}
			if _, _, err := tr.SetPaused(ctx, "acme", "CUSTOMERS", true, "by hand", 0); err != nil {
				t.Fatal(err)
			}
			if d, err = tr.Begin(ctx, c, time.Minute, now); err != nil || d.Kind != Send || d.Pause != TemplatePaused {
				t.Fatalf("begin once paused = %+v, %v; want send, paused", d, err)
			}
			other := c
			other.Template = "OTHER"
			if d, err = tr.Begin(ctx, other, time.Minute, now); err != nil || d.Pause != TemplateActive {
				t.Fatalf("begin naming another template = %+v, %v; want its own state, active", d, err)
			}
			f := Finish{Outcome: Delivered, Now: now, Carry: time.Minute}
			if d, err = tr.Finish(ctx, c, f); err != nil || d.Kind != Send || d.Page != 2 || d.Pause != TemplatePaused {
				t.Fatalf("finish carrying page 2 of a paused template = %+v, %v; want send page 2, paused", d, err)
			}
			if _, _, err := tr.SetPaused(ctx, "acme", "CUSTOMERS", false, "", 0); err != nil {
				t.Fatal(err)
			}
			c.Page = 2
			if d, err = tr.Finish(ctx, c, f); err != nil || d.Kind != Send || d.Page != 3 || d.Pause != TemplateActive {
				t.Fatalf("finish carrying page 3 once resumed = %+v, %v; want send page 3, active", d, err)
			}
		})
	}
}
