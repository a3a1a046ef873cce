package worker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// step is what one request for a page does.
type step struct {
	wait chan struct{} // block until closed (nil: answer at once)
	code int           // status (0: 200)
}

// scripted answers each page's n-th request as its plan says.
type scripted struct {
	mu    sync.Mutex
	calls map[int]int
	plan  map[int][]step
	sent  []int
}

func (s *scripted) Send(ctx context.Context, req webhook.Request) webhook.Result {
	p, _ := strconv.Atoi(req.ID[strings.LastIndexByte(req.ID, '.')+1:])
	s.mu.Lock()
	i := s.calls[p]
	s.calls[p] = i + 1
	s.sent = append(s.sent, p)
	var st step
	if i < len(s.plan[p]) {
		st = s.plan[p][i]
	}
	s.mu.Unlock()
	if st.wait != nil {
		select {
		case <-st.wait:
		case <-ctx.Done():
			return webhook.Result{Err: ctx.Err()}
		}
	}
	if st.code == 0 {
		st.code = 200
	}
	return webhook.Result{StatusCode: st.code}
}

func (s *scripted) pages() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sent...)
}

func newScripted(plan map[int][]step) *scripted {
	return &scripted{calls: map[int]int{}, plan: plan}
}

// The later delivery of a message fails a page for good and terminates the
// message; the earlier delivery's request for that page then answers 2xx.
// The earlier delivery must not carry on under the terminated message (its
// chain would be lost with it): it records the late success and stops, and
// the ticket the later delivery published for the next page finishes the
// upload.
func TestLateSuccessOfAnEarlierDeliveryDoesNotCarryOn(t *testing.T) {
	late := make(chan struct{})
	s := newScripted(map[int][]step{3: {{wait: late}, {code: 500}}})
	d, tr, _, id := chainEnvRetries(t, 6, 0, s)
	ctx := context.Background()
	tk := &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}
	first := make(chan error, 1)
	go func() { first <- d.Handle(ctx, Ticket{Ticket: tk, Token: "8.1"}) }()
	waitSent(t, s, 3)
	var dead *DeadError
	if err := d.Handle(ctx, Ticket{Ticket: tk, Token: "8.2"}); !errors.As(err, &dead) {
		t.Fatalf("the later delivery: %v, want DeadError (page 3 failed, message terminated)", err)
	}
	close(late)
	if err := <-first; !errors.Is(err, ErrSuperseded) {
		t.Fatalf("the earlier delivery: %v, want ErrSuperseded", err)
	}
	if got := s.pages(); len(got) != 4 {
		t.Fatalf("the earlier delivery carried on: pages sent %v", got)
	}
	// The ticket of page 4, published when page 3 failed.
	if err := d.Handle(ctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 4, Tenant: "acme"}, Token: "20.1"}); err != nil {
		t.Fatal(err)
	}
	u := upload(t, tr, id)
	if u.Status != tracker.StatusCompleted || u.DeliveredPages != 6 {
		t.Fatalf("upload %+v, want completed with 6 pages (page 3 arrived late)", u)
	}
}

// A delivery from before a manual retry finishes after it: its outcome is
// not recorded (the retry owns the page), it carries nothing on, and the
// retry's tickets finish the upload.
func TestAttemptFromBeforeARetryChangesNothing(t *testing.T) {
	late := make(chan struct{})
	s := newScripted(map[int][]step{1: {{wait: late}, {code: 500}}, 2: {{code: 500}}})
	d, tr, _, id := chainEnvRetries(t, 2, 0, s)
	ctx := context.Background()
	tk := &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}
	first := make(chan error, 1)
	go func() { first <- d.Handle(ctx, Ticket{Ticket: tk, Token: "8.1"}) }()
	waitSent(t, s, 1)
	var dead *DeadError
	if err := d.Handle(ctx, Ticket{Ticket: tk, Token: "8.2"}); !errors.As(err, &dead) {
		t.Fatalf("the later delivery of page 1: %v, want DeadError", err)
	}
	if err := d.Handle(ctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 2, Tenant: "acme"}, Token: "9.1"}); !errors.As(err, &dead) {
		t.Fatalf("page 2: %v, want DeadError", err)
	}
	r, err := tr.Retry(ctx, id, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	close(late) // the first delivery's request for page 1 answers 200, after the retry
	if err := <-first; err != nil {
		t.Fatalf("the attempt from before the retry: %v, want nil (drop the old message)", err)
	}
	if got := s.pages(); len(got) != 3 {
		t.Fatalf("the old delivery carried on: pages sent %v", got)
	}
	if u, _ := tr.Get(ctx, id, "acme"); u.DeliveredPages != 0 || u.Status != tracker.StatusDelivering {
		t.Fatalf("the old attempt was recorded: %+v", u)
	}
	if err := d.Handle(ctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme", Gen: uint32(r.Gen)}, Token: "30.1"}); err != nil {
		t.Fatal(err)
	}
	u := upload(t, tr, id)
	if u.Status != tracker.StatusCompleted || u.DeliveredPages != 2 {
		t.Fatalf("after the retry: %+v, want completed", u)
	}
}

// twiceFinish runs every Finish twice and answers the second run's answer:
// a client that resent a call whose first answer it lost.
type twiceFinish struct{ *tracker.Tracker }

func (tr twiceFinish) Finish(ctx context.Context, c tracker.Call, f tracker.Finish) (tracker.Decision, error) {
	if _, err := tr.Tracker.Finish(ctx, c, f); err != nil {
		return tracker.Decision{}, err
	}
	return tr.Tracker.Finish(ctx, c, f)
}

