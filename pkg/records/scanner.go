package records

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Scanner is a window over a stream to read JSON from, a byte or a whole
// value at a time: the one JSON reader of hookline, behind JSON array files
// and the body of a JSON import alike. Its memory is one buffer, which grows
// only to hold a value that does not fit, up to the limit its caller gives.
// Each byte of a value is checked once (ScanValue).
type Scanner struct {
	r        io.Reader
	buf      []byte // buf[pos:] is read and not yet consumed
	pos      int
	base     int64 // stream offset of buf[0]
	lines    int64 // newlines before buf[0]
	maxSpace int64 // whitespace Peek skips in one run before it gives up; 0: any
	done     bool  // r has nothing more
	err      error // why, when it is not the end of the stream
}

const scanChunk = 64 << 10

// ErrValueTooLong is a value over the limit its caller set.
var ErrValueTooLong = errors.New("value too long")

// ErrTooMuchSpace is a run of whitespace over a Scanner's maxSpace.
var ErrTooMuchSpace = errors.New("too much whitespace")

// NewScanner reads JSON from r. Peek refuses a run of more than maxSpace
// bytes of whitespace (0: no limit).
func NewScanner(r io.Reader, maxSpace int64) *Scanner {
	return &Scanner{r: r, buf: make([]byte, 0, scanChunk), maxSpace: maxSpace}
}

// fill reads more of the stream after the unconsumed bytes, which it first
// moves to the start of the buffer; the buffer doubles when they fill it.
// With full, it reads until the buffer is full: a value cut by the end of
// the buffer is then scanned again at most once per doubling, not once per
// network read. It returns false when nothing more could be read.
func (s *Scanner) fill(full bool) bool {
	if s.done {
		return false
	}
	if s.pos > 0 {
		s.lines += int64(bytes.Count(s.buf[:s.pos], []byte{'\n'}))
		n := copy(s.buf, s.buf[s.pos:])
		s.base += int64(s.pos)
		s.buf, s.pos = s.buf[:n], 0
	}
	if len(s.buf) == cap(s.buf) {
		s.buf = append(make([]byte, 0, 2*cap(s.buf)), s.buf...)
	}
	start := len(s.buf)
	for empty := 0; len(s.buf) < cap(s.buf); {
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err != nil {
			s.done = true
			if !errors.Is(err, io.EOF) {
				s.err = err
			}
			break
		}
		if n > 0 {
			if !full {
				break
			}
			empty = 0
		} else if empty++; empty == 100 {
			s.done, s.err = true, io.ErrNoProgress
			break
		}
	}
	return len(s.buf) > start
}

// end returns why nothing more can be read: io.EOF at the end of the stream,
// else the error of its reader.
func (s *Scanner) end() error {
	if s.err != nil {
		return s.err
	}
	return io.EOF
}

// SkipBOM drops a UTF-8 byte order mark at the start of the stream.
func (s *Scanner) SkipBOM() {
	for len(s.buf)-s.pos < len(bom) && s.fill(false) {
	}
	if bytes.HasPrefix(s.buf[s.pos:], []byte(bom)) {
		s.pos += len(bom)
	}
}

// Peek consumes whitespace and returns the next byte, unconsumed; at the
// end of the stream it returns io.EOF or the reader's error.
func (s *Scanner) Peek() (byte, error) {
	from := s.Offset()
	for {
		for ; s.pos < len(s.buf); s.pos++ {
			if c := s.buf[s.pos]; !isSpace(c) {
				return c, nil
			}
		}
		if s.maxSpace > 0 && s.Offset()-from > s.maxSpace {
			return 0, ErrTooMuchSpace
		}
		if !s.fill(false) {
			return 0, s.end()
		}
	}
}

// Skip consumes the byte Peek returned.
func (s *Scanner) Skip() { s.pos++ }

// Value consumes the JSON value at the next byte (after Peek) and returns
// it, valid until the next call. A value of over limit bytes is
// ErrValueTooLong, found before the buffer grows past about twice the limit;
// a stream that ends inside the value is io.ErrUnexpectedEOF; a value that
// is not JSON is a *ParseError placed in the stream.
func (s *Scanner) Value(limit int) ([]byte, error) {
	for {
		held := s.buf[s.pos:]
		n, err := ScanValue(held, s.done && s.err == nil)
		switch {
		case err == nil:
			if n > limit {
				return nil, ErrValueTooLong
			}
			s.pos += n
			return held[:n], nil
		case errors.Is(err, ErrIncomplete):
			if len(held) > limit {
				return nil, ErrValueTooLong
			}
			if !s.fill(true) && s.err != nil {
				return nil, s.err
			}
		default:
			var pe *ParseError
			if !errors.As(err, &pe) {
				return nil, err
			}
			if pe.Offset == int64(len(held)) { // ScanValue at the end of the stream
				return nil, io.ErrUnexpectedEOF
			}
			return nil, s.Syntax(s.Offset()+pe.Offset, strings.TrimPrefix(pe.Msg, "invalid JSON: "))
		}
	}
}

// Offset returns the stream offset of the next unconsumed byte.
func (s *Scanner) Offset() int64 { return s.base + int64(s.pos) }

// Read returns how many bytes of the stream were read.
func (s *Scanner) Read() int64 { return s.base + int64(len(s.buf)) }

// Line returns the 1-based line of stream offset off, which must be in the
// buffer: at or after the start of the last value or byte returned.
func (s *Scanner) Line(off int64) int64 {
	k := min(max(off-s.base, 0), int64(len(s.buf)))
	return s.lines + int64(bytes.Count(s.buf[:k], []byte{'\n'})) + 1
}

// Syntax is a syntax error at stream offset off, msg in encoding/json's
// words.
func (s *Scanner) Syntax(off int64, msg string) *ParseError {
	off = min(off, s.Read())
	return &ParseError{Line: s.Line(off), Offset: off, Msg: "invalid JSON: " + msg}
}

// Unexpected is a syntax error at the next byte, c, which cannot come
// there; context says what was expected, in encoding/json's words.
func (s *Scanner) Unexpected(c byte, context string) *ParseError {
	return s.Syntax(s.Offset(), "invalid character "+QuoteChar(c)+" "+context)
}

// QuoteChar formats c as encoding/json does in its errors.
func QuoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}

// errorf is a *ParseError at stream offset off.
func (s *Scanner) errorf(off, rec int64, format string, args ...any) *ParseError {
	return &ParseError{Line: s.Line(off), Offset: off, Record: rec, Msg: fmt.Sprintf(format, args...)}
}
