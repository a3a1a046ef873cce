package records

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/hookline/hookline/pkg/jsonenc"
)

// A Plan is a compiled record format (api.md §6): a JSON object whose string
// leaves hold placeholders {{Column}} or {{Column | number}}, {{Column |
// boolean}}, {{Column | json}}. Compiled once per import, it is applied to
// each record as a list of literal bytes and holes, without parsing the
// format again.
type Plan struct {
	segs []segment
	tail []byte   // the literal bytes after the last hole
	cols []string // the columns the holes name, each once
}

// segment is literal output followed by one hole.
type segment struct {
	lit  []byte
	col  int // index into Plan.cols
	kind holeKind
}

type holeKind uint8

const (
	holeString   holeKind = iota // the value, a JSON string
	holeInString                 // part of a JSON string: the value's text, escaped
	holeNumber                   // the value as a JSON number; empty: null
	holeBoolean                  // the value as true or false; empty: null
	holeJSON                     // the value parsed as JSON; empty: null
)

// Limits of a record format.
const (
	MaxPlanBytes = 64 << 10
	MaxPlanHoles = 1000
	maxPlanDepth = 32
)

// PlanError says what is wrong with a record format and where: Path is the
// place in the format, e.g. "profile.name" or "tags[1]" ("" for the whole).
type PlanError struct {
	Path string
	Msg  string
}

func (e *PlanError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// CompilePlan compiles a record format.
func CompilePlan(format []byte) (*Plan, error) {
	if len(format) > MaxPlanBytes {
		return nil, &PlanError{Msg: fmt.Sprintf("recordFormat must be at most %d bytes", MaxPlanBytes)}
	}
	c := &planCompiler{dec: json.NewDecoder(bytes.NewReader(format)), cols: map[string]int{}}
	c.dec.UseNumber()
	tok, err := c.dec.Token()
	if err != nil {
		return nil, &PlanError{Msg: "recordFormat is not valid JSON"}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &PlanError{Msg: "recordFormat must be a JSON object"}
	}
	if err := c.object(""); err != nil {
		return nil, err
	}
	if _, err := c.dec.Token(); err != io.EOF {
		return nil, &PlanError{Msg: "recordFormat has data after its object"}
	}
	c.plan.tail = c.lit
	return &c.plan, nil
}

type planCompiler struct {
	dec   *json.Decoder
	plan  Plan
	lit   []byte
	cols  map[string]int
	depth int
}

func (c *planCompiler) object(path string) error {
	if c.depth++; c.depth > maxPlanDepth {
		return &PlanError{Path: path, Msg: fmt.Sprintf("recordFormat nests deeper than %d levels", maxPlanDepth)}
	}
	defer func() { c.depth-- }()
	c.lit = append(c.lit, '{')
	seen := map[string]bool{}
	for n := 0; c.dec.More(); n++ {
		tok, err := c.dec.Token()
		if err != nil {
			return &PlanError{Path: path, Msg: "recordFormat is not valid JSON"}
		}
		key := tok.(string) // the decoder yields only string keys inside an object
		p := key
		if path != "" {
			p = path + "." + key
		}
		if seen[key] {
			return &PlanError{Path: p, Msg: "duplicate key"}
		}
		seen[key] = true
		if n > 0 {
			c.lit = append(c.lit, ',')
		}
		c.lit = jsonenc.AppendString(c.lit, key)
		c.lit = append(c.lit, ':')
		if err := c.value(p); err != nil {
			return err
		}
	}
	if _, err := c.dec.Token(); err != nil {
		return &PlanError{Path: path, Msg: "recordFormat is not valid JSON"}
	}
	c.lit = append(c.lit, '}')
	return nil
}

func (c *planCompiler) array(path string) error {
	if c.depth++; c.depth > maxPlanDepth {
		return &PlanError{Path: path, Msg: fmt.Sprintf("recordFormat nests deeper than %d levels", maxPlanDepth)}
	}
	defer func() { c.depth-- }()
	c.lit = append(c.lit, '[')
	for n := 0; c.dec.More(); n++ {
		if n > 0 {
			c.lit = append(c.lit, ',')
		}
		if err := c.value(fmt.Sprintf("%s[%d]", path, n)); err != nil {
			return err
		}
	}
	if _, err := c.dec.Token(); err != nil {
		return &PlanError{Path: path, Msg: "recordFormat is not valid JSON"}
	}
	c.lit = append(c.lit, ']')
	return nil
}

func (c *planCompiler) value(path string) error {
	tok, err := c.dec.Token()
	if err != nil {
		return &PlanError{Path: path, Msg: "recordFormat is not valid JSON"}
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return c.object(path)
		}
		return c.array(path)
	case string:
		return c.leaf(path, v)
	case json.Number:
		c.lit = append(c.lit, v...)
	case bool:
		c.lit = fmt.Appendf(c.lit, "%t", v)
	case nil:
		c.lit = append(c.lit, "null"...)
	}
	return nil
}

