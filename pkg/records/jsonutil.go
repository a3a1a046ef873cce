package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// skipSpace returns the index of the first byte of b that is not JSON
// whitespace (len(b) if none).
func skipSpace(b []byte) int {
	for i, c := range b {
		if !isSpace(c) {
			return i
		}
	}
	return len(b)
}

// kindOf names, with its article, the kind of the JSON value starting with c.
func kindOf(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// compactValid appends src, one valid JSON value without leading whitespace,
// to dst without the whitespace outside strings, and returns the number of
// top-level keys when the value is an object. src must be valid JSON
// (json.Valid); on anything else the output is unspecified but no panic
// occurs.
func compactValid(dst, src []byte) ([]byte, int) {
	keys, depth := 0, 0
	start := 0 // start of the run of bytes not yet copied
	for i := 0; i < len(src); {
		switch c := src[i]; c {
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[start:i]...)
			i++
			for i < len(src) && isSpace(src[i]) {
				i++
			}
			start = i
		case '"':
			// Find the closing quote: the first '"' not preceded by an odd
			// number of backslashes.
			j := i + 1
			for {
				k := bytes.IndexByte(src[j:], '"')
				if k < 0 {
					j = len(src)
					break
				}
				j += k
				n := 0
				for p := j - 1; p > i && src[p] == '\\'; p-- {
					n++
				}
				if n%2 == 0 {
					break
				}
				j++
			}
			i = j + 1
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case ':':
			if depth == 1 {
				keys++
			}
			i++
		default:
			i++
		}
	}
	if start < len(src) {
		dst = append(dst, src[start:]...)
	}
	return dst, keys
}

// fixUTF8 appends s to dst with each byte of invalid UTF-8 replaced with the
// JSON escape \ufffd. In valid JSON such bytes can only be inside strings,
// where the escape keeps the JSON valid and decodes as encoding/json decodes
// the invalid byte.
func fixUTF8(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		c, size := utf8.DecodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// syntaxFault describes a JSON syntax error: the 0-based offset of the
// offending byte in raw (len(raw) for an unexpected end) and a message.
func syntaxFault(raw []byte) (int64, string) {
	var v json.RawMessage // Unmarshal checks the syntax first, counting bytes
	err := json.Unmarshal(raw, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		// json.Valid said no, so Unmarshal should say why; be safe.
		return int64(len(raw)), "invalid JSON"
	}
	// The scanner counts the offending byte: Offset is one past it, except
	// at the end of the input.
	off := se.Offset - 1
	if strings.HasPrefix(se.Error(), "unexpected end") {
		off = int64(len(raw))
	}
	return max(off, 0), "invalid JSON: " + se.Error()
}

// compactRecord appends to dst the compact form of raw, which must be one
// JSON object (surrounding whitespace allowed) within lim. validated says raw
// is already known to be valid JSON. notObj is the message, with a %s for the
// kind, for a value that is not an object. On error it returns dst unchanged
// and a *ParseError whose Offset is relative to raw.
func compactRecord(dst, raw []byte, lim Limits, validated bool, notObj string) ([]byte, *ParseError) {
	if !validated && !json.Valid(raw) {
		off, msg := syntaxFault(raw)
		return dst, &ParseError{Offset: off, Msg: msg}
	}
	start := skipSpace(raw)
	if start == len(raw) { // only possible when validated is a lie
		return dst, &ParseError{Offset: int64(start), Msg: "invalid JSON: unexpected end of JSON input"}
	}
	if raw[start] != '{' {
		return dst, &ParseError{Offset: int64(start), Msg: fmt.Sprintf(notObj, kindOf(raw[start]))}
	}
	n0 := len(dst)
	out, keys := compactValid(dst, raw[start:])
	if !utf8.Valid(out[n0:]) {
		// Append a fixed copy after the compact form, then move it back.
		mid := len(out)
		out = fixUTF8(out, out[n0:mid])
		n := copy(out[n0:], out[mid:])
		out = out[:n0+n]
	}
	if keys > lim.MaxFields {
		return dst, &ParseError{Offset: int64(start),
			Msg: fmt.Sprintf("record has %d fields, over the limit of %d fields", keys, lim.MaxFields)}
	}
	if size := len(out) - n0; size > lim.MaxRecordBytes {
		return dst, &ParseError{Offset: int64(start),
			Msg: fmt.Sprintf("record is %d bytes, over the limit of %d bytes", size, lim.MaxRecordBytes)}
	}
	return out, nil
}
