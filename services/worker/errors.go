package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// The kind of error Handle returns decides what happens to the ticket
// message, here and nowhere else (settle):
//
//	nil           → Ack: delivered, a duplicate, or nothing left to do
//	*RetryError   → NakWithDelay(After): the customer's endpoint failed and
//	                attempts are left, the page's next attempt is not due, or
//	                another ticket holds the page
//	*DeadError    → copy to HOOKLINE_DEAD, then Term: out of attempts
//	ErrSuperseded → nothing: a later delivery of the message holds it
//	ErrShutdown   → Nak: the worker stopped before the delivery ended; no
//	                customer attempt is spent
//	anything else → NakWithDelay(1s): our own infrastructure failed; no
//	                customer attempt is spent

// RetryError asks for the ticket to come back after After.
type RetryError struct {
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string { return fmt.Sprintf("retry in %s: %v", e.After, e.Err) }
func (e *RetryError) Unwrap() error { return e.Err }

// DeadError says the page is finally undelivered. Ticket is the page's
// ticket (the message's own, or that of a page the message carried).
type DeadError struct {
	Reason string
	Ticket *hooklinev1.Ticket
}

func (e *DeadError) Error() string { return "undelivered: " + e.Reason }

// ErrSuperseded: a later delivery of the same ticket message took the work
// over (this worker had missed its heartbeats); the message is left to it:
// neither acknowledged nor handed back.
var ErrSuperseded = errors.New("a later delivery of the ticket took over")

// ErrShutdown: the worker stopped before the delivery ended; the page is
// handed back without counting an attempt.
var ErrShutdown = errors.New("worker shutting down")

// settle does to the ticket message what Handle's result says (the table
// above).
func settle(ctx context.Context, q Queue, msg jetstream.Msg, t Ticket, herr error, m *Metrics, log *zap.Logger) {
	var retry *RetryError
	var dead *DeadError
	var err error
	switch {
	case herr == nil:
		err = msg.Ack()
	case errors.As(herr, &retry):
		err = msg.NakWithDelay(retry.After)
	case errors.As(herr, &dead):
		if perr := q.PublishDead(ctx, cmp.Or(dead.Ticket, t.Ticket), dead.Reason); perr != nil {
			log.Warn("copy to dead letters", zap.Error(perr))
		}
		err = msg.TermWithReason("undelivered: " + truncate(dead.Reason, 200))
	case errors.Is(herr, ErrSuperseded):
		log.Debug("ticket left to its later delivery", zap.String("upload", t.GetUploadId()), zap.Uint32("page", t.GetPage()))
		return
	case errors.Is(herr, ErrShutdown):
		err = msg.Nak()
	default:
		m.infraErrors.Inc()
		log.Warn("delivery interrupted by an infrastructure error; ticket handed back", zap.String("upload", t.GetUploadId()), zap.Uint32("page", t.GetPage()), zap.Error(herr))
		err = msg.NakWithDelay(time.Second)
	}
	if err != nil {
		log.Warn("settle ticket", zap.Error(err))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
