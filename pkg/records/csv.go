package records

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// csvReader reads CSV with a header row; each row becomes a record (see
// columns).
type csvReader struct {
	sticky
	m       *meter
	br      *bufio.Reader
	cr      *csv.Reader
	lim     Limits
	delim   rune // 0: detected from the header line
	plan    *Plan
	cols    columns
	started bool
	rec     int64 // records read
	endLine int64 // line on which the last record (or the header) ended
	out     []byte
}

// newCSVReader reads CSV from r, decoded as decodeText does, separated by
// delim or, when delim is 0, by the delimiter of its header line.
func newCSVReader(r io.Reader, lim Limits, delim rune, plan *Plan) *csvReader {
	// encoding/csv holds a whole record in memory: the meter bounds it.
	m := newMeter(decodeText(r), 2*int64(lim.MaxRecordBytes)+slack)
	br := bufio.NewReaderSize(m, 64<<10)
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // checked here, with a better message
	cr.LazyQuotes = false
	c := &csvReader{m: m, br: br, cr: cr, lim: lim, delim: delim, plan: plan,
		cols: columns{lim: lim, label: func(i int) string { return fmt.Sprintf("column %d", i+1) }}}
	c.sticky.next = c.next
	return c
}

// next returns the next row as a JSON object. The header is read by the
// first call.
func (r *csvReader) next() ([]byte, error) {
	if !r.started {
		r.started = true
		if err := r.readHeader(); err != nil {
			return nil, err
		}
	}
	row, err := r.cr.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, r.readError(err, r.rec+1)
	}
	r.rec++
	line, _ := r.cr.FieldPos(0)
	if len(row) != len(r.cols.ends) {
		return nil, &ParseError{Line: int64(line), Record: r.rec,
			Msg: fmt.Sprintf("record has %d fields, the header has %d", len(row), len(r.cols.ends))}
	}
	out, f := r.cols.appendRecord(r.out, row)
	if f != nil {
		if f.cell >= 0 {
			fl, _ := r.cr.FieldPos(f.cell)
			line = fl
		}
		return nil, &ParseError{Line: int64(line), Record: r.rec, Msg: f.msg}
	}
	r.done(row)
	r.out = out
	return out, nil
}

// readHeader picks the delimiter and reads the header row.
func (r *csvReader) readHeader() error {
	if r.delim == 0 {
		head, _ := peekLine(r.br)
		r.delim = detectDelimiter(head)
	}
	r.cr.Comma = r.delim
	hdr, err := r.cr.Read()
	if err == io.EOF {
		return &ParseError{Msg: "file has no header row"}
	}
	if err != nil {
		return r.readError(err, 0)
	}
	line, _ := r.cr.FieldPos(0)
	if f := r.cols.setHeader(hdr, r.plan); f != nil {
		if f.cell >= 0 {
			line, _ = r.cr.FieldPos(f.cell)
		}
		return &ParseError{Line: int64(line), Msg: f.msg}
	}
	r.done(hdr)
	return nil
}

// done notes the end of a row: the meter's window restarts there.
func (r *csvReader) done(row []string) {
	r.m.mark = r.cr.InputOffset()
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
