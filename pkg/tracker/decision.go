package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redisconn"
)

// Kind is what a delivery does next with a page, as the tracker decides it.
type Kind uint8

// Kinds of decision.
const (
	// Send: the page (Decision.Page) is leased to the caller's token; send
	// it. Attempts were made before; Upload is set when Begin answers.
	Send Kind = iota + 1
	// Done: the page is delivered, or failed for good (Failed). Next is the
	// page its end let go on (0: none). Recorded: this call ended it.
	Done
	// Wait: the page's next attempt is not due for Wait (its retry interval,
	// including the one a retrying outcome just recorded).
	Wait
	// Busy: another ticket message holds the page's lease, for Wait more.
	Busy
	// GivenBack: the page was given back without counting an attempt.
	GivenBack
	// Gone: the upload no longer exists.
	Gone
	// Stale: the ticket or attempt is from before a manual retry of the
	// upload, which owns the page now; nothing was recorded.
	Stale
	// Superseded: a later delivery of the caller's ticket message has begun
	// and acts on the message's pages from now on. A Finish answering it has
	// recorded its outcome all the same (Announce and Completion say what
	// that finished).
	Superseded
)

var kindNames = map[string]Kind{
	"send": Send, "done": Done, "wait": Wait, "busy": Busy, "released": GivenBack,
	"gone": Gone, "stale": Stale, "superseded": Superseded,
}

