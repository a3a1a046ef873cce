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

// runHot runs one of the per-page scripts, pipelined when enabled.
func (t *Tracker) runHot(ctx context.Context, script *redis.Script, keys []string, args ...any) ([]string, error) {
	if t.batch != nil {
		return t.batch.run(ctx, script, keys, args...)
	}
	return script.Run(ctx, t.rdb, keys, args...).StringSlice()
}

// Ping checks that Redis answers.
func (t *Tracker) Ping(ctx context.Context) error { return t.rdb.Ping(ctx).Err() }

func (t *Tracker) keys(id string) []string {
	base := t.prefix + "u:{" + id + "}"
	return []string{base, base + ":p", base + ":d", base + ":f", base + ":log", base + ":q"}
}

func (t *Tracker) tenantIndex(tenant string) string { return t.prefix + "t:" + tenant + ":uploads" }

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
	k := t.keys(u.ID)
	now := u.CreatedAt
	if now.IsZero() {
		now = time.Now()
	}
	err = t.rdb.HSet(ctx, k[0], map[string]any{
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
	if err := t.rdb.Del(ctx, t.keys(id)...).Err(); err != nil {
		return err
	}
	return t.rdb.ZRem(ctx, t.tenantIndex(tenant), id).Err()
}

// Get reads an upload. tenant "" skips the ownership check; otherwise another
// tenant's upload answers ErrNotFound.
func (t *Tracker) Get(ctx context.Context, id, tenant string) (*Upload, error) {
	k := t.keys(id)
	pipe := t.rdb.Pipeline()
	h := pipe.HGetAll(ctx, k[0])
	d := pipe.SCard(ctx, k[2])
	f := pipe.HLen(ctx, k[3])
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
	u.CreatedAt, u.UpdatedAt, u.CompletedAt = msTime(f["createdAt"]), msTime(f["updatedAt"]), msTime(f["completedAt"])
	return u, nil
}

func msTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// Filter narrows List.
type Filter struct {
	Template string
	Status   Status
	Limit    int // default 50, at most 1000
}

// List returns a tenant's recent uploads, newest first.
func (t *Tracker) List(ctx context.Context, tenant string, f Filter) ([]*Upload, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 1000)
	idx := t.tenantIndex(tenant)
	var out []*Upload
	const batch = 200
	for start := int64(0); len(out) < f.Limit && start < 10_000; start += batch {
		ids, err := t.rdb.ZRevRange(ctx, idx, start, start+batch-1).Result()
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			u, err := t.Get(ctx, id, tenant)
			if errors.Is(err, ErrNotFound) {
				_ = t.rdb.ZRem(ctx, idx, id).Err() // expired: drop it from the index
				continue
			}
			if err != nil {
				return nil, err
			}
			if (f.Template != "" && u.Template != f.Template) || (f.Status != "" && u.Status != f.Status) {
				continue
			}
			out = append(out, u)
			if len(out) == f.Limit {
				break
			}
		}
		if len(ids) < batch {
			break
		}
	}
	return out, nil
}

// Attempts returns an upload's attempts log, oldest first.
func (t *Tracker) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	raw, err := t.rdb.LRange(ctx, t.keys(id)[4], 0, -1).Result()
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
	raw, err := t.rdb.HGetAll(ctx, t.keys(id)[3]).Result()
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

// BeginState says what a worker should do with a ticket.
type BeginState int

// Begin states.
const (
	BeginGo    BeginState = iota // send the page now
	BeginDone                    // page already delivered or failed: carry on with Released
	BeginBusy                    // another ticket message holds the page's lease, for Wait more
	BeginWait                    // the retry interval has not passed: hand back for Wait
	BeginGone                    // the upload no longer exists
	BeginStale                   // a ticket from before a manual retry: drop it
	// BeginSuperseded: a later delivery of the same ticket message holds the
	// page: this delivery stops and leaves the message to it.
	BeginSuperseded
)

