// Package worker delivers pages: it takes tickets from the DELIVERIES stream,
// reads the page, POSTs it to the upload's webhook and records the outcome.
// Workers keep no state of their own: any number of them share one consumer.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/secrets"
	"github.com/hookline/hookline/pkg/templates"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// Tracker is the upload state the worker needs.
type Tracker interface {
	Begin(ctx context.Context, c tracker.Call, leaseFor time.Duration, now time.Time) (tracker.Decision, error)
	Finish(ctx context.Context, c tracker.Call, f tracker.Finish) (tracker.Decision, error)
	Get(ctx context.Context, id, tenant string) (*tracker.Upload, error)
	Announced(ctx context.Context, id string, completedAt time.Time) error
	Gate(ctx context.Context, tenant, template string, p tracker.Protection) (tracker.Gate, error)
	Report(ctx context.Context, tenant, template string, p tracker.Protection, delivered, probe bool, reason string) (tracker.Change, time.Time, error)
}

// Queue is what the worker reads and writes in JetStream.
type Queue interface {
	GetPage(ctx context.Context, uploadID string, page int) (*hooklinev1.Page, error)
	PublishTicket(ctx context.Context, t *hooklinev1.Ticket, gen int) error
	PublishDead(ctx context.Context, t *hooklinev1.Ticket, reason string) error
	PublishCompleted(ctx context.Context, ev *hooklinev1.UploadCompleted) error
	PurgeUpload(ctx context.Context, uploadID string) error
	PublishTemplateEvent(ctx context.Context, ev queue.TemplateEvent) error
	PublishNotification(ctx context.Context, n queue.Notification, dedup string) error
}

// Sender sends one webhook request.
type Sender interface {
	Send(ctx context.Context, req webhook.Request) webhook.Result
}

// Ticket is one delivery request as the handler sees it.
type Ticket struct {
	*hooklinev1.Ticket
	// Token identifies this delivery of the ticket message:
	// "<stream sequence>.<delivery count>". A later delivery of the same
	// message may take over the pages an earlier one leased.
	Token string
}

// Deliverer handles tickets. It is safe for concurrent use.
type Deliverer struct {
	q       Queue
	tr      Tracker
	send    Sender
	secrets *secrets.Box
	log     *zap.Logger
	metrics *Metrics
	now     func() time.Time
	bufs    sync.Pool
	tmpl    TemplateSource // nil: sign with the upload's snapshot only
	// pagesMaxAge: a page younger than this that is not found is taken for
	// a lagging replica, not for lost (0: every miss is final).
	pagesMaxAge time.Duration
}

// WithPagesMaxAge tells the Deliverer how long pages are kept.
func WithPagesMaxAge(d time.Duration) DelivererOption {
	return func(dl *Deliverer) { dl.pagesMaxAge = d }
}

// DelivererOption configures a Deliverer.
type DelivererOption func(*Deliverer)

// WithTemplates makes the Deliverer sign with each template's current
// signing secrets (cached for ttl) instead of the snapshot taken at import.
func WithTemplates(src TemplateSource, ttl time.Duration) DelivererOption {
	return func(d *Deliverer) { d.tmpl = newTemplateCache(src, ttl) }
}

// NewDeliverer builds a Deliverer.
func NewDeliverer(q Queue, tr Tracker, send Sender, box *secrets.Box, log *zap.Logger, m *Metrics, opts ...DelivererOption) *Deliverer {
	d := &Deliverer{q: q, tr: tr, send: send, secrets: box, log: log, metrics: m, now: time.Now,
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}}
	for _, o := range opts {
		o(d)
	}
	return d
}

// leaseFor is how long a worker holds a page: the longest a handler can take
// (page read and template read, 30 s each at most, plus the 120 s maximum
// timeout) with a margin.
const leaseFor = 4 * time.Minute

// maxPages bounds how many pages one ticket message handles: past it, the
// next page gets a ticket of its own, so a long upload leaves the worker's
// slot now and then and other uploads get their turn.
const maxPages = 16