func (k Kind) String() string {
	for name, v := range kindNames {
		if v == k {
			return name
		}
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Decision is the tracker's answer to Begin and Finish.
type Decision struct {
	Kind     Kind
	Page     int
	Attempts int           // Send: attempts made so far
	Upload   *Upload       // Send, from Begin: template, totals, extra, destination, tenant
	Wait     time.Duration // Wait, Busy
	Next     int           // Done: the page this page's end let go on (0: none)
	Gen      int           // the upload's retry generation (for the next page's ticket)
	Failed   bool          // Done: the page is in the failure log
	Recorded bool          // Done, Send: this call recorded the outcome that ended the page
	// Announce: the upload is finished and its completion event is not yet
	// confirmed published (a worker died in between, or its publish failed).
	Announce bool
	// Completion: this call finished the upload (nil otherwise).
	Completion *Completion
	// Pause: the template's paused state, read in the same round trip when
	// the call named its template (PauseUnknown otherwise, or when that
	// read failed). With Send, it is the state of the page sent.
	Pause PauseState
}

// Completion is how an upload finished.
type Completion struct {
	Status    Status
	Delivered int
	Failed    int
	At        time.Time
}

// Call names a page and the delivery acting on it.
type Call struct {
	Upload string
	Page   int
	Gen    int // the ticket's retry generation
	// Token names the delivery: "<message>.<delivery count>". A later
	// delivery of the same message may take over the pages an earlier one
	// leased.
	Token string
	// Tenant and Template, when Template is set, name the upload's template:
	// Begin and Finish then read its paused state in their round trip
	// (Decision.Pause).
	Tenant, Template string
}

// Outcome of an attempt.
type Outcome string

// Outcomes (the attempts log's "outcome").
const (
	Delivered Outcome = "delivered" // 2xx: the page is done
	Retrying  Outcome = "retrying"  // failed, attempts left: try again at NextAt
	Failed    Outcome = "failed"    // failed, no attempts left: into the failure log
	Released  Outcome = "released"  // not a customer attempt (our own fault or shutdown): the page is given back
)

// Finish describes the end of an attempt.
type Finish struct {
	Outcome Outcome
	Attempt *Attempt  // logged when not nil
	NextAt  time.Time // Retrying: when the next attempt may start
	Failure *Failure  // Failed: the failure log entry
	Now     time.Time
	// Carry: when the page is delivered, lease its next page for the same
	// token for this long if nobody holds it, it is not done and no retry
	// time is ahead; the answer is then Send for that page.
	Carry time.Duration
}

// beginRequest is the begin script's request.
type beginRequest struct {
	Page  int    `json:"page"`
	Gen   int    `json:"gen"`
	Token string `json:"token"`
	Now   int64  `json:"now"`   // unix ms
	Lease int64  `json:"lease"` // ms
}

// finishRequest is the finish script's request.
type finishRequest struct {
	Page      int    `json:"page"`
	Gen       int    `json:"gen"`
	Token     string `json:"token"`
	Now       int64  `json:"now"` // unix ms
	Outcome   string `json:"outcome"`
	Attempt   int    `json:"attempt"` // the attempt's number (0: unknown)
	Record    string `json:"record"`  // the attempts log entry (JSON; "": none)
	NextAt    int64  `json:"nextAt"`  // retrying: unix ms
	Failure   string `json:"failure"` // failed: the failure log entry (JSON)
	LogCap    int    `json:"logCap"`
	Retention int64  `json:"retention"` // ms
	Carry     int64  `json:"carry"`     // ms, 0: none
}

// reply is the answer of the begin and finish scripts.
type reply struct {
	Kind       string `json:"kind"`
	Page       int    `json:"page"`
	Attempts   int    `json:"attempts"`
	Wait       int64  `json:"wait"` // ms
	Next       int    `json:"next"`
	Gen        int    `json:"gen"`
	Failed     bool   `json:"failed"`
	Recorded   bool   `json:"recorded"`
	Announce   bool   `json:"announce"`
	Completion *struct {
		Status    string `json:"status"`
		Delivered int    `json:"delivered"`
		Failed    int    `json:"failed"`
		At        int64  `json:"at"` // unix ms
	} `json:"completed"`
	Upload *struct {
		Template     string `json:"template"`
		Tenant       string `json:"tenant"`
		TotalRecords int    `json:"totalRecords"`
		TotalPages   int    `json:"totalPages"`
		Extra        string `json:"extra"`
		Dest         string `json:"dest"`
		CreatedAt    int64  `json:"createdAt"` // unix ms
	} `json:"upload"`
}

// decision decodes a begin or finish answer.
func (t *Tracker) decision(id, raw string) (Decision, error) {
	var r reply
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return Decision{}, fmt.Errorf("tracker: upload %s: answer %q: %w", id, raw, err)
	}
	k, ok := kindNames[r.Kind]
	if !ok {
		return Decision{}, fmt.Errorf("tracker: upload %s: answer of unknown kind %q", id, r.Kind)
	}
	d := Decision{Kind: k, Page: r.Page, Attempts: r.Attempts, Wait: time.Duration(r.Wait) * time.Millisecond,
		Next: r.Next, Gen: r.Gen, Failed: r.Failed, Recorded: r.Recorded, Announce: r.Announce}
	if c := r.Completion; c != nil {
		d.Completion = &Completion{Status: Status(c.Status), Delivered: c.Delivered, Failed: c.Failed, At: msTime(c.At)}
	}
	if u := r.Upload; u != nil {
		dest, err := t.dests.decode(u.Dest)
		if err != nil {
			return Decision{}, fmt.Errorf("upload %s: destination: %w", id, err)
		}
		d.Upload = &Upload{ID: id, Tenant: u.Tenant, Template: u.Template, Status: StatusDelivering,
			TotalRecords: u.TotalRecords, TotalPages: u.TotalPages, Destination: dest, CreatedAt: msTime(u.CreatedAt)}
		if u.Extra != "" {
			d.Upload.Extra = json.RawMessage(u.Extra)
		}
	}
	return d, nil
}

// Begin says whether the page of c may be sent now and, if so (Send), leases
// it to c.Token for leaseFor so that no other delivery sends it meanwhile.
func (t *Tracker) Begin(ctx context.Context, c Call, leaseFor time.Duration, now time.Time) (Decision, error) {
	req, err := json.Marshal(beginRequest{Page: c.Page, Gen: c.Gen, Token: c.Token, Now: now.UnixMilli(), Lease: leaseFor.Milliseconds()})
	if err != nil {
		return Decision{}, err
	}
	raw, pause, err := t.runHot(ctx, beginScript, t.upload(c.Upload).all(), req, t.pauseKey(c))
	if err != nil {
		return Decision{}, err
	}
	d, err := t.decision(c.Upload, raw)
	d.Pause = pause
	return d, err
}

// Finish records an attempt's outcome for the page of c and says what comes
// next. Delivered and Failed let the upload's next page go and may finish the
// upload.
func (t *Tracker) Finish(ctx context.Context, c Call, f Finish) (Decision, error) {
	if f.Now.IsZero() {
		f.Now = time.Now()
	}
	r := finishRequest{Page: c.Page, Gen: c.Gen, Token: c.Token, Now: f.Now.UnixMilli(), Outcome: string(f.Outcome),
		LogCap: t.logCap, Retention: t.retention.Milliseconds(), Carry: f.Carry.Milliseconds()}
	if f.Outcome == Retrying {
		r.NextAt = f.NextAt.UnixMilli()
	}
	if f.Attempt != nil {
		rec, err := json.Marshal(f.Attempt)
		if err != nil {
			return Decision{}, err
		}
		r.Attempt, r.Record = f.Attempt.Attempt, string(rec)
	}
	if f.Failure != nil {
		fail, err := json.Marshal(f.Failure)
		if err != nil {
			return Decision{}, err
		}
		r.Failure = string(fail)
	}
	req, err := json.Marshal(r)
	if err != nil {
		return Decision{}, err
	}
	if f.Outcome == Delivered || f.Outcome == Failed {
		// Durable: the ticket is acknowledged next, and a page whose final
		// state was lost with its master would never be finished.
		ctx = redisconn.Durable(ctx)
	}
	raw, pause, err := t.runHot(ctx, finishScript, t.upload(c.Upload).all(), req, t.pauseKey(c))
	if err != nil {
		return Decision{}, err
	}
	d, err := t.decision(c.Upload, raw)
	d.Pause = pause
	return d, err
}

// pauseKey is the key of the template whose paused state c asks for ("":
// none).
func (t *Tracker) pauseKey(c Call) string {
	if c.Template == "" {
		return ""
	}
	return t.templateKey(c.Tenant, c.Template)
}

// announcedRequest is the announced script's request.
type announcedRequest struct {
	CompletedAt int64 `json:"completedAt"` // unix ms
}

// Announced records that an upload's completion event for the completion
// at completedAt is published. A later completion (a late 2xx that turned a
// failed upload completed) stays pending: its own event is still due.
func (t *Tracker) Announced(ctx context.Context, id string, completedAt time.Time) error {
	req, err := json.Marshal(announcedRequest{CompletedAt: completedAt.UnixMilli()})
	if err != nil {
		return err
	}
	return announcedScript.Run(ctx, t.rdb, []string{t.upload(id).record}, req).Err()
}

// retryRequest is the retry script's request.
type retryRequest struct {
	Now    int64 `json:"now"`    // unix ms
	Window int   `json:"window"` // pages released at once (maxInFlight)
	Batch  int   `json:"batch"`  // pages queued per call, at most
	Scan   int   `json:"scan"`   // page numbers looked at per call, at most
}

// A retry queues its pages RetryBatch at a time, each call looking at no
// more than 4*RetryBatch page numbers: a call holds Redis for about a
// millisecond whatever the number of failed pages.
const RetryBatch = 500

// retryReply is the retry script's answer.
type retryReply struct {
	Kind     string `json:"kind"` // requeued | busy | gone
	Requeued int    `json:"requeued"`
	Gen      int    `json:"gen"`
	Release  []int  `json:"release"`
}

// Retried is the answer to Retry.
type Retried struct {
	Requeued int    // failed pages queued again
	Release  []int  // pages whose tickets the caller publishes now
	Gen      int    // the new retry generation (part of the tickets' ids)
	Template string // the upload's template (for the tickets)
}

// Retry queues an upload's failed pages again. It answers ErrBusy while the
// upload is still delivering.
func (t *Tracker) Retry(ctx context.Context, id, tenant string, now time.Time) (Retried, error) {
	u, err := t.Get(ctx, id, tenant)
	if err != nil {
		return Retried{}, err
	}
	req, err := json.Marshal(retryRequest{Now: now.UnixMilli(), Window: max(u.Destination.MaxInFlight, 1), Batch: RetryBatch, Scan: 4 * RetryBatch})
	if err != nil {
		return Retried{}, err
	}
	keys := t.upload(id).all()
	run := func(s *redis.Script) (retryReply, error) {
		var r retryReply
		raw, err := s.Run(ctx, t.rdb, keys, req).Text()
		if err != nil {
			return r, err
		}
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return r, fmt.Errorf("tracker: upload %s: retry answer %q: %w", id, raw, err)
		}
		return r, nil
	}
	r, err := run(retryScript)
	for err == nil && (r.Kind == "batch" || r.Kind == "again") {
		if r.Kind == "again" {
			r, err = run(retryScript)
			continue
		}
		r, err = run(retryBatchScript)
	}
	if err != nil {
		return Retried{}, err
	}
	switch r.Kind {
	case "gone":
		return Retried{}, fmt.Errorf("upload %s: %w", id, ErrNotFound)
	case "busy":
		return Retried{}, fmt.Errorf("upload %s: %w", id, ErrBusy)
	case "requeued":
		return Retried{Requeued: r.Requeued, Release: r.Release, Gen: r.Gen, Template: u.Template}, nil
	}
	return Retried{}, fmt.Errorf("tracker: upload %s: retry answer of unknown kind %q", id, r.Kind)
}

// RetryPublished confirms that the tickets Retry asked for are published.
func (t *Tracker) RetryPublished(ctx context.Context, id string) error {
	return t.rdb.HDel(ctx, t.upload(id).record, "retryRelease", "retryRequeued").Err()
}
