package importer

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hookline/hookline/pkg/natstest"
	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/pkg/tracker"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// The pages of an import whose ingest process died mid-file are purged once
// its staging mark is old; a live import's and an accepted upload's are kept.
func TestJanitorPurgesAbandonedImports(t *testing.T) {
	ctx := context.Background()
	nc := natstest.Connect(t, natstest.Start(t))
	q, err := queue.Setup(ctx, nc, queue.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tr := tracker.New(redistest.Client(t), tracker.WithPrefix(redistest.Prefix(t)))
	publish := func(id string, pages int) {
		for p := 1; p <= pages; p++ {
			data, _ := queue.EncodePage(&hooklinev1.Page{UploadId: id, Page: uint32(p), RecordCount: 1, Records: []byte(`[{"a":"1"}]`)})
			f, err := q.PublishPageAsync(id, p, data)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatal(err)
			}
		}
	}
	now := time.Now()
	publish("DEAD", 3)
	publish("LIVE", 2)
	publish("DONE", 1)
	_ = tr.Staging(ctx, "DEAD", now.Add(-time.Hour))
	_ = tr.Staging(ctx, "LIVE", now)
	_ = tr.Staging(ctx, "DONE", now.Add(-time.Hour))
	if _, err := tr.Create(ctx, &tracker.Upload{ID: "DONE", Tenant: "acme", TotalPages: 1, TotalRecords: 1,
		Destination: tracker.Destination{MaxInFlight: 1}}); err != nil {
		t.Fatal(err)
	}

	j := NewJanitor(tr, q, time.Minute, AbandonedAfter, zaptest.NewLogger(t))
	if n := j.Sweep(ctx); n != 1 {
		t.Fatalf("swept %d uploads, want 1", n)
	}
	for id, want := range map[string]bool{"DEAD": false, "LIVE": true, "DONE": true} {
		_, err := q.GetPage(ctx, id, 1)
		if got := err == nil; got != want {
			t.Errorf("page 1 of %s present = %v, want %v (%v)", id, got, want, err)
		}
	}
	if n := j.Sweep(ctx); n != 0 {
		t.Fatalf("second sweep cleaned %d, want 0", n)
	}
	// An import committing after the janitor took its upload must fail, and
	// a live one claims its own.
	if ok, err := tr.Claim(ctx, "DEAD"); err != nil || ok {
		t.Fatalf("claim of a swept upload = %v, %v; want false", ok, err)
	}
	if ok, err := tr.Claim(ctx, "LIVE"); err != nil || !ok {
		t.Fatalf("claim of a live upload = %v, %v; want true", ok, err)
	}
}
