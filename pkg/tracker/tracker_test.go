package tracker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
)

func newTracker(t *testing.T, opts ...Option) *Tracker {
	t.Helper()
	return New(testRedis(t), append([]Option{WithPrefix(redistest.Prefix(t))}, opts...)...)
}

func create(t *testing.T, tr *Tracker, id string, pages, window int) {
	t.Helper()
	n, err := tr.Create(context.Background(), &Upload{
		ID: id, Tenant: "acme", Template: "CUSTOMERS", TotalRecords: pages * 10, TotalPages: pages,
		Destination: Destination{URL: "http://127.0.0.1:1/hook", ChunkSize: 10, RetryCount: 1, MaxInFlight: window},
		Extra:       []byte(`{"k":"v"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := min(window, pages); n != want {
		t.Fatalf("Create released %d pages, want %d", n, want)
	}
}

func begin(t *testing.T, tr *Tracker, id string, page int, token string, now time.Time) Decision {
	t.Helper()
	return beginGen(t, tr, id, page, 0, token, now)
}

func beginGen(t *testing.T, tr *Tracker, id string, page, gen int, token string, now time.Time) Decision {
	t.Helper()
	b, err := tr.Begin(context.Background(), Call{Upload: id, Page: page, Gen: gen, Token: token}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func finish(t *testing.T, tr *Tracker, c Call, f Finish) Decision {
	t.Helper()
	if f.Now.IsZero() {
		f.Now = time.Now()
	}
	r, err := tr.Finish(context.Background(), c, f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeliverAllPagesInOrder(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "U1", 3, 1)
	now := time.Now()
	for page := 1; page <= 3; page++ {
		b := begin(t, tr, "U1", page, "tok", now)
		if b.Kind != Send {
			t.Fatalf("page %d: state %v, want go", page, b.Kind)
		}
		if b.Upload.Template != "CUSTOMERS" || b.Upload.TotalPages != 3 || string(b.Upload.Extra) != `{"k":"v"}` || b.Upload.Destination.ChunkSize != 10 {
			t.Fatalf("page %d: upload snapshot %+v", page, b.Upload)
		}
		r := finish(t, tr, Call{Upload: "U1", Page: page, Token: "tok"}, Finish{Outcome: Delivered, Attempt: &Attempt{Page: page, Attempt: 1, Outcome: "delivered"}})
		wantNext := page + 1
		if page == 3 {
			wantNext = 0
		}
		if r.Kind != Done || !r.Recorded || r.Next != wantNext {
			t.Fatalf("page %d: %+v, want done with next page %d", page, r, wantNext)
		}
		if got := (r.Completion != nil); got != (page == 3) {
			t.Fatalf("page %d: CompletedNow = %v", page, got)
		}
	}
	u, err := tr.Get(context.Background(), "U1", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if u.Status != StatusCompleted || u.DeliveredPages != 3 || u.PendingPages() != 0 || u.CompletedAt.IsZero() {
		t.Fatalf("upload after delivery: %+v", u)
	}
	atts, err := tr.Attempts(context.Background(), "U1")
	if err != nil || len(atts) != 3 {
		t.Fatalf("attempts = %v, %v", atts, err)
	}
}

func TestFinishIsIdempotent(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "U2", 2, 1)
	begin(t, tr, "U2", 1, "a", time.Now())
	first := finish(t, tr, Call{Upload: "U2", Page: 1, Token: "a"}, Finish{Outcome: Delivered})
	again := finish(t, tr, Call{Upload: "U2", Page: 1, Token: "a"}, Finish{Outcome: Delivered})
	if again.Kind != Done || again.Recorded || again.Next != first.Next || first.Next != 2 {
		t.Fatalf("second finish = %+v, first = %+v", again, first)
	}
	// A redelivered ticket for the finished page is told what it released.
	if b := begin(t, tr, "U2", 1, "b", time.Now()); b.Kind != Done || b.Next != 2 {
		t.Fatalf("begin after finish = %+v", b)
	}
	u, _ := tr.Get(context.Background(), "U2", "")
	if u.DeliveredPages != 1 {
		t.Fatalf("delivered = %d, want 1", u.DeliveredPages)
	}
}

func TestLeaseKeepsDuplicatesOut(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "U3", 1, 1)
	now := time.Now()
	if b := begin(t, tr, "U3", 1, "seq1", now); b.Kind != Send {
		t.Fatalf("first begin = %v", b.Kind)
	}
	if b := begin(t, tr, "U3", 1, "seq2", now); b.Kind != Busy || b.Wait <= 0 {
		t.Fatalf("duplicate begin = %+v, want busy", b)
	}
	// The same delivery (a redelivery of the same ticket) takes over its lease.
	if b := begin(t, tr, "U3", 1, "seq1", now); b.Kind != Send {
		t.Fatalf("same-token begin = %v", b.Kind)
	}
	// After the lease expires, anyone may take the page.
	if b := begin(t, tr, "U3", 1, "seq2", now.Add(2*time.Minute)); b.Kind != Send {
		t.Fatalf("begin after lease expiry = %v", b.Kind)
	}
}

func TestRetryingWaitsAndCountsAttempts(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "U4", 1, 1)
	now := time.Now()
	begin(t, tr, "U4", 1, "t", now)
	r := finish(t, tr, Call{Upload: "U4", Page: 1, Token: "t"}, Finish{Outcome: Retrying, NextAt: now.Add(5 * time.Second), Now: now})
	if r.Kind != Wait || r.Wait != 5*time.Second {
		t.Fatalf("retrying finish = %+v, want wait 5s", r)
	}
	if b := begin(t, tr, "U4", 1, "t", now.Add(time.Second)); b.Kind != Wait || b.Wait != 4*time.Second {
		t.Fatalf("begin before next attempt = %+v, want wait 4s", b)
	}
	b := begin(t, tr, "U4", 1, "t", now.Add(6*time.Second))
	if b.Kind != Send || b.Attempts != 1 {
		t.Fatalf("begin after interval = %+v, want go with 1 attempt made", b)
	}
	// A released page (our own failure) does not count as an attempt.
	finish(t, tr, Call{Upload: "U4", Page: 1, Token: "t"}, Finish{Outcome: Released})
	if b := begin(t, tr, "U4", 1, "t", now.Add(7*time.Second)); b.Attempts != 1 {
		t.Fatalf("attempts after release = %d, want 1", b.Attempts)
	}
}

func TestFailureLogAndRetry(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	create(t, tr, "U5", 3, 1)
	now := time.Now()
	outcomes := map[int]Outcome{1: Failed, 2: Delivered, 3: Failed}
	for page := 1; page <= 3; page++ {
		begin(t, tr, "U5", page, "t", now)
		f := Finish{Outcome: outcomes[page]}
		if outcomes[page] == Failed {
			f.Failure = &Failure{Page: page, Attempts: 2, StatusCode: 500, Error: "status 500"}
		}
		finish(t, tr, Call{Upload: "U5", Page: page, Token: "t"}, f)
	}
	u, _ := tr.Get(ctx, "U5", "acme")
	if u.Status != StatusFailed || u.FailedPages != 2 || u.DeliveredPages != 1 {
		t.Fatalf("upload = %+v", u)
	}
	fails, _ := tr.Failures(ctx, "U5")
	if len(fails) != 2 || fails[0].Page != 1 || fails[1].Page != 3 || fails[0].Error != "status 500" {
		t.Fatalf("failures = %+v", fails)
	}

	r, err := tr.Retry(ctx, "U5", "acme", now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requeued != 2 || len(r.Release) != 1 || r.Release[0] != 1 || r.Gen != 1 {
		t.Fatalf("retry = %+v, want 2 requeued, page 1 released, gen 1", r)
	}
	// Until the tickets are confirmed published, a repeated retry call gets
	// the same answer (its first publishing may have failed).
	again, err := tr.Retry(ctx, "U5", "acme", now)
	if err != nil || again.Gen != 1 || len(again.Release) != 1 || again.Release[0] != 1 || again.Requeued != 2 {
		t.Fatalf("repeated retry = %+v, %v", again, err)
	}
	if err := tr.RetryPublished(ctx, "U5"); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Retry(ctx, "U5", "acme", now); !errors.Is(err, ErrBusy) {
		t.Fatalf("retry while delivering: %v, want ErrBusy", err)
	}
	// A ticket left over from before the retry is dropped.
	if b := beginGen(t, tr, "U5", 3, 0, "old", now); b.Kind != Stale {
		t.Fatalf("stale ticket begin = %+v, want stale", b)
	}
	b := beginGen(t, tr, "U5", 1, 1, "t2", now)
	if b.Kind != Send || b.Attempts != 0 {
		t.Fatalf("retried page begin = %+v, want go with attempts reset", b)
	}
	if f := finish(t, tr, Call{Upload: "U5", Page: 3, Gen: 0, Token: "old"}, Finish{Outcome: Delivered}); f.Kind != Stale {
		t.Fatalf("a finish from before the retry = %+v, want stale", f)
	}
	fin := finish(t, tr, Call{Upload: "U5", Page: 1, Gen: 1, Token: "t2"}, Finish{Outcome: Delivered})
	if fin.Next != 3 || fin.Gen != 1 {
		t.Fatalf("finishing retried page 1 let page %d go (gen %d), want 3 (gen 1)", fin.Next, fin.Gen)
	}
	beginGen(t, tr, "U5", 3, 1, "t3", now)
	fin = finish(t, tr, Call{Upload: "U5", Page: 3, Gen: 1, Token: "t3"}, Finish{Outcome: Delivered})
	if fin.Completion == nil || fin.Completion.Status != StatusCompleted || fin.Next != 0 {
		t.Fatalf("last retried page = %+v", fin)
	}
	if fails, _ := tr.Failures(ctx, "U5"); len(fails) != 0 {
		t.Fatalf("failure log after successful retry = %+v", fails)
	}
}

func TestWindowReleasesPages(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "U6", 5, 3) // pages 1..3 released at create
	begin(t, tr, "U6", 2, "t", time.Now())
	if r := finish(t, tr, Call{Upload: "U6", Page: 2, Token: "t"}, Finish{Outcome: Delivered}); r.Next != 4 {
		t.Fatalf("next page %d, want 4", r.Next)
	}
}

func TestTenantIsolationAndList(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	for i := range 4 {
		tenant := "acme"
		if i == 3 {
			tenant = "other"
		}
		_, err := tr.Create(ctx, &Upload{
			ID: fmt.Sprintf("L%d", i), Tenant: tenant, Template: []string{"A", "B"}[i%2],
			TotalPages: 1, TotalRecords: 1, CreatedAt: base.Add(time.Duration(i) * time.Minute),
			Destination: Destination{MaxInFlight: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.Get(ctx, "L3", "acme"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other tenant's upload: %v, want ErrNotFound", err)
	}
	list, err := tr.List(ctx, "acme", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].ID != "L2" || list[2].ID != "L0" {
		t.Fatalf("list = %v", ids(list))
	}
	list, _ = tr.List(ctx, "acme", Filter{Template: "A", Limit: 1})
	if len(list) != 1 || list[0].ID != "L2" {
		t.Fatalf("filtered list = %v", ids(list))
	}
	if _, err := tr.Retry(ctx, "L3", "acme", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retry of other tenant's upload: %v", err)
	}
}

func TestFinishedUploadExpires(t *testing.T) {
	rdb := testRedis(t)
	tr := New(rdb, WithPrefix(redistest.Prefix(t)), WithRetention(time.Hour))
	create(t, tr, "U7", 1, 1)
	begin(t, tr, "U7", 1, "t", time.Now())
	finish(t, tr, Call{Upload: "U7", Page: 1, Token: "t"}, Finish{Outcome: Delivered})
	ttl, err := rdb.PTTL(context.Background(), tr.upload("U7").record).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > time.Hour {
		t.Fatalf("ttl of a finished upload = %s, want within 1h", ttl)
	}
}

func ids(us []*Upload) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func TestIdempotencyKey(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	if prev, err := tr.ReserveIdempotencyKey(ctx, "acme", "k1"); err != nil || prev != nil {
		t.Fatalf("first reserve = %q, %v", prev, err)
	}
	if _, err := tr.ReserveIdempotencyKey(ctx, "acme", "k1"); !errors.Is(err, ErrInProgress) {
		t.Fatalf("second reserve while running: %v, want ErrInProgress", err)
	}
	if prev, err := tr.ReserveIdempotencyKey(ctx, "bravo", "k1"); err != nil || prev != nil {
		t.Fatalf("another tenant's key collided: %q, %v", prev, err)
	}
	if err := tr.CompleteIdempotencyKey(ctx, "acme", "k1", []byte(`{"uploadId":"U"}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	if prev, err := tr.ReserveIdempotencyKey(ctx, "acme", "k1"); err != nil || string(prev) != `{"uploadId":"U"}` {
		t.Fatalf("reserve after completion = %q, %v", prev, err)
	}
	if _, err := tr.ReserveIdempotencyKey(ctx, "acme", "k2"); err != nil {
		t.Fatal(err)
	}
	if err := tr.ReleaseIdempotencyKey(ctx, "acme", "k2"); err != nil {
		t.Fatal(err)
	}
	if prev, err := tr.ReserveIdempotencyKey(ctx, "acme", "k2"); err != nil || prev != nil {
		t.Fatalf("reserve after release = %q, %v", prev, err)
	}
}

func TestStaging(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"S1", "S2", "S3"} {
		if err := tr.Staging(ctx, id, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Staging(ctx, "S2", now); err != nil { // a heartbeat: still streaming
		t.Fatal(err)
	}
	create(t, tr, "S3", 1, 1) // accepted, but Staged was never called
	got, err := tr.Abandoned(ctx, now.Add(-time.Minute), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "S1" {
		t.Fatalf("abandoned = %v, want [S1]", got)
	}
	if err := tr.Staged(ctx, "S1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := tr.Abandoned(ctx, now.Add(-time.Minute), 100); len(got) != 0 {
		t.Fatalf("abandoned after cleanup = %v", got)
	}
}

// A 2xx that arrives after another copy of the ticket recorded the page as
// failed wins: the page was delivered.
func TestLateDeliveryLeavesFailureLog(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	create(t, tr, "U8", 1, 1)
	now := time.Now()
	begin(t, tr, "U8", 1, "a", now)
	finish(t, tr, Call{Upload: "U8", Page: 1, Token: "a"}, Finish{Outcome: Failed, Failure: &Failure{Page: 1, Error: "timeout"}})
	if u, _ := tr.Get(ctx, "U8", ""); u.Status != StatusFailed {
		t.Fatalf("status = %s, want failed", u.Status)
	}
	r := finish(t, tr, Call{Upload: "U8", Page: 1, Token: "b"}, Finish{Outcome: Delivered, Attempt: &Attempt{Page: 1, Attempt: 2, Outcome: "delivered"}})
	if r.Kind != Done || r.Recorded || r.Failed {
		t.Fatalf("late delivery = %+v", r)
	}
	u, _ := tr.Get(ctx, "U8", "")
	if u.Status != StatusCompleted || u.DeliveredPages != 1 || u.FailedPages != 0 {
		t.Fatalf("upload after a late delivery = %+v", u)
	}
	if fs, _ := tr.Failures(ctx, "U8"); len(fs) != 0 {
		t.Fatalf("failure log = %+v", fs)
	}
}

// A finished upload is announced until the worker confirms it: a ticket
// redelivered after a crash in between is told to announce it.
func TestCompletionAnnouncedOnce(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	create(t, tr, "U9", 1, 1)
	begin(t, tr, "U9", 1, "a", time.Now())
	finish(t, tr, Call{Upload: "U9", Page: 1, Token: "a"}, Finish{Outcome: Delivered})
	if b := begin(t, tr, "U9", 1, "a", time.Now()); b.Kind != Done || !b.Announce {
		t.Fatalf("redelivered ticket before the announcement = %+v", b)
	}
	u9, err := tr.Get(ctx, "U9", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Announced(ctx, "U9", u9.CompletedAt.Add(-time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if b := begin(t, tr, "U9", 1, "a", time.Now()); !b.Announce {
		t.Fatal("the announcement of another completion cleared this one")
	}
	if err := tr.Announced(ctx, "U9", u9.CompletedAt); err != nil {
		t.Fatal(err)
	}
	if b := begin(t, tr, "U9", 1, "a", time.Now()); b.Kind != Done || b.Announce {
		t.Fatalf("redelivered ticket after the announcement = %+v", b)
	}
}

// TestLaterDeliveryTakesOver: a page leased by one delivery of a ticket
// message ("<message>.<delivery>") can be taken over by a later delivery of
// the same message; the earlier delivery is then told it is superseded, in
// begin and in finish (whose outcome still counts), and takes no chain lease.
// Another message's ticket stays busy.
func TestLaterDeliveryTakesOver(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "OVER", 3, 1)
	now := time.Now()
	if b := begin(t, tr, "OVER", 1, "12.1", now); b.Kind != Send {
		t.Fatalf("first delivery: %v", b.Kind)
	}
	if b := begin(t, tr, "OVER", 1, "40.1", now); b.Kind != Busy {
		t.Fatalf("another message: %v, want busy", b.Kind)
	}
	if b := begin(t, tr, "OVER", 1, "12.2", now); b.Kind != Send {
		t.Fatalf("a later delivery of the same message: %v, want go (take over)", b.Kind)
	}
	if b := begin(t, tr, "OVER", 1, "12.1", now); b.Kind != Superseded {
		t.Fatalf("the earlier delivery again: %v, want superseded", b.Kind)
	}
	f := finish(t, tr, Call{Upload: "OVER", Page: 1, Token: "12.1"}, Finish{Outcome: Delivered, Now: now, Carry: time.Minute})
	if f.Kind != Superseded || !f.Recorded || f.Next != 2 {
		t.Fatalf("finish by the earlier delivery = %+v, want the page delivered, superseded, nothing leased", f)
	}
	// The later delivery finds the page done and carries on with page 2.
	if b := begin(t, tr, "OVER", 1, "12.2", now); b.Kind != Done || b.Next != 2 {
		t.Fatalf("later delivery after the page was done: %+v", b)
	}
	if b := begin(t, tr, "OVER", 2, "12.2", now); b.Kind != Send {
		t.Fatalf("page 2 for the later delivery: %v", b.Kind)
	}
	if f := finish(t, tr, Call{Upload: "OVER", Page: 2, Token: "12.1"}, Finish{Outcome: Retrying, Now: now, NextAt: now}); f.Kind != Superseded {
		t.Fatalf("a retrying finish by the earlier delivery = %+v, want superseded", f)
	}
}

// TestRetryingFinishRunTwiceCountsOnce: the same retrying finish sent twice
// (a client resending a pipeline whose answers it lost) counts one attempt
// and logs it once.
func TestRetryingFinishRunTwiceCountsOnce(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "TWICE", 1, 1)
	now := time.Now()
	begin(t, tr, "TWICE", 1, "a", now)
	f := Finish{Outcome: Retrying, Now: now, NextAt: now.Add(time.Second),
		Attempt: &Attempt{Page: 1, Attempt: 1, Outcome: string(Retrying), StatusCode: 500}}
	c := Call{Upload: "TWICE", Page: 1, Token: "a"}
	if d := finish(t, tr, c, f); d.Kind != Wait || d.Wait != time.Second {
		t.Fatalf("retrying finish = %+v, want wait 1s", d)
	}
	if d := finish(t, tr, c, f); d.Kind != Wait || d.Wait != time.Second {
		t.Fatalf("the same retrying finish again = %+v, want wait 1s", d)
	}
	b := begin(t, tr, "TWICE", 1, "a", now.Add(2*time.Second))
	if b.Kind != Send || b.Attempts != 1 {
		t.Fatalf("after the same finish twice: %+v, want 1 attempt counted", b)
	}
	log, err := tr.Attempts(context.Background(), "TWICE")
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 {
		t.Fatalf("attempts log has %d entries, want 1", len(log))
	}
}

// TestFinishDoneAnswer: a finish for a page another call already finished
// says how it ended and whether the upload's completion still needs
// announcing, so the caller can go on as Begin's "done" would.
func TestFinishDoneAnswer(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "DONE", 2, 2)
	now := time.Now()
	begin(t, tr, "DONE", 1, "a", now)
	begin(t, tr, "DONE", 2, "b", now)
	finish(t, tr, Call{Upload: "DONE", Page: 1, Token: "a"}, Finish{Outcome: Failed, Now: now, Failure: &Failure{Page: 1, Attempts: 1}})
	if f := finish(t, tr, Call{Upload: "DONE", Page: 1, Token: "x"}, Finish{Outcome: Retrying, Now: now, NextAt: now}); f.Kind != Done || f.Recorded || !f.Failed || f.Announce {
		t.Fatalf("finish of a failed page = %+v, want done as failed, nothing to announce", f)
	}
	if f := finish(t, tr, Call{Upload: "DONE", Page: 2, Token: "b"}, Finish{Outcome: Delivered, Now: now}); f.Completion == nil || f.Completion.Status != StatusFailed || f.Completion.Delivered != 1 || f.Completion.Failed != 1 || f.Completion.At.UnixMilli() != now.UnixMilli() {
		t.Fatalf("finish of the last page = %+v", f)
	}
	f := finish(t, tr, Call{Upload: "DONE", Page: 2, Token: "y"}, Finish{Outcome: Retrying, Now: now, NextAt: now})
	if f.Kind != Done || f.Recorded || f.Failed || !f.Announce {
		t.Fatalf("finish of a delivered page of a finished upload = %+v, want done as delivered, announce pending", f)
	}
	ud, err := tr.Get(context.Background(), "DONE", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Announced(context.Background(), "DONE", ud.CompletedAt); err != nil {
		t.Fatal(err)
	}
	if f := finish(t, tr, Call{Upload: "DONE", Page: 2, Token: "y"}, Finish{Outcome: Delivered, Now: now}); f.Announce {
		t.Fatalf("after Announced: %+v, want nothing to announce", f)
	}
}

// TestLateSuccessAnnouncesTheNewStatus: a failed upload whose failed page
// then arrives after all (a late 2xx) becomes completed, and its completion
// is announced again, with a new completion time.
func TestLateSuccessAnnouncesTheNewStatus(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	create(t, tr, "LATE", 1, 1)
	now := time.Now()
	begin(t, tr, "LATE", 1, "5.1", now)
	begin(t, tr, "LATE", 1, "5.2", now)
	if f := finish(t, tr, Call{Upload: "LATE", Page: 1, Token: "5.2"}, Finish{Outcome: Failed, Now: now, Failure: &Failure{Page: 1}}); f.Completion == nil || f.Completion.Status != StatusFailed {
		t.Fatalf("failed finish = %+v", f)
	}
	ul, err := tr.Get(ctx, "LATE", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Announced(ctx, "LATE", ul.CompletedAt); err != nil {
		t.Fatal(err)
	}
	f := finish(t, tr, Call{Upload: "LATE", Page: 1, Token: "5.1"}, Finish{Outcome: Delivered, Now: now.Add(time.Second)})
	u, err := tr.Get(ctx, "LATE", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if u.Status != StatusCompleted || !f.Announce || !u.CompletedAt.After(now) {
		t.Fatalf("after the late 2xx: %+v (answer %+v), want completed, announce pending, a new completion time", u, f)
	}
}

// TestRetryingFinishesOfTwoDeliveriesBothCount: two deliveries of a page
// that both sent attempt 2 (the first's lease lapsed while its request was
// still out) made two attempts: both are counted and logged, where the same
// delivery's finish repeated is not.
func TestRetryingFinishesOfTwoDeliveriesBothCount(t *testing.T) {
	tr := newTracker(t)
	create(t, tr, "BOTH", 1, 1)
	now := time.Now()
	begin(t, tr, "BOTH", 1, "7.1", now)
	attempt := func(n int) Finish {
		return Finish{Outcome: Retrying, Now: now, NextAt: now,
			Attempt: &Attempt{Page: 1, Attempt: n, Outcome: string(Retrying), StatusCode: 503}}
	}
	first, other := Call{Upload: "BOTH", Page: 1, Token: "7.1"}, Call{Upload: "BOTH", Page: 1, Token: "9.1"}
	finish(t, tr, first, attempt(1))
	finish(t, tr, first, attempt(2))
	finish(t, tr, other, attempt(2)) // another message's delivery, also at attempt 2
	finish(t, tr, other, attempt(2)) // its pipeline resent
	b := begin(t, tr, "BOTH", 1, "9.1", now.Add(time.Second))
	if b.Kind != Send || b.Attempts != 3 {
		t.Fatalf("begin = %+v, want go with 3 attempts counted", b)
	}
	log, err := tr.Attempts(context.Background(), "BOTH")
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 {
		t.Fatalf("attempts log has %d entries, want 3", len(log))
	}
	// One mark per page, gone once the page is done.
	finish(t, tr, other, Finish{Outcome: Delivered, Now: now.Add(time.Second),
		Attempt: &Attempt{Page: 1, Attempt: 4, Outcome: "delivered"}})
	fields, err := tr.rdb.HKeys(context.Background(), tr.upload("BOTH").pages).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if strings.HasPrefix(f, "c:") {
			t.Fatalf("page state keeps %q after the page was delivered (fields %v)", f, fields)
		}
	}
}
