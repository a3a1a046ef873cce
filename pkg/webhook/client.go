package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// Defaults of a Client and a Destination.
const (
	DefaultUserAgent        = "hookline/dev"
	DefaultMaxResponseBytes = 4096
	DefaultTimeout          = 30 * time.Second
	// drainBytes is how much of a response body beyond MaxResponseBytes is read and
	// discarded so that the connection can be reused; a longer body closes it.
	drainBytes = 64 << 10
)

// Destination is where and how one page is sent.
type Destination struct {
	// URL is the absolute http or https URL of the endpoint.
	URL string
	// AuthHeaderName and AuthHeaderValue are sent as a header when both are non-empty.
	AuthHeaderName  string
	AuthHeaderValue string
	// Timeout bounds the whole exchange, reading the response included.
	// Zero or negative means DefaultTimeout (30s).
	Timeout time.Duration
	// SigningSecret ("whsec_<base64>"), when set, adds the Standard Webhooks
	// webhook-timestamp and webhook-signature headers.
	SigningSecret string
	// PreviousSigningSecret, during a rotation's grace period, signs too: the
	// webhook-signature header then carries both signatures, space-separated,
	// so a receiver verifies with either secret.
	PreviousSigningSecret string
}

// Request is one delivery attempt of one page.
type Request struct {
	Destination Destination
	// ID is the webhook-id header value, "<uploadId>.<page>": the same on every retry.
	ID string
	// Body is the JSON body, as built by AppendBody.
	Body []byte
}

// Result is the outcome of one delivery attempt.
type Result struct {
	// StatusCode is the HTTP status of the answer, 0 when there was none.
	StatusCode int
	// ResponseBody holds the first MaxResponseBytes bytes of the response body, after
	// content decoding (gzip).
	ResponseBody []byte
	// Duration is how long the attempt took, reading the response included.
	Duration time.Duration
	// RetryAfter is the Retry-After of a 429 or 503 answer (seconds or HTTP-date),
	// capped at MaxRetryAfter; 0 when there is none.
	RetryAfter time.Duration
	// Err is nil only for a 2xx answer. Otherwise it wraps one of ErrStatus, ErrTimeout,
	// ErrConnection, ErrForbiddenAddress or ErrInvalidURL, or, when the context passed
	// to Send was cancelled, the context's error (context.Canceled or
	// context.DeadlineExceeded) and none of the classes.
	Err error
}

// Delivered reports whether the endpoint accepted the page: a 2xx answer and no error.
func (r Result) Delivered() bool {
	return r.Err == nil && r.StatusCode >= 200 && r.StatusCode <= 299
}

