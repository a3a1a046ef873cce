package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// Every dashboard under deploy/grafana/dashboards imports into another
// Grafana unchanged: Grafana's own schema (the foundation SDK's strict
// decoding and validation) accepts it, and everything an import resolves
// (the datasource input, the datasource variable, the variables the queries
// use, panel ids and positions) is in the file.
func TestDashboardsImport(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	paths, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "deploy", "grafana", "dashboards", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboards found (%v)", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b, err := os.ReadFile(path) // #nosec G304 -- the repository's own file
			if err != nil {
				t.Fatal(err)
			}
			for _, problem := range dashboardImportProblems(b) {
				t.Error(problem)
			}
		})
	}
}

// The checks fail on the faults they are for.
func TestDashboardImportProblemsFindFaults(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "deploy", "grafana", "dashboards", "hookline.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"hard-coded uid", `"uid": "${datasource}"`, `"uid": "prometheus"`, `not the variable`},
		{"unknown field", `"schemaVersion":`, `"schemaVerison": 39, "schemaVersion":`, `unexpected field 'schemaVerison'`},
		{"unknown query field", `"refId": "A",`, `"refId": "A", "exprs": "up",`, `unexpected field 'exprs'`},
		{"undefined variable", `hookline_pages_delivered_total[`, `hookline_pages_delivered_total{tenant=~\"$tenant\"}[`, `$tenant`},
		{"input not used", `"${DS_PROMETHEUS}"`, `"${DS_PROM}"`, `DS_PROM`},
		{"panel off the grid", `"w": 4,`, `"w": 30,`, `gridPos`},
		{"duplicate id", `"id": 3,`, `"id": 2,`, `id 2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := strings.Replace(string(b), tc.old, tc.new, 1)
			if broken == string(b) {
				t.Fatalf("%q is not in the dashboard", tc.old)
			}
			problems := dashboardImportProblems([]byte(broken))
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem mentions %q: %q", tc.want, problems)
			}
		})
	}
}

// Template variables a query can use without defining them.
var grafanaBuiltinVariables = []string{
	"__interval", "__interval_ms", "__rate_interval", "__rate_interval_ms", "__range", "__range_s",
	"__range_ms", "__from", "__to", "__dashboard", "__org", "__user", "__timezone",
}

var inputRef = regexp.MustCompile(`\$\{(DS_[A-Za-z0-9_]+)\}`)

var variableRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]|\$([A-Za-z0-9_]+)`)

// dashboardImportProblems returns what would keep an exported dashboard from
// importing unchanged into another Grafana; none when it imports.
func dashboardImportProblems(b []byte) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// __inputs and __requires belong to the export format, not to the
	// dashboard model: the import resolves and drops them.
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return []string{err.Error()}
	}
	var inputs []struct {
		Name, Type, PluginID string
	}
	var requires []struct {
		Type, ID string
	}
	if err := json.Unmarshal(doc["__inputs"], &inputs); err != nil || len(inputs) == 0 {
		add("__inputs: want the datasource input (%v)", err)
	}
	if err := json.Unmarshal(doc["__requires"], &requires); err != nil {
		add("__requires: %v", err)
	}
	delete(doc, "__inputs")
	delete(doc, "__requires")
	model, err := json.Marshal(doc)
	if err != nil {
		return append(problems, err.Error())
	}
	// The strict decoding rejects unknown fields, missing required ones and
	// wrong types, down to each panel's options and each query. It also
	// drops every panel it accepts (the SDK returns its empty error list as
	// an error, and the panel with it), so the checks below read the model
	// from the SDK's ordinary decoding. The SDK marks this (v1) model
	// deprecated for dashboardv2, a different document (kind and spec) that
	// an export with __inputs is not.
	//lint:ignore SA1019 the dashboard is in the v1 export format
	var strict dashboard.Dashboard
	if err := sdkError(strict.UnmarshalJSONStrict(model)); err != nil {
		return append(problems, "Grafana's dashboard schema rejects it:\n"+err.Error())
	}
	//lint:ignore SA1019 the dashboard is in the v1 export format
	var d dashboard.Dashboard
	if err := json.Unmarshal(model, &d); err != nil {
		return append(problems, err.Error())
	}
	if len(d.Panels) == 0 {
		return append(problems, "no panels")
	}
	if err := sdkError(d.Validate()); err != nil {
		add("Grafana's dashboard schema rejects it:\n%v", err)
	}
	if d.Uid == nil || len(*d.Uid) < 8 || len(*d.Uid) > 40 {
		add("uid %v: want a fixed uid of 8 to 40 characters, so that a second import updates the first", d.Uid)
	}
	if d.Id != nil {
		add("id %d: an export carries no instance id (null or absent)", *d.Id)
	}

	// The datasource variable, its current value the ${input} the import fills in.
	defined := map[string]bool{}
	var dsVar string
	for _, v := range d.Templating.List {
		defined[v.Name] = true
		if v.Type != dashboard.VariableTypeDatasource {
			continue
		}
		if v.Query == nil || v.Query.String == nil || *v.Query.String != "prometheus" {
			add("variable %s: want query \"prometheus\" (the plugin id)", v.Name)
		}
		dsVar = v.Name
		if v.Current == nil || v.Current.Value.String == nil {
			add("variable %s: no current value", v.Name)
			continue
		}
		cur := *v.Current.Value.String
		if !slices.ContainsFunc(inputs, func(in struct{ Name, Type, PluginID string }) bool {
			return cur == "${"+in.Name+"}" && in.Type == "datasource" && in.PluginID == "prometheus"
		}) {
			add("variable %s: current value %q is no datasource input of plugin prometheus", v.Name, cur)
		}
	}
	if dsVar == "" {
		return append(problems, "templating: no datasource variable")
	}
	// The import fills in only the inputs it declares: any other ${DS_...}
	// would stay in the dashboard as it is.
	for _, m := range inputRef.FindAllStringSubmatch(string(b), -1) {
		if !slices.ContainsFunc(inputs, func(in struct{ Name, Type, PluginID string }) bool { return in.Name == m[1] }) {
			add("${%s}: no such entry in __inputs", m[1])
		}
	}
	requireIDs := map[string]bool{}
	for _, r := range requires {
		requireIDs[r.Type+"/"+r.ID] = true
	}
	if !requireIDs["datasource/prometheus"] {
		add("__requires: no datasource prometheus")
	}

	checkRef := func(where string, ref *common.DataSourceRef) {
		if ref == nil {
			add("%s: no datasource", where)
			return
		}
		if ref.Type == nil || *ref.Type != "prometheus" {
			add("%s: datasource type %v, want prometheus", where, deref(ref.Type))
		}
		if ref.Uid == nil || *ref.Uid != "${"+dsVar+"}" {
			add("%s: datasource uid %q is not the variable ${%s}", where, deref(ref.Uid), dsVar)
		}
	}
	checkQuery := func(where, s string) {
		for _, m := range variableRef.FindAllStringSubmatch(s, -1) {
			name := m[1] + m[2] + m[3]
			if !defined[name] && !slices.Contains(grafanaBuiltinVariables, name) {
				add("%s: uses $%s, which no templating variable defines", where, name)
			}
		}
	}

	for _, a := range d.Annotations.List {
		if a.BuiltIn != nil && *a.BuiltIn == 1 { // Grafana's own annotations, in every Grafana
			continue
		}
		checkRef("annotation "+a.Name, a.Datasource)
	}

	// Ids unique, every panel inside the 24-column grid, none overlapping.
	ids := map[uint32]string{}
	type rect struct {
		where      string
		x, y, w, h uint32
	}
	var placed []rect
	var panelTypes []string
	checkPlacement := func(where string, id uint32, pos *dashboard.GridPos) {
		if id == 0 {
			add("%s: no id", where)
		} else if other, dup := ids[id]; dup {
			add("%s: id %d is also %s", where, id, other)
		}
		ids[id] = where
		if pos == nil {
			add("%s: no gridPos", where)
			return
		}
		x := pos.X
		if pos.W == 0 || pos.H == 0 || x+pos.W > 24 {
			add("%s: gridPos x=%d w=%d h=%d is outside the 24-column grid", where, x, pos.W, pos.H)
		}
		r := rect{where, x, pos.Y, pos.W, pos.H}
		for _, o := range placed {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				add("%s: gridPos overlaps %s", where, o.where)
			}
		}
		placed = append(placed, r)
	}
	checkPanel := func(p dashboard.Panel) {
		where := fmt.Sprintf("panel %d %q", deref(p.Id), deref(p.Title))
		checkPlacement(where, deref(p.Id), p.GridPos)
		panelTypes = append(panelTypes, p.Type)
		if len(p.Targets) == 0 {
			add("%s: no queries", where)
		}
		checkRef(where, p.Datasource)
		for _, target := range p.Targets {
			q, ok := target.(*prometheus.Dataquery)
			if !ok {
				add("%s: target %T is not a Prometheus query", where, target)
				continue
			}
			tw := fmt.Sprintf("%s target %s", where, deref(q.RefId))
			checkRef(tw, q.Datasource)
			checkQuery(tw, q.Expr)
			checkQuery(tw, deref(q.LegendFormat))
		}
	}
	for _, p := range d.Panels {
		switch {
		case p.Panel != nil:
			checkPanel(*p.Panel)
		case p.RowPanel != nil:
			checkPlacement(fmt.Sprintf("row %d %q", p.RowPanel.Id, deref(p.RowPanel.Title)), p.RowPanel.Id, p.RowPanel.GridPos)
			for _, nested := range p.RowPanel.Panels {
				checkPanel(nested)
			}
		}
	}
	for _, typ := range slices.Compact(slices.Sorted(slices.Values(panelTypes))) {
		if !requireIDs["panel/"+typ] {
			add("__requires: no panel %s", typ)
		}
	}
	return problems
}

// sdkError is err, or nil for the SDK's empty error list (its strict
// decoding returns a non-nil, empty cog.BuildErrors when all is well).
func sdkError(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
