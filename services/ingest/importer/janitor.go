package importer

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// StagingHeartbeat is how often an import that is still streaming renews its
// staging mark; AbandonedAfter is how old a mark must be before the janitor
// takes its upload for abandoned (its ingest process died mid-file).
const (
	StagingHeartbeat = 30 * time.Second
	AbandonedAfter   = 5 * time.Minute
)

// StagingStore is what the janitor needs of the tracker.
type StagingStore interface {
	Abandoned(ctx context.Context, before time.Time, limit int64) ([]string, error)
	Staging(ctx context.Context, id string, now time.Time) error
	Claim(ctx context.Context, id string) (bool, error)
}

// PagePurger removes an upload's pages.
type PagePurger interface {
	PurgeUpload(ctx context.Context, uploadID string) error
}

// Janitor purges the pages of uploads whose import died before it was
// accepted. Every ingest replica runs one; their work is idempotent.
type Janitor struct {
	store StagingStore
	pages PagePurger
	every time.Duration
	after time.Duration
	log   *zap.Logger
}

// NewJanitor builds a Janitor that looks every `every` for staging marks
// older than `after`.
func NewJanitor(store StagingStore, pages PagePurger, every, after time.Duration, log *zap.Logger) *Janitor {
	return &Janitor{store: store, pages: pages, every: every, after: after, log: log}
}

// Run sweeps until ctx ends.
func (j *Janitor) Run(ctx context.Context) error {
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		j.Sweep(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep purges what is abandoned now and returns how many uploads it cleaned.
func (j *Janitor) Sweep(ctx context.Context) int {
	ids, err := j.store.Abandoned(ctx, time.Now().Add(-j.after), 100)
	if err != nil {
		if ctx.Err() == nil {
			j.log.Warn("janitor: list abandoned imports", zap.Error(err))
		}
		return 0
	}
	n := 0
	for _, id := range ids {
		// Claim first: an import that commits now claims it instead and fails.
		claimed, err := j.store.Claim(ctx, id)
		if err != nil {
			j.log.Warn("janitor: claim", zap.String("upload", id), zap.Error(err))
			continue
		}
		if !claimed {
			continue
		}
		if err := j.pages.PurgeUpload(ctx, id); err != nil {
			// Put it back so a later sweep tries again.
			_ = j.store.Staging(ctx, id, time.Time{})
			j.log.Warn("janitor: purge pages", zap.String("upload", id), zap.Error(err))
			continue
		}
		j.log.Info("janitor: purged the pages of an import that was never accepted", zap.String("upload", id))
		n++
	}
	return n
}
