//go:build chaos

package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// API keys of the two tenants every stack knows.
const (
	keyA = "chaos-key-of-tenant-acme-0001"
	keyB = "chaos-key-of-tenant-bravo-0002"
)

// Stream names (pkg/queue).
const (
	pagesStream      = "HOOKLINE_PAGES"
	deliveriesStream = "HOOKLINE_DELIVERIES"
)

// bin holds the paths of the binaries TestMain builds.
var bin struct{ ingest, worker, nats, hookline string }

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
		return 1
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: the go command is not on PATH:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "hookline-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := func(wd string, args ...string) error {
		cmd := exec.Command(goCmd, append([]string{"build"}, args...)...)
		cmd.Dir = wd
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	start := time.Now()
	if err := build(root, "-o", dir+string(filepath.Separator), "./services/ingest/cmd/ingest", "./services/worker/cmd/worker", "./services/hookline/cmd/hookline"); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: build ingest, worker and hookline:", err)
		return 1
	}
	if err := build(filepath.Join(root, "services", "hookline"), "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2"); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: build nats-server:", err)
		return 1
	}
	bin.ingest, bin.worker, bin.nats = filepath.Join(dir, "ingest"), filepath.Join(dir, "worker"), filepath.Join(dir, "nats-server")
	bin.hookline = filepath.Join(dir, "hookline")
	fmt.Fprintf(os.Stderr, "chaos: built ingest, worker, hookline and nats-server in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// repoRoot is the directory of go.work above the working directory.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("go.work not found above " + wd)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ---------------------------------------------------------------------------
// Processes

// logBuf collects a process's output.
type logBuf struct {
	mu   sync.Mutex
	data []byte
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.data = append(b.data, p...)
	return len(p), nil
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.data)
}

func (b *logBuf) lines() []string {
	return strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
}

// proc is a child process owned by a test: killed (SIGKILL) at cleanup, its
// output printed when the test failed.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	log  *logBuf
	done chan struct{}
	err  error // cmd.Wait's result, once done is closed
}

func startProc(t testing.TB, name, path string, args []string, env map[string]string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, log: &logBuf{}, done: make(chan struct{})}
	cmd := exec.Command(path, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// The child dies with the test process even if a cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			lines := p.log.lines()
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("---- last output of %s (pid %d) ----\n%s", p.name, p.cmd.Process.Pid, strings.Join(lines, "\n"))
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (an abrupt crash) and waits for the process to be gone.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// waitExit waits for the process to end; false when it is still running
// after the deadline.
func (p *proc) waitExit(within time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(within):
		return false
	}
}

func (p *proc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

// waitLog waits for a JSON log line (zap) whose msg is msg and returns its
// fields. The test fails when the process exits first or the deadline passes.
func (p *proc) waitLog(within time.Duration, msg string) map[string]any {
	p.t.Helper()
	var found map[string]any
	ok := apitest.Poll(within, func() bool {
		for _, line := range p.log.lines() {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
				found = m
				return true
			}
		}
		return p.exited()
	})
	if found == nil {
		state := "still running"
		if p.exited() {
			state = fmt.Sprintf("exited: %v", p.err)
		}
		if !ok {
			state = "timed out, " + state
		}
		p.t.Fatalf("%s did not log %q (%s); output:\n%s", p.name, msg, state, p.log.String())
	}
	return found
}

// ---------------------------------------------------------------------------
// NATS servers (separate nats-server processes, file storage)

