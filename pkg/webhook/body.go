package webhook

import (
	"strconv"

	"github.com/hookline/hookline/pkg/jsonenc"
)

// Page is one page (chunk) of an upload, as it is sent to the endpoint.
type Page struct {
	// Template is the template code.
	Template string
	// UploadID is the unique id of the upload.
	UploadID string
	// Data is the page's records as one JSON array, already encoded. It is copied into
	// the body as is, never re-encoded; the caller guarantees it is valid JSON.
	// Empty means no records: "data":[].
	Data []byte
	// TotalRecords is the number of records in the whole upload.
	TotalRecords int
	// TotalPages is the number of pages the upload is split into.
	TotalPages int
	// Page is the 1-based number of this page.
	Page int
	// PageSize is the number of records in this page.
	PageSize int
	// Extra is what the import passed, as one raw JSON value (a JSON string or any other
	// JSON value), copied as is. Empty or nil means none: "extra":"".
	Extra []byte
}

// AppendBody appends the webhook body of p to dst and returns the extended slice.
// The body is one JSON object with exactly these keys, in this order:
//
//	{"template":..,"uploadId":..,"data":[..],"totalRecords":N,"totalPages":P,"page":p,"pageSize":n,"extra":..}
//
// Template and UploadID are JSON-escaped (invalid UTF-8 becomes U+FFFD); Data and Extra
// are copied verbatim. AppendBody allocates nothing beyond growing dst.
func AppendBody(dst []byte, p Page) []byte {
	dst = append(dst, `{"template":`...)
	dst = jsonenc.AppendString(dst, p.Template)
	dst = append(dst, `,"uploadId":`...)
	dst = jsonenc.AppendString(dst, p.UploadID)
	dst = append(dst, `,"data":`...)
	if len(p.Data) == 0 {
		dst = append(dst, "[]"...)
	} else {
		dst = append(dst, p.Data...)
	}
	dst = append(dst, `,"totalRecords":`...)
	dst = strconv.AppendInt(dst, int64(p.TotalRecords), 10)
	dst = append(dst, `,"totalPages":`...)
	dst = strconv.AppendInt(dst, int64(p.TotalPages), 10)
	dst = append(dst, `,"page":`...)
	dst = strconv.AppendInt(dst, int64(p.Page), 10)
	dst = append(dst, `,"pageSize":`...)
	dst = strconv.AppendInt(dst, int64(p.PageSize), 10)
	dst = append(dst, `,"extra":`...)
	if len(p.Extra) == 0 {
		dst = append(dst, `""`...)
	} else {
		dst = append(dst, p.Extra...)
	}
	return append(dst, '}')
}
