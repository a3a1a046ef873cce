// Package records reads the records of uploaded files (CSV and TSV, XLSX, a
// JSON array of objects, NDJSON) as a stream, one record at a time, in
// bounded memory whatever the size of the file. Open finds a file's format
// and reads it; the finding of formats, text encodings and CSV delimiters
// lives in this package alone.
//
// Every record comes out as the compact JSON encoding of one JSON object,
// ready to be placed into a JSON array without re-encoding. Object keys keep
// the order of the input (CSV: the header's column order).
//
// Invalid UTF-8 never reaches the output. CSV is decoded first (a byte
// order mark dropped, UTF-16 decoded, bytes that are not UTF-8 read as
// Windows-1252: see decodeText); in JSON strings each invalid byte is
// replaced with the escape \ufffd (which encoding/json decodes the same way).
package records

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Format of an uploaded file.
type Format string

// The supported formats.
const (
	CSV       Format = "csv"    // comma-separated values with a header row (or ; tab |)
	TSV       Format = "tsv"    // tab-separated values with a header row
	XLSX      Format = "xlsx"   // an Excel workbook (Office Open XML)
	JSONArray Format = "json"   // one JSON array of objects
	NDJSON    Format = "ndjson" // one JSON object per line (also known as JSON Lines)
)

// ErrUnknownFormat is wrapped by the error DetectFormat and NewReader return
// when they do not recognise the format of a file.
var ErrUnknownFormat = errors.New("unknown file format")

// DetectFormat picks the format of an uploaded file from its Content-Type or,
// when the content type says nothing useful (empty, application/octet-stream,
// text/plain), from the extension of its file name (.csv, .json, .ndjson,
// .jsonl). Content type parameters are ignored and matching is
// case-insensitive. A format it does not recognise is an error wrapping
// ErrUnknownFormat that names what it saw.
func DetectFormat(contentType, filename string) (Format, error) {
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch mt {
	case "text/csv", "application/csv", "text/x-csv", "application/x-csv":
		return CSV, nil
	case "text/tab-separated-values", "text/tsv":
		return TSV, nil
	case "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
		return XLSX, nil
	case "application/json", "text/json":
		return JSONArray, nil
	case "application/x-ndjson", "application/ndjson",
		"application/jsonl", "application/x-jsonl",
		"application/jsonlines", "application/x-jsonlines":
		return NDJSON, nil
	case "", "application/octet-stream", "text/plain",
		// Browsers on Windows send CSV files as Excel's; some clients
		// send XLSX files as ZIP archives.
		"application/vnd.ms-excel", "application/zip", "application/x-zip-compressed":
		// Fall back to the file name.
	default:
		return "", fmt.Errorf("%w: content type %q", ErrUnknownFormat, contentType)
	}
	name := filename
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	ext := ""
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		ext = strings.ToLower(name[i:])
	}
	switch ext {
	case ".csv":
		return CSV, nil
	case ".json":
		return JSONArray, nil
	case ".ndjson", ".jsonl":
		return NDJSON, nil
	case ".tsv", ".tab":
		return TSV, nil
	case ".xlsx":
		return XLSX, nil
	case ".xls":
		return "", legacyExcel(describe(contentType, filename))
	}
	switch {
	case mt == "" && filename == "":
		return "", fmt.Errorf("%w: no content type and no file name", ErrUnknownFormat)
	case mt == "":
		return "", fmt.Errorf("%w: no content type and file name %q", ErrUnknownFormat, filename)
	default:
		return "", fmt.Errorf("%w: content type %q and file name %q", ErrUnknownFormat, contentType, filename)
	}
}

// Default limits, used for the zero fields of Limits.
const (
	DefaultMaxRecordBytes = 1 << 20
	DefaultMaxFields      = 1000
	DefaultMaxFieldBytes  = 64 << 10
)

// Limits bound the size of records. Zero (or negative) fields take the
// defaults.
type Limits struct {
	// MaxRecordBytes is the largest a record's compact JSON encoding may be,
	// and the longest a CSV record or an NDJSON line may be in the input.
	// Default 1 MiB.
	MaxRecordBytes int
	// MaxFields is the most fields (CSV columns, top-level keys of a JSON
	// object) one record may have. Default 1000.
	MaxFields int
	// MaxFieldBytes is the largest one CSV cell (or column name) may be.
	// It does not apply to JSON values, which MaxRecordBytes bounds.
	// Default 64 KiB.
	MaxFieldBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if l.MaxFields <= 0 {
		l.MaxFields = DefaultMaxFields
	}
	if l.MaxFieldBytes <= 0 {
		l.MaxFieldBytes = DefaultMaxFieldBytes
	}
	return l
}

