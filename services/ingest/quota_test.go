package ingest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/pkg/tracker"
)

// limiterForTest returns a limiter over a real Redis with a clock the test moves.
func limiterForTest(t *testing.T) (*QuotaLimiter, *redis.Client, *atomic.Int64) {
	t.Helper()
	rdb := redistest.Client(t)
	l := NewQuotaLimiter(rdb, tracker.New(rdb, tracker.WithPrefix(redistest.Prefix(t))), time.Hour, prometheus.NewRegistry(), zaptest.NewLogger(t))
	var clock atomic.Int64
	clock.Store(time.Now().UnixMilli())
	l.now = func() time.Time { return time.UnixMilli(clock.Load()) }
	return l, rdb, &clock
}

func wantQuotaError(t *testing.T, err error, field string, limit int) *QuotaError {
	t.Helper()
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Field != field || qe.Limit != limit {
		t.Fatalf("err = %v, want a quota error on %s (%d)", err, field, limit)
	}
	return qe
}

func TestQuotaRate(t *testing.T) {
	l, rdb, _ := limiterForTest(t)
	ctx := context.Background()
	q := Quotas{ImportsPerMinute: 2}

	a1, err := l.Admit(ctx, "acme", q)
	if err != nil {
		t.Fatal(err)
	}
	a1.Accepted(ctx, "U1")
	refused, err := l.Admit(ctx, "acme", q) // an import that fails later gives its unit back
	if err != nil {
		t.Fatal(err)
	}
	refused.Release(ctx)
	a2, err := l.Admit(ctx, "acme", q)
	if err != nil {
		t.Fatalf("second accepted import: %v", err)
	}
	a2.Accepted(ctx, "U2")
	a2.Release(ctx) // no-op after Accepted

	_, err = l.Admit(ctx, "acme", q)
	qe := wantQuotaError(t, err, "quotas.importsPerMinute", 2)
	if qe.RetryAfter <= 0 || qe.RetryAfter > time.Minute || qe.Message != "tenant acme may start at most 2 imports per minute" {
		t.Fatalf("quota error = %+v", qe)
	}
	if n, _ := rdb.Get(ctx, l.rateKey("acme")).Int(); n != 2 {
		t.Fatalf("rate counter = %d after refusals, want 2", n)
	}
	// Another tenant has its own window.
	if _, err := l.Admit(ctx, "bravo", q); err != nil {
		t.Fatalf("bravo: %v", err)
	}
	// The window ends: imports are accepted again.
	if err := rdb.Del(ctx, l.rateKey("acme")).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Admit(ctx, "acme", q); err != nil {
		t.Fatalf("new window: %v", err)
	}
}

func TestQuotaConcurrentUploads(t *testing.T) {
	l, rdb, clock := limiterForTest(t)
	ctx := context.Background()
	q := Quotas{MaxConcurrentUploads: 2}
	// status gives upload id the status s, through the tracker: created
	// (delivering), then its one page delivered (completed) or failed.
	status := func(id string, s tracker.Status) {
		t.Helper()
		tr := l.tr
		if s == tracker.StatusDelivering {
			if _, err := tr.Create(ctx, &tracker.Upload{ID: id, Tenant: "acme", TotalPages: 1, Destination: tracker.Destination{MaxInFlight: 1}}); err != nil {
				t.Fatal(err)
			}
			return
		}
		c := tracker.Call{Upload: id, Page: 1, Token: "1.1"}
		f := tracker.Finish{Outcome: tracker.Delivered}
		if s == tracker.StatusFailed {
			f = tracker.Finish{Outcome: tracker.Failed, Failure: &tracker.Failure{Page: 1}}
		}
		if dec, err := tr.Begin(ctx, c, time.Minute, time.Now()); err != nil || dec.Kind != tracker.Send {
			t.Fatal(dec, err)
		}
		if dec, err := tr.Finish(ctx, c, f); err != nil || dec.Completion == nil || dec.Completion.Status != s {
			t.Fatal(dec, err)
		}
	}
	admit := func() *Admission {
		t.Helper()
		a, err := l.Admit(ctx, "acme", q)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	refuse := func() {
		t.Helper()
		_, err := l.Admit(ctx, "acme", q)
		qe := wantQuotaError(t, err, "quotas.maxConcurrentUploads", 2)
		if qe.Message != "tenant acme may have at most 2 uploads delivering at once" {
			t.Fatalf("message = %q", qe.Message)
		}
	}

	status("U1", tracker.StatusDelivering)
	admit().Accepted(ctx, "U1")
	streaming := admit() // an import still streaming holds a slot
	refuse()
	streaming.Release(ctx) // refused later: its slot is free again
	status("U3", tracker.StatusDelivering)
	admit().Accepted(ctx, "U3")
	refuse()

	status("U1", tracker.StatusCompleted) // a finished upload frees its slot
	a := admit()
	a.Accepted(ctx, "U4") // no record: as if expired, pruned next time
	status("U3", tracker.StatusFailed)
	admit().Release(ctx)
	if n := rdb.ZCard(ctx, l.activeKey("acme")).Val(); n != 0 {
		t.Fatalf("active set holds %d after every upload finished, want 0", n)
	}

	// A replica that dies mid-import frees its slot when the reservation expires.
	crashed, other := admit(), admit()
	refuse()
	clock.Add((3 * time.Minute).Milliseconds())
	later := admit()
	for _, a := range []*Admission{crashed, other, later} {
		a.Release(ctx) // stops their refreshers
	}
}

func TestQuotaNoLimitsTouchNothing(t *testing.T) {
	l, rdb, _ := limiterForTest(t)
	ctx := context.Background()
	for range 5 {
		a, err := l.Admit(ctx, "acme", Quotas{})
		if err != nil {
			t.Fatal(err)
		}
		a.Accepted(ctx, "U")
	}
	if n := rdb.Exists(ctx, l.rateKey("acme"), l.activeKey("acme")).Val(); n != 0 {
		t.Fatalf("%d quota keys written without quotas", n)
	}
}

func TestRecordQuota(t *testing.T) {
	for _, tc := range []struct {
		max, n int
		refuse bool
	}{
		{0, 1 << 30, false},
		{5, 5, false},
		{5, 6, true},
	} {
		err := recordQuota{tenant: "acme", max: tc.max}.check(tc.n)
		if (err != nil) != tc.refuse {
			t.Errorf("max %d, an import of %d records: err = %v", tc.max, tc.n, err)
		}
		if err != nil {
			wantQuotaError(t, err, "quotas.maxRecords", tc.max)
		}
	}
}
