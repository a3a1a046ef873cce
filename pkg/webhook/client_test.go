package webhook

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Every test in this file talks to httptest servers on loopback only.

const testAuthValue = "auth-value-S3CRET"

// loopbackClient returns a client whose guard allows private networks (loopback).
func loopbackClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c := NewClient(append([]Option{WithGuard(NewGuard(true, nil)), WithUserAgent("hookline/1.2.3")}, opts...)...)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// countingServer starts a loopback server that counts the connections it accepts.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func request(url string) Request {
	return Request{
		Destination: Destination{URL: url, Timeout: 5 * time.Second},
		ID:          "01JDUPLOAD.3",
		Body:        []byte(`{"template":"T","uploadId":"01JDUPLOAD","data":[],"totalRecords":0,"totalPages":0,"page":3,"pageSize":0,"extra":""}`),
	}
}

type captured struct {
	method string
	proto  int
	header http.Header
	body   []byte
}

func capturingServer(t *testing.T, status int, respBody string) (*httptest.Server, chan captured) {
	t.Helper()
	ch := make(chan captured, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- captured{method: r.Method, proto: r.ProtoMajor, header: r.Header.Clone(), body: b}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, respBody)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestSendDeliversWithExactHeaders(t *testing.T) {
	srv, got := capturingServer(t, http.StatusOK, `{"ok":true}`)
	c := loopbackClient(t)
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		authName   string
		authValue  string
		secret     string
		wantAuth   bool
		wantSigned bool
	}{
		{name: "plain"},
		{name: "auth header", authName: "X-API-KEY", authValue: testAuthValue, wantAuth: true},
		{name: "auth name without value", authName: "X-API-KEY"},
		{name: "auth value without name", authValue: testAuthValue},
		{name: "signed with auth", authName: "X-API-KEY", authValue: testAuthValue, secret: secret, wantAuth: true, wantSigned: true},
		{name: "signed", secret: secret, wantSigned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(srv.URL + "/hook?x=1")
			req.Destination.AuthHeaderName = tt.authName
			req.Destination.AuthHeaderValue = tt.authValue
			req.Destination.SigningSecret = tt.secret
			before := time.Now()
			res := c.Send(t.Context(), req)
			if !res.Delivered() || res.Err != nil || res.StatusCode != 200 {
				t.Fatalf("Send = %+v, want delivered", res)
			}
			if string(res.ResponseBody) != `{"ok":true}` {
				t.Errorf("ResponseBody = %q", res.ResponseBody)
			}
			if res.Duration <= 0 || res.RetryAfter != 0 {
				t.Errorf("Duration = %v, RetryAfter = %v", res.Duration, res.RetryAfter)
			}
			r := <-got
			if r.method != http.MethodPost {
				t.Errorf("method = %s", r.method)
			}
			if !bytes.Equal(r.body, req.Body) {
				t.Errorf("body = %s, want %s", r.body, req.Body)
			}
			h := r.header
			for name, want := range map[string]string{
				"Content-Type": "application/json",
				"User-Agent":   "hookline/1.2.3",
				"Webhook-Id":   "01JDUPLOAD.3",
			} {
				if got := h.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want exactly %q", name, got, want)
				}
			}
			wantNames := []string{"Accept-Encoding", "Content-Length", "Content-Type", "User-Agent", "Webhook-Id"}
			if tt.wantAuth {
				if got := h.Values("X-Api-Key"); len(got) != 1 || got[0] != testAuthValue {
					t.Errorf("X-API-KEY = %q", got)
				}
				wantNames = append(wantNames, "X-Api-Key")
			}
			if tt.wantSigned {
				wantNames = append(wantNames, "Webhook-Signature", "Webhook-Timestamp")
				ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
				if err != nil || ts < before.Unix() || ts > time.Now().Unix() {
					t.Errorf("webhook-timestamp = %q, want the send time", h.Get("webhook-timestamp"))
				}
				if !strings.HasPrefix(h.Get("webhook-signature"), "v1,") {
					t.Errorf("webhook-signature = %q", h.Get("webhook-signature"))
				}
				if err := Verify(h, r.body, tt.secret); err != nil {
					t.Errorf("Verify of the received request: %v", err)
				}
			}
			var names []string
			for k := range h {
				names = append(names, k)
			}
			slices.Sort(names)
			slices.Sort(wantNames)
			if !slices.Equal(names, wantNames) {
				t.Errorf("header names = %v, want %v", names, wantNames)
			}
		})
	}
}

