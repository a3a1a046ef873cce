// Package worker delivers pages: it takes tickets from the DELIVERIES stream,
// reads the page, POSTs it to the upload's webhook and records the outcome.
// Workers keep no state of their own: any number of them share one consumer.
package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	Begin(ctx context.Context, id string, page, gen int, token string, leaseFor time.Duration, now time.Time) (tracker.Begin, error)
	Finish(ctx context.Context, id string, page int, f tracker.Finish) (tracker.Finished, error)
	Get(ctx context.Context, id, tenant string) (*tracker.Upload, error)
	Announced(ctx context.Context, id string, completedAt time.Time) error
}

// Queue is what the worker reads and writes in JetStream.
type Queue interface {
	GetPage(ctx context.Context, uploadID string, page int) (*hooklinev1.Page, error)
	PublishTicket(ctx context.Context, t *hooklinev1.Ticket, gen int) error
	PublishDead(ctx context.Context, t *hooklinev1.Ticket, reason string) error
	PublishCompleted(ctx context.Context, ev *hooklinev1.UploadCompleted) error
	PurgeUpload(ctx context.Context, uploadID string) error
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
	// hops counts the pages this ticket message has handled so far: the
	// pages it released are handled under the same message (see follow).
	hops int
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

// Handle delivers the page of one ticket. See errors.go for what the result means.
func (d *Deliverer) Handle(ctx context.Context, t Ticket) error {
	id, page := t.GetUploadId(), int(t.GetPage())
	// Lazy: most pages log nothing, and With would encode the fields anyway.
	log := d.log.WithLazy(zap.String("upload", id), zap.Int("page", page))
	b, err := d.tr.Begin(ctx, id, page, int(t.GetGen()), t.Token, leaseFor, d.now())
	if err != nil {
		return fmt.Errorf("tracker begin: %w", err)
	}
	switch b.State {
	case tracker.BeginGone:
		log.Warn("ticket for an unknown upload dropped")
		return nil
	case tracker.BeginDone:
		// A redelivered ticket, or a walk along pages this message carried:
		// the page is finished; make sure a finished upload was announced,
		// and carry on with the page it released.
		if b.Announce {
			if err := d.announcePending(ctx, t, log); err != nil {
				return err
			}
		}
		return d.after(ctx, t, b.DoneFailed, b.Released, b.Gen)
	case tracker.BeginStale:
		log.Debug("ticket from before a manual retry dropped")
		return nil
	case tracker.BeginBusy:
		// Another ticket message holds the page. Met while carrying on, that
		// message owns the rest of the chain (it comes back for it if its
		// worker dies): stop here. Met on the ticket's own page (a
		// duplicate ticket), come back once the lease has lapsed: normally the
		// page is done by then; should its holder never return, this ticket
		// takes it over.
		if t.hops > 0 {
			return nil
		}
		return &RetryError{After: b.Wait + time.Second, Err: errors.New("another ticket holds the page")}
	case tracker.BeginSuperseded:
		return ErrSuperseded
	case tracker.BeginWait:
		return &RetryError{After: b.Wait, Err: errors.New("retry interval not yet passed")}
	}
	return d.deliver(ctx, t, b.Upload, b.Attempts, log)
}

// deliver sends a page whose lease t holds (attempts made so far: attempts)
// and records the outcome.
func (d *Deliverer) deliver(ctx context.Context, t Ticket, u *tracker.Upload, attempts int, log *zap.Logger) error {
	id, page := t.GetUploadId(), int(t.GetPage())
	attempt := attempts + 1
	pg, err := d.q.GetPage(ctx, id, page)
	if errors.Is(err, queue.ErrPageNotFound) && d.pagesMaxAge > 0 && d.now().Sub(u.CreatedAt) < d.pagesMaxAge-time.Minute {
		// Young pages are not gone: a direct get answered by a replica that
		// has not caught up yet. Try again shortly.
		return d.giveBack(ctx, t, u, attempt, fmt.Errorf("read page: %w (the replica may lag)", err))
	}
	if errors.Is(err, queue.ErrPageNotFound) {
		// The page's data is gone (older than the stream's MaxAge): it can never
		// be delivered. Record it, so nothing disappears silently.
		return d.finish(ctx, t, u, outcomeFailed, &tracker.Attempt{
			Page: page, Attempt: attempt, Outcome: string(tracker.Failed), Error: "page data no longer stored (older than the PAGES stream's max age)",
		}, 0, log)
	}
	if errors.Is(err, queue.ErrPageUnreadable) {
		// A damaged page would be handed back forever: record it instead.
		return d.finish(ctx, t, u, outcomeFailed, &tracker.Attempt{
			Page: page, Attempt: attempt, Outcome: string(tracker.Failed), At: d.now().UTC(), Error: err.Error(),
		}, 0, log)
	}
	if err != nil {
		return d.giveBack(ctx, t, u, attempt, fmt.Errorf("read page: %w", err))
	}

	dest, err := d.destination(ctx, u)
	if errors.Is(err, secrets.ErrDecrypt) {
		// Retrying cannot help until an operator restores the key: record the
		// page as undelivered (it can be retried once the key is back).
		return d.finish(ctx, t, u, outcomeFailed, &tracker.Attempt{
			Page: page, Attempt: attempt, Outcome: string(tracker.Failed), At: d.now().UTC(),
			Error: err.Error() + " (is the key that sealed it missing from HOOKLINE_ENCRYPTION_KEYS?)",
		}, 0, log)
	}
	if err != nil {
		return d.giveBack(ctx, t, u, attempt, err)
	}
	bufp := d.bufs.Get().(*[]byte)
	defer d.bufs.Put(bufp)
	body := webhook.AppendBody((*bufp)[:0], webhook.Page{
		Template: u.Template, UploadID: id, Data: pg.GetRecords(),
		TotalRecords: u.TotalRecords, TotalPages: u.TotalPages, Page: page,
		PageSize: int(pg.GetRecordCount()), Extra: u.Extra,
	})
	*bufp = body

	d.metrics.inFlight.Inc()
	res := d.send.Send(ctx, webhook.Request{Destination: dest, ID: id + "." + strconv.Itoa(page), Body: body})
	d.metrics.inFlight.Dec()
	d.metrics.duration.Observe(res.Duration.Seconds())

	if !res.Delivered() && ctx.Err() != nil {
		// We stopped it, not the customer's endpoint: not an attempt.
		return d.giveBack(ctx, t, u, attempt, ErrShutdown)
	}
	rec := &tracker.Attempt{
		Page: page, Attempt: attempt, StatusCode: res.StatusCode,
		ResponseBody: string(res.ResponseBody), DurationMs: res.Duration.Milliseconds(), At: d.now().UTC(),
	}
	if res.Err != nil {
		rec.Error = res.Err.Error()
	}
	switch {
	case res.Delivered():
		rec.Outcome = string(tracker.Delivered)
		return d.finish(ctx, t, u, outcomeDelivered, rec, 0, log)
	case attempt < 1+u.Destination.RetryCount:
		rec.Outcome = string(tracker.Retrying)
		return d.finish(ctx, t, u, outcomeRetrying, rec, RetryDelay(u.Destination.RetryInterval(), res.RetryAfter), log)
	default:
		rec.Outcome = string(tracker.Failed)
		return d.finish(ctx, t, u, outcomeFailed, rec, 0, log)
	}
}

type outcome int

const (
	outcomeDelivered outcome = iota
	outcomeRetrying
	outcomeFailed
)

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

// giveBack releases the page lease without counting an attempt, and returns
// cause so the ticket is handed back.
func (d *Deliverer) giveBack(ctx context.Context, t Ticket, u *tracker.Upload, attempt int, cause error) error {
	d.metrics.attempts.WithLabelValues(string(tracker.Released)).Inc()
	fin, err := d.tr.Finish(context.WithoutCancel(ctx), t.GetUploadId(), int(t.GetPage()), tracker.Finish{
		Outcome: tracker.Released, Token: t.Token, Gen: int(t.GetGen()), Now: d.now(),
		Attempt: &tracker.Attempt{
			Page: int(t.GetPage()), Attempt: attempt, Outcome: string(tracker.Released),
			Error: "not sent or not counted: " + cause.Error(), At: d.now().UTC(),
		},
	})
	if err != nil {
		return errors.Join(cause, fmt.Errorf("tracker release: %w", err))
	}
	if fin.Stale {
		return nil // a manual retry owns the page now
	}
	if fin.Announce {
		if err := d.announcePending(context.WithoutCancel(ctx), t, d.log); err != nil {
			return errors.Join(cause, err)
		}
	}
	if fin.Superseded {
		return ErrSuperseded
	}
	if fin.AlreadyDone {
		// Another delivery finished the page meanwhile: go on from it (a
		// worker shutting down hands the message back there).
		return d.after(ctx, t, fin.DoneFailed, fin.Released, fin.Gen)
	}
	return cause
}

func (d *Deliverer) finish(ctx context.Context, t Ticket, u *tracker.Upload, o outcome, rec *tracker.Attempt, delay time.Duration, log *zap.Logger) error {
	id, page := t.GetUploadId(), int(t.GetPage())
	// The outcome is recorded even when shutdown has begun (the attempt
	// happened), and so is what follows from it; a page carried on after it
	// runs under ctx, which shutdown cuts off.
	carry := ctx
	ctx = context.WithoutCancel(ctx)
	f := tracker.Finish{Attempt: rec, Token: t.Token, Gen: int(t.GetGen()), Now: d.now()}
	switch o {
	case outcomeDelivered:
		f.Outcome = tracker.Delivered
		if d.carries(carry, t) {
			f.ChainLease = leaseFor // the page it releases, if free, is ours at once
		}
	case outcomeRetrying:
		f.Outcome, f.NextAt = tracker.Retrying, d.now().Add(delay)
	case outcomeFailed:
		f.Outcome = tracker.Failed
		f.Failure = &tracker.Failure{Page: page, Attempts: rec.Attempt, StatusCode: rec.StatusCode, Error: rec.Error, At: rec.At}
	}
	fin, err := d.tr.Finish(ctx, id, page, f)
	if err != nil {
		// The attempt was made but not recorded: hand the ticket back; the
		// page may be sent once more (delivery is at-least-once), but not
		// sooner than the retry interval.
		d.metrics.infraErrors.Inc()
		log.Warn("recording the attempt failed; ticket handed back", zap.Error(err))
		return &RetryError{After: max(time.Second, u.Destination.RetryInterval()), Err: fmt.Errorf("tracker finish: %w", err)}
	}
	d.metrics.attempts.WithLabelValues(string(f.Outcome)).Inc()
	if fin.Gone || fin.Stale {
		return nil // the upload is gone, or a manual retry owns the page now
	}
	if fin.Superseded {
		// A later delivery of this ticket message has begun: it goes on
		// from here (it finds this page done and carries on with what it
		// released). Only the announcement is ours to make.
		var err error
		if fin.CompletedNow {
			err = d.completedNow(ctx, t, u, fin, f.Now, log)
		} else if fin.Announce {
			err = d.announcePending(ctx, t, log)
		}
		if err != nil {
			// Still pending in Redis: the later delivery's finish or
			// begin of a done page announces it.
			log.Warn("announce a finished upload", zap.Error(err))
		}
		return ErrSuperseded
	}
	if fin.AlreadyDone && !(o == outcomeFailed && fin.DoneFailed) {
		// Another delivery finished the page first (or took it over): go on
		// as a ticket finding the page done does. Settling the message here
		// (a retry, a dead letter) would disturb a later delivery carrying
		// on with it; following leads to that delivery's lease, and
		// "superseded", if there is one.
		if fin.Announce {
			if err := d.announcePending(ctx, t, log); err != nil {
				return err
			}
		}
		return d.after(carry, t, fin.DoneFailed, fin.Released, fin.Gen)
	}
	if o == outcomeRetrying {
		log.Info("delivery failed, will retry", zap.Int("attempt", rec.Attempt), zap.Int("status", rec.StatusCode), zap.String("error", rec.Error), zap.Duration("in", delay))
		return &RetryError{After: delay, Err: errors.New(rec.Error)}
	}
	if !fin.AlreadyDone {
		if o == outcomeDelivered {
			d.metrics.delivered.Inc()
		} else {
			d.metrics.failed.Inc()
			log.Warn("page undelivered, recorded in the failure log", zap.Int("attempts", rec.Attempt), zap.Int("status", rec.StatusCode), zap.String("error", rec.Error))
		}
	}
	if o == outcomeDelivered && !fin.CompletedNow {
		if fin.NextLeased {
			next := t.next(fin.Released)
			return d.deliver(carry, next, u, fin.NextAttempts, d.log.WithLazy(zap.String("upload", id), zap.Int("page", fin.Released)))
		}
		return d.follow(carry, t, fin.Released, fin.Gen)
	}
	if err := d.release(ctx, t, fin.Released, fin.Gen); err != nil {
		return err
	}
	if fin.CompletedNow {
		if err := d.completedNow(ctx, t, u, fin, f.Now, log); err != nil {
			return err
		}
	}
	if fin.AlreadyDone && fin.Announce {
		// This call ran twice and the first finished the upload, or the
		// event of an earlier finish is still pending: announce it before
		// the message is terminated.
		if err := d.announcePending(ctx, t, log); err != nil {
			return err
		}
	}
	if o == outcomeFailed {
		return &DeadError{Reason: rec.Error, Ticket: t.Ticket}
	}
	return nil
}

// maxHops bounds how many pages one ticket message handles: past it, the
// next page gets a ticket of its own, so a long upload leaves the worker's
// slot now and then and other uploads get their turn.
const maxHops = 16

// follow handles page under the same ticket message as t, instead of
// publishing a ticket for it: that saves a ticket's publish, store,
// delivery, acknowledgement and removal per page. The page's lease carries
// t's token, so if this worker dies, the redelivered t walks the same chain
// (every page of it is done or leased with its token) and takes the page
// over; the walk has the chain's own budget, so it reaches where the dead
// worker stopped. At maxHops it publishes the page's ticket as before; when
// the worker is shutting down it hands the message back (ErrShutdown).
func (d *Deliverer) follow(ctx context.Context, t Ticket, page, gen int) error {
	if page <= 0 {
		return nil
	}
	if draining(ctx) {
		// The message goes back and another worker carries on with page:
		// publishing its ticket instead would strand a page this message
		// still holds further along the chain (when it walks one).
		return ErrShutdown
	}
	if !d.carries(ctx, t) {
		return d.release(ctx, t, page, gen)
	}
	return d.Handle(ctx, t.next(page))
}

// after goes on from a page found done: past a delivered page the message
// carries on (follow); past a failed page it does what the delivery that
// failed the page does, publishing the released page's ticket (the same,
// de-duplicated ticket) and letting the message end, since that delivery
// terminates the message: a chain carried on under it would be lost.
func (d *Deliverer) after(ctx context.Context, t Ticket, failed bool, page, gen int) error {
	if failed {
		return d.release(ctx, t, page, gen)
	}
	return d.follow(ctx, t, page, gen)
}

// carries says whether the message of t carries on with the page t's page
// releases.
func (d *Deliverer) carries(ctx context.Context, t Ticket) bool {
	return t.hops+1 < maxHops && !draining(ctx)
}

// next is the ticket of a page t released, under t's message.
func (t Ticket) next(page int) Ticket {
	// The carried page keeps the message's own retry generation: should a
	// retry have begun meanwhile, begin answers "stale" and the chain stops.
	nt := &hooklinev1.Ticket{UploadId: t.GetUploadId(), Page: uint32(page), Tenant: t.GetTenant(), Gen: t.GetGen()} // #nosec G115 -- page numbers from the tracker are far below 2^32
	return Ticket{Ticket: nt, Token: t.Token, hops: t.hops + 1}
}

// completedNow announces the upload that the finish answered fin just
// finished, at now.
func (d *Deliverer) completedNow(ctx context.Context, t Ticket, u *tracker.Upload, fin tracker.Finished, now time.Time, log *zap.Logger) error {
	done := *u
	done.Status, done.DeliveredPages, done.FailedPages, done.CompletedAt = fin.Status, fin.Delivered, fin.Failed, now
	d.metrics.uploads.WithLabelValues(string(fin.Status)).Inc()
	return d.completed(ctx, t, &done, log)
}

// announcePending publishes the completion event of a finished upload whose
// event is not confirmed published (a worker died, or its publish failed).
func (d *Deliverer) announcePending(ctx context.Context, t Ticket, log *zap.Logger) error {
	u, err := d.tr.Get(ctx, t.GetUploadId(), "")
	if err == nil && u.Status != tracker.StatusDelivering {
		err = d.completed(ctx, t, u, log)
	}
	if err != nil && !errors.Is(err, tracker.ErrNotFound) {
		return err
	}
	return nil
}

// release publishes the ticket of the page that finishing this one released.
func (d *Deliverer) release(ctx context.Context, t Ticket, page, gen int) error {
	if page <= 0 {
		return nil
	}
	next := &hooklinev1.Ticket{UploadId: t.GetUploadId(), Page: uint32(page), Tenant: t.GetTenant()} // #nosec G115 -- page numbers come from the tracker and are far below 2^32
	if err := d.q.PublishTicket(ctx, next, gen); err != nil {
		return fmt.Errorf("publish ticket of page %d: %w", page, err)
	}
	return nil
}

// completed announces a finished upload and purges a completed upload's
// pages. It may run more than once for an upload (after a crash): the event's
// message id de-duplicates it.
func (d *Deliverer) completed(ctx context.Context, t Ticket, u *tracker.Upload, log *zap.Logger) error {
	log.Info("upload finished", zap.String("status", string(u.Status)), zap.Int("delivered", u.DeliveredPages), zap.Int("failed", u.FailedPages))
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

// settle turns Handle's result into the ticket's fate.
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
		dt := t.Ticket
		if dead.Ticket != nil {
			dt = dead.Ticket
		}
		if perr := q.PublishDead(ctx, dt, dead.Reason); perr != nil {
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