// Handle takes one ticket message to its end, and is the only place where
// the tracker's decisions turn into the next step. Each decision is about
// one page (call.Page). A page done lets the upload's next page go; that
// page is carried under the same message (its lease carries the message's
// token, so the message's next delivery can take it over) until maxPages,
// or until another tenant waits for this slot (yielding), when it gets a
// ticket of its own. The error returned decides the message's fate
// (errors.go).
func (d *Deliverer) Handle(ctx context.Context, t Ticket) error {
	call := tracker.Call{Upload: t.GetUploadId(), Page: int(t.GetPage()), Gen: int(t.GetGen()), Token: t.Token}
	dec, err := d.tr.Begin(ctx, pauseCall(call, t, nil), leaseFor, d.now())
	var (
		u     *tracker.Upload // the upload, as the first Send told it
		last  *tracker.Finish // the outcome this delivery recorded last
		cause error           // why the page was given back
		pages = 1             // pages this message has handled
	)
	// Each page takes two decisions at most (begin, finish).
	for range 2*maxPages + 1 {
		if err != nil {
			return fmt.Errorf("tracker: %w", err)
		}
		// Lazy: most pages log nothing, and With would encode the fields anyway.
		log := d.log.WithLazy(zap.String("upload", call.Upload), zap.Int("page", call.Page))
		switch dec.Kind {
		case tracker.Send:
			u = cmp.Or(dec.Upload, u)
			lightWork(ctx, u)
			// The template's gate: its rate limit, or its pause, may hold
			// the page back. The lease stays ours if Redis fails here: the
			// message's next delivery takes it over.
			g, gerr := d.gate(ctx, u, dec.Pause)
			if gerr != nil {
				return fmt.Errorf("tracker gate: %w", gerr)
			}
			var f tracker.Finish
			if g.Kind == tracker.Go {
				f, cause = d.attempt(ctx, call.Page, u, dec.Attempts, g.Probe, log)
			} else {
				f, cause = d.hold(g, log)
			}
			fc := call
			if f.Outcome == tracker.Delivered && pages < maxPages && !draining(ctx) && !yielding(ctx) {
				f.Carry = leaseFor // the next page, if free, is ours at once
				fc = pauseCall(call, t, u)
			}
			// The outcome is recorded even when shutdown has begun: the
			// attempt happened.
			dec, err = d.tr.Finish(context.WithoutCancel(ctx), fc, f)
			if err != nil && cause != nil {
				return errors.Join(cause, fmt.Errorf("tracker: give the page back: %w", err))
			}
			if err != nil {
				// The attempt was made but not recorded: the page may be
				// sent once more (delivery is at-least-once), but not sooner
				// than the retry interval.
				d.metrics.infraErrors.Inc()
				log.Warn("recording the attempt failed; ticket handed back", zap.Error(err))
				return &RetryError{After: max(time.Second, u.Destination.RetryInterval()), Err: fmt.Errorf("tracker finish: %w", err)}
			}
			last = &f
			d.recorded(f, dec, log)
			if dec.Kind == tracker.Send { // carried: the next page is leased to us
				call.Page, pages = dec.Page, pages+1
			}
		case tracker.Done:
			if err := d.announce(ctx, t, u, dec, log); err != nil {
				return err
			}
			switch {
			case dec.Failed:
				// Nothing is carried past a failed page: the delivery that
				// failed it terminates its message.
				if err := d.publishNext(ctx, t, u, dec); err != nil {
					return err
				}
				if last != nil && last.Outcome == tracker.Failed {
					return &DeadError{Reason: last.Attempt.Error, Ticket: &hooklinev1.Ticket{
						UploadId: call.Upload, Page: uint32(call.Page), Tenant: t.GetTenant(), Gen: t.GetGen(), DeliveryShare: t.GetDeliveryShare(), Template: t.GetTemplate()}} // #nosec G115 -- page numbers are far below 2^32
				}
				return nil
			case dec.Next == 0:
				return nil
			case draining(ctx):
				// The message goes back and its next delivery carries on
				// from here: a ticket published instead could not take over
				// pages this message holds further on.
				return ErrShutdown
			case pages >= maxPages || yielding(ctx):
				// The next page queues up behind the tickets waiting.
				if heldBack(ctx) {
					d.metrics.lightYields.Inc()
				}
				return d.publishNext(ctx, t, u, dec)
			}
			call.Page, pages = dec.Next, pages+1
			dec, err = d.tr.Begin(ctx, pauseCall(call, t, u), leaseFor, d.now())
		case tracker.Wait:
			return &RetryError{After: dec.Wait, Err: errNotDue}
		case tracker.Busy:
			if pages > 1 {
				// Met while carrying on: that lease's message owns the rest
				// of the upload's pages (and comes back for them if its
				// worker dies).
				return nil
			}
			// A duplicate ticket: come back once the lease has lapsed.
			// Normally the page is done by then; should its holder never
			// return, this ticket takes it over.
			return &RetryError{After: dec.Wait + time.Second, Err: errors.New("another ticket holds the page")}
		case tracker.GivenBack:
			return cause
		case tracker.Superseded:
			// A later delivery of this message has begun and goes on from
			// here; only announcing what this call finished is ours to do.
			if err := d.announce(ctx, t, u, dec, log); err != nil {
				log.Warn("announce a finished upload", zap.Error(err))
			}
			return ErrSuperseded
		case tracker.Gone:
			log.Warn("ticket for an unknown upload dropped")
			return nil
		case tracker.Stale:
			log.Debug("ticket from before a manual retry dropped")
			return nil
		default:
			return fmt.Errorf("tracker: unexpected decision %v", dec.Kind)
		}
	}
	return errors.New("delivery did not end within its bound of steps")
}