func TestSendSameIDOnEveryRetry(t *testing.T) {
	srv, got := capturingServer(t, http.StatusInternalServerError, "")
	c := loopbackClient(t)
	req := request(srv.URL)
	req.Destination.SigningSecret = vectorSecret
	for range 2 {
		if res := c.Send(t.Context(), req); !errors.Is(res.Err, ErrStatus) {
			t.Fatalf("Send = %+v", res)
		}
	}
	a, b := <-got, <-got
	if a.header.Get("webhook-id") != "01JDUPLOAD.3" || b.header.Get("webhook-id") != "01JDUPLOAD.3" {
		t.Errorf("webhook-id differs across attempts: %q, %q", a.header.Get("webhook-id"), b.header.Get("webhook-id"))
	}
}

func TestSendStatus500(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7") // ignored: only 429 and 503 count
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "boom")
	}))
	defer srv.Close()
	res := loopbackClient(t).Send(t.Context(), request(srv.URL))
	if !errors.Is(res.Err, ErrStatus) || res.StatusCode != 500 || res.Delivered() {
		t.Fatalf("Send = %+v, want ErrStatus 500", res)
	}
	if res.Err.Error() != "status 500" {
		t.Errorf("message = %q", res.Err)
	}
	if string(res.ResponseBody) != "boom" {
		t.Errorf("ResponseBody = %q", res.ResponseBody)
	}
	if res.RetryAfter != 0 {
		t.Errorf("RetryAfter = %v on a 500", res.RetryAfter)
	}
}

func TestSendRedirectNotFollowed(t *testing.T) {
	var targetHits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
	}))
	defer target.Close()
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/moved", code)
		}))
		res := loopbackClient(t).Send(t.Context(), request(origin.URL))
		origin.Close()
		if !errors.Is(res.Err, ErrStatus) || res.StatusCode != code || res.Delivered() {
			t.Fatalf("Send = %+v, want ErrStatus %d", res, code)
		}
		if want := "status " + strconv.Itoa(code) + " (redirects are not followed)"; res.Err.Error() != want {
			t.Errorf("message = %q, want %q", res.Err, want)
		}
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("redirect target got %d requests, want 0", n)
	}
}

func TestSendTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client going away
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	req := request(srv.URL)
	req.Destination.Timeout = 300 * time.Millisecond
	start := time.Now()
	res := loopbackClient(t).Send(t.Context(), req)
	elapsed := time.Since(start)
	if !errors.Is(res.Err, ErrTimeout) || res.StatusCode != 0 {
		t.Fatalf("Send = %+v, want ErrTimeout", res)
	}
	if res.Err.Error() != "timeout after 300ms" {
		t.Errorf("message = %q", res.Err)
	}
	if elapsed < 300*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("Send took %v, want about 300ms", elapsed)
	}
}

