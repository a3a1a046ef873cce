package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redisconn"
)

// A template's endpoint is protected (api.md §7) by one Redis hash per
// template (keys.go), shared by every worker: the rate limit's schedule
// (a GCRA: tat is the earliest time the next request may go), the count
// of failed attempts in a row, and the paused state with its next probe
// time. Its scripts read the time from Redis (TIME), so workers whose clocks
// differ still share one schedule.

// Limit is a template's rate limit: at most Requests requests in any window
// of Interval. The zero Limit is no limit.
type Limit struct {
	Requests int
	Interval time.Duration
}

// Protection is what a template asks of the gate and of a reported attempt.
type Protection struct {
	Limit              Limit
	PauseAfterFailures int           // 0: never pause
	ProbeInterval      time.Duration // 0: no probes while paused
	// Recheck bounds how long a page waits while the template is paused
	// before it asks again (a resume by hand is seen within it).
	Recheck time.Duration
	// Test: a test request, which the rate limit counts but a pause does
	// not hold.
	Test bool
}

// GateKind is the gate's answer.
type GateKind uint8

// Answers of the gate.
const (
	// Go: send now (Probe: as the paused template's probe).
	Go GateKind = iota + 1
	// Limited: the rate limit allows the next request in Wait.
	Limited
	// Held: the template is paused; ask again in Wait.
	Held
)

// Gate is the gate's decision for one request to a template's endpoint.
type Gate struct {
	Kind  GateKind
	Wait  time.Duration
	Probe bool
}

type gateRequest struct {
	RequestsPer   int   `json:"requests"`
	IntervalUs    int64 `json:"interval"` // µs
	ProbeInterval int64 `json:"probeInterval"`
	Recheck       int64 `json:"recheck"` // ms
	Test          bool  `json:"test"`
}

type gateReply struct {
	Kind  string `json:"kind"`
	Wait  int64  `json:"wait"` // ms
	Probe bool   `json:"probe"`
}

// nowLua reads Redis's clock: now (ms) and nowUs (µs).
const nowLua = `
local clock = redis.call('TIME')
local nowUs = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local now = math.floor(nowUs / 1000)
`

// gateScript decides whether a request may go to a template's endpoint now.
// Request: gateRequest; answer: gateReply (go, limited, held). A paused
// template lets one request go per probeInterval (the first caller after
// probeAt takes it); the rate limit spaces requests interval/requests apart
// (GCRA without burst, so no window of interval holds more than requests).
// A caller refused by either takes nothing.
var gateScript = redis.NewScript(nowLua + `
local K = KEYS[1]
local a = cjson.decode(ARGV[1])
local probe = false
if not a.test and redis.call('HGET', K, 'state') == 'paused' then
  local at = tonumber(redis.call('HGET', K, 'probeAt') or '0')
  if at == 0 then return cjson.encode({kind = 'held', wait = a.recheck}) end
  if at > now then return cjson.encode({kind = 'held', wait = math.min(at - now, a.recheck)}) end
  probe = true
end
if a.requests > 0 then
  local tat = tonumber(redis.call('HGET', K, 'tat') or '0')
  if tat > nowUs then
    return cjson.encode({kind = 'limited', wait = math.ceil((tat - nowUs) / 1000)})
  end
  local step = math.ceil(a.interval / a.requests)
  redis.call('HSET', K, 'tat', string.format('%d', math.max(tat, nowUs) + step))
end
if probe then redis.call('HSET', K, 'probeAt', now + a.probeInterval) end
return cjson.encode({kind = 'go', probe = probe})
`)

// Gate asks whether a request may go to the template's endpoint now. A Go
// answer takes the request's place in the rate limit (and the probe, when
// paused): the caller sends it.
func (t *Tracker) Gate(ctx context.Context, tenant, template string, p Protection) (Gate, error) {
	req, err := json.Marshal(gateRequest{RequestsPer: p.Limit.Requests, IntervalUs: p.Limit.Interval.Microseconds(),
		ProbeInterval: p.ProbeInterval.Milliseconds(), Recheck: max(p.Recheck.Milliseconds(), 1), Test: p.Test})
	if err != nil {
		return Gate{}, err
	}
	raw, _, err := t.runHot(ctx, gateScript, []string{t.templateKey(tenant, template)}, req, "")
	if err != nil {
		return Gate{}, err
	}
	var r gateReply
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return Gate{}, fmt.Errorf("tracker: template %s: gate answer %q: %w", template, raw, err)
	}
	g := Gate{Wait: time.Duration(r.Wait) * time.Millisecond, Probe: r.Probe}
	switch r.Kind {
	case "go":
		g.Kind = Go
	case "limited":
		g.Kind = Limited
	case "held":
		g.Kind = Held
	default:
		return Gate{}, fmt.Errorf("tracker: template %s: gate answer of unknown kind %q", template, r.Kind)
	}
	return g, nil
}

