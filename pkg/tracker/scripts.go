package tracker

import "github.com/redis/go-redis/v9"

// Keys of one upload (all share the hash tag {id}, so a script touches one
// slot and the design works on Redis Cluster):
//
//	KEYS[1] u    hash: tenant, template, status, totals, released, gen, dest, extra, times
//	KEYS[2] p    hash: per page a:<n> attempts made, n:<n> next attempt (unix ms),
//	             l:<n> lease "<token>|<expires ms>", r:<n> page released when <n> finished,
//	             c:<n> "<token>|<attempt>" of the retrying attempt counted last;
//	             per ticket message m:<seq> its newest delivery
//	KEYS[3] d    set: delivered pages
//	KEYS[4] f    hash: failed page -> failure record (JSON)
//	KEYS[5] log  list: attempt records (JSON), capped
//	KEYS[6] q    list: failed pages queued again by a retry, released one by one

// leaseLua compares the token of a page's lease with the caller's. Tokens
// are "<message>.<delivery>": the ticket message's stream sequence and how
// many times JetStream has delivered it. A later delivery of the same
// message takes over the leases of an earlier one (that worker missed its
// heartbeats or died); an earlier delivery finding a later one's lease is
// superseded and stops. Returns 'ours', 'older' (an earlier delivery of our
// message), 'newer' (a later delivery of it) or 'other' (another message).
const leaseLua = `
-- later(p, mine): a later delivery of the caller's message has been seen
-- for this upload (the highest delivery count per message is kept in the p
-- hash as m:<message>); records the caller's count when it is the highest.
-- Once a later delivery has begun, an earlier one is superseded everywhere,
-- not only on pages whose lease shows it: only the newest delivery of a
-- message acts on the chain the message carries.
local function later(p, mine)
  local mm, md = string.match(mine, '^(.*)%.(%d+)$')
  if not mm then return false end
  local seen = tonumber(redis.call('HGET', p, 'm:'..mm) or '0')
  if tonumber(md) < seen then return true end
  if tonumber(md) > seen then redis.call('HSET', p, 'm:'..mm, md) end
  return false
end
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
`

// beginScript decides whether a worker may send a page now.
// ARGV: page, now ms, lease ms, token, the ticket's retry generation.
// Returns {"gone"} | {"stale"} | {"done", released, gen, announce, "delivered"|"failed"} | {"busy", ms} | {"wait", ms} |
// {"superseded"} | {"go", attempts, template, totalRecords, totalPages, extra, dest, tenant, gen}.
var beginScript = redis.NewScript(leaseLua + `
local page = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
if tonumber(ARGV[5]) < tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') then return {'stale'} end
if later(KEYS[2], ARGV[4]) then return {'superseded'} end
local was = 'failed'
if redis.call('SISMEMBER', KEYS[3], page) == 1 then was = 'delivered' end
if was == 'delivered' or redis.call('HEXISTS', KEYS[4], page) == 1 then
  return {'done', redis.call('HGET', KEYS[2], 'r:'..page) or '0', redis.call('HGET', KEYS[1], 'gen') or '0', redis.call('HGET', KEYS[1], 'announce') or '0', was}
end
local now = tonumber(ARGV[2])
local lease = redis.call('HGET', KEYS[2], 'l:'..page)
if lease then
  local tok, exp = string.match(lease, '^(.*)|(%d+)$')
  local h = holder(tok, ARGV[4])
  if h == 'newer' then return {'superseded'} end
  if h == 'other' and tonumber(exp) > now then return {'busy', tostring(tonumber(exp) - now)} end
end
local nextAt = tonumber(redis.call('HGET', KEYS[2], 'n:'..page) or '0')
if nextAt > now then return {'wait', tostring(nextAt - now)} end
redis.call('HSET', KEYS[2], 'l:'..page, ARGV[4]..'|'..tostring(now + tonumber(ARGV[3])))
local u = redis.call('HMGET', KEYS[1], 'template', 'totalRecords', 'totalPages', 'extra', 'dest', 'tenant', 'gen', 'createdAt')
return {'go', redis.call('HGET', KEYS[2], 'a:'..page) or '0', u[1], u[2], u[3], u[4] or '', u[5], u[6], u[7] or '0', u[8] or '0'}
`)

