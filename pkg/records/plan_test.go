package records

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCompilePlanErrors(t *testing.T) {
	tests := []struct{ format, path, msg string }{
		{`[]`, "", "must be a JSON object"},
		{`{"a":`, "a", "not valid JSON"},
		{`{"a":1} {}`, "", "data after its object"},
		{`{"a":"{{x"}`, "a", "not closed"},
		{`{"a":"{{ }}"}`, "a", "names no column"},
		{`{"a":{"b":["x","{{c | date}}"]}}`, "a.b[1]", `unknown conversion "date"`},
		{`{"a":"n={{c | number}}"}`, "a", "needs the placeholder to be the whole string"},
		{`{"a":1,"a":2}`, "a", "duplicate key"},
		{`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "", "deeper than 32"},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			_, err := CompilePlan([]byte(tc.format))
			var pe *PlanError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *PlanError", err)
			}
			if !strings.HasPrefix(pe.Path, tc.path) || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("got %q at %q, want %q at %q", pe.Msg, pe.Path, tc.msg, tc.path)
			}
		})
	}
}

func TestPlanRows(t *testing.T) {
	const format = `{"e":"{{Email}}","n":"{{N | number}}","b":"{{B|boolean}}","j":"{{J | json}}",
		"s":"<{{Email}}> \"{{N}}\"","k":[1,true,null,{"x":"lit"}]}`
	plan, err := CompilePlan([]byte(format))
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Columns(); !reflect.DeepEqual(got, []string{"Email", "N", "B", "J"}) {
		t.Fatalf("Columns = %q", got)
	}
	csv := "J,N,Email,B,unused\n" +
		"\"[1, 2]\",-1.5e3,a@x,TRUE,u\n" +
		",,,,\n" +
		"\"{\"\"a\"\": \"\"\u00e9\"\"}\", 7 ,\"q\"\"\",no,\n"
	got, err := openAll(t, []byte(csv), "text/csv", "", Options{Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"e":"a@x","n":-1.5e3,"b":true,"j":[1,2],"s":"<a@x> \"-1.5e3\"","k":[1,true,null,{"x":"lit"}]}`,
		`{"e":"","n":null,"b":null,"j":null,"s":"<> \"\"","k":[1,true,null,{"x":"lit"}]}`,
		`{"e":"q\"","n":7,"b":false,"j":{"a":"é"},"s":"<q\"> \" 7 \"","k":[1,true,null,{"x":"lit"}]}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records:\n got %q\nwant %q", got, want)
	}
	for _, rec := range got {
		checkObject(t, []byte(rec))
	}

	for _, tc := range []struct{ in, msg string }{
		{"J,N,Email,B\n[],1x,a,true\n", `line 2: record 1: column "N": "1x" is not a number`},
		{"J,N,Email,B\n[],01,a,true\n", `"01" is not a number`},
		{"J,N,Email,B\n[],1,a,maybe\n", `column "B": "maybe" is not a boolean`},
		{"J,N,Email,B\n{,1,a,true\n", `column "J": "{" is not valid JSON`},
		{"J,N,Mail,B\n", `line 1: column "Email": the file has no such column`},
	} {
		_, err := openAll(t, []byte(tc.in), "text/csv", "", Options{Plan: plan})
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.msg)
		}
	}

	// JSON records: values that are not strings are taken as they are.
	nd := `{"Email":"a@x","N":12,"B":false,"J":{"z":[1]}}` + "\n" + `{"Email":null,"N":"3","B":"yes","J":"[true]"}` + "\n"
	got, err = openAll(t, []byte(nd), "application/x-ndjson", "", Options{Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		`{"e":"a@x","n":12,"b":false,"j":{"z":[1]},"s":"<a@x> \"12\"","k":[1,true,null,{"x":"lit"}]}`,
		`{"e":null,"n":3,"b":true,"j":[true],"s":"<> \"3\"","k":[1,true,null,{"x":"lit"}]}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records:\n got %q\nwant %q", got, want)
	}
	_, err = openAll(t, []byte(`{"Email":"a","N":true,"B":true,"J":1}`+"\n"), "application/x-ndjson", "", Options{Plan: plan})
	wantPE(t, err, 0, 1, `column "N": true is not a number`)
	_, err = openAll(t, []byte(`{"Email":"a","B":true,"J":1}`+"\n"), "application/x-ndjson", "", Options{Plan: plan})
	wantPE(t, err, 0, 1, `column "N": the record has no such field`)
}

func TestPlanSample(t *testing.T) {
	p, err := CompilePlan([]byte(`{"name":"{{Name}}","age":"{{Age | number}}","vip":"{{Vip | boolean}}","hi":"Dear {{Name}}"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(p.Sample()), `{"name":"Name","age":1,"vip":true,"hi":"Dear Name"}`; got != want {
		t.Fatalf("Sample = %s, want %s", got, want)
	}
}
