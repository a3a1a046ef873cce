// Package importer turns a stream of records into an accepted upload: its
// pages stored in the queue, then its record and first tickets. It knows
// nothing of HTTP; the ingest API parses a request into a Batch and a
// records.Reader and maps the errors here to its answers.
package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/records"
	"github.com/hookline/hookline/pkg/secrets"
	"github.com/hookline/hookline/pkg/tracker"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// Store is what an import needs of the upload store.
type Store interface {
	Staging(ctx context.Context, id string, now time.Time) error
	Staged(ctx context.Context, id string) error
	Claim(ctx context.Context, id string) (bool, error)
	Create(ctx context.Context, u *tracker.Upload) (int, error)
	Delete(ctx context.Context, id, tenant string) error
}

// Queue is what an import needs of the queue.
type Queue interface {
	PublishPageAsync(uploadID string, page int, data []byte) (jetstream.PubAckFuture, error)
	PublishTicket(ctx context.Context, t *hooklinev1.Ticket, gen int) error
	PurgeUpload(ctx context.Context, uploadID string) error
	MaxPayload() int64
}

// Counters count what imports store; any may be nil.
type Counters struct {
	Pages, Records, Uploads prometheus.Counter
}

// Importer stages and commits imports.
type Importer struct {
	store       Store
	queue       Queue
	box         *secrets.Box
	compression queue.Compression
	count       Counters
	log         *zap.Logger
}

// New builds an Importer storing pages with compression c.
func New(store Store, q Queue, box *secrets.Box, c queue.Compression, count Counters, log *zap.Logger) *Importer {
	return &Importer{store: store, queue: q, box: box, compression: c, count: count, log: log}
}

// Batch is what is known of an import before its records are read.
type Batch struct {
	Tenant      string
	Template    string
	Destination tracker.Destination // without its auth header value: Commit seals that
	MaxRecords  int                 // records per import; 0: no limit
	// CheckRecords may refuse an import once it has n records (a quota).
	CheckRecords func(n int) error
	// DeliveryShare is the tenant's weight in the workers' scheduling, put
	// on every ticket (0 means 1).
	DeliveryShare uint32
	// Pace, if set, is called after each page is handed to the publisher,
	// with the pages so far; it may wait (sched: heavy imports wait for
	// other tenants' light work).
	Pace func(ctx context.Context, pages int)
}

// Meta is what an import may say after its records (a multipart form's
// fields that follow the file).
type Meta struct {
	AuthHeaderValue string
	Extra           json.RawMessage
}

// Accepted is an upload once it is accepted: the 202 answer.
type Accepted struct {
	UploadID     string `json:"uploadId"`
	Template     string `json:"template"`
	TotalRecords int    `json:"totalRecords"`
	TotalPages   int    `json:"totalPages"`
	Status       string `json:"status"`
}

// Staged is an upload whose pages are all stored in the queue but which is
// not yet accepted: no record, no tickets. Commit accepts it; Abandon, a
// no-op after Commit, removes its pages.
type Staged struct {
	im            *Importer
	batch         Batch
	id            string
	totalRecords  int
	totalPages    int
	committed     bool
	stopHeartbeat context.CancelFunc
}

// Stage reads every record of rd, publishes its pages and waits until every
// page is stored. On an error, even mid-file, what was stored is purged.
// Memory stays bounded: two page buffers (one being filled, one being
// published), the encoded copy of the page being published, and a bounded
// window of pages waiting for their acknowledgement.
func (im *Importer) Stage(ctx context.Context, b Batch, rd records.Reader) (_ *Staged, err error) {
	st := &Staged{im: im, batch: b, id: ulid.Make().String()}
	// Mark the upload as staging, so that if this process dies mid-file, a
	// janitor finds its pages and purges them.
	if err := im.store.Staging(ctx, st.id, time.Now()); err != nil {
		return nil, fmt.Errorf("%w: mark staging: %w", ErrUnavailable, err)
	}
	st.startHeartbeat(ctx)
	var window ackWindow
	defer func() {
		if err != nil {
			window.settle() // a page still in flight would be stored after the purge
			st.Abandon(ctx)
		}
	}()
	limit := im.queue.MaxPayload() - 1024 // room for the message's subject and headers
	pager := records.NewPager(rd, b.Destination.ChunkSize, limit)
	pub := im.startPublisher(ctx, st.id, limit, &window)
	defer pub.stop() // before the deferred settle and purge above: the window is the publisher's until it stopped
	buf := <-pub.free
	for {
		page, count, err := pager.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if b.MaxRecords > 0 && pager.Records() > b.MaxRecords {
			return nil, &TooManyRecordsError{Limit: b.MaxRecords}
		}
		if b.CheckRecords != nil {
			if err := b.CheckRecords(pager.Records()); err != nil {
				return nil, err
			}
		}
		if buf, err = pub.send(page, pager.Pages(), count); err != nil {
			return nil, err
		}
		if b.Pace != nil {
			b.Pace(ctx, pager.Pages())
		}
	}
	st.totalRecords, st.totalPages = pager.Records(), pager.Pages()
	if st.totalRecords == 0 {
		return nil, ErrNoRecords
	}
	if err := pub.finish(); err != nil {
		return nil, err
	}
	if err := window.wait(ctx, 0); err != nil {
		return nil, err
	}
	add(im.count.Records, st.totalRecords)
	return st, nil
}

