// Package tracker keeps the state of uploads in Redis: the upload record (totals,
// status, a snapshot of the destination), which pages are delivered or failed,
// the attempts log and the failure log. Every change of a page's state is one
// Lua script, so it is atomic and idempotent: a worker that crashes and whose
// ticket is handed to another never makes a page count twice.
package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redisconn"
)

// Errors.
var (
	// ErrNotFound: no such upload (or it belongs to another tenant).
	ErrNotFound = errors.New("upload not found")
	// ErrBusy: the upload is still delivering; retry when it is done.
	ErrBusy = errors.New("upload is still delivering")
)

// Status of an upload.
type Status string

// Statuses.
const (
	StatusDelivering Status = "delivering"
	StatusCompleted  Status = "completed" // every page delivered
	StatusFailed     Status = "failed"    // every page done, at least one undelivered
)

// Destination is the snapshot of a template's webhook taken when an upload is
// accepted: later changes of the template do not change where it goes.
// Secret fields hold sealed (encrypted) text.
type Destination struct {
	URL                   string `json:"url"`
	AuthHeaderName        string `json:"authHeaderName,omitempty"`
	SealedAuthHeaderValue string `json:"authHeaderValue,omitempty"`
	SealedSigningSecret   string `json:"signingSecret,omitempty"`
	ChunkSize             int    `json:"chunkSize"`
	RetryCount            int    `json:"retryCount"`
	RetryIntervalMs       int64  `json:"retryInterval"`
	TimeoutMs             int64  `json:"timeout"`
	MaxInFlight           int    `json:"maxInFlight"`
	// Endpoint protection (api.md §7); zero: none.
	RateLimitRequests   int    `json:"rateLimitRequests,omitempty"`
	RateLimitIntervalMs int64  `json:"rateLimitInterval,omitempty"`
	PauseAfterFailures  int    `json:"pauseAfterFailures,omitempty"`
	ProbeIntervalMs     int64  `json:"probeInterval,omitempty"`
	NotifyURL           string `json:"notifyUrl,omitempty"`
}

// Protection is what the destination asks of its template's gate; recheck
// bounds a paused page's wait.
func (d Destination) Protection(recheck time.Duration) Protection {
	return Protection{
		Limit:              Limit{Requests: d.RateLimitRequests, Interval: time.Duration(d.RateLimitIntervalMs) * time.Millisecond},
		PauseAfterFailures: d.PauseAfterFailures, ProbeInterval: time.Duration(d.ProbeIntervalMs) * time.Millisecond,
		Recheck: recheck,
	}
}

// RetryInterval is the wait between attempts of a page.
func (d Destination) RetryInterval() time.Duration {
	return time.Duration(d.RetryIntervalMs) * time.Millisecond
}

// Timeout is how long one attempt may take.
func (d Destination) Timeout() time.Duration { return time.Duration(d.TimeoutMs) * time.Millisecond }

// Upload is an upload's record.
type Upload struct {
	ID             string
	Tenant         string
	Template       string
	Status         Status
	TotalRecords   int
	TotalPages     int
	DeliveredPages int
	FailedPages    int
	Destination    Destination
	Extra          json.RawMessage // the raw JSON value sent as "extra"
	CreatedAt      time.Time
	UpdatedAt      time.Time
	CompletedAt    time.Time // zero while delivering
}

// PendingPages are the pages neither delivered nor finally failed.
func (u *Upload) PendingPages() int { return u.TotalPages - u.DeliveredPages - u.FailedPages }

// Attempt is one entry of an upload's attempts log.
type Attempt struct {
	Page         int       `json:"page"`
	Attempt      int       `json:"attempt"`
	Outcome      string    `json:"outcome"` // delivered | retrying | failed | released
	StatusCode   int       `json:"statusCode"`
	Error        string    `json:"error"`
	ResponseBody string    `json:"responseBody"`
	DurationMs   int64     `json:"durationMs"`
	At           time.Time `json:"at"`
}

// Failure is one entry of an upload's failure log: an undelivered page.
type Failure struct {
	Page       int       `json:"page"`
	Attempts   int       `json:"attempts"`
	StatusCode int       `json:"statusCode"`
	Error      string    `json:"error"`
	At         time.Time `json:"at"`
}

// Tracker reads and writes upload state in Redis.
type Tracker struct {
	rdb       redis.UniversalClient
	prefix    string
	retention time.Duration
	logCap    int
	batch     *batcher // nil: each script call is its own round trip
	dests     destCache
}