type natsNode struct {
	t           testing.TB
	name        string
	port        int
	clusterPort int
	routes      []int // cluster ports of every node (self included)
	dir         string
	conf        string
	jsExtra     string // more settings of the jetstream block
	proc        *proc
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsNode) writeConfig() {
	n.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\nlisten: \"127.0.0.1:%d\"\nmax_payload: 8MB\n", n.name, n.port)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  max_memory_store: 256MB\n  max_file_store: 2GB\n%s}\n", filepath.Join(n.dir, "js"), n.jsExtra)
	if n.clusterPort != 0 {
		var routes []string
		for _, p := range n.routes {
			routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", p)))
		}
		fmt.Fprintf(&b, "cluster {\n  name: \"hookline-chaos\"\n  listen: \"127.0.0.1:%d\"\n  routes: [%s]\n}\n", n.clusterPort, strings.Join(routes, ", "))
	}
	n.conf = filepath.Join(n.dir, "nats.conf")
	if err := os.WriteFile(n.conf, []byte(b.String()), 0o600); err != nil {
		n.t.Fatal(err)
	}
}

// start runs the server (again, on the same port and store) and waits until
// it accepts clients.
func (n *natsNode) start() {
	n.t.Helper()
	n.proc = startProc(n.t, "nats-server "+n.name, bin.nats, []string{"-c", n.conf}, nil)
	if !apitest.Poll(20*time.Second, func() bool { return strings.Contains(n.proc.log.String(), "Server is ready") || n.proc.exited() }) || n.proc.exited() {
		n.t.Fatalf("nats-server %s did not start:\n%s", n.name, n.proc.log.String())
	}
}

func (n *natsNode) kill() { n.proc.kill() }

// startNATS runs one JetStream server: `nats-server -c conf` with file
// storage on a free loopback port. jsExtra adds lines to the jetstream block.
func startNATS(t testing.TB, jsExtra ...string) *natsNode {
	t.Helper()
	n := &natsNode{t: t, name: "n1", port: freePort(t), dir: t.TempDir()}
	for _, l := range jsExtra {
		n.jsExtra += "  " + l + "\n"
	}
	n.writeConfig()
	n.start()
	nc, js := natsClient(t, n.url())
	apitest.Eventually(t, 20*time.Second, "JetStream to answer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	nc.Close()
	return n
}

// startNATSCluster runs three JetStream servers routed to one another and
// waits until the cluster can create an R3 stream.
func startNATSCluster(t testing.TB) []*natsNode {
	t.Helper()
	nodes := startNATSClusterNoWait(t)
	nc, js := natsClient(t, clusterURL(nodes))
	defer nc.Close()
	apitest.Eventually(t, 40*time.Second, "the JetStream cluster to create an R3 stream", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "CHAOS_PROBE", Subjects: []string{"chaos.probe"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
			return false
		}
		return js.DeleteStream(ctx, "CHAOS_PROBE") == nil
	})
	return nodes
}

// startNATSClusterNoWait runs three JetStream servers routed to one another
// and waits only until each accepts clients: the JetStream cluster may still
// be forming.
func startNATSClusterNoWait(t testing.TB) []*natsNode {
	t.Helper()
	var nodes []*natsNode
	var routes []int
	for i := range 3 {
		n := &natsNode{t: t, name: fmt.Sprintf("n%d", i+1), port: freePort(t), clusterPort: freePort(t), dir: t.TempDir()}
		routes = append(routes, n.clusterPort)
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		n.routes = routes
		n.writeConfig()
		n.proc = startProc(t, "nats-server "+n.name, bin.nats, []string{"-c", n.conf}, nil)
	}
	for _, n := range nodes {
		if !apitest.Poll(20*time.Second, func() bool { return strings.Contains(n.proc.log.String(), "Server is ready") || n.proc.exited() }) || n.proc.exited() {
			t.Fatalf("nats-server %s did not start:\n%s", n.name, n.proc.log.String())
		}
	}
	return nodes
}

func clusterURL(nodes []*natsNode) string {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	return strings.Join(urls, ",")
}

