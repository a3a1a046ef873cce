package tracker

import "github.com/redis/go-redis/v9"

// The scripts take one argument, ARGV[1]: their request as a JSON object
// (cjson), and answer one JSON object; decision.go holds the Go structs of
// both. KEYS are an upload's keys in the order of uploadKeys.all (keys.go
// describes each key and field).

// preludeLua is shared by begin and finish.
//
// Tokens are "<message>.<delivery>": the ticket message's stream sequence
// and how many times JetStream has delivered it. A later delivery of the
// same message takes over the leases of an earlier one (that worker missed
// its heartbeats or died); an earlier delivery is then superseded.
const preludeLua = `
local U, P, D, F, LOG, Q = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local a = cjson.decode(ARGV[1])

-- later(mine): a later delivery of the caller's message has begun (the
-- highest delivery count per message is kept in P as m:<message>); records
-- the caller's count when it is the highest. Once a later delivery has
-- begun, an earlier one is superseded on every page.
local function later(mine)
  local mm, md = string.match(mine, '^(.*)%.(%d+)$')
  if not mm then return false end
  local seen = tonumber(redis.call('HGET', P, 'm:'..mm) or '0')
  if tonumber(md) < seen then return true end
  if tonumber(md) > seen then redis.call('HSET', P, 'm:'..mm, md) end
  return false
end

-- holder: 'ours', 'older' (an earlier delivery of our message), 'newer' (a
-- later one) or 'other' (another message) for a lease's token.
local function holder(tok, mine)
  if tok == mine then return 'ours' end
  local tm, td = string.match(tok, '^(.*)%.(%d+)$')
  local mm, md = string.match(mine, '^(.*)%.(%d+)$')
  if tm and mm and tm == mm then
    if tonumber(td) < tonumber(md) then return 'older' end
    return 'newer'
  end
  return 'other'
end

-- int(n) is the text of the whole number n. Numbers are turned into text
-- here, once each: Lua and Redis would turn them with printf's
-- floating-point path, which costs more than the commands that take them.
local function int(n) return string.format('%d', n) end
local page, now = a.page, a.now
local pg, nowS = int(page), int(now)
local gen -- the upload's generation, read below

-- done(): the "done" answer for a delivered or failed page, nil for a page
-- still to deliver.
local function done()
  local failed = false
  if redis.call('SISMEMBER', D, pg) == 0 then
    if redis.call('HEXISTS', F, pg) == 0 then return nil end
    failed = true
  end
  return {kind = 'done', page = page, next = tonumber(redis.call('HGET', P, 'r:'..pg) or '0'), gen = gen,
    failed = failed, announce = redis.call('HGET', U, 'announce') == '1'}
end

-- The record's fields the scripts decide on, in one read. Create writes
-- every field at once: a record without a status is none.
local rec = redis.call('HMGET', U, 'status', 'gen', 'totalPages', 'released')
if not rec[1] then return '{"kind":"gone"}' end
gen = tonumber(rec[2] or '0')
-- A ticket or an attempt from before a manual retry: the retry owns the page.
if a.gen < gen then return '{"kind":"stale"}' end
`

// beginScript decides whether a delivery may send a page now, and if so
// leases it to the delivery's token. Request: beginRequest; answer:
// reply (kinds send, done, busy, wait, gone, stale, superseded).
var beginScript = redis.NewScript(preludeLua + `
if later(a.token) then return '{"kind":"superseded"}' end
local d = done()
if d then return cjson.encode(d) end
-- The page's lease, next attempt time and attempts.
local state = redis.call('HMGET', P, 'l:'..pg, 'n:'..pg, 'a:'..pg)
local lease = state[1]
if lease then
  local tok, exp = string.match(lease, '^(.*)|(%d+)$')
  local h = holder(tok, a.token)
  if h == 'newer' then return '{"kind":"superseded"}' end
  if h == 'other' and tonumber(exp) > now then
    return cjson.encode({kind = 'busy', page = page, wait = tonumber(exp) - now})
  end
end
local nextAt = tonumber(state[2] or '0')
if nextAt > now then return cjson.encode({kind = 'wait', page = page, wait = nextAt - now}) end
redis.call('HSET', P, 'l:'..pg, a.token..'|'..int(now + a.lease))
local u = redis.call('HMGET', U, 'template', 'totalRecords', 'totalPages', 'extra', 'dest', 'tenant', 'createdAt')
return cjson.encode({kind = 'send', page = page, gen = gen, attempts = tonumber(state[3] or '0'),
  upload = {template = u[1] or '', totalRecords = tonumber(u[2] or '0'), totalPages = tonumber(u[3] or '0'),
    extra = u[4] or '', dest = u[5] or '', tenant = u[6] or '', createdAt = tonumber(u[7] or '0')}})
`)

