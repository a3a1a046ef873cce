package records

import (
	"bufio"
	"bytes"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// sniffBytes bounds how much of a text file's start is read to decide its
// encoding and delimiter.
const sniffBytes = 64 << 10

// decodeText returns r as UTF-8, the way spreadsheet programs write text
// files: a UTF-8 byte order mark is dropped; UTF-16 with a byte order mark
// (Excel's "Unicode text") is decoded; bytes that are not valid UTF-8 are
// Windows-1252 (Excel's "CSV" on Windows), never replaced. When the header
// line is not valid UTF-8, every byte from 0x80 up is Windows-1252;
// otherwise valid UTF-8 stays as it is and only the bytes that cannot be
// UTF-8 are read as Windows-1252. Only the header line is looked at, so a
// file that arrives slowly is read as it comes.
func decodeText(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, sniffBytes)
	head, err := peekLine(br)
	if bytes.HasPrefix(head, []byte("\xFF\xFE")) || bytes.HasPrefix(head, []byte("\xFE\xFF")) {
		return transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder())
	}
	if bytes.HasPrefix(head, []byte(bom)) {
		_, _ = br.Discard(len(bom))
		head = head[len(bom):]
	}
	return transform.NewReader(br, &cp1252Fallback{all: !validUTF8Prefix(head, err != nil)})
}

// peekLine returns the buffered start of br up to and including the end of
// its first line (a line end inside double quotes does not end it, as in a
// CSV header), reading no more than that needs and at most br.Size() bytes.
// The error is that of the read that ended the input before a line end.
func peekLine(br *bufio.Reader) ([]byte, error) {
	seen, quoted := 0, false
	for {
		b, err := br.Peek(min(br.Size(), max(seen+1, br.Buffered())))
		for ; seen < len(b); seen++ {
			switch {
			case b[seen] == '"':
				quoted = !quoted
			case b[seen] == '\n' && !quoted:
				return b[:seen+1], nil
			}
		}
		if err != nil || len(b) == br.Size() {
			return b, err
		}
	}
}

// validUTF8Prefix reports whether b is valid UTF-8, allowing a rune cut off
// at its end unless b is the whole input.
func validUTF8Prefix(b []byte, whole bool) bool {
	if !whole {
		for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
			if utf8.RuneStart(b[i]) {
				if !utf8.FullRune(b[i:]) {
					b = b[:i]
				}
				break
			}
		}
	}
	return utf8.Valid(b)
}

// cp1252Fallback passes UTF-8 through and decodes as Windows-1252 each byte
// that is not part of a valid UTF-8 sequence, or, when all is set, every
// byte from 0x80 up. The five bytes Windows-1252 leaves undefined become the
// C1 control characters of the same value, as in the WHATWG encoding
// standard: no byte is lost.
type cp1252Fallback struct {
	transform.NopResetter
	all bool
}

func (t *cp1252Fallback) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		// Copy the run of ASCII at once.
		i := nSrc
		for i < len(src) && src[i] < utf8.RuneSelf {
			i++
		}
		if i > nSrc {
			n := copy(dst[nDst:], src[nSrc:i])
			nDst += n
			nSrc += n
			if nSrc < i {
				return nDst, nSrc, transform.ErrShortDst
			}
			continue
		}
		size := 0
		if !t.all {
			if !atEOF && !utf8.FullRune(src[nSrc:]) {
				return nDst, nSrc, transform.ErrShortSrc
			}
			if r, n := utf8.DecodeRune(src[nSrc:]); r != utf8.RuneError || n > 1 {
				size = n
			}
		}
		if size > 0 { // valid UTF-8
			if nDst+size > len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			nDst += copy(dst[nDst:], src[nSrc:nSrc+size])
			nSrc += size
			continue
		}
		c := src[nSrc]
		r := charmap.Windows1252.DecodeByte(c)
		if r == utf8.RuneError {
			r = rune(c)
		}
		if nDst+utf8.RuneLen(r) > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += utf8.EncodeRune(dst[nDst:], r)
		nSrc++
	}
	return nDst, nSrc, nil
}

// The delimiters CSV detection chooses from, in the order that breaks ties.
const delimiters = ",;\t|"

// detectDelimiter picks the delimiter of a CSV file from its header line:
// the one of delimiters that occurs most often outside quotes, ',' when none
// does (a file of one column).
func detectDelimiter(head []byte) rune {
	var counts [len(delimiters)]int
	quoted := false
	for _, c := range head {
		if c == '"' {
			quoted = !quoted
			continue
		}
		if quoted {
			continue
		}
		if c == '\n' || c == '\r' {
			break
		}
		for i := 0; i < len(delimiters); i++ {
			if c == delimiters[i] {
				counts[i]++
			}
		}
	}
	best := 0
	for i := 1; i < len(counts); i++ {
		if counts[i] > counts[best] {
			best = i
		}
	}
	return rune(delimiters[best])
}
