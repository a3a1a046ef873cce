package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/secrets"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
)

// Notifications (api.md §7) travel as messages on HOOKLINE_NOTIFY, one per
// event, and every worker's Notifier sends them to the template's
// notifyUrl: signed and authenticated like pages, retried with the
// template's retry settings. A notification's attempts are its message's
// deliveries, so one cut short by a crashed worker counts as one.

// notify queues the notification of an event for tmpl's notifyUrl (none:
// nothing to do), with the destination's auth header and signing secret.
func (d *Deliverer) notify(ctx context.Context, u *tracker.Upload, typ, id string, body json.RawMessage, dedup string) error {
	dest := u.Destination
	if dest.NotifyURL == "" {
		return nil
	}
	n := queue.Notification{ID: id, Tenant: u.Tenant, Template: u.Template, Type: typ, URL: dest.NotifyURL,
		AuthHeaderName: dest.AuthHeaderName, SealedAuthHeaderValue: dest.SealedAuthHeaderValue, SealedSigningSecret: dest.SealedSigningSecret,
		RetryCount: dest.RetryCount, RetryIntervalMs: dest.RetryIntervalMs, TimeoutMs: dest.TimeoutMs, Body: body}
	if err := d.q.PublishNotification(ctx, n, dedup); err != nil {
		return fmt.Errorf("queue the %s notification: %w", typ, err)
	}
	return nil
}

// notifyFinished queues the upload.completed or upload.failed notification
// of a finished upload. Its message id names the completion, so a repeated
// announcement is queued once and a later completion (after a retry) again.
func (d *Deliverer) notifyFinished(ctx context.Context, u *tracker.Upload) error {
	typ := "upload.completed"
	if u.Status == tracker.StatusFailed {
		typ = "upload.failed"
	}
	extra := u.Extra
	if len(extra) == 0 {
		extra = json.RawMessage(`""`)
	}
	body, err := json.Marshal(queue.UploadNotice{Type: typ, Template: u.Template, UploadID: u.ID, Status: string(u.Status),
		TotalRecords: u.TotalRecords, TotalPages: u.TotalPages, DeliveredPages: u.DeliveredPages, FailedPages: u.FailedPages,
		Extra: extra, At: u.CompletedAt.UTC()})
	if err != nil {
		return err
	}
	id := u.ID + "." + typ
	return d.notify(ctx, u, typ, id, body, id+"."+strconv.FormatInt(u.CompletedAt.UnixMilli(), 10))
}

// Notifier sends the queued notifications.
type Notifier struct {
	cons        jetstream.Consumer
	send        Sender
	secrets     *secrets.Box
	concurrency int
	grace       time.Duration
	ackWait     time.Duration
	metrics     *Metrics
	log         *zap.Logger
}

// NewNotifier builds a Notifier sending up to concurrency notifications at once.
func NewNotifier(cons jetstream.Consumer, send Sender, box *secrets.Box, concurrency int, grace, ackWait time.Duration, m *Metrics, log *zap.Logger) *Notifier {
	return &Notifier{cons: cons, send: send, secrets: box, concurrency: max(concurrency, 1), grace: grace, ackWait: ackWait, metrics: m, log: log}
}

// Run sends notifications until ctx ends; those under way then have grace
// to finish before they are cut short and handed back.
func (n *Notifier) Run(ctx context.Context) error {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(n.grace, cancel) })
	defer stop()
	slots := make(chan struct{}, n.concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		fctx, cancelFetch := context.WithTimeout(ctx, 2*time.Second)
		batch, err := n.cons.Fetch(1, jetstream.FetchContext(fctx))
		if err != nil {
			cancelFetch()
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			n.log.Warn("fetch notifications", zap.Error(err))
			select {
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		got := false
		for msg := range batch.Messages() {
			got = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				n.handle(work, msg)
			}()
		}
		cancelFetch()
		if !got {
			<-slots
		}
	}
}

// handle sends one notification and settles its message: Ack when
// delivered, NakWithDelay while attempts are left, Term after the last.
func (n *Notifier) handle(ctx context.Context, msg jetstream.Msg) {
	var nt queue.Notification
	meta, err := msg.Metadata()
	if err == nil {
		err = json.Unmarshal(msg.Data(), &nt)
	}
	if err != nil {
		n.log.Error("malformed notification dropped", zap.Error(err))
		_ = msg.TermWithReason("malformed notification")
		return
	}
	log := n.log.With(zap.String("notification", nt.ID), zap.String("template", nt.Template), zap.String("type", nt.Type))
	dest := webhook.Destination{URL: nt.URL, AuthHeaderName: nt.AuthHeaderName, Timeout: time.Duration(nt.TimeoutMs) * time.Millisecond}
	if dest.AuthHeaderValue, err = n.secrets.Open(nt.SealedAuthHeaderValue); err == nil {
		dest.SigningSecret, err = n.secrets.Open(nt.SealedSigningSecret)
	}
	if err != nil {
		n.metrics.notifications.WithLabelValues("failed").Inc()
		log.Warn("notification undelivered: its secrets cannot be opened", zap.Error(err))
		_ = msg.TermWithReason("secrets cannot be opened")
		return
	}
	// Keep the message ours while a slow endpoint answers.
	beat := time.NewTicker(max(n.ackWait/2, time.Millisecond))
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-beat.C:
				_ = msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	res := n.send.Send(ctx, webhook.Request{Destination: dest, ID: nt.ID, Body: nt.Body})
	beat.Stop()
	close(done)
	attempt := int(meta.NumDelivered) // #nosec G115 -- deliveries of one message are few
	switch {
	case res.Delivered():
		n.metrics.notifications.WithLabelValues("delivered").Inc()
		log.Debug("notification delivered", zap.Int("attempt", attempt))
		_ = msg.Ack()
	case ctx.Err() != nil:
		_ = msg.Nak() // shutdown, not the endpoint
	case attempt < 1+nt.RetryCount:
		n.metrics.notifications.WithLabelValues("retrying").Inc()
		wait := RetryDelay(time.Duration(nt.RetryIntervalMs)*time.Millisecond, res.RetryAfter)
		log.Info("notification failed, will retry", zap.Int("attempt", attempt), zap.Int("status", res.StatusCode), zap.Error(res.Err), zap.Duration("in", wait))
		_ = msg.NakWithDelay(wait)
	default:
		n.metrics.notifications.WithLabelValues("failed").Inc()
		log.Warn("notification undelivered", zap.Int("attempts", attempt), zap.Int("status", res.StatusCode), zap.Error(res.Err))
		_ = msg.TermWithReason("undelivered")
	}
}
