package tracker

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Every answer of the begin script, each from the state that leads to it.
func TestBeginAnswers(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, tr *Tracker) // the upload "A" of 2 pages, window 2, exists unless setup deletes it
		call  Call
		want  Decision
	}{
		{"send: a free page is leased", nil, Call{Page: 1, Token: "1.1"}, Decision{Kind: Send, Page: 1}},
		{"send: attempts made so far", func(t *testing.T, tr *Tracker) {
			begin(t, tr, "A", 1, "1.1", now)
			finish(t, tr, Call{Upload: "A", Page: 1, Token: "1.1"}, Finish{Outcome: Retrying, Now: now, NextAt: now})
		}, Call{Page: 1, Token: "1.1"}, Decision{Kind: Send, Page: 1, Attempts: 1}},
		{"done: delivered, with its next page", func(t *testing.T, tr *Tracker) {
			begin(t, tr, "A", 1, "1.1", now)
			finish(t, tr, Call{Upload: "A", Page: 1, Token: "1.1"}, Finish{Outcome: Delivered, Now: now})
		}, Call{Page: 1, Token: "2.1"}, Decision{Kind: Done, Page: 1}},
		{"done: failed, the upload's event pending", func(t *testing.T, tr *Tracker) {
			for p := 1; p <= 2; p++ {
				begin(t, tr, "A", p, "1.1", now)
				finish(t, tr, Call{Upload: "A", Page: p, Token: "1.1"}, Finish{Outcome: Failed, Now: now, Failure: &Failure{Page: p}})
			}
		}, Call{Page: 2, Token: "2.1"}, Decision{Kind: Done, Page: 2, Failed: true, Announce: true}},
		{"busy: another message's lease", func(t *testing.T, tr *Tracker) { begin(t, tr, "A", 1, "1.1", now) },
			Call{Page: 1, Token: "2.1"}, Decision{Kind: Busy, Page: 1, Wait: time.Minute}},
		{"wait: the next attempt is not due", func(t *testing.T, tr *Tracker) {
			begin(t, tr, "A", 1, "1.1", now)
			finish(t, tr, Call{Upload: "A", Page: 1, Token: "1.1"}, Finish{Outcome: Retrying, Now: now, NextAt: now.Add(time.Hour)})
		}, Call{Page: 1, Token: "1.1"}, Decision{Kind: Wait, Page: 1, Wait: time.Hour}},
		{"gone", func(t *testing.T, tr *Tracker) {
			if err := tr.Delete(context.Background(), "A", "acme"); err != nil {
				t.Fatal(err)
			}
		}, Call{Page: 1, Token: "1.1"}, Decision{Kind: Gone}},
		{"stale: a ticket from before a retry", func(t *testing.T, tr *Tracker) {
			if err := tr.rdb.HSet(context.Background(), tr.upload("A").record, "gen", 1).Err(); err != nil {
				t.Fatal(err)
			}
		}, Call{Page: 1, Token: "1.1"}, Decision{Kind: Stale}},
		{"superseded: a later delivery of the message has begun", func(t *testing.T, tr *Tracker) { begin(t, tr, "A", 2, "1.2", now) },
			Call{Page: 1, Token: "1.1"}, Decision{Kind: Superseded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(t)
			create(t, tr, "A", 2, 2)
			if tc.setup != nil {
				tc.setup(t, tr)
			}
			tc.call.Upload = "A"
			got, err := tr.Begin(context.Background(), tc.call, time.Minute, now)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Kind == Send && (got.Upload == nil || got.Upload.Template != "CUSTOMERS" || got.Upload.Tenant != "acme") {
				t.Fatalf("send without the upload: %+v", got.Upload)
			}
			got.Upload = nil
			if got != tc.want {
				t.Fatalf("Begin = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Every answer of the finish script, each from the state that leads to it.
func TestFinishAnswers(t *testing.T) {
	now := time.Now()
	mine := Call{Upload: "A", Page: 1, Token: "1.1"}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, tr *Tracker) // the upload "A" of 2 pages, window 1; page 1 leased to mine
		call  Call
		f     Finish
		want  Decision
	}{
		{"done: delivered and recorded, next page 2", nil, mine, Finish{Outcome: Delivered},
			Decision{Kind: Done, Page: 1, Next: 2, Recorded: true}},
		{"send: delivered, next page leased (carry)", nil, mine, Finish{Outcome: Delivered, Carry: time.Minute},
			Decision{Kind: Send, Page: 2, Recorded: true}},
		{"done: carry refused, the next page is another's", func(t *testing.T, tr *Tracker) {
			if err := tr.rdb.HSet(context.Background(), tr.upload("A").pages, "l:2", "9.1|"+ms(now.Add(time.Hour))).Err(); err != nil {
				t.Fatal(err)
			}
		}, mine, Finish{Outcome: Delivered, Carry: time.Minute}, Decision{Kind: Done, Page: 1, Next: 2, Recorded: true}},
		{"done: failed and recorded", nil, mine, Finish{Outcome: Failed, Failure: &Failure{Page: 1}},
			Decision{Kind: Done, Page: 1, Next: 2, Failed: true, Recorded: true}},
		{"done: found done by another delivery", func(t *testing.T, tr *Tracker) {
			finish(t, tr, Call{Upload: "A", Page: 1, Token: "2.1"}, Finish{Outcome: Delivered, Now: now})
		}, mine, Finish{Outcome: Retrying, NextAt: now}, Decision{Kind: Done, Page: 1, Next: 2}},
		{"wait: retrying recorded", nil, mine, Finish{Outcome: Retrying, NextAt: now.Add(time.Minute), Attempt: &Attempt{Attempt: 1}},
			Decision{Kind: Wait, Page: 1, Wait: time.Minute}},
		{"wait: the same retrying attempt again", func(t *testing.T, tr *Tracker) {
			finish(t, tr, mine, Finish{Outcome: Retrying, Now: now, NextAt: now.Add(time.Minute), Attempt: &Attempt{Attempt: 1}})
		}, mine, Finish{Outcome: Retrying, NextAt: now.Add(time.Minute), Attempt: &Attempt{Attempt: 1}}, Decision{Kind: Wait, Page: 1, Wait: time.Minute}},
		{"released: given back", nil, mine, Finish{Outcome: Released}, Decision{Kind: GivenBack, Page: 1}},
		{"gone", func(t *testing.T, tr *Tracker) {
			if err := tr.Delete(context.Background(), "A", "acme"); err != nil {
				t.Fatal(err)
			}
		}, mine, Finish{Outcome: Delivered}, Decision{Kind: Gone}},
		{"stale: an attempt from before a retry", nil, Call{Upload: "A", Page: 1, Token: "1.1", Gen: -1}, Finish{Outcome: Delivered},
			Decision{Kind: Stale}},
		{"superseded: recorded all the same", func(t *testing.T, tr *Tracker) { begin(t, tr, "A", 1, "1.2", now) },
			mine, Finish{Outcome: Delivered, Carry: time.Minute}, Decision{Kind: Superseded, Page: 1, Next: 2, Recorded: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(t)
			create(t, tr, "A", 2, 1)
			begin(t, tr, "A", 1, "1.1", now)
			if tc.setup != nil {
				tc.setup(t, tr)
			}
			tc.f.Now = now
			got, err := tr.Finish(context.Background(), tc.call, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Finish = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The last page's finish says how the upload finished.
func TestFinishAnswersCompletion(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "C", 1, 1)
	now := time.Now()
	begin(t, tr, "C", 1, "1.1", now)
	got := finish(t, tr, Call{Upload: "C", Page: 1, Token: "1.1"}, Finish{Outcome: Delivered, Now: now, Carry: time.Minute})
	c := got.Completion
	if got.Kind != Done || !got.Announce || c == nil || c.Status != StatusCompleted || c.Delivered != 1 || c.Failed != 0 || c.At.UnixMilli() != now.UnixMilli() {
		t.Fatalf("Finish of the last page = %+v (completion %+v)", got, c)
	}
}

// A reply the decoder does not know is an error, never a decision.
func TestDecisionRejectsBadAnswers(t *testing.T) {
	tr := newTracker(t)
	for _, raw := range []string{`{"kind":"maybe"}`, `{}`, `not json`, `{"kind":"send","page":"one"}`,
		`{"kind":"send","upload":{"dest":"{bad"}}`} {
		if d, err := tr.decision("X", raw); err == nil {
			t.Errorf("decision(%s) = %+v, want an error", raw, d)
		} else if !strings.Contains(err.Error(), "X") {
			t.Errorf("decision(%s): %v, want the upload named", raw, err)
		}
	}
}
