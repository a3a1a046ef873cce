package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookline/hookline/pkg/natstest"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

func TestSetupIsIdempotentAndPagesRoundTrip(t *testing.T) {
	ctx := context.Background()
	nc := natstest.Connect(t, natstest.Start(t))
	cfg := DefaultConfig()
	if _, err := Setup(ctx, nc, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.AckWait = 5 * time.Second // a second process with other settings updates in place
	q, err := Setup(ctx, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := EncodePage(&hooklinev1.Page{UploadId: "U", Page: 2, RecordCount: 1, Records: []byte(`[{"a":"b"}]`)})
	for range 2 { // a resent page is stored once
		storePage(t, q, "U", 2, data)
	}
	s, _ := q.JetStream().Stream(ctx, PagesStream)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("pages stored = %d, want 1", info.State.Msgs)
	}
	p, err := q.GetPage(ctx, "U", 2)
	if err != nil || string(p.GetRecords()) != `[{"a":"b"}]` || p.GetRecordCount() != 1 {
		t.Fatalf("GetPage = %v, %v", p, err)
	}
	if _, err := q.GetPage(ctx, "U", 3); !errors.Is(err, ErrPageNotFound) {
		t.Fatalf("missing page: %v", err)
	}
	if err := q.PurgeUpload(ctx, "U"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.GetPage(ctx, "U", 2); !errors.Is(err, ErrPageNotFound) {
		t.Fatalf("page after purge: %v", err)
	}
	cons, err := q.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci := cons.CachedInfo(); ci.Config.AckWait != 5*time.Second || ci.Config.MaxDeliver != -1 || len(ci.Config.BackOff) != 0 {
		t.Fatalf("consumer config = %+v", ci.Config)
	}
}

func TestIsFull(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{ErrorCode: 10077, Description: "maximum bytes exceeded"}, true},
		{&jetstream.APIError{ErrorCode: 10047, Description: "insufficient storage resources available"}, true},
		{&jetstream.APIError{ErrorCode: 10077, Description: "some other store failure"}, false},
		{&jetstream.APIError{ErrorCode: 10059, Description: "stream not found"}, false},
		{errors.New("nats: timeout"), false},
	} {
		if got := IsFull(tc.err); got != tc.want {
			t.Errorf("IsFull(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestTicketMsgIDCarriesGeneration(t *testing.T) {
	if a, b := TicketMsgID("U", 3, 0), TicketMsgID("U", 3, 1); a == b {
		t.Fatal("a retry's ticket would be swallowed by de-duplication of the first pass")
	}
}

// storePage publishes an encoded page and waits for its acknowledgement.
func storePage(t *testing.T, q *Queue, id string, page int, data []byte) {
	t.Helper()
	f, err := q.PublishPageAsync(id, page, data)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Ok():
	case err := <-f.Err():
		t.Fatal(err)
	}
}