// natsClient is the test's own connection, for inspecting streams.
func natsClient(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name("chaos-test"))
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// streamInfo reads a stream's info (with the subjects under filter, when
// not empty), retrying while the cluster settles.
func streamInfo(t testing.TB, js jetstream.JetStream, name, filter string) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	var last error
	ok := apitest.Poll(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, name)
		if err != nil {
			last = err
			return false
		}
		var opts []jetstream.StreamInfoOpt
		if filter != "" {
			opts = append(opts, jetstream.WithSubjectFilter(filter))
		}
		info, err = s.Info(ctx, opts...)
		last = err
		return err == nil
	})
	if !ok {
		t.Fatalf("stream %s info: %v", name, last)
	}
	return info
}

// pageSubjects lists the subjects stored in HOOKLINE_PAGES for one upload,
// or for every upload when uploadID is "".
func pageSubjects(t testing.TB, js jetstream.JetStream, uploadID string) map[string]uint64 {
	t.Helper()
	filter := "hookline.pages.>"
	if uploadID != "" {
		filter = "hookline.pages." + uploadID + ".*"
	}
	return streamInfo(t, js, pagesStream, filter).State.Subjects
}

// ---------------------------------------------------------------------------
// A hookline deployment: ingest and workers as processes

type stack struct {
	t      testing.TB
	vars   map[string]string
	api    *apitest.Client
	ingest *proc
	rdb    redis.UniversalClient
	prefix string
	tr     *tracker.Tracker // reads the state ingest and the workers keep in Redis
}

