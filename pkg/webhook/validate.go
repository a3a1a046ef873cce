package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// maxURLLength bounds the length of a destination URL.
const maxURLLength = 4096

// ValidateURL is the save-time check of a destination URL: it must be an absolute
// http or https URL with a host, an optional valid port (1..65535) and no user info
// (credentials belong in the auth header). A fragment is allowed and ignored.
// The returned error wraps ErrInvalidURL and names the problem; it never repeats the
// URL's user info.
func ValidateURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return invalidURL("url is empty", nil)
	}
	if len(raw) > maxURLLength {
		return invalidURL(fmt.Sprintf("url is longer than %d characters", maxURLLength), nil)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// A *url.Error repeats the whole URL, user info included: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return invalidURL(fmt.Sprintf("url is not valid: %v", err), err)
	}
	switch {
	case u.Scheme == "":
		return invalidURL("url must be absolute, starting with http:// or https://", nil)
	case u.Scheme != "http" && u.Scheme != "https":
		return invalidURL(fmt.Sprintf("url scheme %q is not allowed: use http or https", u.Scheme), nil)
	case u.Opaque != "":
		return invalidURL("url must be of the form "+u.Scheme+"://host/path", nil)
	case u.User != nil:
		return invalidURL("url must not contain user info (credentials); send them in the auth header instead", nil)
	case u.Host == "" || u.Hostname() == "":
		return invalidURL("url has no host", nil)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return invalidURL(fmt.Sprintf("url port %q is not between 1 and 65535", p), nil)
		}
	}
	return nil
}

func invalidURL(msg string, cause error) error {
	return newClassError(ErrInvalidURL, msg, cause)
}

// ValidateAuthHeaderName checks the name of the auth header of a destination: a valid
// HTTP header token that is not one the request sets itself (Host, Content-Length,
// Content-Type, Content-Encoding, Transfer-Encoding, Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Upgrade, Expect, User-Agent, Accept-Encoding,
// webhook-*). The error wraps ErrInvalidURL (the destination is invalid).
func ValidateAuthHeaderName(name string) error {
	if name == "" {
		return invalidURL("auth header name is empty", nil)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return invalidURL(fmt.Sprintf("auth header name %q is not a valid HTTP header name", name), nil)
		}
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "webhook-") {
		return invalidURL(fmt.Sprintf("auth header name %q is reserved: webhook-* headers are set by hookline", name), nil)
	}
	if strings.HasPrefix(lower, "proxy-") {
		return invalidURL(fmt.Sprintf("auth header name %q is reserved: proxy headers are not sent to webhooks", name), nil)
	}
	switch lower {
	case "host", "content-length", "content-type", "content-encoding", "transfer-encoding",
		"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect",
		"user-agent", "accept-encoding":
		return invalidURL(fmt.Sprintf("auth header name %q is reserved: the request sets it itself", name), nil)
	}
	return nil
}

// ValidateAuthHeaderValue checks an auth header value: no control characters other than
// horizontal tab (so no CR, LF or NUL). The error never contains the value; it wraps
// ErrInvalidURL (the destination is invalid).
func ValidateAuthHeaderValue(value string) error {
	for i := 0; i < len(value); i++ {
		if b := value[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return invalidURL(fmt.Sprintf("auth header value contains a control character at byte %d", i), nil)
		}
	}
	return nil
}

// isTokenChar reports whether b is a tchar of RFC 9110 section 5.6.2.
func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}
