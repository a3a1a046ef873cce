package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Lists come a page at a time. Each page costs Redis work in proportion to
// its size, and a position stays valid while the list changes, so that
// walking a list page after page shows each item once.

// Page sizes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

func pageSize(n int) int {
	if n <= 0 {
		return DefaultPageSize
	}
	return min(n, MaxPageSize)
}

// UploadPos is a place in a tenant's list of uploads (newest first): the
// list goes on after the upload ID, created at CreatedAt (unix ms).
type UploadPos struct {
	CreatedAt int64
	ID        string
}

// before reports whether the index entry (score, id) comes after p in the
// list's order: created earlier, or at the same ms with a smaller id.
func (p *UploadPos) before(score int64, id string) bool {
	return p == nil || score < p.CreatedAt || (score == p.CreatedAt && id < p.ID)
}

// UploadPage is one page of a tenant's uploads; Next is nil on the last.
type UploadPage struct {
	Uploads []*Upload
	Next    *UploadPos
}

// uploadScanBudget bounds how many index entries one page reads when a
// filter skips most of them; the page then ends early, with a Next.
const uploadScanBudget = 5000

// ListPage returns a page of a tenant's uploads, newest first, after f.After.
func (t *Tracker) ListPage(ctx context.Context, tenant string, f Filter) (UploadPage, error) {
	limit := pageSize(f.Limit)
	idx := t.tenantIndex(tenant)
	pos := f.After
	var page UploadPage
	batch := int64(limit + 1)
	for scanned := 0; scanned < uploadScanBudget; {
		max := "+inf"
		if pos != nil {
			max = strconv.FormatInt(pos.CreatedAt, 10)
		}
		// From pos's millisecond on: the entries of that ms up to pos are
		// read again and skipped (a tenant's uploads of one ms: a few).
		zs, err := t.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: idx, ByScore: true, Rev: true,
			Start: max, Stop: "-inf", Count: batch}).Result()
		if err != nil {
			return page, err
		}
		fresh := 0
		for _, z := range zs {
			id, _ := z.Member.(string)
			score := int64(z.Score)
			if !pos.before(score, id) {
				continue
			}
			if len(page.Uploads) == limit {
				page.Next = pos // an upload is left after the page's last
				return page, nil
			}
			fresh++
			scanned++
			pos = &UploadPos{CreatedAt: score, ID: id}
			u, err := t.Get(ctx, id, tenant)
			if errors.Is(err, ErrNotFound) {
				_ = t.rdb.ZRem(ctx, idx, id).Err() // expired: drop it from the index
				continue
			}
			if err != nil {
				return page, err
			}
			if (f.Template == "" || u.Template == f.Template) && (f.Status == "" || u.Status == f.Status) {
				page.Uploads = append(page.Uploads, u)
			}
		}
		if int64(len(zs)) < batch {
			return page, nil // the index ends in this batch
		}
		if fresh == 0 {
			batch *= 2 // the batch held only entries read before
		}
	}
	page.Next = pos // the filter skipped many: go on from here
	return page, nil
}

// AttemptPage is a page of an upload's attempts log, oldest first; Next
// is where the next page starts (an attempt's number in the log, counting
// from 0 since the upload began), Last is set on the last page.
type AttemptPage struct {
	Attempts []Attempt
	Next     int64
	Last     bool
}

// AttemptsPage returns up to limit attempts from the one numbered from.
// Numbers do not move when the capped log drops its oldest entries: a page
// that starts before the oldest one kept starts there.
func (t *Tracker) AttemptsPage(ctx context.Context, id string, from int64, limit int) (AttemptPage, error) {
	k := t.upload(id)
	req, _ := json.Marshal(pageRequest{From: max(from, 0), Limit: pageSize(limit)})
	raw, err := attemptsPageScript.Run(ctx, t.rdb, []string{k.record, k.log}, req).Text()
	if err != nil {
		return AttemptPage{}, err
	}
	var r pageReply
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return AttemptPage{}, err
	}
	page := AttemptPage{Attempts: make([]Attempt, 0, len(r.Items)), Next: r.Next, Last: !r.More}
	for _, item := range r.Items {
		var a Attempt
		if err := json.Unmarshal([]byte(item), &a); err != nil {
			return AttemptPage{}, err
		}
		page.Attempts = append(page.Attempts, a)
	}
	return page, nil
}

// FailurePage is a page of an upload's failure log, by page number; the
// next one starts after page Next, Last is set on the last page.
type FailurePage struct {
	Failures []Failure
	Next     int64
	Last     bool
}

// FailuresPage returns up to limit failures of pages after page after.
func (t *Tracker) FailuresPage(ctx context.Context, id string, after int64, limit int) (FailurePage, error) {
	k := t.upload(id)
	req, _ := json.Marshal(pageRequest{From: max(after, 0), Limit: pageSize(limit)})
	raw, err := failuresPageScript.Run(ctx, t.rdb, []string{k.record, k.failed}, req).Text()
	if err != nil {
		return FailurePage{}, err
	}
	var r pageReply
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return FailurePage{}, err
	}
	page := FailurePage{Failures: make([]Failure, 0, len(r.Items)), Next: r.Next, Last: !r.More}
	for _, item := range r.Items {
		var f Failure
		if err := json.Unmarshal([]byte(item), &f); err != nil {
			return FailurePage{}, err
		}
		page.Failures = append(page.Failures, f)
	}
	return page, nil
}

// pageRequest is the request of the page scripts.
type pageRequest struct {
	From  int64 `json:"from"`
	Limit int   `json:"limit"`
}

// pageReply is the answer of the page scripts: the items (JSON records),
// where the next page starts, and whether there is one.
type pageReply struct {
	Items []string `json:"items"`
	Next  int64    `json:"next"`
	More  bool     `json:"more"`
}
