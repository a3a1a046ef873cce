package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hookline/hookline/pkg/records"
)

// The body of a JSON import is one object:
//
//	{"template": "CODE", "authHeaderValue": "…", "extra": …, "records": [{…}, …]}
//
// with its keys in any order. It is read as a stream, a token at a time, and
// each record goes to stage as soon as it is read: the body (up to
// MaxBodyBytes) is never held whole, and each byte of a record is checked
// once (records.ScanValue) and copied once (records.CompactValidObject).
// Staging needs the template, so records that come before it are kept,
// compact, until the object ends.
//
// The answers are those encoding/json gave when the body was decoded into a
// struct: the same messages for syntax errors, with the byte offset; keys
// matched without regard to case; null taken as absent. What encoding/json
// let through and a stream cannot is refused: a key given twice (its records
// may already be staged), and anything after the object.

// jsonFields are the keys of a JSON import, in the order of the constants.
var jsonFields = [...]string{"template", "authHeaderValue", "extra", "records"}

const (
	fieldTemplate = iota
	fieldAuth
	fieldExtra
	fieldRecords
)

// fieldOf returns the index in jsonFields of a key, or -1. encoding/json
// matched keys case-insensitively; clients may rely on it.
func fieldOf(key string) int {
	for i, f := range jsonFields {
		if strings.EqualFold(key, f) {
			return i
		}
	}
	return -1
}

// jsonImport reads the body of a JSON import: open, then reader. When the
// records stream, it is their records.Reader; its Next reads the rest of the
// body after the last record, so that stage only succeeds for a body that is
// valid to its end.
type jsonImport struct {
	s       *records.Scanner
	lim     records.Limits
	maxRaw  int                                    // how much input one record may span
	resolve func(code string) (*importMeta, error) // looks the template up
	meta    importMeta                             // the template once resolved, authHeaderValue, extra
	seen    [len(jsonFields)]bool
	records bool        // records is present and not null
	stream  bool        // the records array is being read by Next
	more    bool        // a member was read: a ',' or the '}' comes next
	index   int         // records read
	out     []byte      // the last record, compact
	kept    keptRecords // records read before the template
	err     error       // sticky error of Next
}

func newJSONImport(r io.Reader, lim records.Limits, resolve func(code string) (*importMeta, error)) *jsonImport {
	if lim.MaxRecordBytes <= 0 {
		lim.MaxRecordBytes = records.DefaultMaxRecordBytes
	}
	// A record may be written with as much whitespace as content; beyond
	// that it cannot fit the limit, and reading stops before memory grows.
	return &jsonImport{s: records.NewScanner(body{r}, 0), lim: lim, maxRaw: 2*lim.MaxRecordBytes + 64<<10, resolve: resolve}
}

// open reads the body up to its records when they can stream (the template
// came first), else to its end.
func (p *jsonImport) open() error {
	c, err := p.s.Peek()
	if errors.Is(err, io.EOF) {
		return badRequest("", "request body is empty")
	}
	if err != nil {
		return err
	}
	switch {
	case c == '{':
		p.s.Skip()
		return p.members()
	case c == 'n':
		// encoding/json decoded null into the struct as if it were {}:
		// answer it the same way ("template is required").
		if err := p.null(); err != nil {
			return err
		}
		return p.trailer()
	case jsonKind(c) != "":
		return badRequest("", "request body must be an object, not a JSON "+jsonKind(c))
	}
	return p.unexpected(c, "looking for beginning of value")
}

// reader returns, after open, the reader of the records for stage: p itself
// when the records stream, else (the body is read) the records it kept.
func (p *jsonImport) reader() (records.Reader, error) {
	if p.stream {
		return p, nil
	}
	if !p.meta.hasTemplate {
		return nil, templateRequired()
	}
	if !p.records {
		return nil, badRequest("records", "records is required: an array of JSON objects")
	}
	return &p.kept, nil
}

// Next returns the next record of the array, then, once the rest of the body
// is read and valid, io.EOF.
func (p *jsonImport) Next() ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	rec, err := p.nextRecord()
	if errors.Is(err, io.EOF) {
		p.stream = false
		if err = p.members(); err == nil {
			err = io.EOF
		}
	}
	if err != nil {
		p.err = err
		return nil, err
	}
	return rec, nil
}

