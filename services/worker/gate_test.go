package worker

import (
	"context"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/tracker"
)

// gateCounter is a Tracker whose gate answers with answer and counts the calls.
type gateCounter struct {
	Tracker // only Gate is called
	answer  tracker.Gate
	calls   int
}

func (g *gateCounter) Gate(context.Context, string, string, tracker.Protection) (tracker.Gate, error) {
	g.calls++
	return g.answer, nil
}

func TestGateAskedOncePerOpenForWhenOnlyAPauseByHandCanHold(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	open := tracker.Gate{Kind: tracker.Go}
	for _, tc := range []struct {
		name   string
		dest   tracker.Destination
		answer tracker.Gate
		// calls after 5 pages within openFor, then one more page after it
		within, after int
	}{
		{"no protection", tracker.Destination{}, open, 1, 2},
		{"rate limited", tracker.Destination{RateLimitRequests: 10, RateLimitIntervalMs: 1000}, open, 5, 6},
		{"pauses after failures", tracker.Destination{PauseAfterFailures: 3}, open, 5, 6},
		{"paused", tracker.Destination{}, tracker.Gate{Kind: tracker.Held, Wait: time.Second}, 5, 6},
		{"probe of a paused template", tracker.Destination{}, tracker.Gate{Kind: tracker.Go, Probe: true}, 5, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &gateCounter{answer: tc.answer}
			at := now
			d := &Deliverer{tr: tr, now: func() time.Time { return at }}
			u := &tracker.Upload{Tenant: "acme", Template: "T", Destination: tc.dest}
			for i := range 5 {
				at = now.Add(time.Duration(i) * openFor / 5)
				g, err := d.gate(context.Background(), u)
				if err != nil || g != tc.answer {
					t.Fatalf("page %d: gate = %+v, %v; want %+v", i, g, err, tc.answer)
				}
			}
			if tr.calls != tc.within {
				t.Fatalf("%d gate calls for 5 pages within %v, want %d", tr.calls, openFor, tc.within)
			}
			at = now.Add(openFor)
			if _, err := d.gate(context.Background(), u); err != nil {
				t.Fatal(err)
			}
			if tr.calls != tc.after {
				t.Fatalf("%d gate calls once %v passed, want %d", tr.calls, openFor, tc.after)
			}
			// Another template of the same tenant has a gate of its own.
			other := *u
			other.Template = "U"
			if _, err := d.gate(context.Background(), &other); err != nil {
				t.Fatal(err)
			}
			if tr.calls != tc.after+1 {
				t.Fatalf("template U: %d gate calls, want %d", tr.calls, tc.after+1)
			}
		})
	}
}

func TestGateClosedForEveryUploadOnceAnyIsHeld(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tr := &gateCounter{answer: tracker.Gate{Kind: tracker.Go}}
	d := &Deliverer{tr: tr, now: func() time.Time { return now }}
	old := &tracker.Upload{Tenant: "acme", Template: "T"}                                                                // imported before pauseAfterFailures was set
	protected := &tracker.Upload{Tenant: "acme", Template: "T", Destination: tracker.Destination{PauseAfterFailures: 3}} // asks for every page
	if _, err := d.gate(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	tr.answer = tracker.Gate{Kind: tracker.Held, Wait: time.Second}
	if g, _ := d.gate(context.Background(), protected); g.Kind != tracker.Held {
		t.Fatalf("protected upload: gate = %+v, want held", g)
	}
	if g, _ := d.gate(context.Background(), old); g.Kind != tracker.Held || tr.calls != 3 {
		t.Fatalf("older upload after the template was held: gate = %+v after %d calls, want held after 3", g, tr.calls)
	}
}
