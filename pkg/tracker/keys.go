package tracker

import (
	"crypto/sha256"
	"encoding/hex"
)

// The Redis key layout. Every key hookline writes is built here, under the
// deployment's prefix (HOOKLINE_REDIS_PREFIX, default "hookline:"):
//
//	<prefix>u:{<id>}          hash  the upload record: tenant, template, status,
//	                                totalRecords, totalPages, window (the highest
//	                                page given a ticket so far; field "released"),
//	                                gen, dest, extra, createdAt, updatedAt,
//	                                completedAt, announce, retryRelease, retryRequeued,
//	                                logged (attempts ever appended to log)
//	<prefix>u:{<id>}:p        hash  page state: a:<n> attempts made, n:<n> next
//	                                attempt (unix ms), l:<n> lease "<token>|<expires ms>",
//	                                r:<n> the page that page n's end let go on
//	                                (its next page), c:<n> "<token>|<attempt>" of the
//	                                retrying attempt counted last; m:<seq> the
//	                                newest delivery seen of ticket message <seq>
//	<prefix>u:{<id>}:d        set   delivered pages
//	<prefix>u:{<id>}:f        hash  failed page -> failure record (JSON)
//	<prefix>u:{<id>}:log      list  attempt records (JSON), capped
//	<prefix>u:{<id>}:q        list  failed pages queued again by a retry
//	<prefix>u:{<id>}:fr       hash  a retry's failed pages not queued yet (the
//	                                failure log renamed; record field retryNext:
//	                                the page number the retry has reached)
//	<prefix>t:<tenant>:uploads zset a tenant's uploads by creation time (ms)
//	<prefix>staging           zset  uploads whose file is still streaming, by heartbeat
//	<prefix>idem:<tenant>:<sha256 of key>   string  an Idempotency-Key's answer
//	<prefix>quota:<tenant>:rate    string  imports in the current minute
//	<prefix>quota:<tenant>:active  zset    uploads delivering and imports streaming
//	<prefix>tpl:{<tenant>.<code>}  hash    a template's endpoint protection: tat (the
//	                               rate limit's next free time, unix µs), fails
//	                               (failed attempts in a row), state ("paused" or
//	                               absent), pausedAt (unix ms), reason, probeAt
//	                               (the next probe, unix ms; 0: none)
//	<prefix>paused                 zset    paused templates "<tenant>.<code>" by pausedAt
//	                               (ms), for metrics
//
// The keys of one upload share the hash tag {<id>}, so each script touches
// one slot and the design works on Redis Cluster. A Begin or Finish that
// names the upload's template also reads that template's state field, with
// an HGET beside its script in the same pipeline (a template's hash has a
// slot of its own).

// uploadKeys are the keys of one upload, in the order the scripts take them.
type uploadKeys struct {
	record, pages, delivered, failed, log, queue, retrying string
}

func (t *Tracker) upload(id string) uploadKeys {
	base := t.prefix + "u:{" + id + "}"
	return uploadKeys{base, base + ":p", base + ":d", base + ":f", base + ":log", base + ":q", base + ":fr"}
}

// all is the script's KEYS: record, pages, delivered, failed, log, queue, retrying.
func (k uploadKeys) all() []string {
	return []string{k.record, k.pages, k.delivered, k.failed, k.log, k.queue, k.retrying}
}

// uploadPattern matches the keys of every upload (for SCAN).
func (t *Tracker) uploadPattern() string { return t.prefix + "u:*" }

func (t *Tracker) tenantIndex(tenant string) string { return t.prefix + "t:" + tenant + ":uploads" }

func (t *Tracker) templateKey(tenant, code string) string {
	return t.prefix + "tpl:{" + tenant + "." + code + "}"
}

func (t *Tracker) pausedIndexKey() string { return t.prefix + "paused" }

func (t *Tracker) stagingKey() string { return t.prefix + "staging" }

func (t *Tracker) idemKey(tenant, key string) string {
	sum := sha256.Sum256([]byte(key))
	return t.prefix + "idem:" + tenant + ":" + hex.EncodeToString(sum[:])
}

// QuotaKeys are the keys of a tenant's import quotas (services/ingest).
type QuotaKeys struct {
	Rate   string // counter of the imports started in the current minute
	Active string // sorted set of the uploads delivering and imports streaming
}

// QuotaKeys names the keys of tenant's quotas.
func (t *Tracker) QuotaKeys(tenant string) QuotaKeys {
	base := t.prefix + "quota:" + tenant
	return QuotaKeys{Rate: base + ":rate", Active: base + ":active"}
}
