package ingest

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"

	"github.com/hookline/hookline/pkg/tracker"
)

// A cursor is opaque to clients: base64url of "<list>|<fields>", each list
// with its own fields. A cursor of another list (or another upload's) is
// refused with a 400 naming cursor.

func encodeCursor(list string, fields ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(list + "|" + strings.Join(fields, "|")))
}

func decodeCursor(s, list string, n int) ([]string, error) {
	bad := badRequest("cursor", "cursor is not one this list answered as nextCursor")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != n+1 || parts[0] != list {
		return nil, bad
	}
	return parts[1:], nil
}

// listParams are the paging parameters of a list: limit (1..1000, default
// 100) and the cursor ("" on the first page).
func listParams(q url.Values) (limit int, cursor string, err error) {
	limit = tracker.DefaultPageSize
	if l, ok := q["limit"]; ok {
		n, err := strconv.Atoi(l[0])
		if err != nil || n < 1 || n > tracker.MaxPageSize {
			return 0, "", badRequest("limit", "limit must be a whole number between 1 and 1000")
		}
		limit = n
	}
	return limit, q.Get("cursor"), nil
}

func uploadsCursor(p *tracker.UploadPos) string {
	if p == nil {
		return ""
	}
	return encodeCursor("uploads", strconv.FormatInt(p.CreatedAt, 10), p.ID)
}

func parseUploadsCursor(s string) (*tracker.UploadPos, error) {
	if s == "" {
		return nil, nil
	}
	f, err := decodeCursor(s, "uploads", 2)
	if err != nil {
		return nil, err
	}
	at, perr := strconv.ParseInt(f[0], 10, 64)
	if perr != nil || f[1] == "" {
		return nil, badRequest("cursor", "cursor is not one this list answered as nextCursor")
	}
	return &tracker.UploadPos{CreatedAt: at, ID: f[1]}, nil
}

// uploadListCursor is the cursor of a list of one upload (attempts,
// failures): a number, and the upload's id so that it serves that list only.
func uploadListCursor(list, id string, n int64) string {
	return encodeCursor(list, id, strconv.FormatInt(n, 10))
}

func parseUploadListCursor(s, list, id string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := decodeCursor(s, list, 2)
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(f[1], 10, 64)
	if perr != nil || n < 0 || f[0] != id {
		return 0, badRequest("cursor", "cursor is not one this list answered as nextCursor")
	}
	return n, nil
}

func templatesCursor(code string) string { return encodeCursor("templates", code) }

func parseTemplatesCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	f, err := decodeCursor(s, "templates", 1)
	if err != nil {
		return "", err
	}
	if !ValidCode(f[0]) {
		return "", badRequest("cursor", "cursor is not one this list answered as nextCursor")
	}
	return f[0], nil
}