// members reads the object's members until its end, or until the records
// array starts and can stream.
func (p *jsonImport) members() error {
	for {
		c, err := p.s.Peek()
		if err != nil {
			return p.eof(err)
		}
		if p.more {
			switch c {
			case ',':
				p.s.Skip()
				if c, err = p.s.Peek(); err != nil {
					return p.eof(err)
				}
				if c != '"' {
					return p.unexpected(c, "looking for beginning of object key string")
				}
			case '}':
				p.s.Skip()
				return p.trailer()
			default:
				return p.unexpected(c, "after object key:value pair")
			}
		} else if c == '}' {
			p.s.Skip()
			return p.trailer()
		} else if c != '"' {
			return p.unexpected(c, "looking for beginning of object key string")
		}
		p.more = true
		if err := p.member(); err != nil || p.stream {
			return err
		}
	}
}

// member reads one key and its value.
func (p *jsonImport) member() error {
	raw, err := p.value(maxFieldBytes)
	if errors.Is(err, records.ErrValueTooLong) {
		return badRequest("", fmt.Sprintf("unknown field: a key of over %d bytes", maxFieldBytes))
	}
	if err != nil {
		return err
	}
	var key string
	if err := json.Unmarshal(raw, &key); err != nil {
		return fmt.Errorf("decode a scanned key: %w", err) // ScanValue checked it: cannot happen
	}
	f := fieldOf(key)
	if f < 0 {
		return badRequest(key, fmt.Sprintf("unknown field %q", key))
	}
	name := jsonFields[f]
	if p.seen[f] {
		return badRequest(name, fmt.Sprintf("duplicate field %q: %s may be given once", key, name))
	}
	p.seen[f] = true
	c, err := p.s.Peek()
	if err != nil {
		return p.eof(err)
	}
	if c != ':' {
		return p.unexpected(c, "after object key")
	}
	p.s.Skip()
	if c, err = p.s.Peek(); err != nil {
		return p.eof(err)
	}
	switch f {
	case fieldTemplate:
		code, ok, err := p.stringValue(name, c, maxFieldBytes)
		if errors.Is(err, records.ErrValueTooLong) {
			return badRequest(name, fmt.Sprintf("template must be at most %d bytes", maxFieldBytes))
		}
		if err != nil || !ok {
			return err // null: absent, answered once the body is read
		}
		m, err := p.resolve(code)
		if err != nil {
			return err
		}
		p.meta.template, p.meta.plan, p.meta.hasTemplate = m.template, m.plan, true
	case fieldAuth:
		// Escapes take at most 6 bytes per byte: a longer value is too long.
		v, ok, err := p.stringValue(name, c, 6*MaxAuthHeaderValue+2)
		if errors.Is(err, records.ErrValueTooLong) {
			return badRequest(name, fmt.Sprintf("authHeaderValue must be at most %d bytes", MaxAuthHeaderValue))
		}
		if err != nil || !ok {
			return err
		}
		return setAuthValue(&p.meta, v)
	case fieldExtra:
		raw, err := p.value(MaxExtraBytes)
		if errors.Is(err, records.ErrValueTooLong) {
			return badRequest(name, fmt.Sprintf("extra must be at most %d bytes", MaxExtraBytes))
		}
		if err != nil {
			return err
		}
		return setExtraJSON(&p.meta, raw)
	case fieldRecords:
		return p.recordsValue(c)
	}
	return nil
}

// recordsValue starts reading the records array: it streams when the
// template is known, else the records are kept until it is.
func (p *jsonImport) recordsValue(c byte) error {
	switch {
	case c == 'n':
		return p.null() // absent: "records is required" once the body is read
	case c != '[':
		return p.typeError("records", "an array", c)
	}
	p.s.Skip()
	p.records = true
	if p.meta.hasTemplate {
		p.stream = true
		return nil
	}
	for {
		rec, err := p.nextRecord()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p.kept.add(rec)
	}
}

// nextRecord returns the next element of the records array, compact, or
// io.EOF after the array's ']'.
func (p *jsonImport) nextRecord() ([]byte, error) {
	c, err := p.s.Peek()
	if err != nil {
		return nil, p.eof(err)
	}
	switch {
	case c == ']' && p.index == 0:
		p.s.Skip()
		return nil, io.EOF
	case p.index == 0:
	case c == ']':
		p.s.Skip()
		return nil, io.EOF
	case c == ',':
		p.s.Skip()
		if _, err := p.s.Peek(); err != nil {
			return nil, p.eof(err)
		}
	default:
		return nil, p.unexpected(c, "after array element")
	}
	i := p.index
	raw, err := p.value(p.maxRaw)
	if errors.Is(err, records.ErrValueTooLong) {
		return nil, &FieldError{Field: fmt.Sprintf("records[%d]", i),
			Message: fmt.Sprintf("records[%d]: record is over the limit of %d bytes", i, p.lim.MaxRecordBytes)}
	}
	if err != nil {
		return nil, err
	}
	p.index++
	out, err := records.CompactValidObject(p.out[:0], raw, p.lim) // ScanValue validated it
	if err != nil {
		return nil, &FieldError{Field: fmt.Sprintf("records[%d]", i), Message: fmt.Sprintf("records[%d]: %v", i, err)}
	}
	p.out = out
	return out, nil
}

