package ingest

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"
)

// FuzzTemplateInput: any PUT body either fails validation or yields a
// template inside every limit of api.md.
func FuzzTemplateInput(f *testing.F) {
	for _, seed := range []string{
		`{"name":"Customers","destination":{"webhook":{"url":"https://api.example.com/h","authHeaderName":"X-API-KEY","chunkSize":100,"retryCount":3,"retryInterval":1000,"timeout":30000,"maxInFlight":1}}}`,
		`{"destination":{"webhook":{"url":"http://[::1]:80/x","signingSecret":"generate"}}}`,
		`{"destination":{"webhook":{"url":"https://u:p@example.com","authHeaderName":"Host"}}}`,
		`{"destination":{"webhook":{"url":"https://example.com","chunkSize":-1,"timeout":0}}}`,
		`{"destination":{}}`, `{}`, `[]`, `null`,
	} {
		f.Add(seed, "CODE")
	}
	seal := func(s string) (string, error) { return "sealed", nil }
	f.Fuzz(func(t *testing.T, body, code string) {
		var in TemplateInput
		if json.Unmarshal([]byte(body), &in) != nil {
			return
		}
		tpl, _, err := in.Build(code, "acme", nil, seal, time.Now())
		if err != nil {
			return
		}
		wh := tpl.Webhook
		if !ValidCode(tpl.Code) || wh.ChunkSize < 1 || wh.ChunkSize > MaxChunkSize || wh.RetryCount < 0 || wh.RetryCount > MaxRetryCount ||
			wh.RetryInterval < 0 || wh.RetryInterval > MaxRetryInterval || wh.Timeout <= 0 || wh.Timeout > MaxTimeout ||
			wh.MaxInFlight < 1 || wh.MaxInFlight > MaxInFlight || ValidateHeaderName(wh.AuthHeaderName) != nil {
			t.Fatalf("accepted a template out of limits: %+v", tpl)
		}
		u, err := url.Parse(wh.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			t.Fatalf("accepted url %q", wh.URL)
		}
	})
}

// FuzzParseAPIKeys: never panics, and never repeats a key in an error.
func FuzzParseAPIKeys(f *testing.F) {
	f.Add("acme:0123456789abcdef,bravo:fedcba9876543210")
	f.Add(":,::")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseAPIKeys(s)
		if err == nil {
			for k, tenant := range keys {
				if len(k) < 16 || !ValidCode(tenant) {
					t.Fatalf("accepted %q for %q", k, tenant)
				}
			}
		}
	})
}