var errNotDue = errors.New("the page's next attempt is not due yet")

// pausedRecheck bounds how long a page of a paused template waits before it
// asks the gate again, so a resume by hand is seen within it.
const pausedRecheck = 5 * time.Second

var (
	errLimited = errors.New("held back by the template's rate limit")
	errPaused  = errors.New("the template is paused")
)

// hold gives a page the gate held back to its ticket without an attempt:
// the ticket comes back when the gate says (NakWithDelay), and no worker
// slot waits meanwhile.
func (d *Deliverer) hold(g tracker.Gate, log *zap.Logger) (tracker.Finish, error) {
	err := errLimited
	if g.Kind == tracker.Held {
		err = errPaused
		d.metrics.held.Inc()
	} else {
		d.metrics.limited.Inc()
	}
	log.Debug("page held back", zap.String("reason", err.Error()), zap.Duration("for", g.Wait))
	return tracker.Finish{Outcome: tracker.Released, Now: d.now()}, &RetryError{After: g.Wait, Err: err}
}

// tracer makes a span per delivery attempt, in the trace of the ticket.
var tracer = otel.Tracer("github.com/hookline/hookline/services/worker")

// deliverSpan is the attempt span's options, built once: built per call
// they cost two allocations a page even with tracing off.
var deliverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// attempt sends a page leased to this delivery (attempts made so far) and
// says what to record. When no attempt was made (our own fault, or
// shutdown) the page is given back, and cause says why. A probe (the page
// the gate let go to a paused template) that fails is given back too: it
// waits for the next probe without spending an attempt.
func (d *Deliverer) attempt(ctx context.Context, page int, u *tracker.Upload, attempts int, probe bool, log *zap.Logger) (f tracker.Finish, cause error) {
	n := attempts + 1
	ctx, span := tracer.Start(ctx, "deliver", deliverSpan...)
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(attribute.String("hookline.upload_id", u.ID), attribute.Int("hookline.page", page),
				attribute.Int("hookline.attempt", n), attribute.String("hookline.outcome", string(f.Outcome)))
		}
		span.End()
	}()
	f = tracker.Finish{Now: d.now()}
	f.Attempt = &tracker.Attempt{Page: page, Attempt: n, At: f.Now.UTC()}
	givenBack := func(cause error) (tracker.Finish, error) {
		f.Outcome, f.Attempt.Error = tracker.Released, "not sent or not counted: "+cause.Error()
		f.Attempt.Outcome = string(f.Outcome)
		return f, cause
	}
	failed := func(reason string) (tracker.Finish, error) {
		f.Outcome, f.Attempt.Error = tracker.Failed, reason
		f.Attempt.Outcome = string(f.Outcome)
		f.Failure = &tracker.Failure{Page: page, Attempts: n, StatusCode: f.Attempt.StatusCode, Error: reason, At: f.Attempt.At}
		return f, nil
	}

	pg, err := d.q.GetPage(ctx, u.ID, page)
	switch {
	case errors.Is(err, queue.ErrPageNotFound) && d.pagesMaxAge > 0 && f.Now.Sub(u.CreatedAt) < d.pagesMaxAge-time.Minute:
		// Young pages are not gone: a direct get answered by a replica that
		// has not caught up yet. Try again shortly.
		return givenBack(fmt.Errorf("read page: %w (the replica may lag)", err))
	case errors.Is(err, queue.ErrPageNotFound):
		// Older than the stream's MaxAge: it can never be delivered.
		return failed("page data no longer stored (older than the PAGES stream's max age)")
	case errors.Is(err, queue.ErrPageUnreadable):
		// A damaged page would be handed back forever: record it instead.
		return failed(err.Error())
	case err != nil:
		return givenBack(fmt.Errorf("read page: %w", err))
	}
	dest, err := d.destination(ctx, u)
	switch {
	case errors.Is(err, secrets.ErrDecrypt):
		// Retrying cannot help until an operator restores the key (the page
		// can be retried once the key is back).
		return failed(err.Error() + " (is the key that sealed it missing from HOOKLINE_ENCRYPTION_KEYS?)")
	case err != nil:
		return givenBack(err)
	}

	bufp := d.bufs.Get().(*[]byte)
	defer d.bufs.Put(bufp)
	body := webhook.AppendBody((*bufp)[:0], webhook.Page{
		Template: u.Template, UploadID: u.ID, Data: pg.GetRecords(),
		TotalRecords: u.TotalRecords, TotalPages: u.TotalPages, Page: page,
		PageSize: int(pg.GetRecordCount()), Extra: u.Extra,
	})
	*bufp = body
	d.metrics.inFlight.Inc()
	res := d.sendCounted(ctx, webhook.Request{Destination: dest, ID: u.ID + "." + strconv.Itoa(page), Body: body})
	d.metrics.inFlight.Dec()
	d.metrics.duration.Observe(res.Duration.Seconds())
	if !res.Delivered() && ctx.Err() != nil {
		return givenBack(ErrShutdown) // we stopped it, not the customer's endpoint
	}
	d.report(ctx, u, res, probe, log)

	f.Now = d.now()
	a := f.Attempt
	a.At, a.StatusCode, a.ResponseBody, a.DurationMs = f.Now.UTC(), res.StatusCode, string(res.ResponseBody), res.Duration.Milliseconds()
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	switch {
	case res.Delivered():
		f.Outcome = tracker.Delivered
	case probe:
		f.Outcome, a.Error = tracker.Released, "probe of the paused template failed: "+a.Error
		a.Outcome = string(f.Outcome)
		return f, &RetryError{After: u.Destination.Protection(0).ProbeInterval, Err: errPaused}
	case n < 1+u.Destination.RetryCount:
		f.Outcome, f.NextAt = tracker.Retrying, f.Now.Add(RetryDelay(u.Destination.RetryInterval(), res.RetryAfter))
	default:
		return failed(a.Error)
	}
	a.Outcome = string(f.Outcome)
	return f, nil
}