// finishScript records the end of an attempt. Request: finishRequest;
// answer: reply (kinds send, done, wait, released, gone, stale,
// superseded). Outcome "released" gives the page back without counting an
// attempt (our own fault). A delivered or failed page lets the next page
// of the upload go (the window), and may finish the upload. With carry, the
// next page of a delivered page is leased at once for the same token when
// begin would let it go now: the answer is then "send" for that page.
var finishScript = redis.NewScript(preludeLua + `
local superseded = later(a.token)
local outcome = a.outcome
-- answer: a superseded caller is told so, with what this call recorded.
local function answer(r)
  if superseded then r.kind = 'superseded' end
  return cjson.encode(r)
end
local function logAttempt()
  if a.record and a.record ~= '' then
    if redis.call('RPUSH', LOG, a.record) > a.logCap then redis.call('LTRIM', LOG, int(-a.logCap), '-1') end
    redis.call('HINCRBY', U, 'logged', '1')
  end
end
if redis.call('SISMEMBER', D, pg) == 1 then return answer(done()) end
if redis.call('HEXISTS', F, pg) == 1 then
  if outcome == 'delivered' then
    -- A late 2xx from a second copy of the ticket (its lease had lapsed):
    -- the page was delivered after all, so it leaves the failure log.
    logAttempt()
    redis.call('HDEL', F, pg)
    redis.call('SADD', D, pg)
    if redis.call('HGET', U, 'status') == 'failed' and redis.call('HLEN', F) == 0 then
      -- Announced as failed, now completed: announce again (a new
      -- completedAt gives the event a new id) and let its pages be purged.
      redis.call('HSET', U, 'status', 'completed', 'completedAt', nowS, 'announce', '1')
    end
    redis.call('HSET', U, 'updatedAt', nowS)
  end
  return answer(done())
end
-- c:<page> is "<token>|<attempt>" of the retrying attempt counted last.
local counted = 'c:'..pg
local state = redis.call('HMGET', P, 'l:'..pg, counted)
local lease = state[1]
if lease then
  local h = holder(string.match(lease, '^(.*)|%d+$') or '', a.token)
  if h == 'ours' then
    redis.call('HDEL', P, 'l:'..pg)
  elseif h == 'newer' then
    superseded = true
  end
end
local mark = a.token..'|'..int(a.attempt)
local wait = {kind = 'wait', page = page, wait = math.max(a.nextAt - now, 0)}
if outcome == 'retrying' and a.attempt > 0 and state[2] == mark then
  -- This attempt is counted already: the same call ran twice (a client
  -- resends a pipeline whose answers it lost). Another delivery's attempt
  -- with the same number is an attempt of its own and is counted.
  return answer(wait)
end
logAttempt()
redis.call('HSET', U, 'updatedAt', nowS)
if outcome == 'released' then return answer({kind = 'released', page = page}) end
redis.call('HINCRBY', P, 'a:'..pg, '1')
if outcome == 'retrying' then
  redis.call('HSET', P, 'n:'..pg, int(a.nextAt))
  if a.attempt > 0 then redis.call('HSET', P, counted, mark) end
  return answer(wait)
end
redis.call('HDEL', P, 'n:'..pg, counted)
if outcome == 'delivered' then
  redis.call('SADD', D, pg)
else
  redis.call('HSET', F, pg, a.failure)
end
-- The next page: the window's next one, else a page queued by a retry.
local total, window = tonumber(rec[3]), tonumber(rec[4])
local nxt, nx = 0, '0' -- the next page, and its text
if window < total then
  nxt = window + 1
  nx = int(nxt)
  redis.call('HSET', U, 'released', nx)
else
  nx = redis.call('LPOP', Q) or '0'
  nxt = tonumber(nx)
end
redis.call('HSET', P, 'r:'..pg, nx)
local r = {kind = 'done', page = page, next = nxt, gen = gen, failed = outcome == 'failed', recorded = true}
local delivered = redis.call('SCARD', D)
local failed = redis.call('HLEN', F)
if delivered + failed >= total and rec[1] == 'delivering' then
  local status = 'completed'
  if failed > 0 then status = 'failed' end
  redis.call('HSET', U, 'status', status, 'completedAt', nowS, 'announce', '1')
  r.announce = true
  r.completed = {status = status, delivered = delivered, failed = failed, at = now}
  if a.retention > 0 then
    for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], int(a.retention)) end
  end
elseif a.carry > 0 and outcome == 'delivered' and nxt > 0 and not superseded
   and redis.call('SISMEMBER', D, nx) == 0 and redis.call('HEXISTS', F, nx) == 0 then
  -- The next page's lease, next attempt time and attempts.
  local np = redis.call('HMGET', P, 'l:'..nx, 'n:'..nx, 'a:'..nx)
  if not np[1] and tonumber(np[2] or '0') <= now then
    redis.call('HSET', P, 'l:'..nx, a.token..'|'..int(now + a.carry))
    return cjson.encode({kind = 'send', page = nxt, gen = gen, recorded = true, attempts = tonumber(np[3] or '0')})
  end
end
return answer(r)
`)

