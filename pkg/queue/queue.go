// Package queue defines hookline's JetStream streams, subjects and consumer, and
// the few operations ingest and the workers perform on them.
//
// Streams:
//   - PAGES (Limits, file): the pages of every upload, one message per page under
//     hookline.pages.<uploadId>.<page>. Read by subject with direct get.
//   - DELIVERIES (WorkQueue, file): tickets {uploadId, page}; at most
//     maxInFlight per upload exist at once.
//   - DEAD (Limits, file): copies of tickets whose page finally failed.
//   - EVENTS (Limits, file): hookline.events.<tenant>.upload.completed
//     (protobuf), hookline.events.<tenant>.template.paused and .resumed (JSON).
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/hookline/hookline/pkg/tracing"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// Stream, subject and consumer names.
const (
	PagesStream      = "HOOKLINE_PAGES"
	DeliveriesStream = "HOOKLINE_DELIVERIES"
	DeadStream       = "HOOKLINE_DEAD"
	EventsStream     = "HOOKLINE_EVENTS"
	NotifyStream     = "HOOKLINE_NOTIFY"
	WorkersConsumer  = "hookline-workers"
	NotifyConsumer   = "hookline-notifier"

	pagesPrefix      = "hookline.pages."
	deliveriesPrefix = "hookline.deliveries."
	deadPrefix       = "hookline.dead."
	eventsPrefix     = "hookline.events."
	notifyPrefix     = "hookline.notify."
)

// ErrPageNotFound is returned when a page is no longer in the PAGES stream
// (removed after delivery, or older than the stream's MaxAge).
var ErrPageNotFound = errors.New("page not found in the queue")

// ErrPageUnreadable is returned when a stored page cannot be decoded: reading
// it again cannot help.
var ErrPageUnreadable = errors.New("stored page cannot be decoded")

// Config says how the streams and the consumer are set up. Every process of a
// deployment must use the same values: Setup updates the definitions in place.
type Config struct {
	// Replicas of every stream: 1 for a single server, 3 in a cluster.
	Replicas int
	// PagesMaxAge is how long pages are kept (failed pages stay replayable
	// that long).
	PagesMaxAge time.Duration
	// AckWait is how long a worker may hold a ticket without a sign of life
	// before JetStream hands it to another worker. Workers send progress every
	// AckWait/2 while they deliver, so a slow receiver does not cause a
	// redelivery; a crashed worker's tickets come back after AckWait.
	AckWait time.Duration
	// DuplicateWindow is how long JetStream de-duplicates publishes by message id.
	DuplicateWindow time.Duration
	// PagesMaxBytes bounds the PAGES stream's storage (0: no limit beyond the
	// server's). A full stream refuses new pages (DiscardNew): ingest answers
	// 503 and nothing already accepted is ever dropped to make room.
	PagesMaxBytes int64
	// MaxAckPending bounds the tickets handed out and not yet acknowledged,
	// tickets waiting for their retry interval included: keep it large so that
	// one dead endpoint never stalls the others.
	MaxAckPending int
}

// DefaultConfig returns the configuration for a single server.
func DefaultConfig() Config {
	return Config{
		Replicas:        1,
		PagesMaxAge:     7 * 24 * time.Hour,
		AckWait:         30 * time.Second,
		DuplicateWindow: 10 * time.Minute,
		MaxAckPending:   100_000,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("queue replicas must be between 1 and 5, got %d", c.Replicas)
	case c.PagesMaxAge < time.Minute:
		return fmt.Errorf("pages max age must be at least 1m, got %s", c.PagesMaxAge)
	case c.AckWait < 100*time.Millisecond:
		return fmt.Errorf("ack wait must be at least 100ms, got %s", c.AckWait)
	case c.DuplicateWindow < time.Second:
		return fmt.Errorf("duplicate window must be at least 1s, got %s", c.DuplicateWindow)
	case c.MaxAckPending < 1:
		return fmt.Errorf("max ack pending must be positive, got %d", c.MaxAckPending)
	}
	return nil
}