func encryptionKey(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// newStack prepares the environment shared by ingest and the workers; extra
// overrides or adds variables. It starts nothing.
func newStack(t testing.TB, natsURL, redisURL string, extra map[string]string) *stack {
	t.Helper()
	s := &stack{t: t, prefix: redistest.Prefix(t)}
	s.vars = map[string]string{
		"NATS_URL":                        natsURL,
		"REDIS_URL":                       redisURL,
		"HOOKLINE_ENCRYPTION_KEY":         encryptionKey(t),
		"HOOKLINE_API_KEYS":               "acme:" + keyA + ",bravo:" + keyB,
		"HOOKLINE_ALLOW_PRIVATE_NETWORKS": "true",
		"HOOKLINE_ACK_WAIT":               "2s",
		"HOOKLINE_REDIS_PREFIX":           s.prefix,
		"HOOKLINE_STREAM_REPLICAS":        "1",
		"HOOKLINE_SHUTDOWN_GRACE":         "10s",
		"HOOKLINE_LOG_LEVEL":              "info",
	}
	for k, v := range extra {
		s.vars[k] = v
	}
	s.rdb = redistest.UniversalFor(t, redisURL)
	s.tr = tracker.New(s.rdb, tracker.WithPrefix(s.prefix))
	return s
}

func (s *stack) env(extra map[string]string) map[string]string {
	m := make(map[string]string, len(s.vars)+len(extra))
	for k, v := range s.vars {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// startIngest runs bin/ingest on a free loopback port and waits until
// /readyz answers 200.
func (s *stack) startIngest() *proc {
	s.t.Helper()
	p := startProc(s.t, "ingest", bin.ingest, nil, s.env(map[string]string{"HOOKLINE_ADDR": "127.0.0.1:0"}))
	addr, _ := p.waitLog(30*time.Second, "ingest listening")["addr"].(string)
	if addr == "" {
		s.t.Fatalf("ingest logged no address")
	}
	s.ingest = p
	s.api = apitest.NewClient(s.t, "http://"+addr, &http.Client{Timeout: 30 * time.Second})
	apitest.Eventually(s.t, 20*time.Second, "ingest /readyz", func() bool {
		st, _, err := s.api.TryCall("", http.MethodGet, "/readyz", nil)
		return err == nil && st == http.StatusOK
	})
	return p
}

type workerProc struct {
	*proc
	metrics string // host:port of its /metrics
}

// startWorker runs bin/worker and waits until it has started pulling.
func (s *stack) startWorker(name string, extra map[string]string) *workerProc {
	s.t.Helper()
	env := s.env(extra)
	env["HOOKLINE_METRICS_ADDR"] = "127.0.0.1:0"
	p := startProc(s.t, name, bin.worker, nil, env)
	addr, _ := p.waitLog(30*time.Second, "worker metrics listening")["addr"].(string)
	p.waitLog(30*time.Second, "worker started")
	return &workerProc{proc: p, metrics: addr}
}

// metric reads one unlabelled value from the worker's /metrics.
func (w *workerProc) metric(name string) (float64, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + w.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// inFlight is the number of webhook requests the worker has under way.
func (w *workerProc) inFlight() float64 {
	v, err := w.metric("hookline_worker_requests_in_flight")
	if err != nil {
		return 0
	}
	return v
}

// uploadState lists the Redis keys that hold any upload's state.
func (s *stack) uploadState() []string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := s.tr.StateKeys(ctx)
	if err != nil {
		s.t.Fatalf("scan redis: %v", err)
	}
	return keys
}

// redisKeys lists every Redis key of the stack's prefix (for diagnostics).
func (s *stack) redisKeys() []string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	iter := s.rdb.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		s.t.Fatalf("scan redis: %v", err)
	}
	return out
}

// ---------------------------------------------------------------------------
// The HTTP API (apitest.Client)

// importRecords imports n records (apitest.NumberedRecords) into template
// tmpl and expects 202.
func (s *stack) importRecords(key, tmpl string, n int) apitest.Accepted {
	s.t.Helper()
	return s.api.ImportJSON(key, map[string]any{"template": tmpl, "records": apitest.NumberedRecords(n)})
}

// checkAttemptsExact checks the attempts log of an upload whose receiver
// always answered 2xx: every page has exactly one "delivered" entry, as
// attempt 1, and nothing is "retrying" or "failed" (crash redeliveries and
// infrastructure faults are not customer attempts). It returns the number of
// "released" entries.
func checkAttemptsExact(t testing.TB, atts []apitest.Attempt, pages int) (released int) {
	t.Helper()
	delivered := map[int]int{}
	for _, a := range atts {
		switch a.Outcome {
		case "delivered":
			delivered[a.Page]++
			if a.Attempt != 1 {
				t.Errorf("page %d delivered as attempt %d, want 1 (the receiver never failed): %+v", a.Page, a.Attempt, a)
			}
		case "released":
			released++
		default:
			t.Errorf("attempts log has a %q attempt although the receiver always answered 200: %+v", a.Outcome, a)
		}
	}
	for p := 1; p <= pages; p++ {
		if delivered[p] != 1 {
			t.Errorf("page %d has %d delivered entries in the attempts log, want 1", p, delivered[p])
		}
	}
	return released
}

// ---------------------------------------------------------------------------
// Receivers (apitest.Receiver)

// receivedPages counts the requests per page of one upload, by the page
// number ending their webhook-id.
func receivedPages(rc *apitest.Receiver, uploadID string) map[int]int {
	out := map[int]int{}
	for _, r := range rc.Requests() {
		if strings.HasPrefix(r.ID, uploadID+".") {
			page, _ := strconv.Atoi(r.ID[strings.LastIndexByte(r.ID, '.')+1:])
			out[page]++
		}
	}
	return out
}

// checkEveryPage checks that every page 1..total of an upload reached the
// receiver at least once and, when maxEach > 0, at most maxEach times. It
// returns the number of duplicate requests.
func checkEveryPage(t testing.TB, rc *apitest.Receiver, uploadID string, total, maxEach int) (dups int) {
	t.Helper()
	seen := receivedPages(rc, uploadID)
	for _, n := range seen {
		dups += n - 1
	}
	var missing, extra []string
	for p := 1; p <= total; p++ {
		if seen[p] == 0 {
			missing = append(missing, strconv.Itoa(p))
		}
		if maxEach > 0 && seen[p] > maxEach {
			extra = append(extra, fmt.Sprintf("%d×%d", p, seen[p]))
		}
	}
	if len(missing) > 0 {
		t.Errorf("pages never received: %s", strings.Join(missing, ","))
	}
	if len(extra) > 0 {
		t.Errorf("pages received more than %d times: %s", maxEach, strings.Join(extra, ","))
	}
	for p := range seen {
		if p < 1 || p > total {
			t.Errorf("received a page %d outside 1..%d", p, total)
		}
	}
	return dups
}

// slowOK answers 200 after d (or when the client goes away).
func slowOK(d time.Duration) apitest.Respond {
	return func(w http.ResponseWriter, r *http.Request, _ apitest.Request, n int) {
		select {
		case <-time.After(d): // a slow receiver
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// ---------------------------------------------------------------------------
// Redis as a process the test can kill and start again when it chooses

type redisNode struct {
	t    testing.TB
	port int
	dir  string
	args []string
	proc *proc
}

// startRedis runs redis-server on a free loopback port with its files in a
// temporary directory; args are extra arguments ("--appendonly", "yes").
func startRedis(t testing.TB, args ...string) *redisNode {
	t.Helper()
	r := &redisNode{t: t, port: freePort(t), dir: t.TempDir(), args: args}
	r.start()
	return r
}

func (r *redisNode) url() string { return fmt.Sprintf("redis://127.0.0.1:%d", r.port) }

// start runs the server (again, with the same port and files) and waits
// until it answers PING.
func (r *redisNode) start() {
	r.t.Helper()
	args := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--daemonize", "no"}, r.args...)
	r.proc = startProc(r.t, "redis-server", "redis-server", args, nil)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	if !apitest.Poll(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return rdb.Ping(ctx).Err() == nil || r.proc.exited()
	}) || r.proc.exited() {
		r.t.Fatalf("redis-server did not start:\n%s", r.proc.log.String())
	}
}

// kill stops the server with SIGKILL (a crash).
func (r *redisNode) kill() { r.proc.kill() }

// longestPause is the longest time between two consecutive requests the
// receiver got: how long deliveries stood still during a fault.
func longestPause(rc *apitest.Receiver) time.Duration {
	hits := rc.Requests()
	sort.Slice(hits, func(i, j int) bool { return hits[i].At.Before(hits[j].At) })
	var longest time.Duration
	for i := 1; i < len(hits); i++ {
		longest = max(longest, hits[i].At.Sub(hits[i-1].At))
	}
	return longest
}

// warnings summarises a process's warn and error log lines: each distinct
// "msg: error" with how many times it was logged.
func (p *proc) warnings() []string {
	counts := map[string]int{}
	var order []string
	for _, line := range p.log.lines() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || (m["level"] != "warn" && m["level"] != "error") {
			continue
		}
		key := fmt.Sprint(m["msg"])
		if e, ok := m["error"]; ok {
			key += ": " + fmt.Sprint(e)
		}
		if len(key) > 200 {
			key = key[:200]
		}
		if counts[key] == 0 {
			order = append(order, key)
		}
		counts[key]++
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, fmt.Sprintf("%d× %s", counts[k], k))
	}
	return out
}

// stagingMark reports whether upload id has a staging mark: ingest marks
// the imports whose file is still streaming (pkg/tracker/staging.go) with
// a heartbeat, and every ingest runs a janitor that purges the pages of
// marks older than importer.AbandonedAfter (at start, then every minute).
func (s *stack) stagingMark(id string) bool {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, ok, err := s.tr.StagingSince(ctx, id)
	if err != nil {
		s.t.Fatalf("read staging mark: %v", err)
	}
	return ok
}

// ageStagingMark moves upload id's staging heartbeat back by d: the test's
// way of letting the janitor's waiting time pass without waiting for it.
func (s *stack) ageStagingMark(id string, d time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.tr.Staging(ctx, id, time.Now().Add(-d)); err != nil {
		s.t.Fatalf("age staging mark: %v", err)
	}
}
