package e2e

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"regexp"
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
	"github.com/hookline/hookline/services/hookline/internal/apitest"
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
	api      string          // base URL of ingest
	client   *apitest.Client // hookline's API at api
	nc       *nats.Conn
	rdb      *redis.Client
	logs     *syncBuffer  // everything ingest and the workers log
	metrics  *metricNames // every metric ingest and the workers register
}

// metricNames wraps the processes' registries and notes the name of every
// metric registered through them.
type metricNames struct {
	mu    sync.Mutex
	names map[string]bool
}

// registry is a new registry whose registrations m records.
func (m *metricNames) registry() (prometheus.Registerer, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return recordingRegisterer{Registerer: reg, m: m}, reg
}

func (m *metricNames) has(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.names[name]
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

type recordingRegisterer struct {
	prometheus.Registerer
	m *metricNames
}

func (r recordingRegisterer) Register(c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc)
	go func() { c.Describe(descs); close(descs) }()
	r.m.mu.Lock()
	for d := range descs {
		if n := fqName.FindStringSubmatch(d.String()); n != nil {
			r.m.names[n[1]] = true
		}
	}
	r.m.mu.Unlock()
	return r.Registerer.Register(c)
}

func (r recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
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
	e := &env{t: t, ns: natstest.Start(t), redisURL: redistest.URL(t), logs: &syncBuffer{}, metrics: &metricNames{names: map[string]bool{}}}
	e.vars = map[string]string{
		"NATS_URL":                        e.ns.ClientURL(),
		"REDIS_URL":                       e.redisURL,
		"HOOKLINE_ENCRYPTION_KEY":         key,
		"HOOKLINE_API_KEYS":               "acme:" + keyA + ",bravo:" + keyB,
		"HOOKLINE_ALLOW_PRIVATE_NETWORKS": "true",
		"HOOKLINE_REDIS_PREFIX":           redistest.Prefix(t),
		"HOOKLINE_ACK_WAIT":               "1s",
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
	e.client = apitest.NewClient(t, e.api, http.DefaultClient)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	registerer, reg := e.metrics.registry()
	go func() {
		done <- ingest.Run(ctx, cfg, ingest.Deps{NATS: e.nc, Redis: e.rdb, Registry: registerer, Gatherer: reg,
			Log: e.logger("ingest"), Listener: l})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest: %v", err)
		}
	})
	apitest.Eventually(t, 10*time.Second, "ingest ready", func() bool {
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
	registerer, reg := e.metrics.registry()
	go func() {
		w.done <- worker.Run(ctx, cfg, worker.Deps{NATS: nc, Redis: rdb, Registry: registerer, Gatherer: reg,
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
	return e.client.Do(req)
}

func multipartWriter(w io.Writer) *multipart.Writer { return multipart.NewWriter(w) }
