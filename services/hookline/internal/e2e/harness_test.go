package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/natstest"
	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/pkg/secrets"
	"github.com/hookline/hookline/services/ingest"
	"github.com/hookline/hookline/services/worker"
)

const (
	keyA = "key-of-tenant-acme-0001"
	keyB = "key-of-tenant-bravo-0002"
)

// env is one running hookline: NATS, Redis, ingest and workers.
type env struct {
	t        *testing.T
	ns       *server.Server
	redisURL string
	vars     map[string]string
	api      string
	nc       *nats.Conn
	rdb      *redis.Client
	logs     *syncBuffer // everything ingest and the workers log
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Sync() error { return nil }

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logger logs to the test and, at debug level, into e.logs.
func (e *env) logger(name string) *zap.Logger {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), e.logs, zapcore.DebugLevel)
	return zap.New(zapcore.NewTee(zaptest.NewLogger(e.t).Core(), core)).Named(name)
}

type envOption func(map[string]string)

func withVar(k, v string) envOption { return func(m map[string]string) { m[k] = v } }

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ns: natstest.Start(t), redisURL: redistest.URL(t), logs: &syncBuffer{}}
	e.vars = map[string]string{
		"NATS_URL":                        e.ns.ClientURL(),
		"REDIS_URL":                       e.redisURL,
		"HOOKLINE_ENCRYPTION_KEY":         key,
		"HOOKLINE_API_KEYS":               "acme:" + keyA + ",bravo:" + keyB,
		"HOOKLINE_ALLOW_PRIVATE_NETWORKS": "true",
		"HOOKLINE_REDIS_PREFIX":           redistest.Prefix(t),
		"HOOKLINE_ACK_WAIT":               "1s",
		"HOOKLINE_METRICS_ADDR":           "127.0.0.1:0",
		"HOOKLINE_WORKER_CONCURRENCY":     "16",
		"HOOKLINE_SHUTDOWN_GRACE":         "10s",
	}
	for _, o := range opts {
		o(e.vars)
	}
	e.nc = natstest.Connect(t, e.ns)
	e.rdb = redistest.ClientFor(t, e.redisURL)
	e.startIngest()
	return e
}

