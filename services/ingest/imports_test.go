package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/hookline/hookline/pkg/natstest"
	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/pkg/secrets"
	"github.com/hookline/hookline/pkg/tracker"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
	"github.com/hookline/hookline/services/ingest/importer"
)

// JSON imports staged for real: an embedded NATS, a real Redis, the API's
// HTTP handler.

const importKey = "imports-test-key-0123456789"

type importEnv struct {
	mux *http.ServeMux
	q   *queue.Queue
	pub *countingPublisher
	tr  *tracker.Tracker
}

// countingPublisher counts the pages imports publish, so a test knows pages
// were stored before it checks they are gone.
type countingPublisher struct {
	*queue.Queue
	pages  atomic.Int64
	failAt atomic.Int64 // a page number whose publish fails (0: none)
}

func (c *countingPublisher) PublishPageAsync(id string, page int, data []byte) (jetstream.PubAckFuture, error) {
	if f := c.failAt.Load(); f > 0 && int64(page) == f {
		return nil, errors.New("test: the publish of this page fails")
	}
	c.pages.Add(1)
	return c.Queue.PublishPageAsync(id, page, data)
}

// newImportEnv serves the API for tenant acme, whose template OK has pages of
// 10 records.
func newImportEnv(t *testing.T, cfg APIConfig) *importEnv {
	t.Helper()
	ctx := context.Background()
	nc := natstest.Connect(t, natstest.Start(t))
	// As Run: every page's future ends, so a purge after an error sees them all.
	q, err := queue.Setup(ctx, nc, queue.DefaultConfig(), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	templates, err := NewTemplates(ctx, q.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	err = templates.Put(ctx, &Template{Code: "OK", Tenant: "acme",
		Webhook: Webhook{URL: "https://example.com/hook", ChunkSize: 10, MaxInFlight: 1, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tr := tracker.New(redistest.Client(t), tracker.WithPrefix(redistest.Prefix(t)))
	pub := &countingPublisher{Queue: q}
	api := NewAPI(cfg, map[string]string{importKey: "acme"}, templates, tr, pub, box,
		NewMetrics(prometheus.NewRegistry()), zaptest.NewLogger(t))
	mux := http.NewServeMux()
	api.Register(mux)
	return &importEnv{mux: mux, q: q, pub: pub, tr: tr}
}

func (e *importEnv) post(body []byte) (int, []byte) {
	req := httptest.NewRequest(http.MethodPost, "/v1/imports", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+importKey)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// storedPages returns how many pages the PAGES stream holds.
func (e *importEnv) storedPages(t *testing.T) uint64 {
	t.Helper()
	s, err := e.q.JetStream().Stream(context.Background(), queue.PagesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// leftBehind fails the test unless no page, no upload and no staging mark
// is left.
func (e *importEnv) leftBehind(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if n := e.storedPages(t); n != 0 {
		t.Errorf("PAGES holds %d pages after a refused import", n)
	}
	if ups, err := e.tr.List(ctx, "acme", tracker.Filter{}); err != nil || len(ups) != 0 {
		t.Errorf("uploads after a refused import: %d, %v", len(ups), err)
	}
	// A janitor that takes any mark as abandoned finds none.
	if n := importer.NewJanitor(e.tr, e.q, time.Minute, 0, zaptest.NewLogger(t)).Sweep(ctx); n != 0 {
		t.Errorf("%d staging marks left after a refused import", n)
	}
}

// testRecords returns n records as a client may write them, and their
// compact forms.
func testRecords(n int) (written, compact []string) {
	for i := range n {
		written = append(written, fmt.Sprintf(`{ "n" : %d, "name": "rec %d" }`, i, i))
		compact = append(compact, fmt.Sprintf(`{"n":%d,"name":"rec %d"}`, i, i))
	}
	return written, compact
}

func importBody(head, tail string, recs []string) []byte {
	return []byte(head + `"records": [` + strings.Join(recs, ",\n") + `]` + tail)
}

// Either order of template and records stores the same pages, in order, and
// the upload with its extra.
func TestImportJSONKeyOrders(t *testing.T) {
	e := newImportEnv(t, APIConfig{MaxBodyBytes: 1 << 20})
	ctx := context.Background()
	written, compact := testRecords(25)
	for name, body := range map[string][]byte{
		"template first": importBody(`{"template": "OK", "extra": {"batch": 1}, `, `, "authHeaderValue": "k"}`, written),
		"records first":  importBody(`{"authHeaderValue": "k", `, `, "extra": {"batch": 1}, "template": "OK"}`, written),
	} {
		t.Run(name, func(t *testing.T) {
			status, data := e.post(body)
			var acc importer.Accepted
			if err := json.Unmarshal(data, &acc); err != nil || status != http.StatusAccepted || acc.TotalRecords != 25 || acc.TotalPages != 3 {
				t.Fatalf("= %d %s", status, data)
			}
			for page := 1; page <= 3; page++ {
				p, err := e.q.GetPage(ctx, acc.UploadID, page)
				if err != nil {
					t.Fatal(err)
				}
				want := "[" + strings.Join(compact[(page-1)*10:min(page*10, 25)], ",") + "]"
				if string(p.Records) != want || int(p.RecordCount) != strings.Count(want, `"n"`) {
					t.Fatalf("page %d = %d records %s, want %s", page, p.RecordCount, p.Records, want)
				}
			}
			u, err := e.tr.Get(ctx, acc.UploadID, "acme")
			if err != nil || u.TotalRecords != 25 || string(u.Extra) != `{"batch":1}` {
				t.Fatalf("upload = %+v, %v", u, err)
			}
		})
	}
}

// An import refused in the middle of its records, after pages were stored,
// answers the error and leaves nothing: no page, no upload, no staging mark.
func TestImportJSONErrorMidStreamLeavesNothing(t *testing.T) {
	const maxBody = 64 << 10
	e := newImportEnv(t, APIConfig{MaxBodyBytes: maxBody})
	written, _ := testRecords(1000) // about 32 kB: 100 pages
	bad := func(i int, rec string) []string {
		recs := append([]string(nil), written...)
		recs[i] = rec
		return recs
	}
	big, _ := testRecords(3000) // about 100 kB, over MaxBodyBytes
	for _, tc := range []struct {
		name      string
		body      []byte
		status    int
		field     string
		msg       string
		published int64 // at least this many pages were stored before the error
	}{
		{"record not an object", importBody(`{"template":"OK",`, `}`, bad(600, `5`)),
			400, "records[600]", "records[600]: record must be a JSON object, not a number", 60},
		{"syntax error in a record", importBody(`{"template":"OK",`, `}`, bad(700, `{"n": 1,}`)),
			400, "", "request body is not valid JSON (at byte", 70},
		{"unknown field after the records", importBody(`{"template":"OK",`, `,"oops":1}`, written),
			400, "oops", `unknown field "oops"`, 100},
		{"bad authHeaderValue after the records", importBody(`{"template":"OK",`, `,"authHeaderValue":"a\nb"}`, written),
			400, "authHeaderValue", "authHeaderValue must not contain CR, LF", 100},
		{"data after the body", importBody(`{"template":"OK",`, `} {}`, written),
			400, "", "after top-level value", 100},
		{"cut short", importBody(`{"template":"OK",`, ``, written),
			400, "", "unexpected end of JSON input", 100},
		{"body over the limit", importBody(`{"template":"OK",`, `}`, big),
			413, "", fmt.Sprintf("request body is over the limit of %d bytes", maxBody), 150},
		{"records first, record not an object", importBody(`{`, `,"template":"OK"}`, bad(600, `[]`)),
			400, "records[600]", "records[600]: record must be a JSON object, not an array", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.pub.pages.Load()
			status, data := e.post(tc.body)
			var ae errorBody
			_ = json.Unmarshal(data, &ae)
			if status != tc.status || ae.Error.Field != tc.field || !strings.Contains(ae.Error.Message, tc.msg) {
				t.Fatalf("= %d %s, want %d naming %q with %q", status, data, tc.status, tc.field, tc.msg)
			}
			// The publisher may still hold up to two pages handed over
			// when the error comes: they are dropped, not published.
			if n := e.pub.pages.Load() - before; n < tc.published-2 {
				t.Fatalf("%d pages published before the error, want at least %d: the records did not stream", n, tc.published)
			}
			e.leftBehind(t)
		})
	}
	// The same body without its fault is accepted: the faults above were
	// what refused them.
	status, data := e.post(importBody(`{"template":"OK",`, `}`, written))
	if status != http.StatusAccepted || e.storedPages(t) != 100 {
		t.Fatalf("valid import = %d %s, %d pages stored", status, data, e.storedPages(t))
	}
}

// Pages are stored S2-compressed unless the API is told not to; either way
// they read back as the same records.
func TestImportStoresPagesInTheConfiguredForm(t *testing.T) {
	ctx := context.Background()
	written, compact := testRecords(10)
	want := "[" + strings.Join(compact, ",") + "]"
	for _, c := range []queue.Compression{queue.CompressS2, queue.CompressNone} {
		e := newImportEnv(t, APIConfig{MaxBodyBytes: 1 << 20, PageCompression: c})
		status, data := e.post(importBody(`{"template":"OK",`, `}`, written))
		var acc importer.Accepted
		if err := json.Unmarshal(data, &acc); err != nil || status != http.StatusAccepted {
			t.Fatalf("= %d %s", status, data)
		}
		s, err := e.q.JetStream().Stream(ctx, queue.PagesStream)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.GetLastMsgForSubject(ctx, queue.PageSubject(acc.UploadID, 1))
		if err != nil {
			t.Fatal(err)
		}
		var stored hooklinev1.Page
		if err := proto.Unmarshal(raw.Data, &stored); err != nil {
			t.Fatal(err)
		}
		compressed := len(stored.RecordsS2) > 0 && len(stored.Records) == 0
		if compressed != (c == queue.CompressS2) {
			t.Fatalf("compression %d: stored records %d B, records_s2 %d B", c, len(stored.Records), len(stored.RecordsS2))
		}
		p, err := e.q.GetPage(ctx, acc.UploadID, 1)
		if err != nil || string(p.Records) != want {
			t.Fatalf("compression %d: page = %s, %v; want %s", c, p.GetRecords(), err, want)
		}
	}
}

// Pages are published on a goroutine of their own while the records are
// read: a publish failing mid-import refuses the import with 503 and leaves
// nothing, and nothing after the failing page is published.
func TestImportPublishFailureMidStreamLeavesNothing(t *testing.T) {
	e := newImportEnv(t, APIConfig{MaxBodyBytes: 1 << 20})
	written, _ := testRecords(1000) // 100 pages
	e.pub.failAt.Store(40)
	before := e.pub.pages.Load()
	status, data := e.post(importBody(`{"template":"OK",`, `}`, written))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("= %d %s, want 503", status, data)
	}
	if n := e.pub.pages.Load() - before; n != 39 {
		t.Fatalf("%d pages published, want the 39 before the failing one and none after", n)
	}
	e.leftBehind(t)
}
