package e2e

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// Every page of an upload arrives with exactly the body of api.md §1.
func TestPageBodies(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	for _, tc := range []struct {
		name      string
		extra     any // nil: absent
		wantExtra string
	}{
		{"extra as string", "batch-7", `"batch-7"`},
		{"extra as JSON", map[string]any{"userId": 42, "tags": []string{"a"}}, `{"tags":["a"],"userId":42}`},
		{"extra absent", nil, `""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := apitest.NewReceiver(t, nil)
			code := "T" + strconv.Itoa(len(tc.name))
			e.client.PutTemplate(keyA, code, map[string]any{"url": rc.HookURL(), "chunkSize": 3, "authHeaderName": "X-API-KEY"})
			body := map[string]any{"template": code, "records": apitest.Records(10), "authHeaderValue": "s3cret-value"}
			if tc.extra != nil {
				body["extra"] = tc.extra
			}
			acc := e.client.ImportJSON(keyA, body)
			if acc.TotalRecords != 10 || acc.TotalPages != 4 || acc.Status != "delivering" || acc.Template != code {
				t.Fatalf("202 answer = %+v", acc)
			}
			u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second)
			if u.Status != "completed" || u.DeliveredPages != 4 || u.PendingPages != 0 || u.CompletedAt == nil {
				t.Fatalf("upload = %+v", u)
			}
			reqs := rc.Requests()
			if len(reqs) != 4 {
				t.Fatalf("receiver got %d requests, want 4", len(reqs))
			}
			wantSizes := []int{3, 3, 3, 1}
			next := 1
			for i, r := range reqs {
				var keys map[string]json.RawMessage
				if err := json.Unmarshal(r.Body, &keys); err != nil {
					t.Fatal(err)
				}
				gotKeys := make([]string, 0, len(keys))
				for k := range keys {
					gotKeys = append(gotKeys, k)
				}
				sort.Strings(gotKeys)
				if want := []string{"data", "extra", "page", "pageSize", "template", "totalPages", "totalRecords", "uploadId"}; !reflect.DeepEqual(gotKeys, want) {
					t.Fatalf("body keys = %v, want %v", gotKeys, want)
				}
				p := r.Page
				if p.Page != i+1 || p.PageSize != wantSizes[i] || len(p.Data) != wantSizes[i] || p.TotalPages != 4 ||
					p.TotalRecords != 10 || p.Template != code || p.UploadID != acc.UploadID {
					t.Fatalf("request %d: page %+v", i, p)
				}
				if string(p.Extra) != tc.wantExtra {
					t.Fatalf("extra = %s, want %s", p.Extra, tc.wantExtra)
				}
				for _, rec := range p.Data {
					want := `{"email":"user` + strconv.Itoa(next) + `@example.com","name":"user` + strconv.Itoa(next) + `"}`
					if string(rec) != want {
						t.Fatalf("record %d = %s, want %s", next, rec, want)
					}
					next++
				}
				h := r.Header
				if h.Get("Content-Type") != "application/json" || !strings.HasPrefix(h.Get("User-Agent"), "hookline/") {
					t.Fatalf("headers = %v", h)
				}
				if h.Get("X-API-KEY") != "s3cret-value" {
					t.Fatalf("auth header = %q", h.Get("X-API-KEY"))
				}
				if got, want := h.Get("webhook-id"), acc.UploadID+"."+strconv.Itoa(i+1); got != want {
					t.Fatalf("webhook-id = %q, want %q", got, want)
				}
			}
		})
	}
}

// A CSV file keeps its column order and its values as strings.
func TestCSVUpload(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "CSV", map[string]any{"url": rc.HookURL(), "chunkSize": 2})
	csv := "zip,name,note\n01234,Ada,\"quoted, with comma\"\n99999,Bob,\"line\nbreak\"\n00001,Cy,x\n"
	status, data := e.multipart(keyA, map[string]string{"template": "CSV", "extra": "from-csv"}, "people.csv", "text/csv", csv)
	if status != http.StatusAccepted {
		t.Fatalf("import = %d %s", status, data)
	}
	var acc apitest.Accepted
	_ = json.Unmarshal(data, &acc)
	if acc.TotalRecords != 3 || acc.TotalPages != 2 {
		t.Fatalf("202 = %+v", acc)
	}
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "completed" {
		t.Fatalf("upload = %+v", u)
	}
	reqs := rc.Requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests", len(reqs))
	}
	if got := string(reqs[0].Page.Data[0]); got != `{"zip":"01234","name":"Ada","note":"quoted, with comma"}` {
		t.Fatalf("first record = %s", got)
	}
	if got := string(reqs[0].Page.Data[1]); got != `{"zip":"99999","name":"Bob","note":"line\nbreak"}` {
		t.Fatalf("second record = %s", got)
	}
	if string(reqs[1].Page.Extra) != `"from-csv"` || reqs[1].Page.PageSize != 1 {
		t.Fatalf("last page = %+v", reqs[1].Page)
	}
}

// NDJSON and JSON-array files, detected by name.
func TestJSONFiles(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "J", map[string]any{"url": rc.HookURL(), "chunkSize": 10})
	for name, content := range map[string]string{
		"a.ndjson": "{\"b\":1,\"a\":[1,2]}\n\n{\"b\":2.50,\"a\":null}\n",
		"a.json":   "[{\"b\":1,\"a\":[1,2]},\n {\"b\":2.50,\"a\":null}]",
	} {
		status, data := e.multipart(keyA, map[string]string{"template": "J"}, name, "", content)
		if status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", name, status, data)
		}
		var acc apitest.Accepted
		_ = json.Unmarshal(data, &acc)
		e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second)
		reqs := rc.Requests()
		last := reqs[len(reqs)-1].Page
		if last.UploadID != acc.UploadID || len(last.Data) != 2 || string(last.Data[0]) != `{"b":1,"a":[1,2]}` || string(last.Data[1]) != `{"b":2.50,"a":null}` {
			t.Fatalf("%s: delivered %+v", name, last)
		}
	}
}

// With maxInFlight 1 pages go one at a time, in order, even with many worker slots.
func TestPageOrder(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		time.Sleep(5 * time.Millisecond) // the receiver's own work: lets overlapping sends show
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "ORDER", map[string]any{"url": rc.HookURL(), "chunkSize": 1})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "ORDER", "records": apitest.Records(30)})
	if u := e.client.WaitFinished(keyA, acc.UploadID, 30*time.Second); u.Status != "completed" {
		t.Fatalf("upload = %+v", u)
	}
	reqs := rc.Requests()
	if len(reqs) != 30 {
		t.Fatalf("got %d requests, want 30", len(reqs))
	}
	for i, r := range reqs {
		if r.Page.Page != i+1 {
			t.Fatalf("request %d carried page %d: pages out of order", i, r.Page.Page)
		}
	}
	if rc.MaxInFlight() != 1 {
		t.Fatalf("%d requests were in flight at once, want 1", rc.MaxInFlight())
	}
}

// maxInFlight > 1 sends pages of one upload in parallel.
func TestMaxInFlight(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	release := make(chan struct{})
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		<-release
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "PAR", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 4})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "PAR", "records": apitest.Records(8)})
	apitest.Eventually(e.t, 10*time.Second, "4 pages in flight", func() bool {
		return rc.InFlight() == 4
	})
	close(release)
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "completed" || u.DeliveredPages != 8 {
		t.Fatalf("upload = %+v", u)
	}
	if rc.MaxInFlight() != 4 {
		t.Fatalf("max in flight = %d, want 4", rc.MaxInFlight())
	}
}
