package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/hookline/hookline/services/ingest"
)

// maxValidatedBody is the largest request body checked against the
// document; larger ones (big files) are checked for everything but the body.
const maxValidatedBody = 8 << 20

var (
	contractOnce   sync.Once
	contractRouter routers.Router
	contractErr    error
)

// contract is the router of ingest's OpenAPI document, loaded once.
func contract() (routers.Router, error) {
	contractOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(ingest.OpenAPI())
		if err != nil {
			contractErr = fmt.Errorf("load openapi.json: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			contractErr = fmt.Errorf("openapi.json: %w", err)
			return
		}
		doc.Servers = nil // any host: the tests' servers listen on random ports
		contractRouter, contractErr = gorillamux.NewRouter(doc)
	})
	return contractRouter, contractErr
}

// validating is an http.RoundTripper that checks every request it sends
// and every answer it gets against ingest's OpenAPI document; a mismatch
// fails the test. A request the document calls invalid must be answered
// with a 4xx; a request to a path the document does not know, with a 404.
type validating struct {
	t    testing.TB
	next http.RoundTripper
}

// Validating wraps next (http.DefaultTransport when nil) so that every
// exchange is checked against the OpenAPI document of the API.
func Validating(t testing.TB, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &validating{t: t, next: next}
}

func (v *validating) RoundTrip(req *http.Request) (*http.Response, error) {
	router, err := contract()
	if err != nil {
		v.t.Errorf("OpenAPI contract: %v", err)
		return v.next.RoundTrip(req)
	}
	what := req.Method + " " + req.URL.Path
	route, params, findErr := router.FindRoute(req)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}}
	var reqErr error
	if findErr == nil {
		reqErr = v.validateRequest(in)
	}
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if findErr != nil {
		if resp.StatusCode != http.StatusNotFound {
			v.t.Errorf("OpenAPI: %s is not in the document (%v) but answered %d", what, findErr, resp.StatusCode)
		}
		return resp, nil
	}
	if reqErr != nil && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		v.t.Errorf("OpenAPI: %s: the document calls the request invalid (%v) but it was answered %d", what, reqErr, resp.StatusCode)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		// A stream: its status and content type are checked, not its events.
		out.Options.ExcludeResponseBody = true
		out.SetBodyBytes(nil)
		if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
			v.t.Errorf("OpenAPI: %s answered %d against the document: %v", what, resp.StatusCode, err)
		}
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		v.t.Errorf("OpenAPI: %s answered %d %.300s against the document: %v", what, resp.StatusCode, body, err)
	}
	return resp, nil
}

// validateRequest checks a copy of the request; the request itself is sent
// as it is.
func (v *validating) validateRequest(in *openapi3filter.RequestValidationInput) error {
	req := in.Request
	cp := req.Clone(req.Context())
	switch {
	case req.Body == nil || req.Body == http.NoBody:
	case req.GetBody != nil && req.ContentLength >= 0 && req.ContentLength <= maxValidatedBody:
		b, err := req.GetBody()
		if err != nil {
			return err
		}
		cp.Body = b
	default:
		in.Options.ExcludeRequestBody = true
		cp.Body = http.NoBody
	}
	vin := *in
	vin.Request = cp
	err := openapi3filter.ValidateRequest(req.Context(), &vin)
	var multi openapi3.MultiError
	if errors.As(err, &multi) && len(multi) == 0 {
		return nil
	}
	return err
}
