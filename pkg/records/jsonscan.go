package records

import "errors"

// ErrIncomplete is returned by ScanValue when its input ends inside the value
// and more input may follow.
var ErrIncomplete = errors.New("records: the JSON value continues past the end of the input")

// maxDepth is encoding/json's nesting limit: it refuses anything deeper.
const maxDepth = 10000

// ScanValue validates the JSON value that starts at src[0] (no leading
// whitespace) and returns its length: src[:n] is one valid JSON value, what
// follows it is not looked at. It accepts exactly what encoding/json accepts
// (json.Valid on src[:n] is true), but in one pass with no allocation, so a
// caller can find and check a value in a stream without a json.Decoder; the
// value can then go to CompactValidObject.
//
// When src ends before the value does, ScanValue returns ErrIncomplete unless
// atEOF says no more input follows, in which case that is a syntax error. A
// number that reaches the end of src is incomplete too (more digits may
// follow) unless atEOF. A syntax error is a *ParseError whose Offset is that
// of the offending byte in src and whose Msg is "invalid JSON: " followed by
// encoding/json's own description; an unexpected end is at len(src), with
// the message "invalid JSON: unexpected end of JSON input".
func ScanValue(src []byte, atEOF bool) (int, error) {
	n, st := scanValue(src)
	switch {
	case st == scanDone || st == scanNumberEnd && atEOF:
		return n, nil
	case st != scanInvalid && !atEOF:
		return 0, ErrIncomplete
	case st != scanInvalid:
		// encoding/json words some of these as a fault of the last byte
		// ("invalid character ' ' in literal true"): say what happened.
		return 0, &ParseError{Offset: int64(len(src)), Msg: "invalid JSON: unexpected end of JSON input"}
	}
	// encoding/json describes the fault from the bytes up to the offending one.
	off, msg := syntaxFault(src[:n+1])
	return 0, &ParseError{Offset: off, Msg: msg}
}

type scanState int

const (
	scanDone      scanState = iota // the value is src[:n]
	scanShort                      // src ends inside the value
	scanNumberEnd                  // src ends in a top-level number that could end there
	scanInvalid                    // src[n] cannot come where it is
)

