package tracker

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
)

// benchUpload creates an upload of pages pages (maxInFlight 1) for a
// benchmark, removed when the benchmark ends (REDIS_URL may be a shared Redis).
func benchUpload(b *testing.B, tr *Tracker, id string, pages int) error {
	b.Cleanup(func() { _ = tr.Delete(context.Background(), id, "bench") })
	_, err := tr.Create(context.Background(), &Upload{
		ID: id, Tenant: "bench", Template: "BENCH", TotalRecords: pages * 100, TotalPages: pages,
		Destination: Destination{URL: "http://127.0.0.1:9/hook", AuthHeaderName: "X-API-KEY",
			SealedAuthHeaderValue: "v1:k1:c2VhbGVkLXZhbHVlLW9mLXRoZS1hdXRoLWhlYWRlcg", ChunkSize: 100,
			RetryCount: 3, RetryIntervalMs: 1000, TimeoutMs: 30000, MaxInFlight: 1},
		Extra: []byte(`{"batch":7}`),
	})
	return err
}

// deliverPage is what a worker asks of the tracker for one delivered page:
// the begin script, then the finish script with an attempt record.
func deliverPage(ctx context.Context, tr *Tracker, id string, page int, token string) error {
	now := time.Now()
	c := Call{Upload: id, Page: page, Token: token}
	bg, err := tr.Begin(ctx, c, 2*time.Minute, now)
	if err != nil {
		return err
	}
	if bg.Kind != Send {
		return fmt.Errorf("page %d: begin answered %v, want send", page, bg.Kind)
	}
	_, err = tr.Finish(ctx, c, Finish{
		Outcome: Delivered, Now: now,
		Attempt: &Attempt{Page: page, Attempt: 1, Outcome: string(Delivered), StatusCode: 200, DurationMs: 2, At: now.UTC()},
	})
	return err
}

// BenchmarkBeginFinish measures one page's begin + finish scripts (two
// round trips to a real redis-server on loopback), one page after another.
func BenchmarkBeginFinish(b *testing.B) {
	ctx := context.Background()
	tr := New(redistest.Client(b), WithPrefix(redistest.Prefix(b)))
	id := "BENCH" + strconv.Itoa(b.N)
	if err := benchUpload(b, tr, id, b.N); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := deliverPage(ctx, tr, id, i+1, "tok"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}

// BenchmarkBeginFinishParallel runs begin + finish from 64 goroutines at once
// (a worker's default concurrency), each on its own upload: the tracker's
// ceiling in pages per second on this machine, Redis included. "pipelining=off"
// sends each call on its own; "pipelining=2" is how workers run it
// (WithPipelining(2)).
func BenchmarkBeginFinishParallel(b *testing.B) {
	for _, senders := range []int{0, 2} {
		name := "pipelining=off"
		if senders > 0 {
			name = "pipelining=" + strconv.Itoa(senders)
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			opts := []Option{WithPrefix(redistest.Prefix(b))}
			if senders > 0 {
				opts = append(opts, WithPipelining(senders))
			}
			tr := New(redistest.Client(b), opts...)
			defer tr.Close()
			var seq atomic.Int64
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism((64 + procs - 1) / procs)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := "PAR" + strconv.Itoa(b.N) + "." + strconv.FormatInt(seq.Add(1), 10)
				if err := benchUpload(b, tr, id, 1<<30); err != nil {
					b.Error(err)
					return
				}
				page := 0
				for pb.Next() {
					page++
					if err := deliverPage(ctx, tr, id, page, "tok"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
		})
	}
}

// BenchmarkFinishCarrying is the tracker's part of a carried page: one
// finish script that records the page delivered and leases the next one for
// the same token (Send), one page after another. One op is one page.
// "pause=read" names the template, whose paused state is then read in the
// same round trip (what a worker asks for a template with no protection).
func BenchmarkFinishCarrying(b *testing.B) {
	for _, template := range []string{"", "BENCH"} {
		name := "pause=none"
		if template != "" {
			name = "pause=read"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			tr := New(redistest.Client(b), WithPrefix(redistest.Prefix(b)))
			id := "CARRY" + strconv.Itoa(b.N) + name
			if err := benchUpload(b, tr, id, b.N+1); err != nil {
				b.Fatal(err)
			}
			c := Call{Upload: id, Page: 1, Token: "7.1", Tenant: "bench", Template: template}
			if d, err := tr.Begin(ctx, c, 2*time.Minute, time.Now()); err != nil || d.Kind != Send {
				b.Fatal(d, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				now := time.Now()
				d, err := tr.Finish(ctx, c, Finish{Outcome: Delivered, Now: now, Carry: 2 * time.Minute,
					Attempt: &Attempt{Page: c.Page, Attempt: 1, Outcome: string(Delivered), StatusCode: 200, DurationMs: 2, At: now.UTC()}})
				if err != nil || d.Kind != Send || d.Page != c.Page+1 {
					b.Fatalf("page %d: %+v, %v, want the next page leased", c.Page, d, err)
				}
				if template != "" && d.Pause != TemplateActive {
					b.Fatalf("page %d: pause %v, want active", d.Page, d.Pause)
				}
				c.Page = d.Page
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
		})
	}
}

// BenchmarkGate measures the gate every page passes before it is sent (one
// round trip), for a template with a rate limit that always has room.
func BenchmarkGate(b *testing.B) {
	ctx := context.Background()
	tr := New(redistest.Client(b), WithPrefix(redistest.Prefix(b)))
	b.Cleanup(func() { _ = tr.ForgetTemplate(context.Background(), "bench", "GATE") })
	p := Protection{Limit: Limit{Requests: 1_000_000, Interval: time.Millisecond}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		g, err := tr.Gate(ctx, "bench", "GATE", p)
		if err != nil {
			b.Fatal(err)
		}
		if g.Kind != Go {
			b.Fatalf("gate answered %+v", g)
		}
	}
}

// BenchmarkRetry100kPages retries an upload of 100,000 failed pages while
// another client pings Redis without pause; that client's latency is
// reported (p50, p99, max): a retry must not hold Redis for long at a time.
func BenchmarkRetry100kPages(b *testing.B) {
	const n = 100_000
	tr := New(redistest.Client(b), WithPrefix(redistest.Prefix(b)))
	other := redistest.Client(b)
	ctx := context.Background()
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := fmt.Sprintf("R100K-%d", i)
		seedFailed(b, tr, id, n)
		b.Cleanup(func() { _ = tr.Delete(context.Background(), id, "acme") })
		stop, done := make(chan struct{}), make(chan []time.Duration)
		go func() {
			var l []time.Duration
			for {
				select {
				case <-stop:
					done <- l
					return
				default:
				}
				start := time.Now()
				if err := other.Ping(ctx).Err(); err == nil {
					l = append(l, time.Since(start))
				}
			}
		}()
		b.StartTimer()
		r, err := tr.Retry(ctx, id, "acme", time.Now())
		b.StopTimer()
		close(stop)
		lat = append(lat, <-done...)
		if err != nil || r.Requeued != n {
			b.Fatalf("retry = %+v, %v", r, err)
		}
		b.StartTimer()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "other-p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "other-p99-µs")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "other-max-µs")
	}
}