// A failed finish whose first run's answer was lost (the client sent it
// again): the second answer says the page is done as failed and the
// upload's event is pending; the worker announces it and terminates the
// message with a dead letter.
func TestFailedFinishRunTwiceStillAnnounces(t *testing.T) {
	d, tr, _, id := chainEnvRetries(t, 1, 0, newScripted(map[int][]step{1: {{code: 500}}}))
	d.tr = twiceFinish{tr}
	ctx := context.Background()
	var dead *DeadError
	if err := d.Handle(ctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}, Token: "5.1"}); !errors.As(err, &dead) {
		t.Fatalf("Handle = %v, want DeadError", err)
	}
	if dec, err := tr.Begin(ctx, tracker.Call{Upload: id, Page: 1, Token: "x.1"}, leaseFor, time.Now()); err != nil || dec.Kind != tracker.Done || dec.Announce {
		t.Fatalf("after the message ended: %+v, %v, want the page done and no completion event pending", dec, err)
	}
}

// A delivery that gives its page back (shutdown) and finds it finished by a
// later delivery whose event publish failed announces the upload.
func TestGiveBackAnnouncesAPendingCompletion(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	d, tr, _, id := chainEnvRetries(t, 1, 0, newScripted(map[int][]step{1: {{wait: hang}}}))
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		first <- d.Handle(ctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}, Token: "5.1"})
	}()
	waitSent(t, d.send.(*scripted), 1)
	// The message's next delivery sends the page and finishes the upload,
	// but its worker dies before it announces it.
	later := tracker.Call{Upload: id, Page: 1, Token: "5.2"}
	if dec, err := tr.Begin(ctx, later, leaseFor, time.Now()); err != nil || dec.Kind != tracker.Send {
		t.Fatalf("later delivery: %+v, %v", dec, err)
	}
	if dec, err := tr.Finish(ctx, later, tracker.Finish{Outcome: tracker.Delivered}); err != nil || dec.Completion == nil {
		t.Fatalf("later delivery's finish: %+v, %v", dec, err)
	}
	cancel() // shutdown cuts the first delivery's request short
	if err := <-first; !errors.Is(err, ErrSuperseded) {
		t.Fatalf("the first delivery: %v, want ErrSuperseded", err)
	}
	if dec, err := tr.Begin(context.Background(), tracker.Call{Upload: id, Page: 1, Token: "x.1"}, leaseFor, time.Now()); err != nil || dec.Announce {
		t.Fatalf("after the first delivery gave its page back: %+v, %v, want no completion event pending", dec, err)
	}
}

// slowPublish holds the first ticket publish until unblock is closed (a
// NATS connection that is reconnecting, a slow replicated publish).
type slowPublish struct {
	*queue.Queue
	entered, unblock chan struct{}
	mu               sync.Mutex
	n                int
}

func (s *slowPublish) PublishTicket(ctx context.Context, t *hooklinev1.Ticket, gen int) error {
	s.mu.Lock()
	s.n++
	first := s.n == 1
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.unblock
	}
	return s.Queue.PublishTicket(ctx, t, gen)
}

// A delivery fails page 1 for good and, while it publishes the next page's
// ticket, goes silent long enough for the message's next delivery to start.
// That delivery finds page 1 done as failed: it must not carry on under a
// message the first delivery is about to terminate; it publishes the same
// (de-duplicated) ticket and lets the message end, and that ticket finishes
// the upload.
func TestNoCarryingPastAFailedPage(t *testing.T) {
	s := newScripted(map[int][]step{1: {{code: 500}, {code: 500}}})
	d, tr, q, id := chainEnvRetries(t, 4, 1, s)
	sp := &slowPublish{Queue: q, entered: make(chan struct{}), unblock: make(chan struct{})}
	d.q = sp
	ctx := context.Background()
	tk := &hooklinev1.Ticket{UploadId: id, Page: 1, Tenant: "acme"}
	var retry *RetryError
	if err := d.Handle(ctx, Ticket{Ticket: tk, Token: "8.1"}); !errors.As(err, &retry) {
		t.Fatalf("first attempt: %v, want a retry", err)
	}
	// Retry interval 0: the next delivery may go at once.
	failing := make(chan error, 1)
	go func() { failing <- d.Handle(ctx, Ticket{Ticket: tk, Token: "8.2"}) }()
	<-sp.entered // page 1 is recorded failed; the ticket of page 2 is on its way
	if err := d.Handle(ctx, Ticket{Ticket: tk, Token: "8.3"}); err != nil {
		t.Fatalf("the next delivery: %v, want nil (page 2's ticket published, message ends)", err)
	}
	if got := s.pages(); len(got) != 2 {
		t.Fatalf("the next delivery carried on past the failed page: pages sent %v", got)
	}
	close(sp.unblock)
	var dead *DeadError
	if err := <-failing; !errors.As(err, &dead) {
		t.Fatalf("the failing delivery: %v, want DeadError", err)
	}
	info, err := q.JetStream().Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("%d tickets stored, want the one of page 2 (published twice, stored once)", n)
	}
	if err := d.Handle(ctx, Ticket{Ticket: &hooklinev1.Ticket{UploadId: id, Page: 2, Tenant: "acme"}, Token: "20.1"}); err != nil {
		t.Fatal(err)
	}
	u := upload(t, tr, id)
	if u.Status != tracker.StatusFailed || u.DeliveredPages != 3 || u.FailedPages != 1 {
		t.Fatalf("upload %+v, want finished: 3 delivered, page 1 failed", u)
	}
}