// Reader yields records.
//
// Next returns the compact JSON object of the next record. The returned slice
// is only valid until the next call: the caller copies what it keeps. At the
// end of the input Next returns io.EOF. A malformed input (or one over the
// limits) makes Next return a *ParseError; any other error comes from the
// underlying io.Reader (wrapped). After an error, Next keeps returning it.
//
// A Reader is not safe for concurrent use.
type Reader interface {
	Next() ([]byte, error)
}

// sticky makes a reader's first error, io.EOF included, its answer from
// then on: each reader embeds it and sets next to its own step.
type sticky struct {
	next func() ([]byte, error)
	err  error
}

// Next returns the next record, or the error that ended the records.
func (s *sticky) Next() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	out, err := s.next()
	if err != nil {
		s.err = err
		return nil, err
	}
	return out, nil
}

// NewReader returns a Reader of records in format f read from r, for the
// formats that stream (all but XLSX, which Open reads). It reads nothing
// before the first call to Next. An unknown format is an error wrapping
// ErrUnknownFormat.
//
// A UTF-8 byte order mark at the start of r is skipped in every format.
func NewReader(f Format, r io.Reader, lim Limits) (Reader, error) {
	lim = lim.withDefaults()
	switch f {
	case CSV:
		return newCSVReader(r, lim, 0, nil), nil
	case TSV:
		return newCSVReader(r, lim, '\t', nil), nil
	case JSONArray:
		return newArrayReader(r, lim), nil
	case NDJSON:
		return newNDJSONReader(r, lim), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownFormat, string(f))
}

// ParseError says where the input is wrong.
type ParseError struct {
	// Line is the 1-based line of the fault when known, else 0. For CSV it is
	// the line as encoding/csv counts them; for JSON it is computed from the
	// bytes read and is exact.
	Line int64
	// Offset is the 0-based byte offset of the fault in the input (the byte
	// order mark included) when known, else 0. JSON and NDJSON errors always
	// set it; CSV errors do not (they name the line, and the column in Msg).
	Offset int64
	// Record is the 1-based number of the record at fault; 0 when the fault
	// is not in a record (a CSV header, the brackets of a JSON array) or when
	// Row names it.
	Record int64
	// Row is the 1-based row of a worksheet (XLSX), else 0.
	Row int64
	// Msg says what is wrong.
	Msg string
}

// Error returns the message prefixed with what is known of the place, e.g.
// "line 12: record 11: unterminated quoted field" or
// "line 3, byte 57: record 2: invalid character '}' after object key".
func (e *ParseError) Error() string {
	b := make([]byte, 0, len(e.Msg)+48)
	if e.Line > 0 {
		b = append(b, "line "...)
		b = strconv.AppendInt(b, e.Line, 10)
	}
	if e.Offset > 0 {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, "byte "...)
		b = strconv.AppendInt(b, e.Offset, 10)
	}
	if e.Row > 0 {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, "row "...)
		b = strconv.AppendInt(b, e.Row, 10)
	}
	if len(b) > 0 {
		b = append(b, ": "...)
	}
	if e.Record > 0 {
		b = append(b, "record "...)
		b = strconv.AppendInt(b, e.Record, 10)
		b = append(b, ": "...)
	}
	b = append(b, e.Msg...)
	return string(b)
}

// CompactObject checks that raw is exactly one JSON object (surrounding
// whitespace allowed) within lim and appends its compact form to dst. Keys
// keep their order and values stay exactly as written (numbers are not
// reformatted), except that invalid UTF-8 in strings becomes \ufffd.
// On error it returns dst unchanged; the error is a *ParseError (Record 0,
// Offset set for syntax errors), whose message for anything but an object
// says "record must be a JSON object".
func CompactObject(dst, raw []byte, lim Limits) ([]byte, error) {
	return compactObject(dst, raw, lim, false)
}

// CompactValidObject is CompactObject for raw that is already known to be
// valid JSON (a json.RawMessage from encoding/json's decoder): it skips the
// second validation.
func CompactValidObject(dst, raw []byte, lim Limits) ([]byte, error) {
	return compactObject(dst, raw, lim, true)
}

func compactObject(dst, raw []byte, lim Limits, validated bool) ([]byte, error) {
	lim = lim.withDefaults()
	out, perr := compactRecord(dst, raw, lim, validated, "record must be a JSON object, not %s")
	if perr != nil {
		return dst, perr
	}
	return out, nil
}