func orNoLimit(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// IsFull reports whether a publish failed because a stream (or the server's
// JetStream storage) is full: a reason to push back, not an outage.
func IsFull(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case 10023, 10047: // insufficient resources, storage resources exceeded
			return true
		case 10077: // store failed: maximum bytes/messages exceeded
			return strings.Contains(api.Description, "maximum")
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "maximum bytes exceeded") || strings.Contains(msg, "maximum messages exceeded") ||
		strings.Contains(msg, "insufficient resources")
}

// PageSubject is the subject of one page of an upload.
func PageSubject(uploadID string, page int) string {
	return pagesPrefix + uploadID + "." + strconv.Itoa(page)
}

// TicketMsgID is the de-duplication id of a ticket: publishing the ticket for
// the same page of the same retry generation twice stores it once.
func TicketMsgID(uploadID string, page int, gen int) string {
	return uploadID + "." + strconv.Itoa(page) + "." + strconv.Itoa(gen)
}

// EventSubject is where an upload's completion is announced.
func EventSubject(tenant string) string {
	return eventsPrefix + tenant + ".upload.completed"
}

// TemplateEvent is a change of a template's state, published as JSON on
// hookline.events.<tenant>.<type> (type template.paused or template.resumed).
type TemplateEvent struct {
	Type     string    `json:"type"`
	Tenant   string    `json:"tenant"`
	Template string    `json:"template"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// Template event types.
const (
	TemplatePaused  = "template.paused"
	TemplateResumed = "template.resumed"
)

// Queue gives access to hookline's streams.
type Queue struct {
	js         jetstream.JetStream
	cfg        Config
	pages      jetstream.Stream
	maxPayload int64
}

// Setup creates or updates the streams and the workers' consumer, and returns
// a Queue bound to them.
func Setup(ctx context.Context, nc *nats.Conn, cfg Config, opts ...jetstream.JetStreamOpt) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		return nil, err
	}
	streams := []jetstream.StreamConfig{
		{
			Name: PagesStream, Subjects: []string{pagesPrefix + ">"},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			MaxAge: cfg.PagesMaxAge, Duplicates: cfg.DuplicateWindow,
			Replicas: cfg.Replicas, AllowDirect: true,
			MaxBytes: orNoLimit(cfg.PagesMaxBytes), Discard: jetstream.DiscardNew,
		},
		{
			Name: DeliveriesStream, Subjects: []string{deliveriesPrefix + ">"},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Duplicates: cfg.DuplicateWindow, Replicas: cfg.Replicas,
		},
		{
			Name: DeadStream, Subjects: []string{deadPrefix + ">"},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			MaxAge: cfg.PagesMaxAge, Replicas: cfg.Replicas,
		},
		{
			Name: NotifyStream, Subjects: []string{notifyPrefix + ">"},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Duplicates: cfg.DuplicateWindow, Replicas: cfg.Replicas,
		},
		{
			Name: EventsStream, Subjects: []string{eventsPrefix + ">"},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			MaxAge: cfg.PagesMaxAge, Replicas: cfg.Replicas,
		},
	}
	q := &Queue{js: js, cfg: cfg, maxPayload: nc.MaxPayload()}
	for _, sc := range streams {
		s, err := retry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.CreateOrUpdateStream(ctx, sc) })
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", sc.Name, err)
		}
		if sc.Name == PagesStream {
			q.pages = s
		}
	}
	_, err = retry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return js.CreateOrUpdateConsumer(ctx, DeliveriesStream, jetstream.ConsumerConfig{
			Durable:       WorkersConsumer,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    -1, // customer attempts are counted in Redis, not by redeliveries
			MaxAckPending: cfg.MaxAckPending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", WorkersConsumer, err)
	}
	_, err = retry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return js.CreateOrUpdateConsumer(ctx, NotifyStream, jetstream.ConsumerConfig{
			Durable:       NotifyConsumer,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    -1, // the notifier ends a notification out of attempts itself
			MaxAckPending: cfg.MaxAckPending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", NotifyConsumer, err)
	}
	return q, nil
}

// SetupTimeout bounds how long Setup keeps retrying while JetStream is not
// ready yet (a cluster electing its meta leader, replicated streams being
// placed on a fresh cluster).
const SetupTimeout = 2 * time.Minute

// retry calls f until it succeeds, ctx ends or SetupTimeout passes. Only
// errors that mean "not ready yet" are retried. A JetStream API request that
// reaches a fresh cluster before it has elected its meta leader is never
// answered, so the first attempts wait only setupAttempt; each later one
// waits twice as long, up to 30 s (placing replicated streams on a busy
// cluster can be slow). Creating a stream that exists already is an update
// with the same definition, so a repeated attempt changes nothing.
func retry[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(SetupTimeout)
	wait := setupAttempt
	for {
		cctx, cancel := context.WithTimeout(ctx, wait)
		v, err := f(cctx)
		cancel()
		if err == nil || time.Now().After(deadline) || !transient(err) {
			return v, err
		}
		wait = min(2*wait, 30*time.Second)
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// setupAttempt is how long Setup's first attempt at each request waits.
const setupAttempt = 2 * time.Second

func transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		// 10008: JetStream temporarily unavailable; 10074: no suitable peers yet
		return api.ErrorCode == 10008 || api.ErrorCode == 10074 || api.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// JetStream returns the JetStream context the queue uses.
func (q *Queue) JetStream() jetstream.JetStream { return q.js }

// Config returns the queue's configuration.
func (q *Queue) Config() Config { return q.cfg }

// MaxPayload is the largest message the server accepts, in bytes.
func (q *Queue) MaxPayload() int64 { return q.maxPayload }

// NotifyConsumer returns the workers' consumer of notifications.
func (q *Queue) NotifyConsumer(ctx context.Context) (jetstream.Consumer, error) {
	return q.js.Consumer(ctx, NotifyStream, NotifyConsumer)
}

// Consumer returns the workers' shared durable consumer.
func (q *Queue) Consumer(ctx context.Context) (jetstream.Consumer, error) {
	return q.js.Consumer(ctx, DeliveriesStream, WorkersConsumer)
}

// EncodePage encodes a page message.
func EncodePage(p *hooklinev1.Page) ([]byte, error) { return proto.Marshal(p) }

// PublishPageAsync stores an encoded page without waiting for the server's
// acknowledgement; the caller must check the returned future. A page published
// twice (same upload, same number) is stored once.
func (q *Queue) PublishPageAsync(uploadID string, page int, data []byte) (jetstream.PubAckFuture, error) {
	subj := PageSubject(uploadID, page)
	return q.js.PublishAsync(subj, data, jetstream.WithMsgID(subj))
}

// GetPage reads one page by subject (a direct get: any replica answers).
func (q *Queue) GetPage(ctx context.Context, uploadID string, page int) (*hooklinev1.Page, error) {
	raw, err := q.pages.GetLastMsgForSubject(ctx, PageSubject(uploadID, page))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("upload %s page %d: %w", uploadID, page, ErrPageNotFound)
	}
	if err != nil {
		return nil, err
	}
	p, err := DecodePage(raw.Data)
	if err != nil {
		return nil, fmt.Errorf("upload %s page %d: %w: %w", uploadID, page, ErrPageUnreadable, err)
	}
	return p, nil
}

// PurgeUpload removes every stored page of an upload.
func (q *Queue) PurgeUpload(ctx context.Context, uploadID string) error {
	return q.pages.Purge(ctx, jetstream.WithPurgeSubject(pagesPrefix+uploadID+".*"))
}

// PurgePage removes one stored page.
func (q *Queue) PurgePage(ctx context.Context, uploadID string, page int) error {
	return q.pages.Purge(ctx, jetstream.WithPurgeSubject(PageSubject(uploadID, page)))
}

// PublishTicket stores a ticket and waits for the server's acknowledgement.
// gen is the upload's retry generation, part of the de-duplication id.
func (q *Queue) PublishTicket(ctx context.Context, t *hooklinev1.Ticket, gen int) error {
	t.Gen = uint32(gen) // #nosec G115 -- retry generations count manual retries
	data, err := proto.Marshal(t)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(deliveriesPrefix + t.GetUploadId())
	msg.Data = data
	tracing.Inject(ctx, msg.Header) // the delivery's spans join ctx's trace
	_, err = q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(TicketMsgID(t.GetUploadId(), int(t.GetPage()), gen)))
	return err
}

// DecodeTicket decodes a ticket message.
func DecodeTicket(data []byte) (*hooklinev1.Ticket, error) {
	var t hooklinev1.Ticket
	if err := proto.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	if t.GetUploadId() == "" || t.GetPage() == 0 {
		return nil, errors.New("ticket without upload id or page")
	}
	return &t, nil
}

// PublishDead keeps a copy of a finally failed ticket, with the reason, in the
// DEAD stream.
func (q *Queue) PublishDead(ctx context.Context, t *hooklinev1.Ticket, reason string) error {
	data, err := proto.Marshal(t)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(deadPrefix + t.GetUploadId())
	msg.Data = data
	msg.Header.Set("Hookline-Reason", reason)
	_, err = q.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID("dead."+t.GetUploadId()+"."+strconv.Itoa(int(t.GetPage()))))
	return err
}

// PublishCompleted announces that an upload is done.
func (q *Queue) PublishCompleted(ctx context.Context, ev *hooklinev1.UploadCompleted) error {
	data, err := proto.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = q.js.Publish(ctx, EventSubject(ev.GetTenant()), data,
		jetstream.WithMsgID("completed."+ev.GetUploadId()+"."+strconv.FormatInt(ev.GetCompletedAtUnixMs(), 10)))
	return err
}

// PublishTemplateEvent announces a template's change of state. Its message id
// (the change's time) stores a repeated publish once.
func (q *Queue) PublishTemplateEvent(ctx context.Context, ev TemplateEvent) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = q.js.Publish(ctx, eventsPrefix+ev.Tenant+"."+ev.Type, data,
		jetstream.WithMsgID(ev.Type+"."+ev.Tenant+"."+ev.Template+"."+strconv.FormatInt(ev.At.UnixMilli(), 10)))
	return err
}

// Notification is an event to POST to a template's notifyUrl (api.md §7),
// with what sending it needs: secrets sealed, as in an upload's snapshot.
type Notification struct {
	ID                    string          `json:"id"` // its webhook-id, also its message id
	Tenant                string          `json:"tenant"`
	Template              string          `json:"template"`
	Type                  string          `json:"type"`
	URL                   string          `json:"url"`
	AuthHeaderName        string          `json:"authHeaderName,omitempty"`
	SealedAuthHeaderValue string          `json:"authHeaderValue,omitempty"`
	SealedSigningSecret   string          `json:"signingSecret,omitempty"`
	RetryCount            int             `json:"retryCount"`
	RetryIntervalMs       int64           `json:"retryInterval"`
	TimeoutMs             int64           `json:"timeout"`
	Body                  json.RawMessage `json:"body"`
}

// PublishNotification queues a notification for the workers to send.
// dedup names this occurrence of the event: publishing it again (after a
// crash) stores it once.
func (q *Queue) PublishNotification(ctx context.Context, n Notification, dedup string) error {
	data, err := json.Marshal(n)
	if err != nil {
		return err
	}
	_, err = q.js.Publish(ctx, notifyPrefix+n.Tenant, data, jetstream.WithMsgID("notify."+dedup))
	return err
}

// UploadNotice is the body of an upload.completed or upload.failed
// notification (api.md §7).
type UploadNotice struct {
	Type           string          `json:"type"`
	Template       string          `json:"template"`
	UploadID       string          `json:"uploadId"`
	Status         string          `json:"status"`
	TotalRecords   int             `json:"totalRecords"`
	TotalPages     int             `json:"totalPages"`
	DeliveredPages int             `json:"deliveredPages"`
	FailedPages    int             `json:"failedPages"`
	Extra          json.RawMessage `json:"extra"`
	At             time.Time       `json:"at"`
}

// TemplateNotice is the body of a template.paused or template.resumed
// notification.
type TemplateNotice struct {
	Type     string    `json:"type"`
	Template string    `json:"template"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// Notice is the notification body of a template event and its webhook-id,
// <template>.<type>.<unix ms>.
func (ev TemplateEvent) Notice() (body json.RawMessage, id string) {
	body, _ = json.Marshal(TemplateNotice{Type: ev.Type, Template: ev.Template, Reason: ev.Reason, At: ev.At.UTC()})
	return body, ev.Template + "." + ev.Type + "." + strconv.FormatInt(ev.At.UnixMilli(), 10)
}