// announcedScript clears the upload's pending announcement if it is the one
// of the completion at completedAt (ms). Request: announcedRequest.
var announcedScript = redis.NewScript(`
local a = cjson.decode(ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'completedAt') or '0') == a.completedAt then
  redis.call('HDEL', KEYS[1], 'announce')
end
return '{}'
`)

// retryScript starts (or goes on with) a retry of an upload's failed
// pages. Request: retryRequest; answer: retryReply (kinds gone, busy:
// still delivering, batch: call retryBatchScript until it answers
// requeued, requeued: with the pages whose tickets the caller publishes
// now; the rest wait in Q). Starting renames the failure log to FR (O(1)):
// its pages are then neither failed nor delivered, so the upload cannot
// finish before every one is queued; retryBatchScript moves them to Q a
// batch at a time, recording its place (retryNext), so a retry cut short
// is finished by the next call. Until the caller confirms the tickets are
// published (RetryPublished), the answer is kept: a retry call whose
// publishing failed can be repeated and publishes the same tickets again.
var retryScript = redis.NewScript(`
local U, F, Q, FR = KEYS[1], KEYS[4], KEYS[6], KEYS[7]
local a = cjson.decode(ARGV[1])
if redis.call('EXISTS', U) == 0 then return '{"kind":"gone"}' end
local gen = tonumber(redis.call('HGET', U, 'gen') or '0')
if redis.call('HGET', U, 'status') == 'delivering' then
  if redis.call('HEXISTS', U, 'retryNext') == 1 then return '{"kind":"batch"}' end
  local pending = redis.call('HGET', U, 'retryRelease')
  if not pending then return '{"kind":"busy"}' end
  local release = {}
  for p in string.gmatch(pending, '[^,]+') do release[#release + 1] = tonumber(p) end
  local r = {kind = 'requeued', requeued = tonumber(redis.call('HGET', U, 'retryRequeued') or '0'), gen = gen}
  if #release > 0 then r.release = release end
  return cjson.encode(r)
end
if redis.call('HLEN', F) == 0 then return cjson.encode({kind = 'requeued', requeued = 0, gen = gen}) end
redis.call('HINCRBY', U, 'gen', 1)
redis.call('DEL', Q)
redis.call('RENAME', F, FR)
redis.call('HSET', U, 'status', 'delivering', 'updatedAt', a.now, 'retryNext', 0, 'retryRelease', '', 'retryRequeued', 0)
redis.call('HDEL', U, 'completedAt')
for i = 1, #KEYS do redis.call('PERSIST', KEYS[i]) end
return '{"kind":"batch"}'
`)

