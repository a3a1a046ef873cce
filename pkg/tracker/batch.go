package tracker

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redisconn"
)

// batcher sends the scripts of concurrent callers to Redis in pipelines.
//
// A worker runs many deliveries at once and each makes two script calls per
// page. Sent one by one, every call costs a write and a read on both sides
// of a socket, and on a busy machine those system calls and wake-ups, not
// the scripts, are most of the cost. The batcher's senders each take the
// calls waiting at that moment (up to maxBatch) and send them as one
// pipeline: while one pipeline is on the wire the next calls queue up, so
// batches grow with the load and a lone call at idle goes out at once, with
// no timer to wait for.
type batcher struct {
	rdb   redis.UniversalClient
	calls chan *scriptCall
	stop  chan struct{}
	wg    sync.WaitGroup
	// mu orders calls against close: a call is queued under the read lock,
	// and close sets closed under the write lock before the senders' last
	// drain, so no call is queued after it.
	mu     sync.RWMutex
	closed bool
}

// maxBatch bounds one pipeline, so one slow batch cannot hold many callers.
const maxBatch = 128

type scriptCall struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	req    []byte
	tpl    string // a template key whose paused state is read with the script ("": none)
	res    string
	pause  PauseState
	err    error
	done   chan struct{}
}

var callPool = sync.Pool{New: func() any { return &scriptCall{done: make(chan struct{}, 1)} }}

// newBatcher starts senders goroutines sending pipelines over rdb.
func newBatcher(rdb redis.UniversalClient, senders int) *batcher {
	b := &batcher{rdb: rdb, calls: make(chan *scriptCall, 4*maxBatch), stop: make(chan struct{})}
	for range max(senders, 1) {
		b.wg.Add(1)
		go b.send()
	}
	return b
}

// close stops the senders once the calls already queued are sent.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// run runs script as EVALSHA in the next pipeline and returns its answer
// as strings, with the paused state of the template tpl (when not "") read
// in the same pipeline. If ctx ends first, run returns ctx's error; the
// script may still run (as with any call whose answer is lost on the way).
func (b *batcher) run(ctx context.Context, script *redis.Script, keys []string, req []byte, tpl string) (string, PauseState, error) {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return runDirect(ctx, b.rdb, script, keys, req, tpl)
	}
	c := callPool.Get().(*scriptCall)
	c.ctx, c.script, c.keys, c.req, c.tpl = ctx, script, keys, req, tpl
	select {
	case b.calls <- c:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		b.recycle(c)
		return "", PauseUnknown, ctx.Err()
	}
	select {
	case <-c.done:
		res, pause, err := c.res, c.pause, c.err
		b.recycle(c)
		return res, pause, err
	case <-ctx.Done():
		// The sender still owns c: it is dropped, not recycled.
		return "", PauseUnknown, ctx.Err()
	}
}

func (b *batcher) recycle(c *scriptCall) {
	*c = scriptCall{done: c.done}
	callPool.Put(c)
}

func (b *batcher) send() {
	defer b.wg.Done()
	batch := make([]*scriptCall, 0, maxBatch)
	cmds := make([]*redis.Cmd, 0, maxBatch)
	states := make([]*redis.StringCmd, 0, maxBatch)
	for {
		var c *scriptCall
		select {
		case c = <-b.calls:
		case <-b.stop:
			// Callers that got their call in before stop still get an answer.
			for {
				select {
				case c = <-b.calls:
					b.exec([]*scriptCall{c}, cmds[:0], states[:0])
				default:
					return
				}
			}
		}
		batch = append(batch[:0], c)
	more:
		for len(batch) < maxBatch {
			select {
			case c = <-b.calls:
				batch = append(batch, c)
			default:
				break more
			}
		}
		b.exec(batch, cmds[:0], states[:0])
	}
}

// exec sends one pipeline of EVALSHA calls, each followed by the HGET of
// its template's state when it asks for it. A script Redis does not hold
// (NOSCRIPT: Redis was restarted or flushed) is sent again with EVAL, which
// loads it.
func (b *batcher) exec(batch []*scriptCall, cmds []*redis.Cmd, states []*redis.StringCmd) {
	pipe := b.rdb.Pipeline()
	for _, c := range batch {
		ctx := context.WithoutCancel(c.ctx)
		cmds = append(cmds, pipe.EvalSha(ctx, c.script.Hash(), c.keys, c.req))
		var state *redis.StringCmd
		if c.tpl != "" {
			state = pipe.HGet(ctx, c.tpl, stateField)
		}
		states = append(states, state)
	}
	// The pipeline's context is the first call's: the pipeline is not
	// abandoned because one caller gave up (the others still wait for it).
	// It is durable when one of the calls is.
	ctx := context.WithoutCancel(batch[0].ctx)
	for _, c := range batch {
		if redisconn.IsDurable(c.ctx) {
			ctx = redisconn.Durable(ctx)
			break
		}
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range batch {
		res, err := cmds[i].Text()
		if err != nil && isNoScript(err) {
			res, err = c.script.Run(context.WithoutCancel(c.ctx), b.rdb, c.keys, c.req).Text()
		}
		c.res, c.err = res, err
		if states[i] != nil {
			c.pause = pauseState(states[i])
		}
		c.done <- struct{}{}
	}
}

func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }
