package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
	"github.com/hookline/hookline/services/ingest"
)

// The console in headless Chromium (make test installs the chromium package):
// a real browser signs in with an API key and drives the console against a
// running hookline.

// chromiumPath is HOOKLINE_CHROMIUM, else chromium on PATH.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("HOOKLINE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH (make test installs it: scripts/ensure-chromium.sh), or set HOOKLINE_CHROMIUM")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(acancel)
	tab, tcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(tcancel)
	return tab
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v\npage: %s", err, pageText(ctx))
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition in the page until it holds.
func waitFor(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`Boolean(`+js+`)`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("waiting for %s: %v\npage: %s", what, err, pageText(ctx))
	}
}

func pageText(ctx context.Context) string {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return err.Error()
	}
	return s
}

// screenshot saves the page as a test artifact, in HOOKLINE_ARTIFACTS or
// testdata/artifacts.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("HOOKLINE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("screenshot: %s", abs)
}

// signIn opens the console and signs in with key.
func signIn(t *testing.T, ctx context.Context, e *env, key string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(e.api+"/console/"), chromedp.WaitVisible("#apikey"),
		chromedp.SendKeys("#apikey", key), chromedp.Click(`#signin button[type=submit]`))
	waitFor(t, ctx, "the uploads list", `document.querySelector('#uploads')`)
}

// keyNotInPage checks that the API key is nowhere in the page's markup or URL.
func keyNotInPage(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	html := eval[string](t, ctx, `document.documentElement.outerHTML`)
	loc := eval[string](t, ctx, `location.href`)
	if strings.Contains(html, key) || strings.Contains(loc, key) {
		t.Fatalf("the API key is in the page (URL %s)", loc)
	}
	if got := eval[string](t, ctx, `sessionStorage.getItem('hookline.apiKey') || ''`); got != key {
		t.Fatalf("session storage holds %q, want the key", got)
	}
}

func sel(s string) string { return fmt.Sprintf("%q", s) }

// Sign in (after a refused key), watch an upload go from delivering to
// completed without reloading, then open its pages and attempts.
func TestConsoleShowsUploadProgress(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	release := make(chan struct{})
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, req apitest.Request, n int) {
		if req.Page.Page > 3 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "PROGRESS", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "timeout": 60000})
	ctx := browser(t)

	do(t, ctx, chromedp.Navigate(e.api+"/console/"), chromedp.WaitVisible("#apikey"),
		chromedp.SendKeys("#apikey", "not-a-key-of-anyone"), chromedp.Click(`#signin button[type=submit]`))
	waitFor(t, ctx, "the refusal", `document.querySelector('#signin-error').textContent.includes('refused')`)
	signIn(t, ctx, e, keyA)

	acc := e.client.ImportJSON(keyA, map[string]any{"template": "PROGRESS", "records": apitest.Records(8)})
	row := `document.querySelector('#uploads tr[data-upload=` + sel(acc.UploadID) + `]')`
	waitFor(t, ctx, "the upload at 3 of 8 pages", row+`?.querySelector('.pages').textContent === '3/8 delivered'`)
	if s := eval[string](t, ctx, row+`.dataset.status`); s != "delivering" {
		t.Fatalf("status shown = %q, want delivering", s)
	}
	screenshot(t, ctx, "console-progress-delivering")

	// The upload's page follows its event stream while it delivers.
	do(t, ctx, chromedp.Click(`#uploads tr[data-upload=`+sel(acc.UploadID)+`] a`))
	waitFor(t, ctx, "3 delivered pages, following the event stream", `document.querySelectorAll('#pages .cell.delivered').length === 3 && document.querySelector('#live-note').textContent.includes('event stream')`)
	close(release)
	waitFor(t, ctx, "8 delivered pages and 8 attempts", `document.querySelector('#summary [data-field=status]')?.textContent === 'completed' && document.querySelectorAll('#pages .cell.delivered').length === 8 && document.querySelectorAll('#attempts tbody tr').length === 8`)
	screenshot(t, ctx, "console-progress-completed")
	do(t, ctx, chromedp.Click(`a[href="#/uploads"]`))
	waitFor(t, ctx, "the upload completed in the list", row+`?.dataset.status === 'completed' && `+row+`.querySelector('.pages').textContent === '8/8 delivered'`)
	keyNotInPage(t, ctx, keyA)
}