// retryBatchScript queues the next batch of a retry's pages: it looks at
// up to a.scan page numbers from retryNext on and moves up to a.batch of
// them from FR to the pages released now (up to a.window) or to Q.
// Request: retryRequest; answer: retryReply (kinds batch: call again,
// requeued: done, gone).
var retryBatchScript = redis.NewScript(`
local U, P, Q, FR = KEYS[1], KEYS[2], KEYS[6], KEYS[7]
local a = cjson.decode(ARGV[1])
if redis.call('EXISTS', U) == 0 then return '{"kind":"gone"}' end
local at = tonumber(redis.call('HGET', U, 'retryNext') or '-1')
if at < 0 then return '{"kind":"again"}' end -- finished by another call
local gen = tonumber(redis.call('HGET', U, 'gen') or '0')
local total = tonumber(redis.call('HGET', U, 'totalPages') or '0')
local pending = redis.call('HGET', U, 'retryRelease') or ''
local release = {}
for p in string.gmatch(pending, '[^,]+') do release[#release + 1] = p end
local queued, moved, p = {}, 0, at
while p < total and p < at + a.scan and moved < a.batch do
  p = p + 1
  if redis.call('HDEL', FR, p) == 1 then
    redis.call('HDEL', P, 'a:'..p, 'n:'..p, 'r:'..p, 'l:'..p, 'c:'..p)
    moved = moved + 1
    if #release < a.window then release[#release + 1] = p else queued[#queued + 1] = p end
  end
end
if #queued > 0 then redis.call('RPUSH', Q, unpack(queued)) end
local requeued = redis.call('HINCRBY', U, 'retryRequeued', moved)
redis.call('HSET', U, 'retryRelease', table.concat(release, ','))
if p < total and redis.call('HLEN', FR) > 0 then
  redis.call('HSET', U, 'retryNext', p)
  return '{"kind":"batch"}'
end
redis.call('DEL', FR)
redis.call('HDEL', U, 'retryNext')
local r = {kind = 'requeued', requeued = requeued, gen = gen}
if #release > 0 then
  local nums = {}
  for i, v in ipairs(release) do nums[i] = tonumber(v) end
  r.release = nums
end
return cjson.encode(r)
`)

// attemptsPageScript reads a page of the attempts log. U's "logged" counts
// the attempts ever appended (finish), so an attempt's number stays the
// same when LTRIM drops the oldest. Request: pageRequest (from: a number);
// answer: pageReply.
var attemptsPageScript = redis.NewScript(`
local U, LOG = KEYS[1], KEYS[2]
local a = cjson.decode(ARGV[1])
local n = redis.call('LLEN', LOG)
local logged = math.max(tonumber(redis.call('HGET', U, 'logged') or '0'), n)
local first = logged - n
local from = math.max(a.from, first)
local r = {next = from, more = false}
if from < logged then
  local items = redis.call('LRANGE', LOG, from - first, from - first + a.limit - 1)
  r.next = from + #items
  r.more = r.next < logged
  if #items > 0 then r.items = items end
end
return cjson.encode(r)
`)

// failuresPageScript reads a page of the failure log, by page number, after
// page a.from. A log of up to 1000 failures is read whole and sorted;
// a longer one page number by page number, at most 10000 numbers a call.
// Request: pageRequest; answer: pageReply.
var failuresPageScript = redis.NewScript(`
local U, F = KEYS[1], KEYS[2]
local a = cjson.decode(ARGV[1])
local items, r = {}, {next = a.from, more = false}
if redis.call('HLEN', F) <= 1000 then
  local all = redis.call('HGETALL', F)
  local pages = {}
  for i = 1, #all, 2 do
    local p = tonumber(all[i])
    if p > a.from then pages[#pages + 1] = {p, all[i + 1]} end
  end
  table.sort(pages, function(x, y) return x[1] < y[1] end)
  for i = 1, math.min(#pages, a.limit) do
    items[i] = pages[i][2]
    r.next = pages[i][1]
  end
  r.more = #pages > a.limit
else
  local total = tonumber(redis.call('HGET', U, 'totalPages') or '0')
  local p = a.from
  while p < total and #items < a.limit and p < a.from + 10000 do
    p = p + 1
    local v = redis.call('HGET', F, p)
    if v then items[#items + 1] = v end
  end
  r.next = p
  r.more = p < total
end
if #items > 0 then r.items = items end
return cjson.encode(r)
`)
