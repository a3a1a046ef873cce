package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/tracker"
)

// Quotas are the limits in force for a tenant; 0 means no limit.
type Quotas struct {
	MaxRecords           int `json:"maxRecords"`           // records per import
	MaxConcurrentUploads int `json:"maxConcurrentUploads"` // uploads still delivering at once
	ImportsPerMinute     int `json:"importsPerMinute"`     // imports accepted per minute
	// DeliveryShare is the tenant's weight when workers share their slots
	// between tenants with pages waiting (1 to MaxDeliveryShare; 1 for
	// every tenant without one, 0 read as 1). Its tickets carry it.
	DeliveryShare int `json:"deliveryShare"`
}

// ticketShare is the delivery share a tenant's tickets carry: at least 1.
func (q Quotas) ticketShare() uint32 {
	return uint32(min(max(q.DeliveryShare, 1), MaxDeliveryShare)) // #nosec G115 -- clamped to 1..100
}

// LoadQuotas reads the default quotas: HOOKLINE_QUOTA_MAX_RECORDS,
// HOOKLINE_QUOTA_MAX_CONCURRENT_UPLOADS and HOOKLINE_QUOTA_IMPORTS_PER_MINUTE,
// each a whole number, 0 (the default) for no limit.
func LoadQuotas(env config.Env) (Quotas, error) {
	var q Quotas
	var errs []error
	for _, v := range []struct {
		name string
		dst  *int
	}{
		{"HOOKLINE_QUOTA_MAX_RECORDS", &q.MaxRecords},
		{"HOOKLINE_QUOTA_MAX_CONCURRENT_UPLOADS", &q.MaxConcurrentUploads},
		{"HOOKLINE_QUOTA_IMPORTS_PER_MINUTE", &q.ImportsPerMinute},
	} {
		n, err := config.Int(env, v.name, 0)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s must be a whole number, 0 or more (0: no limit)", v.name))
			continue
		}
		*v.dst = n
	}
	return q, errors.Join(errs...)
}

// QuotaError is a refused import: a tenant's quota is exhausted.
type QuotaError struct {
	Tenant     string
	Field      string // "quotas.maxRecords", …
	Limit      int
	RetryAfter time.Duration // 0: waiting does not help, or nobody knows for how long
	Message    string
}

func (e *QuotaError) Error() string { return e.Message }

func recordsExceeded(tenant string, limit int) *QuotaError {
	return &QuotaError{Tenant: tenant, Field: "quotas.maxRecords", Limit: limit,
		Message: fmt.Sprintf("tenant %s may import at most %s at once", tenant, plural(limit, "record"))}
}

func concurrencyExceeded(tenant string, limit int) *QuotaError {
	return &QuotaError{Tenant: tenant, Field: "quotas.maxConcurrentUploads", Limit: limit,
		Message: fmt.Sprintf("tenant %s may have at most %s delivering at once", tenant, plural(limit, "upload"))}
}

