package webhook

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateURL(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string // substring of the error; "" means valid
	}{
		{"https://api.example.com/import-hook", ""},
		{"http://example.com", ""},
		{"HTTPS://Example.COM:8443/a/b?x=1&y=2", ""},
		{"https://example.com/hook#frag", ""},
		{"http://127.0.0.1:8080/hook", ""},
		{"http://[::1]:8080/hook", ""},
		{"https://example.com:65535/", ""},
		{"", "url is empty"},
		{"   ", "url is empty"},
		{"example.com/hook", "must be absolute"},
		{"/relative/path", "must be absolute"},
		{"//example.com/x", "must be absolute"},
		{"ftp://example.com/file", `scheme "ftp" is not allowed`},
		{"javascript:alert(1)", `scheme "javascript" is not allowed`},
		{"file:///etc/passwd", `scheme "file" is not allowed`},
		{"http:example.com", "must be of the form"},
		{"https://user:hunter2@example.com/", "user info"},
		{"https://user@example.com/", "user info"},
		{"https:///path-only", "no host"},
		{"http://:8080/", "no host"},
		{"http://example.com:0/", "port"},
		{"http://example.com:70000/", "port"},
		{"http://example.com:abc/", "not valid"},
		{"http://exa mple.com/", "not valid"},
		{"http://example.com/\x00", "not valid"},
		{"https://" + strings.Repeat("a", 5000) + ".com/", "longer than"},
	}
	for _, tt := range tests {
		err := ValidateURL(tt.url)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateURL(%q) = %v, want nil", tt.url, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidateURL(%q) = nil, want an error containing %q", tt.url, tt.wantErr)
			continue
		}
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("ValidateURL(%q) = %v, does not wrap ErrInvalidURL", tt.url, err)
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateURL(%q) = %q, want it to contain %q", tt.url, err, tt.wantErr)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ValidateURL(%q) leaks the password: %q", tt.url, err)
		}
	}
}

func TestValidateURLNeverLeaksUserInfo(t *testing.T) {
	// Even when parsing fails, the message must not repeat the credentials.
	for _, raw := range []string{"https://user:hunter2@exa mple.com/", "https://user:hunter2@example.com:bad/", "https://user:hunter2@example.com/\x7f"} {
		err := ValidateURL(raw)
		if err == nil {
			t.Fatalf("ValidateURL(%q) = nil", raw)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ValidateURL(%q) leaks the password: %q", raw, err)
		}
	}
}

func TestValidateAuthHeader(t *testing.T) {
	for _, ok := range []string{"X-API-KEY", "Authorization", "x-token", "Api_Key.v2", "!#$%&'*+-.^_`|~09azAZ"} {
		if err := ValidateAuthHeaderName(ok); err != nil {
			t.Errorf("ValidateAuthHeaderName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "X API", "X:Key", "Key\r\n", "Ünïcode", "(x)", "Host", "content-length", "Content-Type",
		"Transfer-Encoding", "connection", "webhook-id", "Webhook-Signature", "webhook-anything", "User-Agent", "Accept-Encoding", "TE"} {
		err := ValidateAuthHeaderName(bad)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("ValidateAuthHeaderName(%q) = %v, want an error", bad, err)
		}
	}
	for _, ok := range []string{"", "secret-value", "Bearer abc.def", "tab\tinside", "ünïcode"} {
		if err := ValidateAuthHeaderValue(ok); err != nil {
			t.Errorf("ValidateAuthHeaderValue(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"sec\r\nX-Evil: 1", "nul\x00", "lf\n", "del\x7f"} {
		err := ValidateAuthHeaderValue(bad)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("ValidateAuthHeaderValue(%q) = %v, want an error", bad, err)
			continue
		}
		if strings.Contains(err.Error(), bad[:3]) {
			t.Errorf("ValidateAuthHeaderValue error %q repeats the value", err)
		}
	}
}
