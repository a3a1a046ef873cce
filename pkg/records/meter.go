package records

import (
	"bytes"
	"errors"
	"io"
)

// errWindow is returned by a meter when more bytes than its window pass
// after its mark: one record spans too much input.
var errWindow = errors.New("records: record spans too much input")

// bom is the UTF-8 byte order mark.
const bom = "\xEF\xBB\xBF"

// slack is what the windows allow beyond twice MaxRecordBytes: room for the
// read-ahead of the buffers between a meter and the parser.
const slack = 128 << 10

// meter wraps the input of a parser. It counts the bytes and newlines that
// pass and keeps the parser's memory bounded: once more than window bytes
// have passed since mark (which the parser moves to the end of each record)
// every Read fails with errWindow. It also remembers where the last two
// newlines are, so that the length of the last line is known at the end.
type meter struct {
	r      io.Reader
	n      int64 // bytes passed
	nl     int64 // newlines passed
	last   int64 // offset of the last newline, -1 if none
	prev   int64 // offset of the newline before last, -1 if none
	mark   int64
	window int64
	eof    bool // r returned io.EOF
	err    error
}

func newMeter(r io.Reader, window int64) *meter {
	return &meter{r: r, last: -1, prev: -1, window: window}
}

func (m *meter) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	room := m.mark + m.window - m.n
	if room <= 0 {
		m.err = errWindow
		return 0, m.err
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := m.r.Read(p)
	if n > 0 {
		b := p[:n]
		if c := bytes.Count(b, []byte{'\n'}); c > 0 {
			m.nl += int64(c)
			i := bytes.LastIndexByte(b, '\n')
			if j := bytes.LastIndexByte(b[:i], '\n'); j >= 0 {
				m.prev = m.n + int64(j)
			} else {
				m.prev = m.last
			}
			m.last = m.n + int64(i)
		}
		m.n += int64(n)
	}
	if err == io.EOF {
		m.eof = true
	}
	return n, err
}

// lastLineLen returns the length, newline included, of the last line that
// has any byte, as of the bytes passed so far.
func (m *meter) lastLineLen() int64 {
	if m.last == m.n-1 { // the input ends with a newline
		return m.last - m.prev
	}
	return m.n - 1 - m.last
}
