package worker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/hookline/hookline/pkg/natstest"
	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/pkg/secrets"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// fakeSender answers every page with 200, except that a page listed in
// hang blocks until its channel is closed (a worker that died mid-request,
// as far as the rest of the system can tell).
type fakeSender struct {
	mu     sync.Mutex
	sent   []int
	hang   map[int]chan struct{}
	status map[int]int // answer per page, once its hang ends (default 200)
}

func (s *fakeSender) Send(ctx context.Context, req webhook.Request) webhook.Result {
	p, _ := strconv.Atoi(req.ID[strings.LastIndexByte(req.ID, '.')+1:]) // the id is <upload>.<page>
	s.mu.Lock()
	s.sent = append(s.sent, p)
	h := s.hang[p]
	s.mu.Unlock()
	if h != nil {
		<-h
	}
	s.mu.Lock()
	code := s.status[p]
	s.mu.Unlock()
	if code == 0 {
		code = 200
	}
	return webhook.Result{StatusCode: code}
}

func (s *fakeSender) pages() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sent...)
}

// chainEnv is one upload of pages pages (maxInFlight 1) stored in a real
// JetStream and tracked in a real Redis, and a Deliverer over them.
func chainEnv(t testing.TB, pages int, send Sender) (*Deliverer, *tracker.Tracker, *queue.Queue, string) {
	return chainEnvRetries(t, pages, 0, send)
}

func chainEnvRetries(t testing.TB, pages, retries int, send Sender) (*Deliverer, *tracker.Tracker, *queue.Queue, string) {
	t.Helper()
	return chainEnvWith(t, pages, retries, send)
}

// chainEnvWith is chainEnvRetries with the tracker's options.
func chainEnvWith(t testing.TB, pages, retries int, send Sender, opts ...tracker.Option) (*Deliverer, *tracker.Tracker, *queue.Queue, string) {
	t.Helper()
	ctx := context.Background()
	q, err := queue.Setup(ctx, natstest.Connect(t, natstest.Start(t)), queue.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tr := tracker.New(redistest.Client(t), append([]tracker.Option{tracker.WithPrefix(redistest.Prefix(t))}, opts...)...)
	t.Cleanup(tr.Close)
	const id = "CHAIN"
	for p := 1; p <= pages; p++ {
		data, err := queue.EncodePage(&hooklinev1.Page{UploadId: id, Page: uint32(p), RecordCount: 1, Records: []byte(`[{"a":1}]`)})
		if err != nil {
			t.Fatal(err)
		}
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
	if _, err := tr.Create(ctx, &tracker.Upload{ID: id, Tenant: "acme", Template: "T", TotalRecords: pages, TotalPages: pages,
		Destination: tracker.Destination{URL: "http://127.0.0.1:1/hook", ChunkSize: 1, MaxInFlight: 1, TimeoutMs: 1000, RetryCount: retries}}); err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return NewDeliverer(q, tr, send, box, zap.NewNop(), NewMetrics(prometheus.NewRegistry())), tr, q, id
}

// One ticket message carries the pages its pages release, up to maxPages:
// the rest get tickets of their own.
func TestTicketCarriesReleasedPages(t *testing.T) {
	s := &fakeSender{}
	pages := maxPages + 4
	d, tr, q, id := chainEnv(t, pages, s)
	ctx := context.Background()
	if err := d.Handle(ctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}, Token: "1"}); err != nil {
		t.Fatal(err)
	}
	if got := s.pages(); len(got) != maxPages {
		t.Fatalf("one ticket sent pages %v, want 1..%d", got, maxPages)
	}
	for i, p := range s.pages() {
		if p != i+1 {
			t.Fatalf("pages sent in the order %v", s.pages())
		}
	}
	// Page maxPages released maxPages+1, which got a ticket of its own.
	info, err := q.JetStream().Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("%d tickets published, want 1 (for page %d)", n, maxPages+1)
	}
	u := upload(t, tr, id)
	if u.DeliveredPages != maxPages || u.Status != tracker.StatusDelivering {
		t.Fatalf("upload %+v, want %d delivered and still delivering", u, maxPages)
	}
}

