package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// walk reads every page of a list (path, with its query), limit items at
// a time, and returns the items of field in the order listed.
func (e *env) walk(key, path, field string, limit int) []json.RawMessage {
	e.t.Helper()
	var items []json.RawMessage
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			e.t.Fatalf("walking %s does not end", path)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		p := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(e.client.MustCall(key, http.MethodGet, p, nil, http.StatusOK), &page); err != nil {
			e.t.Fatal(err)
		}
		var got []json.RawMessage
		if err := json.Unmarshal(page[field], &got); err != nil {
			e.t.Fatalf("%s: %s: %v", p, field, err)
		}
		if len(got) > limit {
			e.t.Fatalf("%s answered %d items", p, len(got))
		}
		items = append(items, got...)
		next, ok := page["nextCursor"]
		if !ok {
			return items
		}
		if err := json.Unmarshal(next, &cursor); err != nil || cursor == "" {
			e.t.Fatalf("%s: nextCursor %s", p, next)
		}
	}
}

// keysOnce returns the key of each item's field, failing on a duplicate.
func keysOnce(t *testing.T, what string, items []json.RawMessage, key func(map[string]any) string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, raw := range items {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		k := key(m)
		if seen[k] {
			t.Fatalf("%s: %s listed twice", what, k)
		}
		seen[k] = true
		out = append(out, k)
	}
	return out
}

// Every list walked page by page while writes go on lists each item once,
// in its order.
func TestListsPageUnderConcurrentWrites(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ apitest.Request, _ int) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	e.client.PutTemplate(keyA, "FAILS", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "retryCount": 0})
	var before []string
	for i := range 12 {
		code := fmt.Sprintf("T%02d", i)
		e.client.PutTemplate(keyA, code, map[string]any{"url": rc.HookURL()})
		before = append(before, code)
	}
	var uploads []string
	for range 12 {
		uploads = append(uploads, e.client.ImportJSON(keyA, map[string]any{"template": "T00", "records": apitest.Records(1)}).UploadID)
	}
	big := e.client.ImportJSON(keyA, map[string]any{"template": "FAILS", "records": apitest.Records(80)}).UploadID

	// Writers: new templates and uploads while the lists are walked.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			code := fmt.Sprintf("N%02d", i%40)
			if s, body, err := e.client.TryCall(keyA, http.MethodPut, "/v1/templates/"+code,
				map[string]any{"name": code, "destination": map[string]any{"webhook": map[string]any{"url": rc.HookURL()}}}); err != nil || s >= 300 {
				t.Errorf("put template while walking: %d %s %v", s, body, err)
				return
			}
			if s, body, err := e.client.TryCall(keyA, http.MethodPost, "/v1/imports",
				map[string]any{"template": "T00", "records": apitest.Records(1)}); err != nil || s != http.StatusAccepted {
				t.Errorf("import while walking: %d %s %v", s, body, err)
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	t.Run("uploads", func(t *testing.T) {
		got := keysOnce(t, "uploads", e.walk(keyA, "/v1/uploads?template=T00", "uploads", 5), func(m map[string]any) string { return m["uploadId"].(string) })
		for i := 1; i < len(got); i++ {
			if got[i] > got[i-1] {
				t.Fatalf("uploads not newest first: %s after %s", got[i], got[i-1])
			}
		}
		assertAll(t, "uploads", got, uploads)
	})
	t.Run("templates", func(t *testing.T) {
		got := keysOnce(t, "templates", e.walk(keyA, "/v1/templates", "templates", 5), func(m map[string]any) string { return m["code"].(string) })
		for i := 1; i < len(got); i++ {
			if got[i] < got[i-1] {
				t.Fatalf("templates not by code: %s after %s", got[i], got[i-1])
			}
		}
		assertAll(t, "templates", got, before)
	})
	attemptKey := func(m map[string]any) string { return fmt.Sprintf("%v/%v", m["page"], m["attempt"]) }
	pageOf := func(k string) (p int) { _, _ = fmt.Sscanf(k, "%d/", &p); return p }
	t.Run("attempts and failures while delivering", func(t *testing.T) {
		for _, l := range []struct{ path, field string }{{"attempts", "attempts"}, {"failures", "failures"}} {
			got := keysOnce(t, l.path, e.walk(keyA, "/v1/uploads/"+big+"/"+l.path, l.field, 3), attemptKey)
			for i := 1; i < len(got); i++ {
				if pageOf(got[i]) <= pageOf(got[i-1]) {
					t.Fatalf("%s out of order: %s after %s", l.path, got[i], got[i-1])
				}
			}
		}
	})
	if u := e.client.WaitFinished(keyA, big, 60*time.Second); u.FailedPages != 80 {
		t.Fatalf("upload = %+v, want 80 failed pages", u)
	}
	t.Run("attempts and failures when done", func(t *testing.T) {
		for _, l := range []struct{ path, field string }{{"attempts", "attempts"}, {"failures", "failures"}} {
			if got := keysOnce(t, l.path, e.walk(keyA, "/v1/uploads/"+big+"/"+l.path, l.field, 7), attemptKey); len(got) != 80 {
				t.Fatalf("%s walked %d items, want 80", l.path, len(got))
			}
		}
	})
	t.Run("bad paging", func(t *testing.T) {
		for _, c := range []struct{ path, field string }{
			{"/v1/uploads?limit=0", "limit"}, {"/v1/uploads?limit=1001", "limit"}, {"/v1/templates?limit=x", "limit"},
			{"/v1/uploads?cursor=nope", "cursor"}, {"/v1/templates?cursor=nope", "cursor"},
			{"/v1/uploads/" + big + "/attempts?cursor=nope", "cursor"}, {"/v1/uploads/" + big + "/failures?limit=2000", "limit"},
		} {
			var out struct{ Error struct{ Code, Field string } }
			if err := json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, c.path, nil, http.StatusBadRequest), &out); err != nil {
				t.Fatal(err)
			}
			if out.Error.Field != c.field || out.Error.Code != "invalid_argument" {
				t.Errorf("%s: error %+v, want invalid_argument naming %s", c.path, out.Error, c.field)
			}
		}
		// A cursor of one upload's attempts does not page another list.
		var page struct{ NextCursor string }
		_ = json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/uploads/"+big+"/attempts?limit=1", nil, http.StatusOK), &page)
		e.client.MustCall(keyA, http.MethodGet, "/v1/uploads/"+uploads[0]+"/attempts?cursor="+url.QueryEscape(page.NextCursor), nil, http.StatusBadRequest)
		e.client.MustCall(keyA, http.MethodGet, "/v1/uploads/"+big+"/failures?cursor="+url.QueryEscape(page.NextCursor), nil, http.StatusBadRequest)
	})
}

// assertAll fails unless every item of want is in got.
func assertAll(t *testing.T, what string, got, want []string) {
	t.Helper()
	in := map[string]bool{}
	for _, g := range got {
		in[g] = true
	}
	for _, w := range want {
		if !in[w] {
			t.Errorf("%s: %s was never listed", what, w)
		}
	}
}
