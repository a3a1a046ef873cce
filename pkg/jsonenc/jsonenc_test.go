package jsonenc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func marshalString(t testing.TB, s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestAppendString(t *testing.T) {
	var all strings.Builder
	for c := 0; c < 256; c++ {
		all.WriteByte(byte(c))
	}
	tests := []string{
		"", "plain", `quo"te`, `back\slash`, "new\nline", "cr\r", "tab\t", "\b\f\x00\x01\x1f\x7f",
		"<html> & </html>", "héllo wörld", "日本語", "emoji 😀", "\u2028\u2029", "bad \xff utf8 \xc3",
		"\xed\xa0\x80 surrogate", "ends with \xe6\x97", all.String(), strings.Repeat("a\"", 100),
	}
	for _, s := range tests {
		got := string(AppendString([]byte("x"), s))
		want := "x" + marshalString(t, s)
		if got != want {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got[1:]), &back); err != nil {
			t.Errorf("%s does not decode: %v", got[1:], err)
		}
		if utf8.ValidString(s) && back != s {
			t.Errorf("round trip of %q gave %q", s, back)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quo\"te\\", "\x00\x1f\u2028", "bad \xff utf8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		if want := marshalString(t, s); string(got) != want {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}
