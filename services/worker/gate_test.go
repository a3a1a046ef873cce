package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/tracker"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
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

// A template that only a pause by hand can hold goes without a gate call of
// its own while the pause read with its lease says active; anything else
// (paused, not read, or a protection that counts every request) is the
// gate's answer, for every page.
func TestGateAskedUnlessTheLeaseSawTheTemplateActive(t *testing.T) {
	open := tracker.Gate{Kind: tracker.Go}
	held := tracker.Gate{Kind: tracker.Held, Wait: pausedRecheck}
	limited := tracker.Destination{RateLimitRequests: 10, RateLimitIntervalMs: 1000}
	for _, tc := range []struct {
		name   string
		dest   tracker.Destination
		pause  tracker.PauseState
		answer tracker.Gate // the gate's
		want   tracker.Gate
		calls  int // for 3 pages
	}{
		{"no protection, active", tracker.Destination{}, tracker.TemplateActive, held, open, 0},
		{"no protection, paused", tracker.Destination{}, tracker.TemplatePaused, held, held, 3},
		{"no protection, paused, its probe", tracker.Destination{}, tracker.TemplatePaused, tracker.Gate{Kind: tracker.Go, Probe: true}, tracker.Gate{Kind: tracker.Go, Probe: true}, 3},
		{"no protection, not read", tracker.Destination{}, tracker.PauseUnknown, held, held, 3},
		{"rate limited, active", limited, tracker.TemplateActive, open, open, 3},
		{"pauses after failures, active", tracker.Destination{PauseAfterFailures: 3}, tracker.TemplateActive, open, open, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &gateCounter{answer: tc.answer}
			d := &Deliverer{tr: tr}
			u := &tracker.Upload{Tenant: "acme", Template: "T", Destination: tc.dest}
			for i := range 3 {
				if g, err := d.gate(context.Background(), u, tc.pause); err != nil || g != tc.want {
					t.Fatalf("page %d: gate = %+v, %v; want %+v", i+1, g, err, tc.want)
				}
			}
			if tr.calls != tc.calls {
				t.Fatalf("%d gate calls for 3 pages, want %d", tr.calls, tc.calls)
			}
		})
	}
}

// The tracker call that leases a page names the template whose pause it
// reads: the ticket's before the upload is known, the upload's when only a
// pause by hand can hold it, none when its gate is asked anyway.
func TestPauseCallNamesTheTemplate(t *testing.T) {
	tk := Ticket{Ticket: &hooklinev1.Ticket{UploadId: "U", Page: 1, Tenant: "acme", Template: "T"}}
	call := tracker.Call{Upload: "U", Page: 1}
	byHand := &tracker.Upload{Tenant: "acme", Template: "T"}
	limited := &tracker.Upload{Tenant: "acme", Template: "T", Destination: tracker.Destination{RateLimitRequests: 1, RateLimitIntervalMs: 1000}}
	old := Ticket{Ticket: &hooklinev1.Ticket{UploadId: "U", Page: 1, Tenant: "acme"}} // queued before tickets named their template
	for _, tc := range []struct {
		name             string
		t                Ticket
		u                *tracker.Upload
		tenant, template string
	}{
		{"first page", tk, nil, "acme", "T"},
		{"first page of an old ticket", old, nil, "acme", ""},
		{"only a pause by hand", tk, byHand, "acme", "T"},
		{"rate limited", tk, limited, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := pauseCall(call, tc.t, tc.u); c.Tenant != tc.tenant || c.Template != tc.template || c.Upload != "U" || c.Page != 1 {
				t.Fatalf("call = %+v, want tenant %q, template %q", c, tc.tenant, tc.template)
			}
		})
	}
}

// A template with no protection is paused by hand while one of its pages
// is in flight, in the middle of a chain of carried pages: once the pause
// is written, no further page is sent (the carried page is held back
// without an attempt and its ticket comes back later), not even for the
// second that a per-worker cache of its open gate used to allow.
func TestPauseByHandStopsACarriedChainAtOnce(t *testing.T) {
	inFlight := make(chan struct{})
	s := &fakeSender{hang: map[int]chan struct{}{3: inFlight}}
	d, tr, _, id := chainEnv(t, 10, s)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		done <- d.Handle(ctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme", Template: "T"}, Token: "1.1"})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.pages()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("pages sent %v, want page 3 under way", s.pages())
		}
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
	if _, _, err := tr.SetPaused(ctx, "acme", "T", true, "paused by hand", 0); err != nil {
		t.Fatal(err)
	}
	close(inFlight) // page 3's request, under way when the pause was written, ends
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the delivery did not end; pages sent %v", s.pages())
	}
	if got := s.pages(); len(got) != 3 {
		t.Fatalf("pages sent %v, want 1, 2, 3: nothing after the pause", got)
	}
	var retry *RetryError
	if !errors.As(err, &retry) || !errors.Is(err, errPaused) || retry.After != pausedRecheck {
		t.Fatalf("Handle = %v, want the paused page's ticket back in %v", err, pausedRecheck)
	}
	u := upload(t, tr, id)
	if u.DeliveredPages != 3 {
		t.Fatalf("upload %+v, want 3 pages delivered", u)
	}
	atts, aerr := tr.Attempts(ctx, id)
	if aerr != nil {
		t.Fatal(aerr)
	}
	for _, a := range atts {
		if a.Page == 4 {
			t.Fatalf("attempt %+v: a page held back by the pause is no attempt", a)
		}
	}
}