// PauseState is a template's paused state as Begin or Finish read it, in
// their own round trip: one HGET of the template's hash beside the script.
// It says only whether the template is paused; what a paused template's
// page does (held, or sent as its probe) is Gate's answer.
type PauseState uint8

// Paused states.
const (
	// PauseUnknown: not read (the call named no template, or the read failed).
	PauseUnknown PauseState = iota
	// TemplateActive: the template was not paused.
	TemplateActive
	// TemplatePaused: the template was paused.
	TemplatePaused
)

// pauseState reads the answer of the HGET of a template's state field.
func pauseState(cmd *redis.StringCmd) PauseState {
	v, err := cmd.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return TemplateActive
	case err != nil:
		return PauseUnknown
	case v == pausedState:
		return TemplatePaused
	}
	return TemplateActive
}

// The template hash's field that holds its state, and its paused value
// (keys.go).
const (
	stateField  = "state"
	pausedState = "paused"
)

// Change is a change of a template's state that a call made.
type Change string

// Changes.
const (
	NoChange Change = ""
	Paused   Change = "paused"
	Resumed  Change = "resumed"
)

type reportRequest struct {
	Delivered     bool   `json:"delivered"`
	Probe         bool   `json:"probe"`
	PauseAfter    int    `json:"pauseAfter"`
	ProbeInterval int64  `json:"probeInterval"` // ms
	Reason        string `json:"reason"`
}

type changeReply struct {
	Change string `json:"change"`
	At     int64  `json:"at"` // unix ms
	Fails  int    `json:"fails"`
}

// reportScript counts an attempt's outcome: a delivered attempt resets the
// failures in a row (and a delivered probe resumes the template), a failed
// one adds one and pauses the template when the count reaches pauseAfter.
// Request: reportRequest; answer: changeReply.
var reportScript = redis.NewScript(nowLua + `
local K = KEYS[1]
local a = cjson.decode(ARGV[1])
local paused = redis.call('HGET', K, 'state') == 'paused'
if a.delivered then
  redis.call('HSET', K, 'fails', 0)
  if a.probe and paused then
    redis.call('HDEL', K, 'state', 'pausedAt', 'reason', 'probeAt')
    return cjson.encode({change = 'resumed', at = now})
  end
  return '{}'
end
local n = redis.call('HINCRBY', K, 'fails', 1)
if a.pauseAfter > 0 and n >= a.pauseAfter and not paused then
  local probeAt = 0
  if a.probeInterval > 0 then probeAt = now + a.probeInterval end
  redis.call('HSET', K, 'state', 'paused', 'pausedAt', now, 'reason', a.reason, 'probeAt', probeAt)
  return cjson.encode({change = 'paused', at = now, fails = n})
end
return cjson.encode({fails = n})
`)

// Report counts the outcome of an attempt that reached (or tried to reach)
// the template's endpoint, and says whether that paused or resumed it (at).
// reason is the pause reason should it pause.
func (t *Tracker) Report(ctx context.Context, tenant, template string, p Protection, delivered, probe bool, reason string) (Change, time.Time, error) {
	req, err := json.Marshal(reportRequest{Delivered: delivered, Probe: probe, PauseAfter: p.PauseAfterFailures,
		ProbeInterval: p.ProbeInterval.Milliseconds(), Reason: reason})
	if err != nil {
		return NoChange, time.Time{}, err
	}
	// Durable: a pause lost with its master would send to a dead endpoint again.
	raw, _, err := t.runHot(redisconn.Durable(ctx), reportScript, []string{t.templateKey(tenant, template)}, req, "")
	if err != nil {
		return NoChange, time.Time{}, err
	}
	return t.indexed(ctx, tenant, template, raw)
}

// indexed decodes a change and keeps the index of paused templates (for
// metrics) in step with it. The index is in another slot than the template,
// so it is a second call: a crash in between leaves it off by one template
// until that template next changes.
func (t *Tracker) indexed(ctx context.Context, tenant, template, raw string) (Change, time.Time, error) {
	c, at, err := decodeChange(template, raw)
	if err != nil {
		return c, at, err
	}
	switch c {
	case Paused:
		err = t.rdb.ZAdd(ctx, t.pausedIndexKey(), redis.Z{Score: float64(at.UnixMilli()), Member: tenant + "." + template}).Err()
	case Resumed:
		err = t.rdb.ZRem(ctx, t.pausedIndexKey(), tenant+"."+template).Err()
	}
	if err != nil {
		return c, at, fmt.Errorf("tracker: index of paused templates: %w", err)
	}
	return c, at, nil
}

