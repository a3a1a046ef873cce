package worker

import (
	"context"
	"strconv"
	"testing"

	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// okSender answers every request 200 at once.
type okSender struct{}

func (okSender) Send(context.Context, webhook.Request) webhook.Result {
	return webhook.Result{StatusCode: 200}
}

// BenchmarkHandleCarriedPages delivers one upload of a template with no
// protection through Handle, maxPages pages per ticket message as a worker
// carries them, against a real JetStream and Redis and a sender that
// answers at once: the worker's own cost per page around the POST (the
// tracker's round trips, the gate, the page's direct get). One op is one
// page. "pipelining=2" is the tracker as workers run it (WithPipelining(2)).
func BenchmarkHandleCarriedPages(b *testing.B) {
	for _, senders := range []int{0, 2} {
		name, opts := "pipelining=off", []tracker.Option(nil)
		if senders > 0 {
			name, opts = "pipelining="+strconv.Itoa(senders), []tracker.Option{tracker.WithPipelining(senders)}
		}
		b.Run(name, func(b *testing.B) {
			d, tr, _, id := chainEnvWith(b, b.N, 0, okSender{}, opts...)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for page, msg := 1, 1; page <= b.N; page, msg = page+maxPages, msg+1 {
				t := Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: uint32(page), Tenant: "acme", Template: "T"}, Token: strconv.Itoa(msg) + ".1"} // #nosec G115 -- a benchmark's page count
				if err := d.Handle(ctx, t); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if u := upload(b, tr, id); u.DeliveredPages != b.N {
				b.Fatalf("%d pages delivered, want %d", u.DeliveredPages, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
		})
	}
}
