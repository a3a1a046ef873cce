package records

import (
	"bufio"
	"fmt"
	"io"
)

// ndjsonReader reads one JSON object per line.
type ndjsonReader struct {
	sticky
	br   *bufio.Reader
	lim  Limits
	line int64 // lines read
	off  int64 // offset of the next line
	rec  int64 // records read
	long []byte
	out  []byte
}

func newNDJSONReader(r io.Reader, lim Limits) *ndjsonReader {
	n := &ndjsonReader{br: bufio.NewReaderSize(r, 64<<10), lim: lim}
	n.sticky.next = n.next
	return n
}

// next returns the next record. Lines holding only whitespace are skipped.
func (r *ndjsonReader) next() ([]byte, error) {
	for {
		start := r.off
		raw, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if start == 0 && len(raw) >= len(bom) && string(raw[:len(bom)]) == bom {
			raw = raw[len(bom):]
			start = int64(len(bom))
		}
		if skipSpace(raw) == len(raw) {
			continue
		}
		r.rec++
		out, perr := compactRecord(r.out[:0], raw, r.lim, false, "record is %s, not a JSON object")
		if perr != nil {
			perr.Line = r.line
			perr.Record = r.rec
			perr.Offset += start
			return nil, perr
		}
		r.out = out
		return out, nil
	}
}

// readLine returns the next line without its "\n". Its length without a
// final "\r" may not exceed MaxRecordBytes: reading stops as soon as a line
// is known to be too long, so a huge line is never held in memory.
func (r *ndjsonReader) readLine() ([]byte, error) {
	max := r.lim.MaxRecordBytes
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.long = append(r.long[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(r.long) > max+1 {
				return nil, &ParseError{Line: r.line + 1, Offset: r.off, Record: r.rec + 1,
					Msg: fmt.Sprintf("line is longer than the limit of %d bytes", max)}
			}
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("records: reading input: %w", err)
	}
	if len(line) == 0 {
		return nil, io.EOF
	}
	r.line++
	start := r.off
	r.off += int64(len(line))
	if line[len(line)-1] == '\n' {
		line = line[:len(line)-1]
	}
	n := len(line)
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	if n > max {
		return nil, &ParseError{Line: r.line, Offset: start, Record: r.rec + 1,
			Msg: fmt.Sprintf("line is %d bytes, over the limit of %d bytes", n, max)}
	}
	return line, nil
}