// leaf compiles a string leaf: literal text and placeholders.
func (c *planCompiler) leaf(path, s string) error {
	type part struct {
		text string
		col  string
		conv string
		hole bool
	}
	var parts []part
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			parts = append(parts, part{text: s})
			break
		}
		if i > 0 {
			parts = append(parts, part{text: s[:i]})
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			return &PlanError{Path: path, Msg: "placeholder {{ is not closed by }}"}
		}
		inner := s[i+2 : i+2+j]
		s = s[i+2+j+2:]
		col, conv := inner, ""
		if k := strings.LastIndexByte(inner, '|'); k >= 0 {
			col, conv = inner[:k], strings.TrimSpace(inner[k+1:])
		}
		col = strings.TrimSpace(col)
		if col == "" {
			return &PlanError{Path: path, Msg: fmt.Sprintf("placeholder {{%s}} names no column", inner)}
		}
		switch conv {
		case "", "number", "boolean", "json":
		default:
			return &PlanError{Path: path, Msg: fmt.Sprintf("placeholder {{%s}}: unknown conversion %q (number, boolean or json)", inner, conv)}
		}
		parts = append(parts, part{col: col, conv: conv, hole: true})
	}
	if len(parts) == 1 && parts[0].hole {
		kind := map[string]holeKind{"": holeString, "number": holeNumber, "boolean": holeBoolean, "json": holeJSON}[parts[0].conv]
		return c.hole(path, parts[0].col, kind)
	}
	c.lit = append(c.lit, '"')
	for _, p := range parts {
		if !p.hole {
			c.lit = appendEscaped(c.lit, p.text)
			continue
		}
		if p.conv != "" {
			return &PlanError{Path: path, Msg: fmt.Sprintf("placeholder {{%s | %s}}: a conversion needs the placeholder to be the whole string", p.col, p.conv)}
		}
		if err := c.hole(path, p.col, holeInString); err != nil {
			return err
		}
	}
	c.lit = append(c.lit, '"')
	return nil
}

func (c *planCompiler) hole(path, col string, kind holeKind) error {
	if len(c.plan.segs) >= MaxPlanHoles {
		return &PlanError{Path: path, Msg: fmt.Sprintf("recordFormat has more than %d placeholders", MaxPlanHoles)}
	}
	i, ok := c.cols[col]
	if !ok {
		i = len(c.plan.cols)
		c.cols[col] = i
		c.plan.cols = append(c.plan.cols, col)
	}
	c.plan.segs = append(c.plan.segs, segment{lit: c.lit, col: i, kind: kind})
	c.lit = nil
	return nil
}

// Columns returns the columns the plan names, in the order of their first
// placeholder.
func (p *Plan) Columns() []string { return p.cols }

// appendEscaped appends s as the inside of a JSON string.
func appendEscaped(dst []byte, s string) []byte {
	n := len(dst)
	dst = jsonenc.AppendString(dst, s)
	copy(dst[n:], dst[n+1:len(dst)-1])
	return dst[:len(dst)-2]
}

// ColumnError is a missing column or a value that does not convert.
type ColumnError struct {
	Column string
	Msg    string
}

func (e *ColumnError) Error() string { return fmt.Sprintf("column %q: %s", e.Column, e.Msg) }

// boundPlan is a plan for the columns of one file.
type boundPlan struct {
	*Plan
	idx []int // the row index of each of Plan.cols
	buf bytes.Buffer
}

// bind finds the plan's columns among a file's.
func (p *Plan) bind(names []string) (*boundPlan, error) {
	at := make(map[string]int, len(names))
	for i, n := range names {
		at[n] = i
	}
	bp := &boundPlan{Plan: p, idx: make([]int, len(p.cols))}
	for i, col := range p.cols {
		j, ok := at[col]
		if !ok {
			return nil, &ColumnError{Column: col, Msg: "the file has no such column, which the template's recordFormat names"}
		}
		bp.idx[i] = j
	}
	return bp, nil
}

// appendRow appends the record of a row of cells; on error it returns the
// index of the cell at fault.
func (bp *boundPlan) appendRow(dst []byte, row []string) ([]byte, int, error) {
	var err error
	for _, s := range bp.segs {
		dst = append(dst, s.lit...)
		cell := bp.idx[s.col]
		if dst, err = bp.appendCell(dst, s.kind, row[cell]); err != nil {
			return nil, cell, &ColumnError{Column: bp.cols[s.col], Msg: err.Error()}
		}
	}
	return append(dst, bp.tail...), -1, nil
}