// A worker dies in the middle of a chain (its request for page 3 never
// ends). A ticket message of its own for page 3 does not send it while the
// lease lasts; the redelivered ticket message (its next delivery) walks the
// chain, takes page 3 over and finishes the upload; the dead request's late
// answer changes nothing.
func TestRedeliveredTicketWalksTheChain(t *testing.T) {
	hung := make(chan struct{})
	s := &fakeSender{hang: map[int]chan struct{}{3: hung}}
	d, tr, _, id := chainEnv(t, 6, s)
	ctx := context.Background()
	tk := &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}
	died := make(chan error, 1)
	go func() { died <- d.Handle(ctx, Ticket{Ticket: tk, Token: "41.1"}) }()
	waitSent(t, s, 3)

	s.mu.Lock()
	delete(s.hang, 3)
	s.mu.Unlock()
	other := Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 3, Tenant: "acme"}, Token: "99.1"}
	var retry *RetryError
	if err := d.Handle(ctx, other); !errors.As(err, &retry) || retry.After < leaseFor-time.Minute {
		t.Fatalf("another message's ticket for the leased page 3: %v, want to come back when the lease lapses", err)
	}
	if got := s.pages(); len(got) != 3 {
		t.Fatalf("another ticket sent a page held by the chain: %v", got)
	}

	// JetStream delivers the first ticket message again: page 1, delivery 2.
	if err := d.Handle(ctx, Ticket{Ticket: tk, Token: "41.2"}); err != nil {
		t.Fatal(err)
	}
	u := upload(t, tr, id)
	if u.Status != tracker.StatusCompleted || u.DeliveredPages != 6 {
		t.Fatalf("after the redelivery: %+v, want completed with 6 pages", u)
	}
	want := []int{1, 2, 3, 3, 4, 5, 6}
	if got := s.pages(); len(got) != len(want) {
		t.Fatalf("pages sent %v, want %v", got, want)
	}
	close(hung)
	if err := <-died; !errors.Is(err, ErrSuperseded) {
		t.Fatalf("the late answer of the dead request: %v, want ErrSuperseded (its message has a later delivery)", err)
	}
	if got := s.pages(); len(got) != len(want) {
		t.Fatalf("the late answer sent more pages: %v", got)
	}
	if u, _ := tr.Get(ctx, id, "acme"); u.DeliveredPages != 6 || u.Status != tracker.StatusCompleted {
		t.Fatalf("after the late answer: %+v", u)
	}
}

// A worker that only seemed dead (it missed its heartbeats) comes back after
// the message's next delivery took its chain over: it stops at once instead
// of sending the rest of the chain alongside, and leaves the message alone.
func TestEarlierDeliveryIsSuperseded(t *testing.T) {
	slow, stuck := make(chan struct{}), make(chan struct{})
	s := &fakeSender{hang: map[int]chan struct{}{3: slow}}
	d, tr, _, id := chainEnv(t, 6, s)
	ctx := context.Background()
	tk := &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}
	first := make(chan error, 1)
	go func() { first <- d.Handle(ctx, Ticket{Ticket: tk, Token: "7.1"}) }()
	waitSent(t, s, 3)

	// The second delivery takes page 3 over, sends it, and is slow on page 4.
	s.mu.Lock()
	s.hang = map[int]chan struct{}{4: stuck}
	s.mu.Unlock()
	second := make(chan error, 1)
	go func() { second <- d.Handle(ctx, Ticket{Ticket: tk, Token: "7.2"}) }()
	waitSent(t, s, 5) // 1, 2, 3, 3, 4

	close(slow) // the first delivery's request for page 3 ends
	select {
	case err := <-first:
		if !errors.Is(err, ErrSuperseded) {
			t.Fatalf("the earlier delivery: %v, want ErrSuperseded", err)
		}
	case <-time.After(10 * time.Second):
		close(stuck)
		t.Fatalf("the earlier delivery did not stop: it is sending %v", s.pages())
	}
	if got := s.pages(); len(got) != 5 {
		t.Fatalf("the earlier delivery went on sending: %v", got)
	}
	close(stuck)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if got := s.pages(); len(got) != 7 {
		t.Fatalf("pages sent %v, want 1, 2, 3, 3, 4, 5, 6", got)
	}
	if u, _ := tr.Get(ctx, id, "acme"); u.DeliveredPages != 6 || u.Status != tracker.StatusCompleted {
		t.Fatalf("upload %+v, want completed", u)
	}
}