// stringValue reads a string field of at most limit bytes as written
// (records.ErrValueTooLong); ok is false for null (absent).
func (p *jsonImport) stringValue(name string, c byte, limit int) (v string, ok bool, err error) {
	switch c {
	case 'n':
		return "", false, p.null()
	case '"':
	default:
		return "", false, p.typeError(name, "a string", c)
	}
	raw, err := p.value(limit)
	if err != nil {
		return "", false, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false, fmt.Errorf("decode a scanned string: %w", err) // cannot happen
	}
	return v, true, nil
}

// null reads a value that starts with 'n': null or a syntax error.
func (p *jsonImport) null() error {
	_, err := p.value(len("null"))
	return err
}

// typeError answers a value of the wrong kind, or a syntax error when c
// starts no value.
func (p *jsonImport) typeError(name, want string, c byte) error {
	kind := jsonKind(c)
	if kind == "" {
		return p.unexpected(c, "looking for beginning of value")
	}
	return badRequest(name, fmt.Sprintf("%s must be %s, not a JSON %s", name, want, kind))
}

// trailer checks that only whitespace follows the object.
func (p *jsonImport) trailer() error {
	c, err := p.s.Peek()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	return p.unexpected(c, "after top-level value")
}

// jsonKind names the kind of JSON value that starts with c as encoding/json
// names it in its errors, or "" when c starts none (null is never a wrong kind
// here: it means absent).
func jsonKind(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "bool"
	case c == '-' || c >= '0' && c <= '9':
		return "number"
	}
	return ""
}

// keptRecords holds records, one per line (compact JSON has no raw
// newline), in blocks that grow to a MiB: memory stays about what the records
// take, with none of the copies of one growing slice, and each block is
// released once read.
type keptRecords struct {
	blocks [][]byte
}

func (k *keptRecords) add(rec []byte) {
	n := len(k.blocks)
	if n == 0 || len(k.blocks[n-1])+len(rec)+1 > cap(k.blocks[n-1]) {
		size := 64 << 10
		if n > 0 {
			size = min(2*cap(k.blocks[n-1]), 1<<20)
		}
		k.blocks = append(k.blocks, make([]byte, 0, max(size, len(rec)+1)))
		n++
	}
	k.blocks[n-1] = append(append(k.blocks[n-1], rec...), '\n')
}

// Next returns the next record kept.
func (k *keptRecords) Next() ([]byte, error) {
	for len(k.blocks) > 0 {
		b := k.blocks[0]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			k.blocks[0] = b[i+1:]
			return b[:i], nil
		}
		k.blocks[0] = nil
		k.blocks = k.blocks[1:]
	}
	return nil, io.EOF
}

// body is a request body whose read errors are answers: a body over the
// limit is answered 413 by the handler (it must stay an *http.MaxBytesError);
// any other failure is the client's.
type body struct{ r io.Reader }

func (b body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var tooBig *http.MaxBytesError
	if err != nil && !errors.Is(err, io.EOF) && !errors.As(err, &tooBig) {
		err = badRequest("", "cannot read the request body: "+err.Error())
	}
	return n, err
}

// value consumes the JSON value at the next byte (after Peek), answering
// its faults as encoding/json did.
func (p *jsonImport) value(limit int) ([]byte, error) {
	v, err := p.s.Value(limit)
	var pe *records.ParseError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, p.syntax(p.s.Syntax(p.s.Read(), "unexpected end of JSON input"))
	case errors.As(err, &pe):
		return nil, p.syntax(pe)
	}
	return v, err
}

// syntax answers a syntax error of the body. Like encoding/json, it counts
// the offending byte: "at byte 2" is the second byte; an unexpected end is at
// the body's length.
func (p *jsonImport) syntax(pe *records.ParseError) error {
	at := min(pe.Offset+1, p.s.Read())
	return badRequest("", fmt.Sprintf("request body is not valid JSON (at byte %d): %s", at, strings.TrimPrefix(pe.Msg, "invalid JSON: ")))
}

// unexpected answers the next byte, c, which cannot come there; context says
// what was expected, in encoding/json's words.
func (p *jsonImport) unexpected(c byte, context string) error {
	return p.syntax(p.s.Unexpected(c, context))
}

// eof answers an error of Peek where the body must go on.
func (p *jsonImport) eof(err error) error {
	if errors.Is(err, io.EOF) {
		return p.syntax(p.s.Syntax(p.s.Offset(), "unexpected end of JSON input"))
	}
	return err
}
