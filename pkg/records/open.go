package records

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// Options of Open. The zero value reads every format with the default
// limits.
type Options struct {
	Limits
	// Delimiter separates CSV fields: ',', ';', '\t' or '|'. 0 detects it
	// from the header line (TSV: tab).
	Delimiter rune
	// Sheet names the worksheet of an XLSX file to read; "" reads the first.
	Sheet string
	// TempDir is where an XLSX file is spooled and unzipped; "" is the
	// system's temporary directory.
	TempDir string
	// MaxUnzipBytes bounds the size of an XLSX file's parts once unzipped
	// (a zip bomb is refused with a *LimitError). 0 is DefaultMaxUnzipBytes.
	MaxUnzipBytes int64
	// Plan shapes each record (api.md §6); nil keeps the file's.
	Plan *Plan
}

// DefaultMaxUnzipBytes is the default of Options.MaxUnzipBytes.
const DefaultMaxUnzipBytes = 4 << 30

// ReadCloser is a Reader over a file that may hold resources (the spooled
// copy of an XLSX file): Close releases them.
type ReadCloser interface {
	Reader
	Close() error
}

// The delimiters a CSV file may name.
var validDelimiters = map[rune]bool{',': true, ';': true, '\t': true, '|': true}

// ValidDelimiter reports whether d can be Options.Delimiter.
func ValidDelimiter(d rune) bool { return validDelimiters[d] }

// Open reads the records of an uploaded file. Its format comes from its
// content type or name (DetectFormat) and must agree with its first bytes:
// a ZIP archive is read only as XLSX, an XLSX file must be one, and a legacy
// Excel workbook (.xls) is refused, each with a *FormatError. An XLSX file
// is copied to Options.TempDir first, since a ZIP archive is read from its
// end; Close removes the copy.
func Open(r io.Reader, contentType, filename string, opts Options) (ReadCloser, error) {
	opts.Limits = opts.Limits.withDefaults()
	if opts.Delimiter != 0 && !ValidDelimiter(opts.Delimiter) {
		return nil, fmt.Errorf("records: invalid delimiter %q", opts.Delimiter)
	}
	f, err := DetectFormat(contentType, filename)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(r, sniffBytes)
	head, _ := br.Peek(8)
	if err := checkSignature(f, head, describe(contentType, filename)); err != nil {
		return nil, err
	}
	var rd Reader
	switch f {
	case XLSX:
		return openXLSX(br, opts)
	case CSV:
		rd = newCSVReader(br, opts.Limits, opts.Delimiter, opts.Plan)
	case TSV:
		d := opts.Delimiter
		if d == 0 {
			d = '\t'
		}
		rd = newCSVReader(br, opts.Limits, d, opts.Plan)
	default:
		if rd, err = NewReader(f, br, opts.Limits); err != nil {
			return nil, err
		}
		rd = ApplyPlan(rd, opts.Plan)
	}
	return nopCloser{rd}, nil
}

type nopCloser struct{ Reader }

func (nopCloser) Close() error { return nil }

// FormatError is a file that hookline does not read, or whose bytes
// contradict its name or content type. It wraps ErrUnknownFormat.
type FormatError struct {
	Msg string
}

func (e *FormatError) Error() string { return e.Msg }
func (e *FormatError) Unwrap() error { return ErrUnknownFormat }

// LimitError is a file over a limit of its size: Limit bytes.
type LimitError struct {
	Limit int64
	Msg   string
}

func (e *LimitError) Error() string { return e.Msg }

// File signatures.
var (
	zipSignatures = [][]byte{[]byte("PK\x03\x04"), []byte("PK\x05\x06")}
	ole2Signature = []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")
)

// checkSignature checks that a file's first bytes agree with its format.
func checkSignature(f Format, head []byte, what string) error {
	isZip := bytes.HasPrefix(head, zipSignatures[0]) || bytes.HasPrefix(head, zipSignatures[1])
	switch {
	case bytes.HasPrefix(head, ole2Signature):
		return legacyExcel(what)
	case f == XLSX && !isZip:
		return &FormatError{Msg: fmt.Sprintf("%s says XLSX, but its bytes are not an XLSX workbook (a ZIP archive)", what)}
	case f != XLSX && isZip:
		return &FormatError{Msg: fmt.Sprintf("%s says %s, but its bytes are a ZIP archive (an XLSX workbook?): send XLSX as a file named .xlsx", what, formatName(f))}
	}
	return nil
}

func legacyExcel(what string) error {
	return &FormatError{Msg: fmt.Sprintf("%s is a legacy Excel workbook (.xls), which hookline does not read: save it as Excel Workbook (.xlsx) or CSV and import that", what)}
}

// describe names an uploaded file by its name and content type.
func describe(contentType, filename string) string {
	switch {
	case filename != "" && contentType != "":
		return fmt.Sprintf("file %q (content type %q)", filename, contentType)
	case filename != "":
		return fmt.Sprintf("file %q", filename)
	case contentType != "":
		return fmt.Sprintf("file of content type %q", contentType)
	}
	return "file"
}

func formatName(f Format) string {
	switch f {
	case JSONArray:
		return "JSON"
	case NDJSON:
		return "NDJSON"
	}
	return string(bytes.ToUpper([]byte(f)))
}
