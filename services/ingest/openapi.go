package ingest

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.0 document of every route of the API
// (GET /v1/openapi.json). The e2e suite checks every answer it gets against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDocument)
}
