package records

import (
	"fmt"

	"github.com/hookline/hookline/pkg/jsonenc"
)

// columns is the header of a sheet (CSV or XLSX) and turns its rows into
// records: objects with the column names as keys, in column order, and every
// value a string; or, with a plan, the shape the plan gives.
type columns struct {
	lim   Limits
	label func(i int) string // names column i in messages: "column 3", "column C"
	names []string
	keys  []byte // the JSON-encoded column names, each followed by ':'
	ends  []int  // end of each column's key in keys
	plan  *boundPlan
}

// fault is what is wrong with a header or a row: the message and the index of
// the cell at fault, -1 for the whole row.
type fault struct {
	cell int
	msg  string
}

// setHeader takes the header's names: each must be non-empty and unique, and
// the plan, if any, must find its columns among them.
func (c *columns) setHeader(names []string, plan *Plan) *fault {
	if len(names) > c.lim.MaxFields {
		return &fault{-1, fmt.Sprintf("header has %d columns, over the limit of %d columns", len(names), c.lim.MaxFields)}
	}
	seen := make(map[string]int, len(names))
	for i, name := range names {
		if name == "" {
			return &fault{i, fmt.Sprintf("%s has an empty name", c.label(i))}
		}
		if len(name) > c.lim.MaxFieldBytes {
			return &fault{i, fmt.Sprintf("the name of %s is %d bytes, over the limit of %d bytes", c.label(i), len(name), c.lim.MaxFieldBytes)}
		}
		start := len(c.keys)
		c.keys = jsonenc.AppendString(c.keys, name)
		// Compare encoded names: distinct invalid UTF-8 can encode the same.
		key := string(c.keys[start:])
		if j, dup := seen[key]; dup {
			return &fault{i, fmt.Sprintf("duplicate column name %s (%s and %s)", key, c.label(j), c.label(i))}
		}
		seen[key] = i
		c.keys = append(c.keys, ':')
		c.ends = append(c.ends, len(c.keys))
		c.names = append(c.names, name)
	}
	if plan != nil {
		bp, err := plan.bind(c.names)
		if err != nil {
			return &fault{-1, err.Error()}
		}
		c.plan = bp
	}
	return nil
}

// appendRecord appends the record of row, which has one cell per column, to
// dst[:0]'s backing array and returns it.
func (c *columns) appendRecord(dst []byte, row []string) ([]byte, *fault) {
	for i, v := range row {
		if len(v) > c.lim.MaxFieldBytes {
			return nil, &fault{i, fmt.Sprintf("field %s is %d bytes, over the limit of %d bytes",
				c.keys[c.start(i):c.ends[i]-1], len(v), c.lim.MaxFieldBytes)}
		}
	}
	if c.plan != nil {
		out, cell, err := c.plan.appendRow(dst[:0], row)
		if err != nil {
			return nil, &fault{cell, err.Error()}
		}
		if len(out) > c.lim.MaxRecordBytes {
			return nil, c.tooLarge("is", len(out))
		}
		return out, nil
	}
	out := append(dst[:0], '{')
	for i, v := range row {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, c.keys[c.start(i):c.ends[i]]...)
		out = jsonenc.AppendString(out, v)
		if size := len(out) + 1; size > c.lim.MaxRecordBytes { // +1 for the '}'
			// Stop early: out stays within MaxRecordBytes plus one field.
			if i < len(row)-1 {
				return nil, c.tooLarge("is at least", size)
			}
			return nil, c.tooLarge("is", size)
		}
	}
	return append(out, '}'), nil
}

func (c *columns) start(i int) int {
	if i == 0 {
		return 0
	}
	return c.ends[i-1]
}

func (c *columns) tooLarge(what string, size int) *fault {
	return &fault{-1, fmt.Sprintf("record %s %d bytes as JSON, over the limit of %d bytes", what, size, c.lim.MaxRecordBytes)}
}