// PausedTemplate is an entry of the index of paused templates.
type PausedTemplate struct {
	Tenant, Template string
	PausedAt         time.Time
}

// PausedTemplates counts the paused templates and lists the n paused longest.
func (t *Tracker) PausedTemplates(ctx context.Context, n int) (int64, []PausedTemplate, error) {
	pipe := t.rdb.Pipeline()
	total := pipe.ZCard(ctx, t.pausedIndexKey())
	oldest := pipe.ZRangeWithScores(ctx, t.pausedIndexKey(), 0, int64(n)-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, nil, err
	}
	out := make([]PausedTemplate, 0, len(oldest.Val()))
	for _, z := range oldest.Val() {
		member, _ := z.Member.(string)
		tenant, template, _ := strings.Cut(member, ".")
		out = append(out, PausedTemplate{Tenant: tenant, Template: template, PausedAt: msTime(int64(z.Score))})
	}
	return total.Val(), out, nil
}

func decodeChange(template, raw string) (Change, time.Time, error) {
	var r changeReply
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return NoChange, time.Time{}, fmt.Errorf("tracker: template %s: answer %q: %w", template, raw, err)
	}
	return Change(r.Change), msTime(r.At), nil
}

type setStateRequest struct {
	Pause         bool   `json:"pause"`
	Reason        string `json:"reason"`
	ProbeInterval int64  `json:"probeInterval"` // ms; 0: no probes
}

// setStateScript pauses or resumes a template by hand. Request:
// setStateRequest; answer: changeReply (no change when it already was so).
// A resume clears the failures in a row.
var setStateScript = redis.NewScript(nowLua + `
local K = KEYS[1]
local a = cjson.decode(ARGV[1])
local paused = redis.call('HGET', K, 'state') == 'paused'
if a.pause then
  if paused then return '{}' end
  local probeAt = 0
  if a.probeInterval > 0 then probeAt = now + a.probeInterval end
  redis.call('HSET', K, 'state', 'paused', 'pausedAt', now, 'reason', a.reason, 'probeAt', probeAt)
  return cjson.encode({change = 'paused', at = now})
end
redis.call('HSET', K, 'fails', 0)
if not paused then return '{}' end
redis.call('HDEL', K, 'state', 'pausedAt', 'reason', 'probeAt')
return cjson.encode({change = 'resumed', at = now})
`)

// SetPaused pauses (with reason; probeInterval 0: no probes, only a resume
// by hand ends it) or resumes a template, and says whether that changed its
// state.
func (t *Tracker) SetPaused(ctx context.Context, tenant, template string, pause bool, reason string, probeInterval time.Duration) (Change, time.Time, error) {
	req, err := json.Marshal(setStateRequest{Pause: pause, Reason: reason, ProbeInterval: probeInterval.Milliseconds()})
	if err != nil {
		return NoChange, time.Time{}, err
	}
	raw, err := setStateScript.Run(redisconn.Durable(ctx), t.rdb, []string{t.templateKey(tenant, template)}, req).Text()
	if err != nil {
		return NoChange, time.Time{}, err
	}
	return t.indexed(ctx, tenant, template, raw)
}

// TemplateState is a template's delivery state.
type TemplateState struct {
	Paused      bool
	PausedAt    time.Time
	Reason      string
	Failures    int // failed attempts in a row
	NextProbeAt time.Time
}

// State reads a template's delivery state.
func (t *Tracker) State(ctx context.Context, tenant, template string) (TemplateState, error) {
	f, err := t.rdb.HGetAll(ctx, t.templateKey(tenant, template)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return TemplateState{}, err
	}
	s := TemplateState{Paused: f[stateField] == pausedState, PausedAt: msField(f["pausedAt"]), Reason: f["reason"], NextProbeAt: msField(f["probeAt"])}
	s.Failures, _ = strconv.Atoi(f["fails"])
	return s, nil
}

// ForgetTemplate removes a deleted template's state.
func (t *Tracker) ForgetTemplate(ctx context.Context, tenant, template string) error {
	if err := t.rdb.ZRem(ctx, t.pausedIndexKey(), tenant+"."+template).Err(); err != nil {
		return err
	}
	return t.rdb.Del(ctx, t.templateKey(tenant, template)).Err()
}