// A page fails for good (retryCount 0); once the receiver is healthy, the
// Retry button sends it again and the console shows the upload completed.
func TestConsoleRetriesAFailedPage(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	var healthy atomic.Bool
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, req apitest.Request, n int) {
		if req.Page.Page == 3 && !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("receiver down for page 3"))
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "RETRY", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "retryCount": 0})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "RETRY", "records": apitest.Records(4)})
	if u := e.client.WaitFinished(keyA, acc.UploadID, 30*time.Second); u.Status != "failed" || u.FailedPages != 1 {
		t.Fatalf("upload = %+v, want failed with one failed page", u)
	}

	ctx := browser(t)
	signIn(t, ctx, e, keyA)
	do(t, ctx, chromedp.Click(`#uploads tr[data-upload=`+sel(acc.UploadID)+`] a`))
	waitFor(t, ctx, "page 3 failed in the grid and the failure log",
		`document.querySelector('#pages [data-page="3"]')?.dataset.state === 'failed' && document.querySelectorAll('#pages .cell.delivered').length === 3 && document.querySelector('#failures tbody td')?.textContent === '3'`)
	if got := eval[string](t, ctx, `document.querySelector('#attempts tbody').textContent`); !strings.Contains(got, "receiver down for page 3") {
		t.Fatalf("attempts table lacks the response body: %s", got)
	}
	waitFor(t, ctx, "the Retry button enabled", `!document.querySelector('#retry').disabled`)
	screenshot(t, ctx, "console-retry-failed")

	healthy.Store(true)
	do(t, ctx, chromedp.Click("#retry"))
	waitFor(t, ctx, "the retried page delivered", `document.querySelector('#summary [data-field=status]')?.textContent === 'completed' && document.querySelectorAll('#pages .cell.delivered').length === 4 && document.querySelector('#failures td.empty')`)
	if got := eval[string](t, ctx, `document.querySelector('#retry-result').textContent`); got != "1 page queued again." {
		t.Fatalf("retry result = %q", got)
	}
	page3 := 0
	for _, r := range rc.Requests() {
		if r.Page.Page == 3 {
			page3++
		}
	}
	if page3 != 2 {
		t.Fatalf("page 3 was sent %d times, want 2 (the failed attempt and the retry)", page3)
	}
	screenshot(t, ctx, "console-retry-completed")
	keyNotInPage(t, ctx, keyA)
}

const xss = `<img src=x onerror=window.__xss=1><script>window.__xss=2</script>`

