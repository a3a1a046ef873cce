package ingest

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/pkg/tracker"
)

// pausedListed is how many paused templates hookline_template_paused_since
// lists: the ones paused longest, so the series stay bounded whatever the
// number of templates.
const pausedListed = 10

// pausedCollector reports the paused templates, read from the tracker at
// scrape time: how many, and since when for the pausedListed paused longest.
type pausedCollector struct {
	tr           *tracker.Tracker
	total, since *prometheus.Desc
}

func newPausedCollector(tr *tracker.Tracker) *pausedCollector {
	return &pausedCollector{tr: tr,
		total: prometheus.NewDesc("hookline_templates_paused", "Templates paused now (every tenant).", nil, nil),
		since: prometheus.NewDesc("hookline_template_paused_since_seconds",
			"When each of the 10 templates paused longest was paused (unix seconds; others are not listed).", []string{"tenant", "template"}, nil),
	}
}

func (c *pausedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.total
	ch <- c.since
}

func (c *pausedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	total, oldest, err := c.tr.PausedTemplates(ctx, pausedListed)
	if err != nil {
		return // Redis away: /readyz says so; no made-up value
	}
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(total))
	for _, p := range oldest {
		ch <- prometheus.MustNewConstMetric(c.since, prometheus.GaugeValue, float64(p.PausedAt.Unix()), p.Tenant, p.Template)
	}
}