// Client sends webhook requests. It holds one shared transport (keep-alives, connection
// reuse, HTTP/2 for https, TLS 1.2 minimum, no proxy) whose dialer runs the SSRF Guard
// on every address it dials. Redirects are never followed. A Client is safe for
// concurrent use; create one and reuse it.
type Client struct {
	userAgent        string
	guard            *Guard
	maxResponseBytes int
	transport        *http.Transport
	http             *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithUserAgent sets the User-Agent header (default "hookline/dev").
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// WithGuard sets the SSRF guard (default NewGuard(false, nil): private networks refused).
// A nil guard keeps the default.
func WithGuard(g *Guard) Option {
	return func(c *Client) {
		if g != nil {
			c.guard = g
		}
	}
}

// WithMaxResponseBytes sets how many bytes of a response body are kept in
// Result.ResponseBody (default 4096). Zero keeps none; negative values count as zero.
func WithMaxResponseBytes(n int) Option {
	return func(c *Client) { c.maxResponseBytes = max(n, 0) }
}

// NewClient returns a Client configured by opts.
func NewClient(opts ...Option) *Client {
	c := &Client{userAgent: DefaultUserAgent, maxResponseBytes: DefaultMaxResponseBytes}
	for _, o := range opts {
		o(c)
	}
	if c.guard == nil {
		c.guard = NewGuard(false, nil)
	}
	dialer := &net.Dialer{
		Timeout:        30 * time.Second, // the request's context usually ends it first
		KeepAlive:      30 * time.Second,
		ControlContext: c.guard.control,
	}
	c.transport = &http.Transport{
		Proxy:                  nil, // a proxy would dial on our behalf, out of the guard's reach
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		// With the default 4 KiB, a page of a few KiB leaves in several
		// write calls, each a trip through the kernel's TCP stack: a
		// buffer that holds the headers and a typical page sends both in one.
		WriteBufferSize: 64 << 10,
	}
	c.http = &http.Client{
		Transport: c.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c
}

// CloseIdleConnections closes the transport's idle connections (for shutdown and tests).
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

// Send makes one delivery attempt: one POST of req.Body to req.Destination.URL, bounded
// by the destination's timeout. It never follows redirects and never reads more than
// MaxResponseBytes plus 64 KiB of the response body.
func (c *Client) Send(ctx context.Context, req Request) Result {
	start := time.Now()
	res := c.send(ctx, req)
	res.Duration = time.Since(start)
	return res
}

func (c *Client) send(ctx context.Context, req Request) Result {
	dest := req.Destination
	if err := ValidateURL(dest.URL); err != nil {
		return Result{Err: err}
	}
	sendAuth := dest.AuthHeaderName != "" && dest.AuthHeaderValue != ""
	if sendAuth {
		if err := ValidateAuthHeaderName(dest.AuthHeaderName); err != nil {
			return Result{Err: err}
		}
		if err := ValidateAuthHeaderValue(dest.AuthHeaderValue); err != nil {
			return Result{Err: err}
		}
	}
	timeout := dest.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	hreq, err := http.NewRequestWithContext(tctx, http.MethodPost, dest.URL, bytes.NewReader(req.Body))
	if err != nil {
		return Result{Err: invalidURL(fmt.Sprintf("cannot build the request: %v", unwrapURLError(err)), nil)}
	}
	h := hreq.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", c.userAgent)
	h.Set(HeaderWebhookID, req.ID)
	if sendAuth {
		h.Set(dest.AuthHeaderName, dest.AuthHeaderValue)
	}
	if dest.SigningSecret != "" {
		ts := time.Now()
		sig, err := Sign(dest.SigningSecret, req.ID, ts, req.Body)
		if err != nil {
			return Result{Err: invalidURL(err.Error(), nil)}
		}
		if dest.PreviousSigningSecret != "" {
			old, err := Sign(dest.PreviousSigningSecret, req.ID, ts, req.Body)
			if err != nil {
				return Result{Err: invalidURL(err.Error(), nil)}
			}
			sig += " " + old
		}
		h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(HeaderWebhookSignature, sig)
	}

	resp, err := c.http.Do(hreq)
	if err != nil {
		return Result{Err: classify(ctx, tctx, timeout, err, "")}
	}
	res := Result{StatusCode: resp.StatusCode}
	body, complete, readErr := readCapped(resp.Body, c.maxResponseBytes, resp.ContentLength)
	if readErr == nil && !complete {
		// Let the connection be reused if the rest is short; otherwise Close drops it.
		_, _ = io.CopyN(io.Discard, resp.Body, drainBytes)
	}
	_ = resp.Body.Close()
	res.ResponseBody = body

	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		if readErr != nil {
			res.Err = classify(ctx, tctx, timeout, readErr, " while reading the response body")
		}
	case code >= 300 && code <= 399:
		res.Err = newClassError(ErrStatus, fmt.Sprintf("status %d (redirects are not followed)", code), nil)
	default:
		res.Err = newClassError(ErrStatus, fmt.Sprintf("status %d", code), nil)
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				res.RetryAfter = d
			}
		}
	}
	return res
}

// readCapped reads up to limit bytes of body. complete reports whether the body's end was
// reached. A read error other than the end of the body is returned with what was read.
func readCapped(body io.Reader, limit int, contentLength int64) (data []byte, complete bool, err error) {
	size := limit
	if contentLength >= 0 && contentLength < int64(limit) {
		size = int(contentLength)
	}
	if size == 0 {
		return nil, false, nil
	}
	buf := make([]byte, size)
	n := 0
	for n < len(buf) {
		m, err := body.Read(buf[n:])
		n += m
		if err == io.EOF {
			complete = true
			break
		}
		if err != nil {
			return buf[:n:n], false, err
		}
	}
	if n == 0 {
		return nil, complete, nil
	}
	return buf[:n:n], complete, nil
}

// classify turns a transport error into the Result error: cancellation of the caller's
// context, ErrForbiddenAddress, ErrTimeout or ErrConnection. where qualifies the phase
// (" while reading the response body").
func classify(parent, tctx context.Context, timeout time.Duration, err error, where string) error {
	if parent.Err() != nil {
		return fmt.Errorf("delivery canceled%s: %w", where, context.Cause(parent))
	}
	inner := unwrapURLError(err)
	if errors.Is(err, ErrForbiddenAddress) {
		// Report the guard's own message ("address 10.0.0.5 is in a private network ...").
		var ce *classError
		if errors.As(err, &ce) && ce.class == ErrForbiddenAddress {
			return ce
		}
		return inner
	}
	if errors.Is(tctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return newClassError(ErrTimeout, fmt.Sprintf("timeout after %s%s", timeout, where), nil)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return newClassError(ErrTimeout, fmt.Sprintf("timeout%s: %s", where, describe(inner)), inner)
	}
	return newClassError(ErrConnection, fmt.Sprintf("connection failed%s: %s", where, describe(inner)), inner)
}

// unwrapURLError drops the *url.Error layer, whose message repeats the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// describe returns a short human description of a connection-level error,
// such as "dial 127.0.0.1:80: connection refused".
func describe(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the server closed the connection before a full answer"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil && op.Err != nil {
		cause := op.Err
		var se *os.SyscallError
		if errors.As(cause, &se) {
			cause = se.Err
		}
		return fmt.Sprintf("%s %s: %v", op.Op, op.Addr, cause)
	}
	return err.Error()
}