// Option configures a Tracker.
type Option func(*Tracker)

// WithPrefix sets the key prefix (default "hookline:").
func WithPrefix(p string) Option { return func(t *Tracker) { t.prefix = p } }

// WithRetention sets how long a finished upload's state is kept (default 7 days).
func WithRetention(d time.Duration) Option { return func(t *Tracker) { t.retention = d } }

// WithAttemptLogCap sets how many attempt records an upload keeps, newest
// kept (default 10000).
func WithAttemptLogCap(n int) Option { return func(t *Tracker) { t.logCap = n } }

// WithPipelining sends the Begin and Finish scripts of concurrent callers to
// Redis together, in pipelines, from senders goroutines (see batcher). It
// is meant for workers, which make many such calls at once; Close stops the
// goroutines.
func WithPipelining(senders int) Option {
	return func(t *Tracker) { t.batch = newBatcher(t.rdb, senders) }
}

// New returns a Tracker over rdb.
func New(rdb redis.UniversalClient, opts ...Option) *Tracker {
	t := &Tracker{rdb: rdb, prefix: "hookline:", retention: 7 * 24 * time.Hour, logCap: 10000}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Close stops the pipelining goroutines (WithPipelining) once the calls
// already made are answered. Later calls go to Redis one by one. It does
// not close the Redis client.
func (t *Tracker) Close() {
	if t.batch != nil {
		t.batch.close()
	}
}

// runHot runs one of the per-page scripts, pipelined when enabled. With a
// template key (tpl), the template's paused state is read in the same
// pipeline: the template's hash is in another slot than the upload's keys,
// so not in the script; on Redis Cluster the client sends each node its
// part of the pipeline at once.
func (t *Tracker) runHot(ctx context.Context, script *redis.Script, keys []string, req []byte, tpl string) (string, PauseState, error) {
	if t.batch != nil {
		return t.batch.run(ctx, script, keys, req, tpl)
	}
	return runDirect(ctx, t.rdb, script, keys, req, tpl)
}

// runDirect is runHot in a round trip of its own.
func runDirect(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, keys []string, req []byte, tpl string) (string, PauseState, error) {
	if tpl == "" {
		res, err := script.Run(ctx, rdb, keys, req).Text()
		return res, PauseUnknown, err
	}
	pipe := rdb.Pipeline()
	cmd := pipe.EvalSha(ctx, script.Hash(), keys, req)
	state := pipe.HGet(ctx, tpl, stateField)
	_, _ = pipe.Exec(ctx)
	res, err := cmd.Text()
	if err != nil && isNoScript(err) {
		res, err = script.Run(ctx, rdb, keys, req).Text()
	}
	return res, pauseState(state), err
}

// Ping checks that Redis answers.
func (t *Tracker) Ping(ctx context.Context) error { return t.rdb.Ping(ctx).Err() }

func ms(tm time.Time) string { return strconv.FormatInt(tm.UnixMilli(), 10) }

// Create stores a new upload record, marks its first pages as released (the
// caller publishes their tickets) and indexes it for its tenant. It returns the
// number of pages to release now: min(maxInFlight, totalPages).
func (t *Tracker) Create(ctx context.Context, u *Upload) (int, error) {
	dest, err := json.Marshal(u.Destination)
	if err != nil {
		return 0, err
	}
	release := min(max(u.Destination.MaxInFlight, 1), u.TotalPages)
	k := t.upload(u.ID)
	now := u.CreatedAt
	if now.IsZero() {
		now = time.Now()
	}
	// Durable: the record must outlive its master, since the 202 promises delivery.
	err = t.rdb.HSet(redisconn.Durable(ctx), k.record, map[string]any{
		"tenant": u.Tenant, "template": u.Template, "status": string(StatusDelivering),
		"totalRecords": u.TotalRecords, "totalPages": u.TotalPages, "released": release, "gen": 0,
		"dest": string(dest), "extra": string(u.Extra), "createdAt": ms(now), "updatedAt": ms(now),
	}).Err()
	if err != nil {
		return 0, err
	}
	idx := t.tenantIndex(u.Tenant)
	pipe := t.rdb.Pipeline()
	pipe.ZAdd(ctx, idx, redis.Z{Score: float64(now.UnixMilli()), Member: u.ID})
	// Entries of expired uploads are dropped when listed; this bounds the index
	// for tenants who never list. Far past the retention, so that an upload
	// still delivering (a long retry schedule) stays listed.
	pipe.ZRemRangeByScore(ctx, idx, "-inf", strconv.FormatInt(now.Add(-4*t.retention).UnixMilli(), 10))
	if _, err := pipe.Exec(ctx); err != nil {
		_ = t.Delete(context.WithoutCancel(ctx), u.ID, u.Tenant)
		return 0, err
	}
	return release, nil
}

// Delete removes an upload's state (used to roll back an import that could not
// be accepted).
func (t *Tracker) Delete(ctx context.Context, id, tenant string) error {
	if err := t.rdb.Del(ctx, t.upload(id).all()...).Err(); err != nil {
		return err
	}
	return t.rdb.ZRem(ctx, t.tenantIndex(tenant), id).Err()
}

// Get reads an upload. tenant "" skips the ownership check; otherwise another
// tenant's upload answers ErrNotFound.
func (t *Tracker) Get(ctx context.Context, id, tenant string) (*Upload, error) {
	k := t.upload(id)
	pipe := t.rdb.Pipeline()
	h := pipe.HGetAll(ctx, k.record)
	d := pipe.SCard(ctx, k.delivered)
	f := pipe.HLen(ctx, k.failed)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	fields := h.Val()
	if len(fields) == 0 || (tenant != "" && fields["tenant"] != tenant) {
		return nil, fmt.Errorf("upload %s: %w", id, ErrNotFound)
	}
	u, err := decodeUpload(id, fields)
	if err != nil {
		return nil, err
	}
	u.DeliveredPages, u.FailedPages = int(d.Val()), int(f.Val())
	return u, nil
}

func decodeUpload(id string, f map[string]string) (*Upload, error) {
	u := &Upload{ID: id, Tenant: f["tenant"], Template: f["template"], Status: Status(f["status"])}
	u.TotalRecords, _ = strconv.Atoi(f["totalRecords"])
	u.TotalPages, _ = strconv.Atoi(f["totalPages"])
	if e := f["extra"]; e != "" {
		u.Extra = json.RawMessage(e)
	}
	if err := json.Unmarshal([]byte(f["dest"]), &u.Destination); err != nil {
		return nil, fmt.Errorf("upload %s: destination: %w", id, err)
	}
	u.CreatedAt, u.UpdatedAt, u.CompletedAt = msField(f["createdAt"]), msField(f["updatedAt"]), msField(f["completedAt"])
	return u, nil
}

// msField reads a time stored as unix milliseconds ("" or 0: none).
func msField(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	return msTime(n)
}

func msTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// Filter narrows List.
type Filter struct {
	Template string
	Status   Status
	Limit    int        // default 100, at most 1000
	After    *UploadPos // nil: from the newest
}

// List returns a page of a tenant's uploads, newest first (see ListPage).
func (t *Tracker) List(ctx context.Context, tenant string, f Filter) ([]*Upload, error) {
	page, err := t.ListPage(ctx, tenant, f)
	return page.Uploads, err
}

// Attempts returns an upload's attempts log, oldest first.
func (t *Tracker) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	raw, err := t.rdb.LRange(ctx, t.upload(id).log, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Attempt, 0, len(raw))
	for _, r := range raw {
		var a Attempt
		if err := json.Unmarshal([]byte(r), &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Failures returns an upload's failure log, by page.
func (t *Tracker) Failures(ctx context.Context, id string) ([]Failure, error) {
	raw, err := t.rdb.HGetAll(ctx, t.upload(id).failed).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Failure, 0, len(raw))
	for _, r := range raw {
		var f Failure
		if err := json.Unmarshal([]byte(r), &f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Page < out[j].Page })
	return out, nil
}

// Statuses reads the status of each upload of ids, in order; "" for an
// upload that no longer exists.
func (t *Tracker) Statuses(ctx context.Context, ids []string) ([]Status, error) {
	pipe := t.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, t.upload(id).record, "status")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]Status, len(ids))
	for i, c := range cmds {
		s, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		out[i] = Status(s)
	}
	return out, nil
}

// StateKeys lists the Redis keys that hold the state of any upload (for
// operators and tests checking that nothing is left behind).
func (t *Tracker) StateKeys(ctx context.Context) ([]string, error) {
	var out []string
	iter := t.rdb.Scan(ctx, 0, t.uploadPattern(), 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	return out, iter.Err()
}
