package ingest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/ops"
)

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi = %q, want 3.0.x", doc.OpenAPI)
	}
}

// patterns records the patterns registered on a mux.
type patterns []string

func (p *patterns) Handle(pattern string, _ http.Handler) { *p = append(*p, pattern) }
func (p *patterns) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	*p = append(*p, pattern)
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	reg := prometheus.NewRegistry()
	a := NewAPI(APIConfig{}, nil, nil, nil, nil, nil, NewMetrics(reg), zap.NewNop())
	var got patterns
	a.Register(&got)
	RegisterConsole(&got)
	ops.Register(&got, reg, nil)
	if len(got) < 10 {
		t.Fatalf("only %d routes registered: %v", len(got), got)
	}
	for _, p := range got {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			if strings.HasSuffix(p, "/") {
				continue // a subtree's catch-all (404 for unknown endpoints), not a route
			}
			t.Errorf("route %q has no method", p)
			continue
		}
		item := doc.Paths.Find(strings.TrimSuffix(path, "{$}")) // {$}: that path exactly
		if item == nil {
			t.Errorf("route %s is not in openapi.json", p)
			continue
		}
		if item.GetOperation(method) == nil {
			t.Errorf("route %s: openapi.json describes %s but not its method %s", p, path, method)
		}
	}
}

func TestOpenAPIServedWithoutKey(t *testing.T) {
	mux := http.NewServeMux()
	NewAPI(APIConfig{}, map[string]string{"some-key-of-16-chars": "acme"}, nil, nil, nil, nil, NewMetrics(prometheus.NewRegistry()), zap.NewNop()).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/openapi.json = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if _, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes()); err != nil {
		t.Fatalf("served document: %v", err)
	}
}