// recorded counts and logs an outcome the tracker recorded.
func (d *Deliverer) recorded(f tracker.Finish, dec tracker.Decision, log *zap.Logger) {
	if f.Attempt == nil { // held back by the gate: no attempt
		return
	}
	d.metrics.attempts.WithLabelValues(string(f.Outcome)).Inc()
	a := f.Attempt
	switch {
	case f.Outcome == tracker.Retrying && dec.Kind == tracker.Wait:
		log.Info("delivery failed, will retry", zap.Int("attempt", a.Attempt), zap.Int("status", a.StatusCode), zap.String("error", a.Error), zap.Duration("in", dec.Wait))
	case !dec.Recorded:
	case f.Outcome == tracker.Delivered:
		d.metrics.delivered.Inc()
	case f.Outcome == tracker.Failed:
		d.metrics.failed.Inc()
		log.Warn("page undelivered, recorded in the failure log", zap.Int("attempts", a.Attempt), zap.Int("status", a.StatusCode), zap.String("error", a.Error))
	}
}

// MaxRetryAfter caps how long a Retry-After answer may hold a page back.
const MaxRetryAfter = time.Hour

// RetryDelay is the wait before the next attempt: the template's retry
// interval, or the endpoint's Retry-After (capped at one hour) when longer.
func RetryDelay(interval, retryAfter time.Duration) time.Duration {
	return max(interval, min(retryAfter, MaxRetryAfter))
}

func (d *Deliverer) destination(ctx context.Context, u *tracker.Upload) (webhook.Destination, error) {
	snap := u.Destination
	current, previous := snap.SealedSigningSecret, ""
	if d.tmpl != nil {
		t, err := d.tmpl.Get(ctx, u.Tenant, u.Template)
		switch {
		case err == nil:
			current, previous = t.Webhook.SigningSecrets(d.now())
		case !isNotFound(err): // a deleted template leaves the snapshot's secret
			return webhook.Destination{}, fmt.Errorf("read template: %w", err)
		}
	}
	auth, err := d.secrets.Open(snap.SealedAuthHeaderValue)
	if err != nil {
		return webhook.Destination{}, fmt.Errorf("open auth header value: %w", err)
	}
	dest := webhook.Destination{URL: snap.URL, AuthHeaderName: snap.AuthHeaderName, AuthHeaderValue: auth, Timeout: snap.Timeout()}
	if dest.SigningSecret, err = d.secrets.Open(current); err != nil {
		return webhook.Destination{}, fmt.Errorf("open signing secret: %w", err)
	}
	if dest.PreviousSigningSecret, err = d.secrets.Open(previous); err != nil {
		return webhook.Destination{}, fmt.Errorf("open previous signing secret: %w", err)
	}
	return dest, nil
}