// announcedScript clears the upload's pending announcement if it is the one
// of the completion at ARGV[1] (ms).
var announcedScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'completedAt') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'announce')
end
return 0
`)

// finishScript records the outcome of an attempt.
// ARGV: page, now ms, outcome (delivered|retrying|failed|released), attempt
// record JSON ("" for none), next attempt ms (retrying), failure JSON (failed),
// log cap, retention ms, token, chain lease ms (0: none), the attempt's
// number (0: unknown; a retrying attempt already counted is not counted again),
// the ticket's retry generation (an older one changes nothing: "stale").
// "released" gives the page back without counting an attempt (our own fault).
// With a chain lease, a delivered page's released page is leased at once for
// the same token when begin would let it go now (the worker carries it on).
// superseded is "1" when a later delivery of the caller's ticket message
// has begun (the outcome is recorded all the same).
// Returns {"gone"} | {"stale"} | {"done", released, gen, announce, "delivered"|"failed", superseded} |
// {"retrying", superseded} | {"released", superseded} |
// {outcome, released, gen, status, delivered, failed, completedNow, leased, attempts, superseded}.
var finishScript = redis.NewScript(leaseLua + `
local page = ARGV[1]
local now = ARGV[2]
local outcome = ARGV[3]
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
if tonumber(ARGV[12] or '0') < tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') then
  -- An attempt from before a manual retry: the retry owns the page now.
  return {'stale'}
end
local superseded = '0'
if later(KEYS[2], ARGV[9]) then superseded = '1' end
if redis.call('SISMEMBER', KEYS[3], page) == 1 then
  return {'done', redis.call('HGET', KEYS[2], 'r:'..page) or '0', redis.call('HGET', KEYS[1], 'gen') or '0',
    redis.call('HGET', KEYS[1], 'announce') or '0', 'delivered', superseded}
end
if redis.call('HEXISTS', KEYS[4], page) == 1 then
  local was = 'failed'
  if outcome == 'delivered' then
    was = 'delivered'
    -- A late 2xx from a second copy of the ticket (its lease had lapsed):
    -- the page was delivered after all, so it leaves the failure log.
    if ARGV[4] ~= '' then
      redis.call('RPUSH', KEYS[5], ARGV[4])
      redis.call('LTRIM', KEYS[5], -tonumber(ARGV[7]), -1)
    end
    redis.call('HDEL', KEYS[4], page)
    redis.call('SADD', KEYS[3], page)
    if redis.call('HGET', KEYS[1], 'status') == 'failed' and redis.call('HLEN', KEYS[4]) == 0 then
      -- Announced as failed, now completed: announce again (a new
      -- completedAt gives the event a new id) and let its pages be purged.
      redis.call('HSET', KEYS[1], 'status', 'completed', 'completedAt', now, 'announce', '1')
    end
    redis.call('HSET', KEYS[1], 'updatedAt', now)
  end
  return {'done', redis.call('HGET', KEYS[2], 'r:'..page) or '0', redis.call('HGET', KEYS[1], 'gen') or '0',
    redis.call('HGET', KEYS[1], 'announce') or '0', was, superseded}
end
local lease = redis.call('HGET', KEYS[2], 'l:'..page)
if lease then
  local h = holder(string.match(lease, '^(.*)|%d+$') or '', ARGV[9])
  if h == 'ours' then
    redis.call('HDEL', KEYS[2], 'l:'..page)
  elseif h == 'newer' then
    superseded = '1'
  end
end
-- c:<page> is "<token>|<attempt>" of the retrying attempt counted last.
local counted = 'c:'..page
local mark = ARGV[9]..'|'..(ARGV[11] or '0')
if outcome == 'retrying' and tonumber(ARGV[11] or '0') > 0
   and redis.call('HGET', KEYS[2], counted) == mark then
  -- This attempt is counted already: the same call ran twice (a client
  -- resends a pipeline whose answers it lost). Another delivery's attempt
  -- with the same number (two workers both sent it after a lease lapsed)
  -- is an attempt of its own and is counted. Delivered and failed pages
  -- are repeat-safe through the done checks above.
  return {'retrying', superseded}
end
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[5], ARGV[4])
  redis.call('LTRIM', KEYS[5], -tonumber(ARGV[7]), -1)
end
redis.call('HSET', KEYS[1], 'updatedAt', now)
if outcome == 'released' then return {'released', superseded} end
if outcome == 'retrying' then
  redis.call('HINCRBY', KEYS[2], 'a:'..page, 1)
  redis.call('HSET', KEYS[2], 'n:'..page, ARGV[5])
  if tonumber(ARGV[11] or '0') > 0 then redis.call('HSET', KEYS[2], counted, mark) end
  return {'retrying', superseded}
