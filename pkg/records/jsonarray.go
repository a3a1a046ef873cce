package records

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// arrayReader reads a JSON array of objects, one element at a time, through
// a Scanner: memory stays bounded by the limit on one element's input.
type arrayReader struct {
	sticky
	s      *Scanner
	lim    Limits
	window int // the input one element may span, whitespace and all
	state  int
	rec    int64
	out    []byte
}

const (
	arrayStart = iota // before the '['
	arrayFirst        // after the '['
	arrayNext         // after an element
)

func newArrayReader(r io.Reader, lim Limits) *arrayReader {
	window := 2*lim.MaxRecordBytes + slack
	a := &arrayReader{s: NewScanner(r, int64(window)), lim: lim, window: window}
	a.sticky.next = a.next
	return a
}

func (r *arrayReader) next() ([]byte, error) {
	if r.state == arrayStart {
		if err := r.open(); err != nil {
			return nil, err
		}
		r.state = arrayFirst
	}
	c, err := r.s.Peek()
	if err != nil {
		return nil, r.fault(err, 0, "unexpected end of input: the array is not closed")
	}
	switch {
	case c == ']':
		r.s.Skip()
		return nil, r.trailer()
	case r.state == arrayNext && c != ',':
		return nil, r.s.Unexpected(c, "after array element")
	case r.state == arrayNext:
		r.s.Skip()
		if _, err := r.s.Peek(); err != nil {
			return nil, r.fault(err, r.rec+1, "unexpected end of input: the array is not closed")
		}
	}
	start := r.s.Offset()
	raw, err := r.s.Value(r.window)
	if err != nil {
		return nil, r.fault(err, r.rec+1, "unexpected end of input in the record")
	}
	r.rec++
	r.state = arrayNext
	out, perr := compactRecord(r.out[:0], raw, r.lim, true, "record is %s, not a JSON object")
	if perr != nil {
		perr.Offset += start
		perr.Line = r.s.Line(perr.Offset)
		perr.Record = r.rec
		return nil, perr
	}
	r.out = out
	return out, nil
}

// open skips a byte order mark and whitespace and consumes the '['.
func (r *arrayReader) open() error {
	r.s.SkipBOM()
	c, err := r.s.Peek()
	if errors.Is(err, io.EOF) {
		return r.s.errorf(r.s.Offset(), 0, "file must be a JSON array of objects, but it is empty")
	}
	if err != nil {
		return r.fault(err, 0, "")
	}
	if c != '[' {
		if strings.IndexByte(`{"tfn-0123456789`, c) >= 0 {
			return r.s.errorf(r.s.Offset(), 0, "file must be a JSON array of objects, not %s", kindOf(c))
		}
		return r.s.errorf(r.s.Offset(), 0, "file must be a JSON array of objects (invalid character %q at the start)", c)
	}
	r.s.Skip()
	return nil
}

// trailer checks that only whitespace follows the closing ']'.
func (r *arrayReader) trailer() error {
	_, err := r.s.Peek()
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case err != nil:
		return r.fault(err, 0, "")
	}
	return r.s.errorf(r.s.Offset(), 0, "unexpected data after the JSON array")
}

// fault turns an error of the scanner into a *ParseError where it can; ended
// says what an end of input there means.
func (r *arrayReader) fault(err error, rec int64, ended string) error {
	var pe *ParseError
	switch {
	case errors.As(err, &pe):
		pe.Record = rec
		return pe
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return r.s.errorf(r.s.Read(), rec, "%s", ended)
	case errors.Is(err, ErrValueTooLong):
		return r.s.errorf(r.s.Offset(), rec, "record is over the limit of %d bytes", r.lim.MaxRecordBytes)
	case errors.Is(err, ErrTooMuchSpace):
		return r.s.errorf(r.s.Offset(), 0, "over %d bytes of input without a record (limit of %d bytes per record)",
			r.window, r.lim.MaxRecordBytes)
	}
	return fmt.Errorf("records: reading input: %w", err)
}