func rateExceeded(tenant string, limit int, retry time.Duration) *QuotaError {
	return &QuotaError{Tenant: tenant, Field: "quotas.importsPerMinute", Limit: limit, RetryAfter: retry,
		Message: fmt.Sprintf("tenant %s may start at most %s per minute", tenant, plural(limit, "import"))}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// recordQuota is the records-per-import quota of a request's tenant.
type recordQuota struct {
	tenant  string
	max     int
	refused prometheus.Counter // nil without a limiter
}

func (a *API) recordQuota(ctx context.Context) recordQuota {
	tenant, q := quotasOf(ctx)
	rq := recordQuota{tenant: tenant, max: q.MaxRecords}
	if a.quota != nil {
		rq.refused = a.quota.refused.WithLabelValues("maxRecords")
	}
	return rq
}

// check refuses an import of n records when that is over the limit.
func (q recordQuota) check(n int) error {
	if q.max > 0 && n > q.max {
		if q.refused != nil {
			q.refused.Inc()
		}
		return recordsExceeded(q.tenant, q.max)
	}
	return nil
}

// QuotaLimiter enforces the rate and concurrency quotas in Redis, so every
// ingest replica sees the same counts.
//
// Rate: a counter per tenant that starts a 60 s window with the first import
// in it (INCR, PEXPIRE when it is 1). An import reserves one unit when it
// starts and gives it back when it is refused, so only accepted imports count.
//
// Concurrency: a sorted set per tenant of its uploads still delivering plus
// the imports streaming now (reservations that expire unless kept alive, so a
// crashed replica frees its slots). Before each admission the uploads of the
// set are checked against their status in the tracker: a finished upload
// frees its slot.
type QuotaLimiter struct {
	rdb       redis.UniversalClient
	tr        *tracker.Tracker // the key layout, and the uploads' status
	retention time.Duration
	reserve   time.Duration // how long a streaming import's reservation lives without a refresh
	now       func() time.Time
	refused   *prometheus.CounterVec
	log       *zap.Logger
}

// NewQuotaLimiter returns a limiter over rdb, with its keys where tr keeps
// them.
func NewQuotaLimiter(rdb redis.UniversalClient, tr *tracker.Tracker, retention time.Duration, reg prometheus.Registerer, log *zap.Logger) *QuotaLimiter {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookline_imports_over_quota_total",
		Help: "Imports refused because a tenant's quota was exhausted, by quota."}, []string{"quota"})
	reg.MustRegister(refused)
	return &QuotaLimiter{rdb: rdb, tr: tr, retention: retention, reserve: 2 * time.Minute,
		now: time.Now, refused: refused, log: log}
}

func (l *QuotaLimiter) rateKey(tenant string) string   { return l.tr.QuotaKeys(tenant).Rate }
func (l *QuotaLimiter) activeKey(tenant string) string { return l.tr.QuotaKeys(tenant).Active }

// committedScore marks accepted uploads in the active set; reservations have
// their expiry time (Unix ms) as score, far below it.
const committedScore = 1 << 52

// reserveRate: KEYS[1] counter; ARGV limit, window ms → {admitted, ms left in the window}.
var reserveRate = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local left = redis.call('PTTL', KEYS[1])
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return {0, left}
end
return {1, left}
`)

// releaseRate gives a unit back, if its window still exists.
var releaseRate = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('DECR', KEYS[1]) <= 0 then redis.call('DEL', KEYS[1]) end
return 0
`)