// plain marks the bytes a string holds as they are: not a quote, a
// backslash or a control character. Other bytes, invalid UTF-8 included, are
// valid in a JSON string as far as encoding/json is concerned.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanValue is the grammar of RFC 8259 as encoding/json applies it, written
// as a loop over src with an explicit stack of the open containers.
func scanValue(src []byte) (int, scanState) {
	var small [64]byte
	stack := small[:0] // '{' or '[' for each open container
	i := 0
	// Each turn of the loop reads one value starting at src[i]; then the
	// "after" loop closes containers and moves to where the next value starts.
	for {
		if i >= len(src) {
			return i, scanShort
		}
		switch c := src[i]; {
		case c == '{' || c == '[':
			if len(stack) == maxDepth {
				return i, scanInvalid
			}
			stack = append(stack, c)
			i++
			var ok bool
			if i, ok = skipWS(src, i); !ok {
				return i, scanShort
			}
			if c == '[' {
				if src[i] == ']' {
					stack = stack[:len(stack)-1]
					i++
					break
				}
				continue // the first element
			}
			if src[i] == '}' {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			var st scanState
			if i, st = scanKey(src, i); st != scanDone {
				return i, st
			}
			continue // the first member's value
		case c == '"':
			var st scanState
			if i, st = scanString(src, i); st != scanDone {
				return i, st
			}
		case c == '-' || c >= '0' && c <= '9':
			var st scanState
			if i, st = scanNumber(src, i); st != scanDone {
				if st == scanNumberEnd && len(stack) > 0 {
					st = scanShort // a container is still open
				}
				return i, st
			}
		case c == 't':
			var st scanState
			if i, st = scanLiteral(src, i, "true"); st != scanDone {
				return i, st
			}
		case c == 'f':
			var st scanState
			if i, st = scanLiteral(src, i, "false"); st != scanDone {
				return i, st
			}
		case c == 'n':
			var st scanState
			if i, st = scanLiteral(src, i, "null"); st != scanDone {
				return i, st
			}
		default:
			return i, scanInvalid
		}
		// A value ends at i: close containers until one has another value.
		for {
			if len(stack) == 0 {
				return i, scanDone
			}
			var ok bool
			if i, ok = skipWS(src, i); !ok {
				return i, scanShort
			}
			top, c := stack[len(stack)-1], src[i]
			if top == '{' && c == '}' || top == '[' && c == ']' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if c != ',' {
				return i, scanInvalid
			}
			if i, ok = skipWS(src, i+1); !ok {
				return i, scanShort
			}
			if top == '{' {
				var st scanState
				if i, st = scanKey(src, i); st != scanDone {
					return i, st
				}
			}
			break
		}
	}
}

// skipWS returns the index of the first byte at or after i that is not
// whitespace; ok is false when src ends first.
func skipWS(src []byte, i int) (int, bool) {
	for ; i < len(src); i++ {
		if !isSpace(src[i]) {
			return i, true
		}
	}
	return i, false
}

// scanKey reads an object key and its colon at src[i] and returns the index
// of the member's value.
func scanKey(src []byte, i int) (int, scanState) {
	if src[i] != '"' {
		return i, scanInvalid
	}
	i, st := scanString(src, i)
	if st != scanDone {
		return i, st
	}
	var ok bool
	if i, ok = skipWS(src, i); !ok {
		return i, scanShort
	}
	if src[i] != ':' {
		return i, scanInvalid
	}
	if i, ok = skipWS(src, i+1); !ok {
		return i, scanShort
	}
	return i, scanDone
}

// scanString reads the string whose opening quote is src[i] and returns the
// index after its closing quote.
func scanString(src []byte, i int) (int, scanState) {
	i++
	for {
		for i < len(src) && plain[src[i]] {
			i++
		}
		if i >= len(src) {
			return i, scanShort
		}
		switch src[i] {
		case '"':
			return i + 1, scanDone
		case '\\':
			i++
			if i >= len(src) {
				return i, scanShort
			}
			switch src[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for end := i + 4; i < end; i++ {
					if i >= len(src) {
						return i, scanShort
					}
					if !isHex(src[i]) {
						return i, scanInvalid
					}
				}
			default:
				return i, scanInvalid
			}
		default: // a control character
			return i, scanInvalid
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber reads the number at src[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// It returns scanNumberEnd when src ends where the number could end.
func scanNumber(src []byte, i int) (int, scanState) {
	if src[i] == '-' {
		i++
		if i >= len(src) {
			return i, scanShort
		}
	}
	switch c := src[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		i = digits(src, i+1)
	default:
		return i, scanInvalid
	}
	if i >= len(src) {
		return i, scanNumberEnd
	}
	if src[i] == '.' {
		i++
		if i >= len(src) {
			return i, scanShort
		}
		if !isDigit(src[i]) {
			return i, scanInvalid
		}
		if i = digits(src, i+1); i >= len(src) {
			return i, scanNumberEnd
		}
	}
	if src[i] == 'e' || src[i] == 'E' {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if i >= len(src) {
			return i, scanShort
		}
		if !isDigit(src[i]) {
			return i, scanInvalid
		}
		if i = digits(src, i+1); i >= len(src) {
			return i, scanNumberEnd
		}
	}
	return i, scanDone
}

// digits returns the index of the first byte at or after i that is not a digit.
func digits(src []byte, i int) int {
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	return i
}

// scanLiteral reads lit (true, false or null) at src[i].
func scanLiteral(src []byte, i int, lit string) (int, scanState) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(src) {
			return i + k, scanShort
		}
		if src[i+k] != lit[k] {
			return i + k, scanInvalid
		}
	}
	return i + len(lit), scanDone
}
