package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

var hooklineMetric = regexp.MustCompile(`\bhookline_[a-zA-Z0-9_]+`)

// Every hookline_* metric an alert rule or a dashboard panel queries is
// registered by ingest, a worker or the processes' common setup: a renamed
// metric cannot leave an alert that never fires or an empty panel.
func TestQueriedMetricsAreRegistered(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	common, _ := e.metrics.registry()
	common.MustRegister(config.UnreplicatedWrites()) // what config.Main adds to every process
	// A worker registers its metrics once its streams are set up.
	apitest.Eventually(t, 10*time.Second, "the worker's metrics", func() bool { return e.metrics.has("hookline_worker_requests_in_flight") })

	root := filepath.Join("..", "..", "..", "..", "deploy")
	queried := map[string][]string{} // metric → where
	for where, exprs := range map[string][]string{
		"prometheus/alerts.yml":            alertExprs(t, filepath.Join(root, "prometheus", "alerts.yml")),
		"grafana/dashboards/hookline.json": dashboardExprs(t, filepath.Join(root, "grafana", "dashboards", "hookline.json")),
	} {
		if len(exprs) == 0 {
			t.Fatalf("%s: no expressions found", where)
		}
		for _, expr := range exprs {
			for _, m := range hooklineMetric.FindAllString(expr, -1) {
				queried[m] = append(queried[m], where)
			}
		}
	}
	if len(queried) < 10 {
		t.Fatalf("only %d hookline metrics queried: the parsing is broken", len(queried))
	}
	for m, where := range queried {
		base := m
		for _, suffix := range []string{"_bucket", "_sum", "_count"} { // a histogram's series
			if b, ok := strings.CutSuffix(m, suffix); ok && e.metrics.has(b) {
				base = b
			}
		}
		if !e.metrics.has(base) {
			slices.Sort(where)
			t.Errorf("%s is queried in %s but no hookline process registers it", m, strings.Join(slices.Compact(where), ", "))
		}
	}
}

func alertExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path) // #nosec G304 -- the repository's own file
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

// dashboardExprs collects every "expr" of the dashboard, at any depth
// (panels, rows' panels, targets).
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path) // #nosec G304 -- the repository's own file
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				} else {
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return exprs
}
