package records

import (
	"errors"
	"fmt"
	"io"
)

// PageSizeError is a page that grew over the byte limit of one page before
// it held its records.
type PageSizeError struct {
	Page, Records, Size int
	Limit               int64
}

func (e *PageSizeError) Error() string {
	return fmt.Sprintf("page %d (%d records so far) is %d bytes, over the queue's message limit of %d bytes: lower the template's chunkSize",
		e.Page, e.Records, e.Size, e.Limit)
}

// Pager groups the records of a Reader into pages: JSON arrays of up to
// Size records each, in the reader's order.
type Pager struct {
	rd       Reader
	size     int
	maxBytes int64 // a page's limit in bytes; 0: none
	pages    int
	records  int
	done     bool
}

// NewPager pages rd's records size at a time; a page over maxBytes (0: no
// limit) is refused with a PageSizeError as soon as it is over, so memory
// stays bounded by one page.
func NewPager(rd Reader, size int, maxBytes int64) *Pager {
	return &Pager{rd: rd, size: max(size, 1), maxBytes: maxBytes}
}

// Next appends the next page to buf and returns it with its count of
// records; it answers io.EOF once every record is paged.
func (p *Pager) Next(buf []byte) ([]byte, int, error) {
	if p.done {
		return buf, 0, io.EOF
	}
	count := 0
	for count < p.size {
		rec, err := p.rd.Next()
		if errors.Is(err, io.EOF) {
			p.done = true
			break
		}
		if err != nil {
			return buf, 0, err
		}
		if count == 0 {
			buf = append(buf, '[')
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, rec...)
		count++
		p.records++
		if p.maxBytes > 0 && int64(len(buf)) > p.maxBytes {
			return buf, 0, &PageSizeError{Page: p.pages + 1, Records: count, Size: len(buf), Limit: p.maxBytes}
		}
	}
	if count == 0 {
		return buf, 0, io.EOF
	}
	p.pages++
	return append(buf, ']'), count, nil
}

// Pages is the count of pages returned so far.
func (p *Pager) Pages() int { return p.pages }

// Records is the count of records read so far.
func (p *Pager) Records() int { return p.records }
