package tracker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"
)

// seedFailed makes upload id of n pages, every one of them failed.
func seedFailed(tb testing.TB, tr *Tracker, id string, n int) {
	tb.Helper()
	ctx := context.Background()
	if _, err := tr.Create(ctx, &Upload{ID: id, Tenant: "acme", Template: "T", TotalPages: n, TotalRecords: n,
		Destination: Destination{MaxInFlight: 1}}); err != nil {
		tb.Fatal(err)
	}
	k := tr.upload(id)
	for from := 1; from <= n; from += 5000 {
		fields := map[string]any{}
		for p := from; p < from+5000 && p <= n; p++ {
			fields[strconv.Itoa(p)] = `{"page":` + strconv.Itoa(p) + `,"attempts":1,"statusCode":500,"error":"status 500"}`
		}
		if err := tr.rdb.HSet(ctx, k.failed, fields).Err(); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tr.rdb.HSet(ctx, k.record, "status", "failed", "released", n).Err(); err != nil {
		tb.Fatal(err)
	}
}

// queuedOnce checks that pages 1..n are each queued once: released or in Q.
func queuedOnce(tb testing.TB, tr *Tracker, id string, n int, r Retried) {
	tb.Helper()
	q, err := tr.rdb.LRange(context.Background(), tr.upload(id).queue, 0, -1).Result()
	if err != nil {
		tb.Fatal(err)
	}
	got := append([]int(nil), r.Release...)
	for _, s := range q {
		p, _ := strconv.Atoi(s)
		got = append(got, p)
	}
	if r.Requeued != n || len(got) != n {
		tb.Fatalf("requeued %d, queued %d pages, want %d", r.Requeued, len(got), n)
	}
	if !sort.IntsAreSorted(got) {
		tb.Fatal("pages not queued in page order")
	}
	for i, p := range got {
		if p != i+1 {
			tb.Fatalf("queued page %d at %d, want each of 1..%d once", p, i, n)
		}
	}
}

func TestRetryQueuesEveryFailedPageOnceInBatches(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	const n = 3*RetryBatch + 17
	seedFailed(t, tr, "BIG", n)
	r, err := tr.Retry(ctx, "BIG", "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	queuedOnce(t, tr, "BIG", n, r)
	u, _ := tr.Get(ctx, "BIG", "acme")
	if u.Status != StatusDelivering || u.FailedPages != 0 || u.PendingPages() != n {
		t.Fatalf("upload after retry = %+v", u)
	}
}

// A retry cut short (the process died after some batches) is finished by
// the next call: no page lost, none queued twice.
func TestRetryCutShortIsFinishedByTheNextCall(t *testing.T) {
	tr := newTracker(t)
	ctx := context.Background()
	const n = 2*RetryBatch + 3
	seedFailed(t, tr, "CUT", n)
	keys := tr.upload("CUT").all()
	req := fmt.Sprintf(`{"now":%d,"window":1,"batch":%d,"scan":%d}`, time.Now().UnixMilli(), RetryBatch, 4*RetryBatch)
	if s, err := retryScript.Run(ctx, tr.rdb, keys, req).Text(); err != nil || s != `{"kind":"batch"}` {
		t.Fatalf("start = %s, %v", s, err)
	}
	if s, err := retryBatchScript.Run(ctx, tr.rdb, keys, req).Text(); err != nil || s != `{"kind":"batch"}` {
		t.Fatalf("first batch = %s, %v", s, err)
	}
	if u, _ := tr.Get(ctx, "CUT", "acme"); u.Status != StatusDelivering || u.FailedPages != 0 {
		t.Fatalf("upload mid-retry = %+v: must not look finished", u)
	}
	r, err := tr.Retry(ctx, "CUT", "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.Gen != 1 {
		t.Fatalf("gen = %d, want 1: the same retry, not a second one", r.Gen)
	}
	queuedOnce(t, tr, "CUT", n, r)
}
