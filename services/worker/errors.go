package worker

import (
	"errors"
	"fmt"
	"time"

	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// The kind of error Handle returns decides what happens to the ticket, in one
// place (settle):
//
//	nil          → Ack: delivered, a duplicate, or nothing left to do
//	*RetryError  → NakWithDelay: the customer's endpoint failed, attempts are left
//	*DeadError   → copy to the DEAD stream, then Term: out of attempts
//	ErrSuperseded→ nothing: a later delivery of the message holds it
//	anything else→ Nak after a short delay: our own infrastructure failed;
//	               no customer attempt is spent.

// RetryError asks for the ticket to come back after After.
type RetryError struct {
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string { return fmt.Sprintf("retry in %s: %v", e.After, e.Err) }
func (e *RetryError) Unwrap() error { return e.Err }

// DeadError says the page is finally undelivered. Ticket is the page's
// ticket (the message's own, or a page it released, see follow).
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
