package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/hookline/hookline/pkg/natstest"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// TestPoolKeepsSlowTicketsAlive: a delivery that takes several times
// AckWait (a slow endpoint) is not redelivered to another handler meanwhile,
// and its ticket is acknowledged when it ends.
func TestPoolKeepsSlowTicketsAlive(t *testing.T) {
	const ackWait = 400 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, err := jetstream.New(natstest.Connect(t, natstest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	for page := uint32(1); page <= 3; page++ {
		data, _ := proto.Marshal(&hooklinev1.Ticket{UploadId: "U", Page: page})
		if _, err := js.Publish(ctx, "t.U", data); err != nil {
			t.Fatal(err)
		}
	}

	var calls atomic.Int32
	release := make(chan struct{})
	handle := func(ctx context.Context, tk Ticket) error {
		calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	pool := NewPool(cons, nil, handle, 8, 16, time.Second, ackWait, NewMetrics(prometheus.NewRegistry()), zap.NewNop())
	done := make(chan error, 1)
	go func() { done <- pool.Run(ctx) }()

	// Three handlers start; for 4 x AckWait none of the tickets comes back.
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d handlers started, want 3", n)
	}
	watch := time.Now().Add(4 * ackWait)
	for time.Now().Before(watch) {
		if n := calls.Load(); n != 3 {
			t.Fatalf("a slow ticket was redelivered: %d handler calls for 3 tickets", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	deadline = time.Now().Add(5 * time.Second)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			if info.NumRedelivered != 0 {
				t.Fatalf("%d tickets were redelivered", info.NumRedelivered)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tickets not acknowledged: %d pending acks", info.NumAckPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d handler calls for 3 tickets", n)
	}
	if n := len(pool.beats.msgs); n != 0 {
		t.Fatalf("%d tickets still kept alive after their deliveries ended", n)
	}
}