func TestSendTimeoutWhileReadingBody(t *testing.T) {
	// A 2xx whose body never ends is not a full answer: the attempt fails (at-least-once).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	req := request(srv.URL)
	req.Destination.Timeout = 300 * time.Millisecond
	res := loopbackClient(t).Send(t.Context(), req)
	if !errors.Is(res.Err, ErrTimeout) || res.Delivered() || res.StatusCode != 200 {
		t.Fatalf("Send = %+v, want ErrTimeout with status 200", res)
	}
	if string(res.ResponseBody) != "partial" {
		t.Errorf("ResponseBody = %q", res.ResponseBody)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	req := request("http://" + addr + "/hook")
	req.Destination.AuthHeaderName, req.Destination.AuthHeaderValue = "X-API-KEY", testAuthValue
	res := loopbackClient(t).Send(t.Context(), req)
	if !errors.Is(res.Err, ErrConnection) || res.StatusCode != 0 || res.Delivered() {
		t.Fatalf("Send = %+v, want ErrConnection", res)
	}
	t.Logf("message: %v", res.Err)
	if want := "dial " + addr + ": connection refused"; !strings.Contains(res.Err.Error(), want) {
		t.Errorf("message = %q, want it to contain %q", res.Err, want)
	}
	if strings.Contains(res.Err.Error(), testAuthValue) {
		t.Errorf("message leaks the auth value: %q", res.Err)
	}
}

func TestSendConnectionReset(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST
		}
		_ = conn.Close()
	}))
	defer srv.Close()
	res := loopbackClient(t).Send(t.Context(), request(srv.URL))
	if !errors.Is(res.Err, ErrConnection) || res.StatusCode != 0 || res.Delivered() {
		t.Fatalf("Send = %+v, want ErrConnection", res)
	}
	t.Logf("message: %v", res.Err)
	if !strings.HasPrefix(res.Err.Error(), "connection failed: ") {
		t.Errorf("message = %q", res.Err)
	}
}

func TestSendRetryAfter(t *testing.T) {
	date := time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		status     int
		retryAfter string
		min, max   time.Duration
	}{
		{http.StatusTooManyRequests, "3", 3 * time.Second, 3 * time.Second},
		{http.StatusServiceUnavailable, date, 8 * time.Second, 10 * time.Second},
		{http.StatusTooManyRequests, "7200", time.Hour, time.Hour},
		{http.StatusTooManyRequests, "soon", 0, 0},
		{http.StatusServiceUnavailable, "", 0, 0},
		{http.StatusBadGateway, "3", 0, 0},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tt.retryAfter != "" {
				w.Header().Set("Retry-After", tt.retryAfter)
			}
			w.WriteHeader(tt.status)
		}))
		res := loopbackClient(t).Send(t.Context(), request(srv.URL))
		srv.Close()
		if !errors.Is(res.Err, ErrStatus) || res.StatusCode != tt.status {
			t.Fatalf("Send = %+v, want ErrStatus %d", res, tt.status)
		}
		if res.RetryAfter < tt.min || res.RetryAfter > tt.max {
			t.Errorf("%d Retry-After %q: RetryAfter = %v, want in [%v, %v]", tt.status, tt.retryAfter, res.RetryAfter, tt.min, tt.max)
		}
	}
}

func TestSendHugeBodyIsCapped(t *testing.T) {
	const total = 50 << 20
	var written atomic.Int64
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Length", strconv.Itoa(total))
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for written.Load() < total {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	start := time.Now()
	res := loopbackClient(t).Send(t.Context(), request(srv.URL))
	elapsed := time.Since(start)
	if !res.Delivered() {
		t.Fatalf("Send = %+v, want delivered", res)
	}
	if len(res.ResponseBody) != DefaultMaxResponseBytes {
		t.Errorf("len(ResponseBody) = %d, want %d", len(res.ResponseBody), DefaultMaxResponseBytes)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Send took %v: it read too much of the body", elapsed)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("handler still writing: the client did not close the connection")
	}
	if w := written.Load(); w >= total {
		t.Errorf("the handler wrote the whole %d bytes: the client read it all", w)
	}
}

func TestSendGzipBodyCappedAfterDecoding(t *testing.T) {
	plain := make([]byte, 200<<10)
	for i := range plain {
		plain[i] = "abcdefghij"[i%10] + byte(i/1000%3)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	_ = zw.Close()
	if gz.Len() >= len(plain) {
		t.Fatal("test data does not compress")
	}
	var acceptEncoding atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acceptEncoding.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(gz.Len()))
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(gz.Bytes())
	}))
	defer srv.Close()
	res := loopbackClient(t).Send(t.Context(), request(srv.URL))
	if !errors.Is(res.Err, ErrStatus) || res.StatusCode != 400 {
		t.Fatalf("Send = %+v", res)
	}
	if !bytes.Equal(res.ResponseBody, plain[:DefaultMaxResponseBytes]) {
		t.Errorf("ResponseBody is not the first %d decoded bytes: %q...", DefaultMaxResponseBytes, res.ResponseBody[:min(len(res.ResponseBody), 40)])
	}
	if ae := acceptEncoding.Load(); ae != "gzip" {
		t.Errorf("Accept-Encoding = %q, want the transport's gzip", ae)
	}
}