end
redis.call('HINCRBY', KEYS[2], 'a:'..page, 1)
redis.call('HDEL', KEYS[2], 'n:'..page, counted)
if outcome == 'delivered' then
  redis.call('SADD', KEYS[3], page)
else
  redis.call('HSET', KEYS[4], page, ARGV[6])
end
local total = tonumber(redis.call('HGET', KEYS[1], 'totalPages'))
local released = tonumber(redis.call('HGET', KEYS[1], 'released'))
local nxt = 0
if released < total then
  nxt = released + 1
  redis.call('HSET', KEYS[1], 'released', nxt)
else
  nxt = tonumber(redis.call('LPOP', KEYS[6]) or '0')
end
redis.call('HSET', KEYS[2], 'r:'..page, nxt)
local delivered = redis.call('SCARD', KEYS[3])
local failed = redis.call('HLEN', KEYS[4])
local status = redis.call('HGET', KEYS[1], 'status')
local completedNow = 0
if delivered + failed >= total and status == 'delivering' then
  if failed == 0 then status = 'completed' else status = 'failed' end
  redis.call('HSET', KEYS[1], 'status', status, 'completedAt', now, 'announce', '1')
  completedNow = 1
  local ttl = tonumber(ARGV[8])
  if ttl > 0 then
    for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
local leased, attempts = '0', '0'
local chain = tonumber(ARGV[10] or '0')
if chain > 0 and outcome == 'delivered' and nxt > 0 and completedNow == 0 and superseded == '0'
   and redis.call('SISMEMBER', KEYS[3], nxt) == 0 and redis.call('HEXISTS', KEYS[4], nxt) == 0
   and not redis.call('HGET', KEYS[2], 'l:'..nxt)
   and tonumber(redis.call('HGET', KEYS[2], 'n:'..nxt) or '0') <= tonumber(now) then
  redis.call('HSET', KEYS[2], 'l:'..nxt, ARGV[9]..'|'..tostring(tonumber(now) + chain))
  leased, attempts = '1', redis.call('HGET', KEYS[2], 'a:'..nxt) or '0'
end
return {outcome, tostring(nxt), redis.call('HGET', KEYS[1], 'gen') or '0', status, tostring(delivered), tostring(failed), tostring(completedNow), leased, attempts, superseded}
`)

// retryScript queues an upload's failed pages again. ARGV: now ms, maxInFlight.
// Returns {"gone"} | {"busy"} (still delivering) | {n, gen, page...} where the
// listed pages are to be released now and the rest wait in the queue list.
// Until the caller confirms their tickets are published (retryPublished),
// the answer is kept: a retry call whose publishing failed can be repeated
// and publishes the same tickets again.
var retryScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
if redis.call('HGET', KEYS[1], 'status') == 'delivering' then
  local pending = redis.call('HGET', KEYS[1], 'retryRelease')
  if not pending then return {'busy'} end
  local out = {redis.call('HGET', KEYS[1], 'retryRequeued') or '0', redis.call('HGET', KEYS[1], 'gen') or '0'}
  for p in string.gmatch(pending, '[^,]+') do table.insert(out, p) end
  return out
end
local failed = redis.call('HKEYS', KEYS[4])
if #failed == 0 then return {'0', redis.call('HGET', KEYS[1], 'gen') or '0'} end
local pages = {}
for i, p in ipairs(failed) do pages[i] = tonumber(p) end
table.sort(pages)
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('DEL', KEYS[4], KEYS[6])
local out = {tostring(#pages), tostring(gen)}
local window = tonumber(ARGV[2])
for i, p in ipairs(pages) do
  redis.call('HDEL', KEYS[2], 'a:'..p, 'n:'..p, 'r:'..p, 'l:'..p, 'c:'..p)
  if i <= window then table.insert(out, tostring(p)) else redis.call('RPUSH', KEYS[6], p) end
end
local release = {}
for i = 3, #out do release[#release + 1] = out[i] end
redis.call('HSET', KEYS[1], 'status', 'delivering', 'updatedAt', ARGV[1], 'retryRelease', table.concat(release, ','), 'retryRequeued', tostring(#pages))
redis.call('HDEL', KEYS[1], 'completedAt')
for i = 1, 6 do redis.call('PERSIST', KEYS[i]) end
return out
`)
