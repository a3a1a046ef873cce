package queue

import (
	"fmt"

	"github.com/klauspost/compress/s2"
	"google.golang.org/protobuf/proto"

	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// Compression is how ingest stores a page's records. The zero value is S2.
type Compression int

const (
	// CompressS2 stores the records S2-compressed (Page.records_s2): JSON
	// records, their keys repeated in every one, shrink several times, and
	// so does every copy of them (the file store, replicas, direct gets).
	CompressS2 Compression = iota
	// CompressNone stores them as they are (Page.records).
	CompressNone
)

// ParseCompression reads "s2" or "none".
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "s2":
		return CompressS2, nil
	case "none":
		return CompressNone, nil
	}
	return 0, fmt.Errorf("page compression must be s2 or none, got %q", s)
}

// PageEncoder encodes the pages of one import; it keeps its compression
// buffer from page to page. Not for concurrent use.
type PageEncoder struct {
	Compression Compression
	z           []byte
}

// Encode encodes p, compressing its records first unless told not to or
// they do not shrink. It may replace p.Records.
func (e *PageEncoder) Encode(p *hooklinev1.Page) ([]byte, error) {
	if e.Compression == CompressS2 && len(p.Records) > 0 {
		n := s2.MaxEncodedLen(len(p.Records))
		if n < 0 {
			return nil, fmt.Errorf("page %d: %d bytes of records are too many to compress", p.GetPage(), len(p.Records))
		}
		if cap(e.z) < n {
			e.z = make([]byte, n)
		}
		// Records that do not shrink (random tokens, say) stay as they
		// are: a page under the message limit stays under it.
		if z := s2.Encode(e.z[:cap(e.z)], p.Records); len(z) < len(p.Records) {
			p.RecordsS2, p.Records = z, nil
		}
	}
	return proto.Marshal(p) // copies the records out of e.z
}

// maxPageRecords bounds the records of a decoded page: NATS messages are at
// most 64 MiB, and ingest checks the records' size against the server's
// limit before compressing them.
const maxPageRecords = 64 << 20

// DecodePage decodes a stored page, either form; Records holds the JSON
// array after it.
func DecodePage(data []byte) (*hooklinev1.Page, error) {
	var p hooklinev1.Page
	if err := proto.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	if len(p.RecordsS2) > 0 {
		n, err := s2.DecodedLen(p.RecordsS2)
		if err != nil {
			return nil, fmt.Errorf("records_s2: %w", err)
		}
		if n > maxPageRecords {
			return nil, fmt.Errorf("records_s2 decodes to %d bytes, over the limit of %d", n, maxPageRecords)
		}
		if p.Records, err = s2.Decode(make([]byte, n), p.RecordsS2); err != nil {
			return nil, fmt.Errorf("records_s2: %w", err)
		}
		p.RecordsS2 = nil
	}
	return &p, nil
}
