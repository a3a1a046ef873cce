package tracker

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrInProgress: an import with the same Idempotency-Key is still running.
var ErrInProgress = errors.New("an import with this Idempotency-Key is in progress")

const pendingMark = "\x00pending"

// IdempotencyLock is how long a running import holds its Idempotency-Key
// without a refresh: an ingest process that dies frees the key after this.
const IdempotencyLock = 2 * time.Minute

// ReserveIdempotencyKey claims key for a new import of tenant. It returns the
// stored answer of an earlier import with the same key (nil when the key is
// new and now reserved), or ErrInProgress while that import still runs.
func (t *Tracker) ReserveIdempotencyKey(ctx context.Context, tenant, key string) ([]byte, error) {
	k := t.idemKey(tenant, key)
	ok, err := t.rdb.SetNX(ctx, k, pendingMark, IdempotencyLock).Result()
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, nil
	}
	v, err := t.rdb.Get(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) { // expired in between: try once more
		return t.ReserveIdempotencyKey(ctx, tenant, key)
	}
	if err != nil {
		return nil, err
	}
	if string(v) == pendingMark {
		return nil, ErrInProgress
	}
	return v, nil
}

// RefreshIdempotencyKey extends the reservation of a running import.
func (t *Tracker) RefreshIdempotencyKey(ctx context.Context, tenant, key string) error {
	return t.rdb.Expire(ctx, t.idemKey(tenant, key), IdempotencyLock).Err()
}

// CompleteIdempotencyKey stores the answer of the import that held key, kept
// for ttl.
func (t *Tracker) CompleteIdempotencyKey(ctx context.Context, tenant, key string, answer []byte, ttl time.Duration) error {
	return t.rdb.Set(ctx, t.idemKey(tenant, key), answer, ttl).Err()
}

// ReleaseIdempotencyKey frees key after an import that failed, so that the
// client's retry can run.
func (t *Tracker) ReleaseIdempotencyKey(ctx context.Context, tenant, key string) error {
	return t.rdb.Del(ctx, t.idemKey(tenant, key)).Err()
}
