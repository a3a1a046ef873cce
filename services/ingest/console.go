package ingest

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed console
var consoleFiles embed.FS

// ConsoleCSP is the Content-Security-Policy of every console response: the
// console's own scripts, styles and API calls, nothing inline, no frames.
const ConsoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// RegisterConsole serves the web console at /console/ (and sends / there).
// It is static files only: the page calls the /v1 API with the key the user
// signs in with.
func RegisterConsole(mux Mux) {
	sub, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	mux.Handle("GET /console/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ConsoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
}