// startHeartbeat renews the staging mark until the upload is accepted or
// abandoned, however slowly the file arrives.
func (s *Staged) startHeartbeat(ctx context.Context) {
	ctx, s.stopHeartbeat = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		t := time.NewTicker(StagingHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := s.im.store.Staging(ctx, s.id, time.Now()); err != nil && ctx.Err() == nil {
					s.im.log.Warn("renew staging mark", zap.String("upload", s.id), zap.Error(err))
				}
			case <-ctx.Done():
				return
			}
		}
	}()
}

// Abandon removes the pages of an upload that was never accepted.
func (s *Staged) Abandon(ctx context.Context) {
	s.stopHeartbeat()
	if s.committed {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.im.queue.PurgeUpload(ctx, s.id); err != nil {
		// NATS is away: keep trying in the background so the pages go soon
		// after it is back. If this process dies first, the janitor of any
		// replica purges them (the upload stays in the staging set).
		s.im.log.Warn("purge pages of a rejected import; will retry", zap.String("upload", s.id), zap.Error(err))
		go s.purgeLater() // #nosec G118 -- outlives the refused request on purpose; bounded by AbandonedAfter
		return
	}
	_ = s.im.store.Staged(ctx, s.id)
}

// purgeLater retries the purge of a refused import's pages until it succeeds
// or the janitor's time comes.
func (s *Staged) purgeLater() {
	ctx, cancel := context.WithTimeout(context.Background(), AbandonedAfter)
	defer cancel()
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := s.im.queue.PurgeUpload(ctx, s.id); err == nil {
			_ = s.im.store.Staged(ctx, s.id)
			s.im.log.Info("purged the pages of a rejected import", zap.String("upload", s.id))
			return
		}
	}
}

// Commit stores the upload record and publishes the first tickets. Only
// then is the upload accepted.
func (s *Staged) Commit(ctx context.Context, m Meta) (*Accepted, error) {
	d := s.batch.Destination
	if d.AuthHeaderName != "" { // without a header to carry it, the value is not kept
		sealed, err := s.im.box.Seal(m.AuthHeaderValue)
		if err != nil {
			return nil, err
		}
		d.SealedAuthHeaderValue = sealed
	}
	u := &tracker.Upload{
		ID: s.id, Tenant: s.batch.Tenant, Template: s.batch.Template,
		TotalRecords: s.totalRecords, TotalPages: s.totalPages, Extra: m.Extra, CreatedAt: time.Now(),
		Destination: d,
	}
	// Take the upload out of the staging set before it gets a record: if the
	// janitor took it first (its heartbeat went stale), its pages may be gone.
	s.stopHeartbeat()
	claimed, err := s.im.store.Claim(ctx, s.id)
	if err != nil {
		return nil, fmt.Errorf("%w: clear staging mark: %w", ErrUnavailable, err)
	}
	if !claimed {
		return nil, ErrStalled
	}
	release, err := s.im.store.Create(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("%w: store upload: %w", ErrUnavailable, err)
	}
	for page := 1; page <= release; page++ {
		err := s.im.queue.PublishTicket(ctx, &hooklinev1.Ticket{UploadId: s.id, Page: uint32(page), Tenant: u.Tenant, Template: u.Template, DeliveryShare: s.batch.DeliveryShare}, 0)
		if err != nil {
			// Tickets already published find no upload and are dropped.
			_ = s.im.store.Delete(context.WithoutCancel(ctx), s.id, u.Tenant)
			return nil, fmt.Errorf("%w: publish ticket: %w", ErrUnavailable, err)
		}
	}
	s.committed = true
	add(s.im.count.Uploads, 1)
	s.im.log.Info("upload accepted", zap.String("upload", s.id), zap.String("tenant", u.Tenant),
		zap.String("template", u.Template), zap.Int("records", s.totalRecords), zap.Int("pages", s.totalPages))
	return &Accepted{UploadID: s.id, Template: u.Template, TotalRecords: s.totalRecords, TotalPages: s.totalPages,
		Status: string(tracker.StatusDelivering)}, nil
}

func add(c prometheus.Counter, n int) {
	if c != nil {
		c.Add(float64(n))
	}
}