// appendCell appends the text of a cell as the hole asks.
func (bp *boundPlan) appendCell(dst []byte, kind holeKind, v string) ([]byte, error) {
	switch kind {
	case holeString:
		return jsonenc.AppendString(dst, v), nil
	case holeInString:
		return appendEscaped(dst, v), nil
	}
	t := strings.TrimSpace(v)
	if t == "" {
		return append(dst, "null"...), nil
	}
	switch kind {
	case holeNumber:
		if !validNumber(t) {
			return nil, fmt.Errorf("%s is not a number", quoteCell(v))
		}
		return append(dst, t...), nil
	case holeBoolean:
		switch strings.ToLower(t) {
		case "true", "yes", "1":
			return append(dst, "true"...), nil
		case "false", "no", "0":
			return append(dst, "false"...), nil
		}
		return nil, fmt.Errorf("%s is not a boolean (true, false, yes, no, 1 or 0)", quoteCell(v))
	default: // holeJSON
		bp.buf.Reset()
		if err := json.Compact(&bp.buf, []byte(t)); err != nil {
			return nil, fmt.Errorf("%s is not valid JSON", quoteCell(v))
		}
		return compactUTF8(dst, bp.buf.Bytes()), nil
	}
}

// compactUTF8 appends compact JSON with invalid UTF-8 in its strings
// replaced, as every record is.
func compactUTF8(dst, js []byte) []byte {
	if utf8.Valid(js) {
		return append(dst, js...)
	}
	var v any
	_ = json.Unmarshal(js, &v) // valid: json.Compact accepted it
	out, _ := json.Marshal(v)
	return append(dst, out...)
}

// quoteCell quotes a cell's value for a message, cut to 64 bytes.
func quoteCell(v string) string {
	if len(v) > 64 {
		return fmt.Sprintf("%q…", v[:64])
	}
	return fmt.Sprintf("%q", v)
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	n := digits()
	if n == 0 || (n > 1 && s[start] == '0') {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// ApplyPlan shapes the records of rd, JSON objects whose fields are the
// columns, with p; a nil p leaves them as they are. Open applies
// Options.Plan itself: this is for records read otherwise.
func ApplyPlan(rd Reader, p *Plan) Reader {
	if p == nil {
		return rd
	}
	pr := &planReader{rd: rd, bp: &boundPlan{Plan: p}}
	pr.sticky.next = pr.next
	return pr
}

// planReader applies a plan to the records of a JSON array or NDJSON file,
// whose values are any JSON: a value that is not a string is taken as it is
// by a whole placeholder and as its JSON text inside a string.
type planReader struct {
	sticky
	rd   Reader
	bp   *boundPlan
	rec  int64
	vals map[string]json.RawMessage
	out  []byte
}

func (r *planReader) next() ([]byte, error) {
	raw, err := r.rd.Next()
	if err != nil {
		return nil, err
	}
	r.rec++
	clear(r.vals)
	if err := json.Unmarshal(raw, &r.vals); err != nil { // raw is a compact JSON object
		return nil, &ParseError{Record: r.rec, Msg: err.Error()}
	}
	dst := r.out[:0]
	for _, s := range r.bp.segs {
		dst = append(dst, s.lit...)
		col := r.bp.cols[s.col]
		v, ok := r.vals[col]
		if !ok {
			return nil, &ParseError{Record: r.rec, Msg: (&ColumnError{Column: col, Msg: "the record has no such field, which the template's recordFormat names"}).Error()}
		}
		if dst, err = r.bp.appendJSON(dst, s.kind, v); err != nil {
			return nil, &ParseError{Record: r.rec, Msg: (&ColumnError{Column: col, Msg: err.Error()}).Error()}
		}
	}
	r.out = append(dst, r.bp.tail...)
	return r.out, nil
}

// appendJSON appends a JSON value as the hole asks.
func (bp *boundPlan) appendJSON(dst []byte, kind holeKind, v json.RawMessage) ([]byte, error) {
	if v[0] == '"' {
		var s string
		_ = json.Unmarshal(v, &s) // a string of a compact, valid record
		if kind == holeString {
			return append(dst, v...), nil
		}
		return bp.appendCell(dst, kind, s)
	}
	switch {
	case kind == holeInString && string(v) == "null":
		return dst, nil
	case kind == holeInString:
		return appendEscaped(dst, string(v)), nil
	case kind == holeNumber && v[0] != '-' && (v[0] < '0' || v[0] > '9') && string(v) != "null":
		return nil, fmt.Errorf("%s is not a number", v)
	case kind == holeBoolean && string(v) != "true" && string(v) != "false" && string(v) != "null":
		return nil, fmt.Errorf("%s is not a boolean", v)
	}
	return append(dst, v...), nil
}

// Sample is a record the plan makes from a made-up row: each column holds its
// own name, or 1 where the format reads it as a number, boolean or JSON
// (for a test request, api.md §7).
func (p *Plan) Sample() []byte {
	row := append([]string(nil), p.cols...)
	for _, s := range p.segs {
		if s.kind != holeString && s.kind != holeInString {
			row[s.col] = "1"
		}
	}
	bp, err := p.bind(p.cols)
	if err != nil {
		return nil
	}
	out, _, err := bp.appendRow(nil, row)
	if err != nil {
		return nil
	}
	return out
}