// Template names, file names, record values and response bodies are shown as
// text: nothing from an import runs as script. Every console response sends
// the CSP.
func TestConsoleShowsImportedMarkupAsText(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, req apitest.Request, n int) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(append([]byte(xss+" echo: "), req.Body...))
	})
	e.client.MustCall(keyA, http.MethodPut, "/v1/templates/XSS", map[string]any{
		"name": xss, "destination": map[string]any{"webhook": map[string]any{"url": rc.HookURL()}},
	}, http.StatusCreated)
	status, data := e.multipart(keyA, map[string]string{"template": "XSS", "extra": xss},
		`<img src=x onerror=window.__xss=1>.csv`, "text/csv", "name,note\n\""+xss+"\",\""+xss+"\"\n")
	if status != http.StatusAccepted {
		t.Fatalf("import = %d %s", status, data)
	}
	var acc apitest.Accepted
	if err := json.Unmarshal(data, &acc); err != nil {
		t.Fatal(err)
	}
	e.client.WaitFinished(keyA, acc.UploadID, 30*time.Second)

	ctx := browser(t)
	signIn(t, ctx, e, keyA)
	do(t, ctx, chromedp.Navigate(e.api+"/console/#/templates"))
	waitFor(t, ctx, "the template's name as text", `document.querySelector('#templates tr[data-template=XSS] td:nth-child(2)')?.textContent === `+sel(xss))
	screenshot(t, ctx, "console-templates-markup-as-text")
	do(t, ctx, chromedp.Navigate(e.api+"/console/#/uploads/"+acc.UploadID))
	waitFor(t, ctx, "the response body as text", `document.querySelector('#attempts code.excerpt')?.textContent.startsWith(`+sel(xss+" echo: ")+`)`)
	if got := eval[string](t, ctx, `document.querySelector('#attempts code.excerpt').title`); !strings.Contains(got, `"name":"`+strings.ReplaceAll(xss, "<", `\u003c`)) && !strings.Contains(got, `"name":"`+xss) {
		t.Fatalf("response excerpt lacks the record values: %s", got)
	}
	screenshot(t, ctx, "console-markup-as-text")
	if got := eval[string](t, ctx, `typeof window.__xss`); got != "undefined" {
		t.Fatalf("window.__xss is %s: imported markup ran", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('img').length + document.querySelectorAll('script').length`); n != 1 {
		t.Fatalf("%d img and script elements, want only the console's own script", n)
	}
	keyNotInPage(t, ctx, keyA)

	for _, path := range []string{"/console/", "/console/app.js", "/console/style.css"} {
		resp, err := http.Get(e.api + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Security-Policy"); got != ingest.ConsoleCSP {
			t.Fatalf("%s: Content-Security-Policy = %q", path, got)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: no X-Content-Type-Options: nosniff", path)
		}
	}
}

// Pause and Resume change the template's state shown; Send test shows what
// the endpoint answered one request, sent with the auth header value typed.
func TestConsoleTemplateButtons(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, req apitest.Request, n int) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("test seen, key " + req.Header.Get("X-Api-Key")))
	})
	e.client.MustCall(keyA, http.MethodPut, "/v1/templates/HOOK", map[string]any{
		"name": "Hook", "destination": map[string]any{"webhook": map[string]any{"url": rc.HookURL(), "authHeaderName": "X-API-KEY", "signingSecret": "whsec_" + strings.Repeat("QUJD", 8)}},
	}, http.StatusCreated)

	ctx := browser(t)
	signIn(t, ctx, e, keyA)
	do(t, ctx, chromedp.Navigate(e.api+"/console/#/templates"))
	row := `document.querySelector('#templates tr[data-template=HOOK]')`
	waitFor(t, ctx, "the template active", row+`?.querySelector('.badge')?.textContent === 'active'`)
	if got := eval[string](t, ctx, row+`.textContent`); !strings.Contains(got, "signing secret whsec_…") || strings.Contains(got, strings.Repeat("QUJD", 8)) {
		t.Fatalf("template row %q, want the signing secret masked", got)
	}
	do(t, ctx, chromedp.Click(`#templates tr[data-template=HOOK] button.pause`))
	waitFor(t, ctx, "the template paused", row+`?.querySelector('.badge')?.textContent === 'paused' && `+row+`.querySelector('button.pause').textContent === 'Resume'`)
	var tv struct{ State string }
	if err := json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/templates/HOOK", nil, http.StatusOK), &tv); err != nil || tv.State != "paused" {
		t.Fatalf("template state %q (%v), want paused", tv.State, err)
	}
	screenshot(t, ctx, "console-template-paused")
	do(t, ctx, chromedp.Click(`#templates tr[data-template=HOOK] button.pause`))
	waitFor(t, ctx, "the template active again", row+`?.querySelector('.badge')?.textContent === 'active'`)

	do(t, ctx, chromedp.Click(`#templates tr[data-template=HOOK] button.test`),
		chromedp.WaitVisible(`#templates tr.test-row input`),
		chromedp.SendKeys(`#templates tr.test-row input`, "typed-secret"),
		chromedp.Click(`#templates tr.test-row button.send`))
	waitFor(t, ctx, "the test result", `document.querySelector('#templates .test-result pre')?.textContent === 'test seen, key typed-secret'`)
	if got := eval[string](t, ctx, `document.querySelector('#templates .test-result').textContent`); !strings.HasPrefix(got, "delivered status 200") {
		t.Fatalf("test result %q", got)
	}
	if n := rc.Count(); n != 1 {
		t.Fatalf("receiver got %d requests, want the one test", n)
	}
	screenshot(t, ctx, "console-template-test")
	keyNotInPage(t, ctx, keyA)
}
