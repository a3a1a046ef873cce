package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	testKey        = "key-of-the-cli-tests-0001"
	testAdminToken = "admin-token-of-the-cli-tests-0123456789" // #nosec G101 -- a test's token
)

// startHookline runs ingest and a worker on a real NATS and Redis and
// returns the API's base URL.
func startHookline(t *testing.T) string {
	t.Helper()
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.Start(t)
	redisURL := redistest.URL(t)
	env := config.MapEnv(map[string]string{
		"NATS_URL": ns.ClientURL(), "REDIS_URL": redisURL, "HOOKLINE_ENCRYPTION_KEY": key,
		"HOOKLINE_API_KEYS": "acme:" + testKey, "HOOKLINE_ADMIN_TOKEN": testAdminToken, "HOOKLINE_ALLOW_PRIVATE_NETWORKS": "true",
		"HOOKLINE_REDIS_PREFIX": redistest.Prefix(t), "HOOKLINE_METRICS_ADDR": "127.0.0.1:0", "HOOKLINE_ACK_WAIT": "1s",
	})
	icfg, err := ingest.LoadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	wcfg, err := worker.LoadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Connected before the cleanup that stops ingest and the worker is
	// registered, so that they are closed after it (cleanups run last first).
	ingestNATS, workerNATS := natstest.Connect(t, ns), natstest.Connect(t, ns)
	ingestRedis, workerRedis := redistest.ClientFor(t, redisURL), redistest.ClientFor(t, redisURL)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func() error{
		func() error {
			reg := prometheus.NewRegistry()
			return ingest.Run(ctx, icfg, ingest.Deps{NATS: ingestNATS, Redis: ingestRedis,
				Registry: reg, Gatherer: reg, Log: zaptest.NewLogger(t).Named("ingest"), Listener: l})
		},
		func() error {
			reg := prometheus.NewRegistry()
			return worker.Run(ctx, wcfg, worker.Deps{NATS: workerNATS, Redis: workerRedis,
				Registry: reg, Gatherer: reg, Log: zaptest.NewLogger(t).Named("worker")})
		},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(); err != nil {
				t.Errorf("hookline: %v", err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	base := "http://" + l.Addr().String()
	apitest.Eventually(t, 10*time.Second, "ingest ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// cli runs one hookline client command and returns what it printed.
func cli(t *testing.T, base string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, log bytes.Buffer
	a := &api{base: base, key: testKey, out: &out, log: &log}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch args[0] {
	case "uploads":
		err = runUploads(ctx, a, args[1:])
	case "templates":
		err = runTemplates(ctx, a, args[1:])
	case "import":
		err = runImport(ctx, a, args[1:])
	default:
		t.Fatalf("no such command %s", args[0])
	}
	return out.String(), log.String(), err
}

func mustCLI(t *testing.T, base string, args ...string) string {
	t.Helper()
	out, log, err := cli(t, base, args...)
	if err != nil {
		t.Fatalf("hookline %s: %v\n%s", strings.Join(args, " "), err, log)
	}
	return out
}

// A template applied from a file, an import whose id -q prints alone, a page
// that fails for good, its failure log, a retry that delivers it, watch.
func TestCLIUploadsAndTemplates(t *testing.T) {
	base := startHookline(t)
	var mu sync.Mutex
	healthy := false
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, req apitest.Request, n int) {
		mu.Lock()
		ok := healthy
		mu.Unlock()
		if req.Page.Page == 2 && !ok {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "customers.json")
	writeFile(t, tmpl, `{"name": "Customers", "destination": {"webhook": {"url": "`+rc.HookURL()+`", "chunkSize": 1, "retryCount": 0}}}`)
	if out := mustCLI(t, base, "templates", "apply", "CUSTOMERS", "-f", tmpl); !strings.Contains(out, `"code": "CUSTOMERS"`) {
		t.Fatalf("apply printed %s", out)
	}
	if out := mustCLI(t, base, "templates", "list"); !strings.Contains(out, "CUSTOMERS") || !strings.Contains(out, rc.HookURL()) || !strings.HasPrefix(out, "CODE") {
		t.Fatalf("templates list printed %s", out)
	}
	if out := mustCLI(t, base, "templates", "get", "CUSTOMERS"); !strings.Contains(out, `"name": "Customers"`) {
		t.Fatalf("templates get printed %s", out)
	}

	csv := filepath.Join(dir, "customers.csv")
	writeFile(t, csv, "name,email\nAda,ada@example.com\nBob,bob@example.com\nCy,cy@example.com\n")
	out := mustCLI(t, base, "import", "-q", "-template", "CUSTOMERS", "-file", csv)
	id := strings.TrimSpace(out)
	if len(id) != 26 || strings.ContainsAny(id, " {\n") {
		t.Fatalf("import -q printed %q, want the upload id alone", out)
	}
	if out := mustCLI(t, base, "uploads", "watch", id); !strings.Contains(out, `"status": "failed"`) || !strings.Contains(out, `"failedPages": 1`) {
		t.Fatalf("watch printed %s", out)
	}
	if out := mustCLI(t, base, "uploads", "list"); !strings.Contains(out, id) || !strings.Contains(out, "2/3") {
		t.Fatalf("uploads list printed %s", out)
	}
	if out := mustCLI(t, base, "uploads", "failures", id); !strings.Contains(out, "PAGE") || !strings.Contains(out, "status 500") {
		t.Fatalf("failures printed %s", out)
	}
	out = mustCLI(t, base, "uploads", "attempts", id, "-json")
	var atts struct{ Attempts []attemptRow }
	if err := json.Unmarshal([]byte(out), &atts); err != nil || len(atts.Attempts) != 3 {
		t.Fatalf("attempts -json printed %s (%v)", out, err)
	}

	mu.Lock()
	healthy = true
	mu.Unlock()
	out = mustCLI(t, base, "uploads", "retry", id, "-wait")
	if !strings.Contains(out, `"requeuedPages": 1`) || !strings.Contains(out, `"status": "completed"`) {
		t.Fatalf("retry -wait printed %s", out)
	}
	if out := mustCLI(t, base, "templates", "pause", "CUSTOMERS"); !strings.Contains(out, `"state": "paused"`) {
		t.Fatalf("pause printed %s", out)
	}
	if out := mustCLI(t, base, "templates", "resume", "CUSTOMERS"); !strings.Contains(out, `"state": "active"`) {
		t.Fatalf("resume printed %s", out)
	}
	if out := mustCLI(t, base, "templates", "test", "CUSTOMERS"); !strings.Contains(out, `"delivered": true`) || !strings.Contains(out, `"statusCode": 200`) {
		t.Fatalf("test printed %s", out)
	}
	mustCLI(t, base, "templates", "delete", "CUSTOMERS")
	if _, _, err := cli(t, base, "templates", "get", "CUSTOMERS"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("get after delete: %v", err)
	}
}

// Ids and codes are escaped into the path: one cannot reach another route.
func TestCLIEscapesIDs(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{uploadPath("01J/../../templates/X", "/attempts"), "/v1/uploads/01J%2F..%2F..%2Ftemplates%2FX/attempts"},
		{uploadPath("a?b#c d"), "/v1/uploads/a%3Fb%23c%20d"},
		{templatePath("A/B", "/test"), "/v1/templates/A%2FB/test"},
	} {
		if tc.got != tc.want {
			t.Errorf("path %q, want %q", tc.got, tc.want)
		}
	}
	base := startHookline(t)
	rc := apitest.NewReceiver(t, nil)
	mustCLI(t, base, "templates", "apply", "X", "-f", writeFile(t, filepath.Join(t.TempDir(), "x.json"), `{"destination": {"webhook": {"url": "`+rc.HookURL()+`"}}}`))
	_, _, err := cli(t, base, "uploads", "get", "../templates/X")
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "/v1/uploads/..%2Ftemplates%2FX") {
		t.Fatalf("uploads get ../templates/X: %v, want 404 from /v1/uploads/..%%2Ftemplates%%2FX", err)
	}
}

// admin tenants update changes the quotas it is given, returns those of
// --default to the server's, and reports a refused value naming its field.
func TestCLIAdminTenantsUpdate(t *testing.T) {
	base := startHookline(t)
	t.Setenv("HOOKLINE_API", base)
	t.Setenv("HOOKLINE_ADMIN_TOKEN", testAdminToken)
	if err := runAdmin([]string{"tenants", "create", "--id", "gold", "--delivery-share", "2", "--max-records", "10"}); err != nil {
		t.Fatal(err)
	}
	if err := runAdmin([]string{"tenants", "update", "--id", "gold", "--delivery-share", "5", "--imports-per-minute", "0", "--default", "maxRecords"}); err != nil {
		t.Fatal(err)
	}
	tenant := func() string {
		data, err := adminCall(context.Background(), http.MethodGet, "/v1/admin/tenants/gold", nil)
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Quotas json.RawMessage }
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		return string(v.Quotas)
	}
	if got, want := tenant(), `{"importsPerMinute":0,"deliveryShare":5}`; got != want {
		t.Fatalf("quotas after update = %s, want %s", got, want)
	}
	err := runAdmin([]string{"tenants", "update", "--id", "gold", "--delivery-share", "0"})
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "quotas.deliveryShare") {
		t.Fatalf("update to share 0: %v, want 400 naming quotas.deliveryShare", err)
	}
	if err := runAdmin([]string{"tenants", "update", "--id", "nobody", "--delivery-share", "3"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("update of an unknown tenant: %v, want 404", err)
	}
	for _, args := range [][]string{
		{"--id", "gold"},
		{"--id", "gold", "--default", "maxRecs"},
		{"--id", "gold", "--delivery-share", "3", "--default", "deliveryShare"},
	} {
		if err := runAdmin(append([]string{"tenants", "update"}, args...)); err == nil {
			t.Errorf("tenants update %v succeeded", args)
		}
	}
	if got, want := tenant(), `{"importsPerMinute":0,"deliveryShare":5}`; got != want {
		t.Fatalf("quotas after refused updates = %s, want %s kept", got, want)
	}
}

// -h on a group and on each of its commands prints the usage and succeeds;
// a missing argument says what is missing.
func TestCLIHelp(t *testing.T) {
	for _, group := range []struct {
		name string
		cmds []subcommand
	}{{"uploads", uploadCommands}, {"templates", templateCommands}} {
		_, log, err := cli(t, "http://127.0.0.1:1", group.name, "-h")
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(log, "Usage: hookline "+group.name+" COMMAND") {
			t.Fatalf("%s -h: %v %s", group.name, err, log)
		}
		for _, c := range group.cmds {
			_, log, err := cli(t, "http://127.0.0.1:1", group.name, c.name, "-h")
			if !errors.Is(err, flag.ErrHelp) || !strings.Contains(log, "Usage: hookline "+group.name+" "+c.name) {
				t.Errorf("%s %s -h: %v %s", group.name, c.name, err, log)
			}
		}
	}
	if _, _, err := cli(t, "http://127.0.0.1:1", "uploads", "get"); err == nil || !strings.Contains(err.Error(), "takes UPLOAD_ID") {
		t.Fatalf("uploads get without an id: %v", err)
	}
	if _, log, err := cli(t, "http://127.0.0.1:1", "import", "-h"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(log, "-q") {
		t.Fatalf("import -h: %v %s", err, log)
	}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