// An earlier delivery whose attempt at a page fails after a later delivery
// has sent that page does not settle the shared message (a retry would
// reschedule it under the later delivery, a second worker would then send
// the page that delivery carries): it goes on as a ticket finding the page
// done, and stops at the later delivery's lease.
func TestEarlierDeliveryFailingLateLeavesTheMessage(t *testing.T) {
	slow, stuck := make(chan struct{}), make(chan struct{})
	s := &fakeSender{hang: map[int]chan struct{}{3: slow}}
	d, tr, _, id := chainEnvRetries(t, 5, 3, s)
	ctx := context.Background()
	tk := &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}
	first := make(chan error, 1)
	go func() { first <- d.Handle(ctx, Ticket{Ticket: tk, Token: "8.1"}) }()
	waitSent(t, s, 3)
	s.mu.Lock()
	s.hang = map[int]chan struct{}{3: slow, 4: stuck}
	s.mu.Unlock()
	second := make(chan error, 1)
	go func() {
		s.mu.Lock()
		delete(s.hang, 3) // the second delivery's request for page 3 answers at once
		s.mu.Unlock()
		second <- d.Handle(ctx, Ticket{Ticket: tk, Token: "8.2"})
	}()
	waitSent(t, s, 5) // 1, 2, 3, 3, 4: page 3 delivered by the second, page 4 under way

	s.mu.Lock()
	s.status = map[int]int{3: 500}
	s.mu.Unlock()
	close(slow) // the first delivery's request for page 3 now answers 500
	select {
	case err := <-first:
		if !errors.Is(err, ErrSuperseded) {
			t.Fatalf("the earlier delivery: %v, want ErrSuperseded (leave the message alone)", err)
		}
	case <-time.After(10 * time.Second):
		close(stuck)
		t.Fatalf("the earlier delivery did not stop: pages sent %v", s.pages())
	}
	close(stuck)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	u := upload(t, tr, id)
	if u.Status != tracker.StatusCompleted || u.DeliveredPages != 5 {
		t.Fatalf("upload %+v, want completed", u)
	}
	if got := s.pages(); len(got) != 6 {
		t.Fatalf("pages sent %v, want 1, 2, 3, 3, 4, 5", got)
	}
}

// waitSent waits until s has sent n requests.
func waitSent(t *testing.T, s interface{ pages() []int }, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.pages()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("pages sent %v, want %d of them", s.pages(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A worker that is shutting down finishes the page under way but carries
// no more: the message goes back (ErrShutdown) and its next delivery
// carries on from the page it released.
func TestDrainingWorkerDoesNotCarryPages(t *testing.T) {
	s := &fakeSender{}
	d, tr, _, id := chainEnv(t, 3, s)
	ctx := context.Background()
	stopped := make(chan struct{})
	close(stopped)
	tk := &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}
	if err := d.Handle(withDraining(ctx, stopped), Ticket{Ticket: tk, Token: "5.1"}); !errors.Is(err, ErrShutdown) {
		t.Fatalf("a draining worker: %v, want ErrShutdown (hand the message back)", err)
	}
	if got := s.pages(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("a draining worker sent pages %v, want only 1", got)
	}
	if u, _ := tr.Get(ctx, id, "acme"); u.DeliveredPages != 1 {
		t.Fatalf("upload %+v, want 1 page delivered", u)
	}
	if err := d.Handle(ctx, Ticket{Ticket: tk, Token: "5.2"}); err != nil {
		t.Fatal(err)
	}
	if u, _ := tr.Get(ctx, id, "acme"); u.DeliveredPages != 3 || u.Status != tracker.StatusCompleted {
		t.Fatalf("after the next delivery: %+v, want completed", u)
	}
	if got := s.pages(); len(got) != 3 {
		t.Fatalf("pages sent %v, want 1, 2, 3", got)
	}
}

// upload reads the test upload of chainEnv.
func upload(t testing.TB, tr *tracker.Tracker, id string) *tracker.Upload {
	t.Helper()
	u, err := tr.Get(context.Background(), id, "acme")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A stored page that cannot be decoded (its compressed records damaged) is
// recorded as undelivered with the reason, not handed back forever; the
// upload finishes.
func TestUnreadablePageIsRecordedFailed(t *testing.T) {
	s := &fakeSender{}
	d, tr, q, id := chainEnv(t, 2, s)
	ctx := context.Background()
	bad, err := proto.Marshal(&hooklinev1.Page{UploadId: id, Page: 2, RecordCount: 1, RecordsS2: []byte("not s2")})
	if err != nil {
		t.Fatal(err)
	}
	// Stored after the good page under the same subject (no message id: the
	// good page's id would drop it): direct gets answer the last one.
	if _, err := q.JetStream().Publish(ctx, queue.PageSubject(id, 2), bad); err != nil {
		t.Fatal(err)
	}
	err = d.Handle(ctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}, Token: "1.1"})
	var dead *DeadError
	if !errors.As(err, &dead) {
		t.Fatalf("Handle = %v, want the page recorded undelivered (a dead letter), not handed back", err)
	}
	if got := s.pages(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("pages sent %v, want only page 1", got)
	}
	u := upload(t, tr, id)
	if u.Status != tracker.StatusFailed || u.DeliveredPages != 1 || u.FailedPages != 1 {
		t.Fatalf("upload %+v, want failed with page 2 undelivered", u)
	}
	fails, err := tr.Failures(ctx, id)
	if err != nil || len(fails) != 1 || fails[0].Page != 2 || !strings.Contains(fails[0].Error, "cannot be decoded") {
		t.Fatalf("failure log = %+v, %v", fails, err)
	}
}
