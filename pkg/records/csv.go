package records

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hookline/hookline/pkg/jsonenc"
)

// csvReader reads CSV with a header row; each row becomes an object with the
// column names as keys, in column order, and every value a string.
type csvReader struct {
	m       *meter
	br      *bufio.Reader
	cr      *csv.Reader
	lim     Limits
	bomLen  int64
	started bool
	keys    []byte // the JSON-encoded column names, each followed by ':'
	ends    []int  // end of each column's key in keys
	rec     int64  // records read
	endLine int64  // line on which the last record (or the header) ended
	out     []byte
	err     error
}

func newCSVReader(r io.Reader, lim Limits) *csvReader {
	// encoding/csv holds a whole record in memory: the meter bounds it.
	m := newMeter(r, 2*int64(lim.MaxRecordBytes)+slack)
	br := bufio.NewReaderSize(m, 64<<10)
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // checked here, with a better message
	cr.LazyQuotes = false
	return &csvReader{m: m, br: br, cr: cr, lim: lim}
}

// Next returns the next row as a JSON object. The header is read by the
// first call.
func (r *csvReader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		r.started = true
		if err := r.readHeader(); err != nil {
			r.err = err
			return nil, err
		}
	}
	out, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	r.out = out
	return out, nil
}

func (r *csvReader) next() ([]byte, error) {
	row, err := r.cr.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, r.readError(err, r.rec+1)
	}
	r.rec++
	line, _ := r.cr.FieldPos(0)
	if len(row) != len(r.ends) {
		return nil, &ParseError{Line: int64(line), Record: r.rec,
			Msg: fmt.Sprintf("record has %d fields, the header has %d", len(row), len(r.ends))}
	}
	out := append(r.out[:0], '{')
	prev := 0
	for i, v := range row {
		if len(v) > r.lim.MaxFieldBytes {
			fl, _ := r.cr.FieldPos(i)
			return nil, &ParseError{Line: int64(fl), Record: r.rec,
				Msg: fmt.Sprintf("field %s is %d bytes, over the limit of %d bytes",
					r.keys[prev:r.ends[i]-1], len(v), r.lim.MaxFieldBytes)}
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, r.keys[prev:r.ends[i]]...)
		prev = r.ends[i]
		out = jsonenc.AppendString(out, v)
		if size := len(out) + 1; size > r.lim.MaxRecordBytes { // +1 for the '}'
			// Stop early: out stays within MaxRecordBytes plus one field.
			what := "is"
			if i < len(row)-1 {
				what = "is at least"
			}
			return nil, &ParseError{Line: int64(line), Record: r.rec,
				Msg: fmt.Sprintf("record %s %d bytes as JSON, over the limit of %d bytes", what, size, r.lim.MaxRecordBytes)}
		}
	}
	out = append(out, '}')
	r.done(row)
	return out, nil
}

// readHeader reads the header row and encodes the keys.
func (r *csvReader) readHeader() error {
	if b, _ := r.br.Peek(len(bom)); string(b) == bom {
		_, _ = r.br.Discard(len(bom))
		r.bomLen = int64(len(bom))
	}
	hdr, err := r.cr.Read()
	if err == io.EOF {
		return &ParseError{Msg: "file has no header row"}
	}
	if err != nil {
		return r.readError(err, 0)
	}
	line, _ := r.cr.FieldPos(0)
	if len(hdr) > r.lim.MaxFields {
		return &ParseError{Line: int64(line),
			Msg: fmt.Sprintf("header has %d columns, over the limit of %d columns", len(hdr), r.lim.MaxFields)}
	}
	seen := make(map[string]int, len(hdr))
	for i, name := range hdr {
		fl, _ := r.cr.FieldPos(i)
		if name == "" {
			return &ParseError{Line: int64(fl), Msg: fmt.Sprintf("column %d has an empty name", i+1)}
		}
		if len(name) > r.lim.MaxFieldBytes {
			return &ParseError{Line: int64(fl),
				Msg: fmt.Sprintf("the name of column %d is %d bytes, over the limit of %d bytes", i+1, len(name), r.lim.MaxFieldBytes)}
		}
		start := len(r.keys)
		r.keys = jsonenc.AppendString(r.keys, name)
		// Compare encoded names: distinct invalid UTF-8 can encode the same.
		key := string(r.keys[start:])
		if j, dup := seen[key]; dup {
			return &ParseError{Line: int64(fl),
				Msg: fmt.Sprintf("duplicate column name %s (columns %d and %d)", key, j+1, i+1)}
		}
		seen[key] = i
		r.keys = append(r.keys, ':')
		r.ends = append(r.ends, len(r.keys))
	}
	r.done(hdr)
	return nil
}

// done notes the end of a row: the meter's window restarts there.
func (r *csvReader) done(row []string) {
	r.m.mark = r.bomLen + r.cr.InputOffset()
	last := len(row) - 1
	line, _ := r.cr.FieldPos(last)
	r.endLine = int64(line) + int64(strings.Count(row[last], "\n"))
}

// readError turns an error from encoding/csv into a *ParseError where it
// can.
func (r *csvReader) readError(err error, rec int64) error {
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe):
		msg := fmt.Sprintf("column %d: %v", pe.Column, pe.Err)
		line := int64(pe.Line)
		if errors.Is(pe.Err, csv.ErrQuote) && r.unterminated(pe) {
			msg = "unterminated quoted field"
			line = int64(pe.StartLine)
		} else if pe.StartLine != pe.Line {
			msg += fmt.Sprintf(" (the record starts on line %d)", pe.StartLine)
		}
		return &ParseError{Line: line, Record: rec, Msg: msg}
	case errors.Is(err, errWindow):
		what := "record"
		if rec == 0 {
			what = "header row"
		}
		return &ParseError{Line: r.endLine + 1, Record: rec,
			Msg: fmt.Sprintf("%s is over the limit of %d bytes", what, r.lim.MaxRecordBytes)}
	}
	return fmt.Errorf("records: reading input: %w", err)
}

// unterminated reports whether a csv.ErrQuote error is a quoted field still
// open at the end of the input, rather than a quote followed by something
// other than a comma or the end of the line: encoding/csv reports both alike.
// At the end of the input, an open field's error column is one past the last
// line (whose "\r\n" encoding/csv counts as one byte), while a misplaced
// quote's column is at least two before its end.
func (r *csvReader) unterminated(pe *csv.ParseError) bool {
	if !r.m.eof || r.br.Buffered() > 0 {
		return false
	}
	return int64(pe.Column) >= r.m.lastLineLen()
}