func isNotFound(err error) bool { return errors.Is(err, templates.ErrNotFound) }

// announce publishes the completion event of a finished upload: the one the
// decision says this call finished, or one whose event is still pending.
func (d *Deliverer) announce(ctx context.Context, t Ticket, u *tracker.Upload, dec tracker.Decision, log *zap.Logger) error {
	ctx = context.WithoutCancel(ctx)
	if c := dec.Completion; c != nil && u != nil {
		done := *u
		done.Status, done.DeliveredPages, done.FailedPages, done.CompletedAt = c.Status, c.Delivered, c.Failed, c.At
		d.metrics.uploads.WithLabelValues(string(c.Status)).Inc()
		return d.completed(ctx, t, &done, log)
	}
	if !dec.Announce {
		return nil
	}
	// A worker died before it confirmed the event published, or its
	// publish failed.
	u, err := d.tr.Get(ctx, t.GetUploadId(), "")
	if err == nil && u.Status != tracker.StatusDelivering {
		err = d.completed(ctx, t, u, log)
	}
	if err != nil && !errors.Is(err, tracker.ErrNotFound) {
		return err
	}
	return nil
}

// sendCounted sends req, its delivery counted as waiting for the endpoint
// meanwhile (sending), even should the send panic.
func (d *Deliverer) sendCounted(ctx context.Context, req webhook.Request) (res webhook.Result) {
	answered := sending(ctx)
	defer func() { answered(res.Duration) }()
	return d.send.Send(ctx, req)
}

// publishNext publishes the ticket of the page a finished page let go on
// (u: the upload, nil when no page of this message was sent).
func (d *Deliverer) publishNext(ctx context.Context, t Ticket, u *tracker.Upload, dec tracker.Decision) error {
	if dec.Next <= 0 {
		return nil
	}
	template := t.GetTemplate()
	if template == "" && u != nil { // a ticket from before tickets named their template
		template = u.Template
	}
	next := &hooklinev1.Ticket{UploadId: t.GetUploadId(), Page: uint32(dec.Next), Tenant: t.GetTenant(), DeliveryShare: t.GetDeliveryShare(), Template: template} // #nosec G115 -- page numbers come from the tracker and are far below 2^32
	if err := d.q.PublishTicket(context.WithoutCancel(ctx), next, dec.Gen); err != nil {
		return fmt.Errorf("publish ticket of page %d: %w", dec.Next, err)
	}
	return nil
}

// completed announces a finished upload and purges a completed upload's
// pages. It may run more than once for an upload (after a crash): the event's
// message id de-duplicates it.
func (d *Deliverer) completed(ctx context.Context, t Ticket, u *tracker.Upload, log *zap.Logger) error {
	log.Info("upload finished", zap.String("uploadStatus", string(u.Status)), zap.Int("delivered", u.DeliveredPages), zap.Int("failed", u.FailedPages))
	ev := &hooklinev1.UploadCompleted{
		UploadId: t.GetUploadId(), Tenant: u.Tenant, Template: u.Template, Status: string(u.Status),
		// #nosec G115 -- page counts come from the tracker and are far below 2^32
		TotalPages: uint32(u.TotalPages), DeliveredPages: uint32(u.DeliveredPages), FailedPages: uint32(u.FailedPages),
		CompletedAtUnixMs: u.CompletedAt.UnixMilli(),
	}
	if err := d.q.PublishCompleted(ctx, ev); err != nil {
		// Handing the ticket back makes its redelivery announce it again.
		return fmt.Errorf("publish completion event: %w", err)
	}
	if err := d.notifyFinished(ctx, u); err != nil {
		return err // the same: announced again, queued once
	}
	// A completed upload's pages are no longer needed; a failed upload keeps
	// its pages (until the stream's MaxAge) so that its failed pages can be
	// sent again.
	if u.Status == tracker.StatusCompleted {
		if err := d.q.PurgeUpload(ctx, t.GetUploadId()); err != nil {
			log.Warn("purge delivered pages", zap.Error(err))
		}
	}
	if err := d.tr.Announced(ctx, t.GetUploadId(), u.CompletedAt); err != nil {
		log.Warn("record the completion event as published", zap.Error(err))
	}
	return nil
}
