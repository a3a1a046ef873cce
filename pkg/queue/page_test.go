package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"google.golang.org/protobuf/proto"

	"github.com/hookline/hookline/pkg/natstest"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

func testRecords(n int) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%d","email":"user%d@example.com","city":"Zürich","note":"row %d"}`, i, i, i)
	}
	b.WriteByte(']')
	return []byte(b.String())
}

// Both forms decode to the same records; the S2 form stores them in
// records_s2 only, several times smaller.
func TestPageEncoderForms(t *testing.T) {
	recs := testRecords(100)
	for _, c := range []Compression{CompressS2, CompressNone} {
		enc := PageEncoder{Compression: c}
		for page := 1; page <= 3; page++ { // the buffer is reused from page to page
			data, err := enc.Encode(&hooklinev1.Page{UploadId: "U", Page: uint32(page), RecordCount: 100, Records: bytes.Clone(recs)})
			if err != nil {
				t.Fatal(err)
			}
			var raw hooklinev1.Page
			if err := proto.Unmarshal(data, &raw); err != nil {
				t.Fatal(err)
			}
			switch c {
			case CompressS2:
				if len(raw.Records) != 0 || len(raw.RecordsS2) == 0 || len(data)*3 > len(recs) {
					t.Fatalf("S2 page: records %d B, records_s2 %d B, message %d B for %d B of records: want only records_s2, at least 3× smaller",
						len(raw.Records), len(raw.RecordsS2), len(data), len(recs))
				}
			case CompressNone:
				if !bytes.Equal(raw.Records, recs) || len(raw.RecordsS2) != 0 {
					t.Fatalf("plain page: records %q, records_s2 %d B", raw.Records, len(raw.RecordsS2))
				}
			}
			p, err := DecodePage(data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.Records, recs) || len(p.RecordsS2) != 0 || p.Page != uint32(page) || p.RecordCount != 100 || p.UploadId != "U" {
				t.Fatalf("decoded page %d (compression %d) = %d B of records, page %d, count %d", page, c, len(p.Records), p.Page, p.RecordCount)
			}
		}
	}
}

// Records that S2 cannot shrink are stored as they are, so that a page
// under the message limit never grows over it.
func TestPageEncoderKeepsIncompressibleRecords(t *testing.T) {
	recs := make([]byte, 0, 64<<10)
	recs = append(recs, '[')
	for len(recs) < 60<<10 {
		recs = append(recs, fmt.Sprintf(`"%s",`, rand.Text())...)
	}
	recs[len(recs)-1] = ']'
	enc := PageEncoder{}
	data, err := enc.Encode(&hooklinev1.Page{UploadId: "U", Page: 1, RecordCount: 1, Records: bytes.Clone(recs)})
	if err != nil {
		t.Fatal(err)
	}
	var raw hooklinev1.Page
	if err := proto.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw.Records, recs) || len(raw.RecordsS2) != 0 {
		t.Fatalf("incompressible records stored as %d B plain, %d B compressed; want them plain", len(raw.Records), len(raw.RecordsS2))
	}
}

// A page whose compressed records are cut short or not S2 is an error, not
// a page of garbage; so is one claiming more than a message can hold. (The
// block format has no checksum: JetStream's file store checks every
// message's.)
func TestDecodePageRefusesBadRecords(t *testing.T) {
	good := s2.Encode(nil, testRecords(10))
	cut := good[:len(good)/2]
	huge := s2.Encode(nil, make([]byte, maxPageRecords+1))
	for name, z := range map[string][]byte{"cut short": cut, "not s2": []byte("not s2 at all, just text"), "over the limit": huge} {
		data, _ := proto.Marshal(&hooklinev1.Page{UploadId: "U", Page: 1, RecordsS2: z})
		if p, err := DecodePage(data); err == nil {
			t.Errorf("%s: decoded %d B, want an error", name, len(p.Records))
		}
	}
}

func TestParseCompression(t *testing.T) {
	for s, want := range map[string]Compression{"s2": CompressS2, "none": CompressNone} {
		if c, err := ParseCompression(s); err != nil || c != want {
			t.Errorf("ParseCompression(%q) = %v, %v", s, c, err)
		}
	}
	if _, err := ParseCompression("gzip"); err == nil || !strings.Contains(err.Error(), `"gzip"`) {
		t.Errorf("ParseCompression(gzip) = %v, want an error naming it", err)
	}
}

// A compressed page stored in the stream comes back from GetPage as its
// JSON records.
func TestGetPageDecompresses(t *testing.T) {
	ctx := context.Background()
	q, err := Setup(ctx, natstest.Connect(t, natstest.Start(t)), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	recs := testRecords(50)
	enc := PageEncoder{}
	data, err := enc.Encode(&hooklinev1.Page{UploadId: "Z", Page: 1, RecordCount: 50, Records: bytes.Clone(recs)})
	if err != nil {
		t.Fatal(err)
	}
	storePage(t, q, "Z", 1, data)
	p, err := q.GetPage(ctx, "Z", 1)
	if err != nil || !bytes.Equal(p.GetRecords(), recs) {
		t.Fatalf("GetPage = %d B, %v; want the %d B of records", len(p.GetRecords()), err, len(recs))
	}
}

func FuzzDecodePage(f *testing.F) {
	enc := PageEncoder{}
	data, _ := enc.Encode(&hooklinev1.Page{UploadId: "U", Page: 1, RecordCount: 3, Records: testRecords(3)})
	f.Add(data)
	f.Add(s2.Encode(nil, testRecords(3)))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePage(data)
		if err != nil {
			return
		}
		if len(p.RecordsS2) != 0 || len(p.Records) > maxPageRecords {
			t.Fatalf("decoded page keeps %d B compressed, %d B of records", len(p.RecordsS2), len(p.Records))
		}
	})
}
