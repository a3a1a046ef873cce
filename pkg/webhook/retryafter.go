package webhook

import (
	"net/http"
	"strings"
	"time"
)

// MaxRetryAfter caps the wait a Retry-After answer can ask for.
const MaxRetryAfter = time.Hour

// ParseRetryAfter parses a Retry-After header value: a non-negative integer number of
// seconds, or an HTTP-date (IMF-fixdate, RFC 850 or asctime), relative to now. A date in
// the past means no wait (0, true). The result is capped at MaxRetryAfter (1 hour).
// An empty, negative or otherwise invalid value returns (0, false).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		// Bounded accumulation: anything past the cap is the cap, however many digits.
		var secs int64
		for i := 0; i < len(v); i++ {
			secs = secs*10 + int64(v[i]-'0')
			if secs > int64(MaxRetryAfter/time.Second) {
				return MaxRetryAfter, true
			}
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > MaxRetryAfter:
		return MaxRetryAfter, true
	}
	return d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