// reserveSlot: KEYS[1] active set; ARGV now ms, limit, member, expires ms,
// set ttl ms → {admitted, count}.
var reserveSlot = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return {0, n} end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, n + 1}
`)

// Admit reserves what an import of tenant needs under its quotas. The caller
// must end the admission with Accepted or Release.
func (l *QuotaLimiter) Admit(ctx context.Context, tenant string, q Quotas) (*Admission, error) {
	adm := &Admission{l: l, tenant: tenant}
	if q.ImportsPerMinute > 0 {
		res, err := reserveRate.Run(ctx, l.rdb, []string{l.rateKey(tenant)}, q.ImportsPerMinute, time.Minute.Milliseconds()).Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("%w: rate quota: %w", errUnavailable, err)
		}
		if res[0] == 0 {
			l.refused.WithLabelValues("importsPerMinute").Inc()
			return nil, rateExceeded(tenant, q.ImportsPerMinute, time.Duration(max(res[1], 1000))*time.Millisecond)
		}
		adm.rate = true
	}
	if q.MaxConcurrentUploads > 0 {
		if err := l.prune(ctx, tenant); err != nil {
			adm.Release(ctx)
			return nil, fmt.Errorf("%w: concurrency quota: %w", errUnavailable, err)
		}
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		member := "r:" + hex.EncodeToString(b)
		now := l.now()
		res, err := reserveSlot.Run(ctx, l.rdb, []string{l.activeKey(tenant)}, now.UnixMilli(), q.MaxConcurrentUploads,
			member, now.Add(l.reserve).UnixMilli(), max(l.retention, l.reserve).Milliseconds()).Int64Slice()
		if err != nil {
			adm.Release(ctx)
			return nil, fmt.Errorf("%w: concurrency quota: %w", errUnavailable, err)
		}
		if res[0] == 0 {
			adm.Release(ctx)
			l.refused.WithLabelValues("maxConcurrentUploads").Inc()
			return nil, concurrencyExceeded(tenant, q.MaxConcurrentUploads)
		}
		adm.member = member
		adm.stop, adm.stopped = make(chan struct{}), make(chan struct{})
		go adm.keepAlive() // #nosec G118 -- runs until Accepted/Release stops it, past the request's context; each refresh has its own timeout
	}
	return adm, nil
}

// prune removes the tenant's finished (or expired) uploads from its active set.
// The set holds at most the tenant's limit of uploads, so this is bounded.
func (l *QuotaLimiter) prune(ctx context.Context, tenant string) error {
	key := l.activeKey(tenant)
	score := strconv.Itoa(committedScore)
	members, err := l.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: score, Max: score}).Result()
	if err != nil || len(members) == 0 {
		return err
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m[len("u:"):]
	}
	status, err := l.tr.Statuses(ctx, ids)
	if err != nil {
		return err
	}
	var done []any
	for i, m := range members {
		if status[i] != tracker.StatusDelivering { // finished, or expired ("")
			done = append(done, m)
		}
	}
	if len(done) == 0 {
		return nil
	}
	return l.rdb.ZRem(ctx, key, done...).Err()
}

// Admission is what an import holds under its tenant's quotas while it streams.
type Admission struct {
	l       *QuotaLimiter
	tenant  string
	rate    bool   // holds a unit of the rate window
	member  string // its reservation in the active set, "" if none
	once    sync.Once
	stop    chan struct{}
	stopped chan struct{}
}

// keepAlive refreshes the reservation while the import streams.
func (a *Admission) keepAlive() {
	defer close(a.stopped)
	t := time.NewTicker(a.l.reserve / 4)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := a.l.rdb.ZAddXX(ctx, a.l.activeKey(a.tenant), redis.Z{Score: float64(a.l.now().Add(a.l.reserve).UnixMilli()), Member: a.member}).Err()
			cancel()
			if err != nil {
				a.l.log.Warn("refresh upload slot", zap.String("tenant", a.tenant), zap.Error(err))
			}
		}
	}
}

func (a *Admission) end() bool {
	first := false
	a.once.Do(func() {
		first = true
		if a.stop != nil {
			close(a.stop)
			<-a.stopped
		}
	})
	return first
}

// Accepted turns the import's reservation into its upload's slot, held until
// the upload is no longer delivering. The rate unit stays spent.
func (a *Admission) Accepted(ctx context.Context, uploadID string) {
	if a == nil || !a.end() || a.member == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	key := a.l.activeKey(a.tenant)
	_, err := a.l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, key, a.member)
		p.ZAdd(ctx, key, redis.Z{Score: committedScore, Member: "u:" + uploadID})
		return nil
	})
	if err != nil { // the reservation expires by itself: the slot is free too early, never lost
		a.l.log.Warn("record upload slot", zap.String("tenant", a.tenant), zap.String("upload", uploadID), zap.Error(err))
	}
}

// Release gives back what a refused import reserved. A no-op after Accepted.
func (a *Admission) Release(ctx context.Context) {
	if a == nil || !a.end() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if a.rate {
		if err := releaseRate.Run(ctx, a.l.rdb, []string{a.l.rateKey(a.tenant)}).Err(); err != nil {
			a.l.log.Warn("release rate unit", zap.String("tenant", a.tenant), zap.Error(err))
		}
	}
	if a.member != "" {
		if err := a.l.rdb.ZRem(ctx, a.l.activeKey(a.tenant), a.member).Err(); err != nil {
			a.l.log.Warn("release upload slot", zap.String("tenant", a.tenant), zap.Error(err))
		}
	}
}

// admitImport admits an import under its tenant's quotas, or answers the
// refusal (429 with Retry-After when waiting helps) and returns nil, false.
// Without a limiter every import is admitted.
func (a *API) admitImport(w http.ResponseWriter, r *http.Request, tenant string) (*Admission, bool) {
	if a.quota == nil {
		return nil, true
	}
	_, q := quotasOf(r.Context())
	adm, err := a.quota.Admit(r.Context(), tenant, q)
	if err != nil {
		var qe *QuotaError
		if errors.As(err, &qe) && qe.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64((qe.RetryAfter+time.Second-1)/time.Second), 10))
		}
		a.metrics.rejected.Inc()
		writeError(w, a.log, err)
		return nil, false
	}
	return adm, true
}