func (e *env) startIngest() {
	t := e.t
	cfg, err := ingest.LoadConfig(config.MapEnv(e.vars))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.api = "http://" + l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	reg := prometheus.NewRegistry()
	go func() {
		done <- ingest.Run(ctx, cfg, ingest.Deps{NATS: e.nc, Redis: e.rdb, Registry: reg, Gatherer: reg,
			Log: e.logger("ingest"), Listener: l})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest: %v", err)
		}
	})
	e.eventually(10*time.Second, "ingest ready", func() bool {
		resp, err := http.Get(e.api + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// workerProc is one worker with its own connections, as a separate process would have.
type workerProc struct {
	cancel  context.CancelFunc
	done    chan error
	metrics string // address of its /metrics
	stopped bool
}

func (e *env) startWorker() *workerProc {
	t := e.t
	t.Helper()
	cfg, err := worker.LoadConfig(config.MapEnv(e.vars))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetricsAddr = l.Addr().String()
	l.Close()
	nc := natstest.Connect(t, e.ns)
	rdb := redistest.ClientFor(t, e.redisURL)
	ctx, cancel := context.WithCancel(context.Background())
	w := &workerProc{cancel: cancel, done: make(chan error, 1), metrics: cfg.MetricsAddr}
	reg := prometheus.NewRegistry()
	go func() {
		w.done <- worker.Run(ctx, cfg, worker.Deps{NATS: nc, Redis: rdb, Registry: reg, Gatherer: reg,
			Log: e.logger("worker")})
	}()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop shuts the worker down gracefully and waits for it.
func (w *workerProc) stop(t *testing.T) {
	if w.stopped {
		return
	}
	w.stopped = true
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("worker: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("worker did not stop within 30s")
	}
}

// eventually polls cond until it holds or the deadline passes.
func (e *env) eventually(within time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// call makes an API request and returns the status and body.
func (e *env) call(key, method, path string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/json"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, e.api+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, []byte) {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, data
}

func (e *env) mustCall(key, method, path string, body any, wantStatus int) []byte {
	e.t.Helper()
	status, data := e.call(key, method, path, body)
	if status != wantStatus {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, status, data, wantStatus)
	}
	return data
}

// putTemplate creates a template of tenant acme pointing at url.
func (e *env) putTemplate(code string, webhook map[string]any) {
	e.t.Helper()
	status, data := e.call(keyA, http.MethodPut, "/v1/templates/"+code, map[string]any{
		"name": code, "destination": map[string]any{"webhook": webhook},
	})
	if status != http.StatusCreated && status != http.StatusOK {
		e.t.Fatalf("put template: %d %s", status, data)
	}
}

type accepted struct {
	UploadID     string `json:"uploadId"`
	Template     string `json:"template"`
	TotalRecords int    `json:"totalRecords"`
	TotalPages   int    `json:"totalPages"`
	Status       string `json:"status"`
}

func (e *env) importJSON(key string, body map[string]any) accepted {
	e.t.Helper()
	data := e.mustCall(key, http.MethodPost, "/v1/imports", body, http.StatusAccepted)
	var a accepted
	if err := json.Unmarshal(data, &a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

type upload struct {
	UploadID       string     `json:"uploadId"`
	Template       string     `json:"template"`
	Status         string     `json:"status"`
	TotalRecords   int        `json:"totalRecords"`
	TotalPages     int        `json:"totalPages"`
	DeliveredPages int        `json:"deliveredPages"`
	FailedPages    int        `json:"failedPages"`
	PendingPages   int        `json:"pendingPages"`
	CompletedAt    *time.Time `json:"completedAt"`
}

func (e *env) upload(key, id string) upload {
	e.t.Helper()
	var u upload
	if err := json.Unmarshal(e.mustCall(key, http.MethodGet, "/v1/uploads/"+id, nil, http.StatusOK), &u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// waitFinished polls an upload until it leaves "delivering".
func (e *env) waitFinished(key, id string, within time.Duration) upload {
	e.t.Helper()
	var u upload
	e.eventually(within, "upload "+id+" to finish", func() bool {
		u = e.upload(key, id)
		return u.Status != "delivering"
	})
	return u
}

type attempt struct {
	Page         int    `json:"page"`
	Attempt      int    `json:"attempt"`
	Outcome      string `json:"outcome"`
	StatusCode   int    `json:"statusCode"`
	Error        string `json:"error"`
	ResponseBody string `json:"responseBody"`
	DurationMs   int64  `json:"durationMs"`
}

func (e *env) attempts(key, id string) []attempt {
	e.t.Helper()
	var out struct{ Attempts []attempt }
	if err := json.Unmarshal(e.mustCall(key, http.MethodGet, "/v1/uploads/"+id+"/attempts", nil, http.StatusOK), &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Attempts
}

// streamMsgs counts the messages in a stream.
func (e *env) streamMsgs(name string) uint64 {
	e.t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// request is what a receiver saw.
type request struct {
	At     time.Time
	Header http.Header
	Body   []byte
	Page   page
}

type page struct {
	Template     string            `json:"template"`
	UploadID     string            `json:"uploadId"`
	Data         []json.RawMessage `json:"data"`
	TotalRecords int               `json:"totalRecords"`
	TotalPages   int               `json:"totalPages"`
	Page         int               `json:"page"`
	PageSize     int               `json:"pageSize"`
	Extra        json.RawMessage   `json:"extra"`
}

// receiver is an httptest webhook endpoint that records every request and
// answers what respond says (default 200).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []request
	inFlight int
	maxIn    int
	respond  func(n int, r request, w http.ResponseWriter) // n: 1-based count of requests for this webhook-id
}

func newReceiver(t *testing.T, respond func(n int, r request, w http.ResponseWriter)) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := request{At: time.Now(), Header: r.Header.Clone(), Body: body}
		_ = json.Unmarshal(body, &req.Page)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, req)
		n := 0
		for _, q := range rc.reqs {
			if q.Header.Get("webhook-id") == req.Header.Get("webhook-id") {
				n++
			}
		}
		rc.inFlight++
		rc.maxIn = max(rc.maxIn, rc.inFlight)
		rc.mu.Unlock()
		defer func() {
			rc.mu.Lock()
			rc.inFlight--
			rc.mu.Unlock()
		}()
		if rc.respond != nil {
			rc.respond(n, req, w)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func (rc *receiver) url() string { return rc.URL + "/hook" }

func records(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"name": fmt.Sprintf("user%d", i+1), "email": fmt.Sprintf("user%d@example.com", i+1)}
	}
	return out
}

// multipart imports a file with form fields (in map order after template).
func (e *env) multipart(key string, fields map[string]string, filename, ctype, content string) (int, []byte) {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipartWriter(&buf)
	if v, ok := fields["template"]; ok {
		_ = mw.WriteField("template", v)
	}
	for k, v := range fields {
		if k != "template" {
			_ = mw.WriteField(k, v)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+filename+`"`)
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	part, err := mw.CreatePart(h)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = part.Write([]byte(content))
	_ = mw.Close()
	req, err := http.NewRequest(http.MethodPost, e.api+"/v1/imports", &buf)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	return e.do(req)
}

func multipartWriter(w io.Writer) *multipart.Writer { return multipart.NewWriter(w) }
