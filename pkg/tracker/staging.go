package tracker

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Staging: while ingest streams a file into the queue, the upload is
// "staging": its pages exist but it has no record and no tickets. If the
// ingest process dies then, nobody purges those pages; the staging set lets
// any ingest replica find and purge them later.

// Staging marks (or re-marks, as a heartbeat) an upload as being staged now.
func (t *Tracker) Staging(ctx context.Context, id string, now time.Time) error {
	return t.rdb.ZAdd(ctx, t.stagingKey(), redis.Z{Score: float64(now.UnixMilli()), Member: id}).Err()
}

// Staged removes an upload from the staging set: it was accepted, or its
// pages were purged.
func (t *Tracker) Staged(ctx context.Context, id string) error {
	return t.rdb.ZRem(ctx, t.stagingKey(), id).Err()
}

// Claim takes an upload out of the staging set and reports whether this call
// did: of the committing import and the janitor, exactly one claims it.
func (t *Tracker) Claim(ctx context.Context, id string) (bool, error) {
	n, err := t.rdb.ZRem(ctx, t.stagingKey(), id).Result()
	return n == 1, err
}

// Abandoned lists uploads whose staging heartbeat is older than before and
// that never got an upload record: their pages are orphans. Uploads that did
// get a record (accepted, but Staged was not called) are removed from the
// staging set here.
func (t *Tracker) Abandoned(ctx context.Context, before time.Time, limit int64) ([]string, error) {
	ids, err := t.rdb.ZRangeByScore(ctx, t.stagingKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(before.UnixMilli(), 10), Count: limit,
	}).Result()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		n, err := t.rdb.Exists(ctx, t.upload(id).record).Result()
		if err != nil {
			return nil, err
		}
		if n == 1 {
			if err := t.Staged(ctx, id); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, id)
	}
	return out, nil
}

// StagingSince answers the last staging heartbeat of an upload, and false
// when it has no staging mark.
func (t *Tracker) StagingSince(ctx context.Context, id string) (time.Time, bool, error) {
	score, err := t.rdb.ZScore(ctx, t.stagingKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return time.UnixMilli(int64(score)), true, nil
}