func TestSendMaxResponseBytesOption(t *testing.T) {
	srv, _ := capturingServer(t, http.StatusOK, strings.Repeat("y", 100))
	if res := loopbackClient(t, WithMaxResponseBytes(10)).Send(t.Context(), request(srv.URL)); !res.Delivered() || string(res.ResponseBody) != strings.Repeat("y", 10) {
		t.Errorf("cap 10: %+v", res)
	}
	if res := loopbackClient(t, WithMaxResponseBytes(0)).Send(t.Context(), request(srv.URL)); !res.Delivered() || res.ResponseBody != nil {
		t.Errorf("cap 0: %+v", res)
	}
}

func TestSendReusesConnections(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// A body over the cap but within the drain allowance keeps the connection reusable.
		_, _ = w.Write(bytes.Repeat([]byte("z"), 10<<10))
	}))
	c := loopbackClient(t)
	for i := range 5 {
		if res := c.Send(t.Context(), request(srv.URL)); !res.Delivered() {
			t.Fatalf("send %d: %+v", i, res)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections for 5 sequential sends, want 1", n)
	}
}

func TestSendDefaultGuardRefusesLoopback(t *testing.T) {
	var hits atomic.Int64
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	c := NewClient() // default guard: private networks refused
	defer c.CloseIdleConnections()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, url := range []string{srv.URL, "http://localhost:" + port + "/hook"} {
		req := request(url)
		req.Destination.AuthHeaderName, req.Destination.AuthHeaderValue = "X-API-KEY", testAuthValue
		req.Destination.SigningSecret = vectorSecret
		res := c.Send(t.Context(), req)
		if !errors.Is(res.Err, ErrForbiddenAddress) || res.StatusCode != 0 || res.Delivered() {
			t.Fatalf("Send(%s) = %+v, want ErrForbiddenAddress", url, res)
		}
		msg := res.Err.Error()
		t.Logf("message: %s", msg)
		if !strings.Contains(msg, "is loopback") || !strings.Contains(msg, "HOOKLINE_ALLOW_PRIVATE_NETWORKS") {
			t.Errorf("message = %q", msg)
		}
		if strings.Contains(msg, testAuthValue) || strings.Contains(msg, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") {
			t.Errorf("message leaks a secret: %q", msg)
		}
	}
	if hits.Load() != 0 || conns.Load() != 0 {
		t.Fatalf("the guarded client reached the server: %d requests, %d connections", hits.Load(), conns.Load())
	}
}

func TestSendAllowedPrefixOpensLoopback(t *testing.T) {
	srv, _ := capturingServer(t, http.StatusNoContent, "")
	c := NewClient(WithGuard(NewGuard(false, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})))
	defer c.CloseIdleConnections()
	if res := c.Send(t.Context(), request(srv.URL)); !res.Delivered() || res.StatusCode != 204 {
		t.Fatalf("Send = %+v, want delivered", res)
	}
}

func TestSendInvalidDestination(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := loopbackClient(t)
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name string
		dest Destination
		want string
	}{
		{"ftp", Destination{URL: "ftp://" + hostPort + "/"}, "scheme"},
		{"relative", Destination{URL: "/hook"}, "absolute"},
		{"userinfo", Destination{URL: "http://user:hunter2@" + hostPort + "/"}, "user info"},
		{"empty", Destination{}, "empty"},
		{"bad header name", Destination{URL: srv.URL, AuthHeaderName: "Bad Name", AuthHeaderValue: testAuthValue}, "not a valid HTTP header name"},
		{"reserved header name", Destination{URL: srv.URL, AuthHeaderName: "Content-Type", AuthHeaderValue: testAuthValue}, "reserved"},
		{"header value injection", Destination{URL: srv.URL, AuthHeaderName: "X-Key", AuthHeaderValue: testAuthValue + "\r\nX-Evil: 1"}, "control character"},
		{"bad signing secret", Destination{URL: srv.URL, SigningSecret: "whsec_hunter2!!"}, "signing secret"},
	}
	for _, tt := range tests {
		res := c.Send(t.Context(), Request{Destination: tt.dest, ID: "u.1", Body: []byte(`{}`)})
		if !errors.Is(res.Err, ErrInvalidURL) || res.Delivered() || res.StatusCode != 0 {
			t.Errorf("%s: Send = %+v, want ErrInvalidURL", tt.name, res)
			continue
		}
		msg := res.Err.Error()
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%s: message %q does not contain %q", tt.name, msg, tt.want)
		}
		if strings.Contains(msg, "hunter2") || strings.Contains(msg, testAuthValue) {
			t.Errorf("%s: message leaks a secret: %q", tt.name, msg)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests for invalid destinations", n)
	}
}

func TestSendParentContextCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client going away
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	res := loopbackClient(t).Send(ctx, request(srv.URL))
	if !errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, ErrTimeout) || errors.Is(res.Err, ErrConnection) {
		t.Fatalf("Send = %+v, want context.Canceled and no delivery class", res)
	}
	t.Logf("message: %v", res.Err)
}

func TestSendTLS(t *testing.T) {
	var proto atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int64(r.ProtoMajor))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	// The test certificate is not trusted: a TLS error is a connection failure.
	res := loopbackClient(t).Send(t.Context(), request(srv.URL))
	if !errors.Is(res.Err, ErrConnection) || !strings.Contains(res.Err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: Send = %+v, want ErrConnection", res)
	}

	t.Logf("message: %v", res.Err)

	// Trusting it, the shared transport negotiates HTTP/2.
	c := loopbackClient(t)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c.transport.TLSClientConfig.RootCAs = pool
	if res := c.Send(t.Context(), request(srv.URL)); !res.Delivered() {
		t.Fatalf("trusted certificate: Send = %+v", res)
	}
	if p := proto.Load(); p != 2 {
		t.Errorf("protocol = HTTP/%d, want HTTP/2", p)
	}
}

func TestSendDefaultTimeout(t *testing.T) {
	srv, _ := capturingServer(t, http.StatusOK, "")
	req := request(srv.URL)
	req.Destination.Timeout = 0 // DefaultTimeout
	if res := loopbackClient(t).Send(t.Context(), req); !res.Delivered() {
		t.Fatalf("Send = %+v", res)
	}
}

func TestDelivered(t *testing.T) {
	for _, tt := range []struct {
		r    Result
		want bool
	}{
		{Result{StatusCode: 200}, true},
		{Result{StatusCode: 299}, true},
		{Result{StatusCode: 204}, true},
		{Result{StatusCode: 300, Err: errors.New("x")}, false},
		{Result{StatusCode: 200, Err: ErrTimeout}, false},
		{Result{}, false},
	} {
		if got := tt.r.Delivered(); got != tt.want {
			t.Errorf("%+v.Delivered() = %v", tt.r, got)
		}
	}
}

// During a rotation both secrets sign: a receiver holding either verifies.
func TestSendSignsWithPreviousSecretDuringRotation(t *testing.T) {
	srv, got := capturingServer(t, http.StatusOK, "")
	newSecret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	req := request(srv.URL)
	req.Destination.SigningSecret = newSecret
	req.Destination.PreviousSigningSecret = vectorSecret
	if res := loopbackClient(t).Send(t.Context(), req); !res.Delivered() {
		t.Fatalf("Send = %+v", res)
	}
	c := <-got
	if sigs := strings.Fields(c.header.Get(HeaderWebhookSignature)); len(sigs) != 2 {
		t.Fatalf("signature header = %q, want two signatures", c.header.Get(HeaderWebhookSignature))
	}
	for _, secret := range []string{newSecret, vectorSecret} {
		if err := Verify(c.header, c.body, secret); err != nil {
			t.Errorf("verify with one of the secrets: %v", err)
		}
	}
	other, _ := NewSecret()
	if err := Verify(c.header, c.body, other); err == nil {
		t.Error("verified with a secret that never signed")
	}
}
