package records

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// arrayReader reads a JSON array of objects, one element at a time.
//
// The input passes through a bufio.Reader (which finds the opening '[' and
// checks what follows the closing ']') and a meter that bounds how much input
// one element may span, so that the json.Decoder, which holds a whole value
// in memory, stays bounded too.
type arrayReader struct {
	br     *bufio.Reader
	m      *meter
	dec    *json.Decoder
	lim    Limits
	base   int64 // offset of the '[' in the input: the decoder's offset 0
	baseNL int64 // newlines before base
	state  int
	rec    int64
	raw    json.RawMessage
	out    []byte
	err    error
}

const (
	arrayStart = iota
	arrayIn
)

func newArrayReader(r io.Reader, lim Limits) *arrayReader {
	br := bufio.NewReaderSize(r, 64<<10)
	m := newMeter(br, 2*int64(lim.MaxRecordBytes)+slack)
	return &arrayReader{br: br, m: m, dec: json.NewDecoder(m), lim: lim}
}

// Next returns the next element of the array.
func (r *arrayReader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	out, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	r.out = out
	return out, nil
}

func (r *arrayReader) next() ([]byte, error) {
	if r.state == arrayStart {
		if err := r.open(); err != nil {
			return nil, err
		}
		r.state = arrayIn
	}
	if !r.dec.More() {
		tok, err := r.dec.Token()
		if err != nil {
			return nil, r.decodeError(err, 0)
		}
		if tok != json.Delim(']') { // More said there is no element
			return nil, &ParseError{Line: r.lineAt(r.dec.InputOffset()), Offset: r.base + r.dec.InputOffset(),
				Msg: "file must be a JSON array of objects"}
		}
		if err := r.trailer(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	if err := r.dec.Decode(&r.raw); err != nil {
		return nil, r.decodeError(err, r.rec+1)
	}
	r.rec++
	end := r.dec.InputOffset()
	r.m.mark = end
	out, perr := compactRecord(r.out[:0], r.raw, r.lim, true, "record is %s, not a JSON object")
	if perr != nil {
		// The element ends at end; perr.Offset is relative to its start.
		perr.Line = r.lineAt(end) - int64(bytes.Count(r.raw[perr.Offset:], []byte{'\n'}))
		perr.Offset += r.base + end - int64(len(r.raw))
		perr.Record = r.rec
		return nil, perr
	}
	return out, nil
}

// open skips a byte order mark and whitespace, checks that the input starts
// with '[' and lets the decoder read that '['.
func (r *arrayReader) open() error {
	if b, _ := r.br.Peek(len(bom)); string(b) == bom {
		_, _ = r.br.Discard(len(bom))
		r.base = int64(len(bom))
	}
	for {
		c, err := r.br.ReadByte()
		if err == io.EOF {
			return &ParseError{Line: r.baseNL + 1, Offset: r.base,
				Msg: "file must be a JSON array of objects, but it is empty"}
		}
		if err != nil {
			return fmt.Errorf("records: reading input: %w", err)
		}
		if isSpace(c) {
			r.base++
			if c == '\n' {
				r.baseNL++
			}
			continue
		}
		_ = r.br.UnreadByte()
		if c != '[' {
			msg := "file must be a JSON array of objects, not " + kindOf(c)
			if !bytes.ContainsRune([]byte(`{"tfn-0123456789`), rune(c)) {
				msg = fmt.Sprintf("file must be a JSON array of objects (invalid character %q at the start)", c)
			}
			return &ParseError{Line: r.baseNL + 1, Offset: r.base, Msg: msg}
		}
		break
	}
	if _, err := r.dec.Token(); err != nil { // the '['
		return r.decodeError(err, 0)
	}
	r.m.mark = r.dec.InputOffset()
	return nil
}

// trailer checks that only whitespace follows the closing ']'.
func (r *arrayReader) trailer() error {
	off := r.dec.InputOffset()
	line := r.lineAt(off)
	rest, _ := io.ReadAll(r.dec.Buffered())
	for _, c := range rest {
		if !isSpace(c) {
			return r.trailingError(line, off)
		}
		if c == '\n' {
			line++
		}
		off++
	}
	// The decoder has read everything the meter passed; the rest is in br.
	for {
		c, err := r.br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("records: reading input: %w", err)
		}
		if !isSpace(c) {
			return r.trailingError(line, off)
		}
		if c == '\n' {
			line++
		}
		off++
	}
}

func (r *arrayReader) trailingError(line, off int64) error {
	return &ParseError{Line: line, Offset: r.base + off, Msg: "unexpected data after the JSON array"}
}

// lineAt returns the line of the decoder's offset off, which must not be
// before the decoder's InputOffset nor after what it has read. Only for
// errors: it copies what the decoder holds.
func (r *arrayReader) lineAt(off int64) int64 {
	held, _ := io.ReadAll(r.dec.Buffered())
	k := min(max(off-r.dec.InputOffset(), 0), int64(len(held)))
	nl := r.m.nl - int64(bytes.Count(held, []byte{'\n'})) + int64(bytes.Count(held[:k], []byte{'\n'}))
	return r.baseNL + nl + 1
}

// decodeError turns an error of the decoder into a *ParseError where it can.
// The decoder's own offsets are not reliable (its scanner does not count the
// bytes Token and More skip), so a syntax error is located again by scanning
// what the decoder holds, from where its failed value starts.
func (r *arrayReader) decodeError(err error, rec int64) error {
	start := r.dec.InputOffset()
	held, _ := io.ReadAll(r.dec.Buffered())
	var se *json.SyntaxError
	switch {
	case errors.Is(err, errWindow):
		i := skipSpaceComma(held)
		off := start + int64(i)
		msg := fmt.Sprintf("record is over the limit of %d bytes", r.lim.MaxRecordBytes)
		if i == len(held) {
			msg = fmt.Sprintf("over %d bytes of input without a record (limit of %d bytes per record)",
				r.m.window, r.lim.MaxRecordBytes)
		}
		return &ParseError{Line: r.lineAt(off), Offset: r.base + off, Record: rec, Msg: msg}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		off := start + int64(len(held))
		msg := "unexpected end of input: the array is not closed"
		if rec > 0 && skipSpaceComma(held) < len(held) {
			msg = "unexpected end of input in the record"
		}
		return &ParseError{Line: r.lineAt(off), Offset: r.base + off, Record: rec, Msg: msg}
	case errors.As(err, &se):
		off := start + int64(skipSpace(held))
		msg := "invalid JSON: " + se.Error()
		var se2 *json.SyntaxError
		var v json.RawMessage
		if errors.As(json.NewDecoder(bytes.NewReader(held)).Decode(&v), &se2) && se2.Offset > 0 {
			off = start + min(se2.Offset-1, int64(len(held)))
			msg = "invalid JSON: " + se2.Error()
		}
		return &ParseError{Line: r.lineAt(off), Offset: r.base + off, Record: rec, Msg: msg}
	}
	return fmt.Errorf("records: reading input: %w", err)
}

// skipSpaceComma returns the index of the first byte of b that is neither
// whitespace nor a comma.
func skipSpaceComma(b []byte) int {
	for i, c := range b {
		if !isSpace(c) && c != ',' {
			return i
		}
	}
	return len(b)
}