// Begin is the answer to Begin.
type Begin struct {
	State    BeginState
	Attempts int           // attempts already made for this page (BeginGo)
	Wait     time.Duration // BeginWait, BeginBusy
	Released int           // BeginDone: the page this page's completion released (0: none)
	Gen      int           // retry generation of the upload
	Upload   *Upload       // BeginGo: template, totals, extra, destination, tenant
	// Announce (BeginDone): the upload is finished but its completion was
	// never confirmed announced (a worker died in between): announce it.
	Announce bool
	// DoneFailed (BeginDone): the page is in the failure log.
	DoneFailed bool
}

// Begin checks whether a page may be sent now (gen is the ticket's retry
// generation) and, if so, takes a lease on it
// for leaseFor so that no other worker sends it at the same time. token
// identifies the ticket delivery as "<message>.<delivery count>": a later
// delivery of the same message takes over an earlier one's lease, and an
// earlier one finding a later one's lease is told BeginSuperseded.
func (t *Tracker) Begin(ctx context.Context, id string, page, gen int, token string, leaseFor time.Duration, now time.Time) (Begin, error) {
	res, err := t.runHot(ctx, beginScript, t.keys(id), page, now.UnixMilli(), leaseFor.Milliseconds(), token, gen)
	if err != nil {
		return Begin{}, err
	}
	switch res[0] {
	case "gone":
		return Begin{State: BeginGone}, nil
	case "stale":
		return Begin{State: BeginStale}, nil
	case "done":
		return Begin{State: BeginDone, Released: atoi(res[1]), Gen: atoi(res[2]), Announce: res[3] == "1", DoneFailed: res[4] == "failed"}, nil
	case "busy":
		return Begin{State: BeginBusy, Wait: time.Duration(atoi(res[1])) * time.Millisecond}, nil
	case "wait":
		return Begin{State: BeginWait, Wait: time.Duration(atoi(res[1])) * time.Millisecond}, nil
	case "superseded":
		return Begin{State: BeginSuperseded}, nil
	case "go":
		u := &Upload{ID: id, Template: res[2], Tenant: res[7], Status: StatusDelivering, CreatedAt: msTime(res[9])}
		u.TotalRecords, u.TotalPages = atoi(res[3]), atoi(res[4])
		if res[5] != "" {
			u.Extra = json.RawMessage(res[5])
		}
		dest, err := t.dests.decode(res[6])
		if err != nil {
			return Begin{}, fmt.Errorf("upload %s: destination: %w", id, err)
		}
		u.Destination = dest
		return Begin{State: BeginGo, Attempts: atoi(res[1]), Gen: atoi(res[8]), Upload: u}, nil
	}
	return Begin{}, fmt.Errorf("tracker: unexpected begin answer %q", res[0])
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// Outcome of an attempt.
type Outcome string

// Outcomes.
const (
	Delivered Outcome = "delivered" // 2xx: the page is done
	Retrying  Outcome = "retrying"  // failed, attempts left: try again at NextAt
	Failed    Outcome = "failed"    // failed, no attempts left: into the failure log
	Released  Outcome = "released"  // not a customer attempt (our own fault or shutdown): give the page back
)

// Finish describes the end of an attempt.
type Finish struct {
	Outcome Outcome
	Attempt *Attempt  // logged when not nil
	NextAt  time.Time // Retrying: when the next attempt may start
	Failure *Failure  // Failed: the failure log entry
	Token   string    // the token given to Begin
	Gen     int       // the ticket's retry generation
	Now     time.Time
	// ChainLease: when the page is delivered, lease the page it releases
	// for Token for this long if nobody holds it, it is not done and no
	// retry time is ahead (else Begin decides); Finished.NextLeased says if
	// it was. It saves the worker the Begin of a page it carries on with.
	ChainLease time.Duration
}

// Finished is the answer to Finish.
type Finished struct {
	// AlreadyDone: the page was already delivered or failed (by another
	// delivery, or this call ran twice); Released still tells which page it
	// released, DoneFailed that it is in the failure log, and Announce that
	// the upload is finished but its completion event is not yet confirmed
	// published.
	AlreadyDone bool
	DoneFailed  bool
	Announce    bool
	// Stale: the attempt is from before a manual retry of the upload
	// (Finish.Gen is older); nothing was recorded.
	Stale     bool
	Gone      bool
	Released  int // page to release now (0: none)
	Gen       int
	Status    Status
	Delivered int
	Failed    int
	// CompletedNow is true for the one call that moved the upload to its final status.
	CompletedNow bool
	// NextLeased (with Finish.ChainLease): the released page is leased for
	// the token, as by a Begin answering BeginGo with NextAttempts attempts.
	NextLeased   bool
	NextAttempts int
	// Superseded: a later delivery of the caller's ticket message has begun
	// (it may have taken the page over); the outcome is recorded all the
	// same, and the caller should leave the message to that delivery.
	Superseded bool
}

// Finish records an attempt's outcome. Delivered and Failed release the next
// page of the upload and may complete the upload.
func (t *Tracker) Finish(ctx context.Context, id string, page int, f Finish) (Finished, error) {
	var attempt, failure []byte
	var err error
	number := 0
	if f.Attempt != nil {
		number = f.Attempt.Attempt
		if attempt, err = json.Marshal(f.Attempt); err != nil {
			return Finished{}, err
		}
	}
	if f.Failure != nil {
		if failure, err = json.Marshal(f.Failure); err != nil {
			return Finished{}, err
		}
	}
	if f.Now.IsZero() {
		f.Now = time.Now()
	}
	res, err := t.runHot(ctx, finishScript, t.keys(id), page, f.Now.UnixMilli(), string(f.Outcome),
		attempt, f.NextAt.UnixMilli(), failure, t.logCap, t.retention.Milliseconds(), f.Token, f.ChainLease.Milliseconds(), number, f.Gen)
	if err != nil {
		return Finished{}, err
	}
	switch res[0] {
	case "gone":
		return Finished{Gone: true}, nil
	case "stale":
		return Finished{Stale: true}, nil
	case "done":
		return Finished{AlreadyDone: true, Released: atoi(res[1]), Gen: atoi(res[2]),
			Announce: res[3] == "1", DoneFailed: res[4] == "failed", Superseded: res[5] == "1"}, nil
	case "retrying", "released":
		return Finished{Status: StatusDelivering, Superseded: res[1] == "1"}, nil
	}
	return Finished{
		Released: atoi(res[1]), Gen: atoi(res[2]), Status: Status(res[3]),
		Delivered: atoi(res[4]), Failed: atoi(res[5]), CompletedNow: res[6] == "1",
		NextLeased: res[7] == "1", NextAttempts: atoi(res[8]), Superseded: res[9] == "1",
	}, nil
}

// Announced records that an upload's completion event for the completion
// at completedAt is published. A later completion (a late 2xx that turned a
// failed upload completed) stays pending: its own event is still due.
func (t *Tracker) Announced(ctx context.Context, id string, completedAt time.Time) error {
	return announcedScript.Run(ctx, t.rdb, t.keys(id)[:1], completedAt.UnixMilli()).Err()
}

// Retried is the answer to Retry.
type Retried struct {
	Requeued int   // failed pages queued again
	Release  []int // pages whose tickets the caller publishes now
	Gen      int   // the new retry generation (part of the tickets' ids)
}

// Retry queues an upload's failed pages again. It answers ErrBusy while the
// upload is still delivering.
func (t *Tracker) Retry(ctx context.Context, id, tenant string, now time.Time) (Retried, error) {
	u, err := t.Get(ctx, id, tenant)
	if err != nil {
		return Retried{}, err
	}
	res, err := retryScript.Run(ctx, t.rdb, t.keys(id), now.UnixMilli(), max(u.Destination.MaxInFlight, 1)).StringSlice()
	if err != nil {
		return Retried{}, err
	}
	switch res[0] {
	case "gone":
		return Retried{}, fmt.Errorf("upload %s: %w", id, ErrNotFound)
	case "busy":
		return Retried{}, fmt.Errorf("upload %s: %w", id, ErrBusy)
	}
	r := Retried{Requeued: atoi(res[0]), Gen: atoi(res[1])}
	for _, p := range res[2:] {
		r.Release = append(r.Release, atoi(p))
	}
	return r, nil
}

// RetryPublished confirms that the tickets Retry asked for are published.
func (t *Tracker) RetryPublished(ctx context.Context, id string) error {
	return t.rdb.HDel(ctx, t.keys(id)[0], "retryRelease", "retryRequeued").Err()
}
