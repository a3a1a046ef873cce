package worker

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker's Prometheus metrics.
type Metrics struct {
	attempts    *prometheus.CounterVec
	delivered   prometheus.Counter
	failed      prometheus.Counter
	uploads     *prometheus.CounterVec
	duration    prometheus.Histogram
	inFlight    prometheus.Gauge
	infraErrors prometheus.Counter
	// Endpoint protection. No template label: tenants' template codes are
	// unbounded; GET /v1/templates/{code} shows one template's state.
	limited      prometheus.Counter
	held         prometheus.Counter
	probes       *prometheus.CounterVec
	stateChanges *prometheus.CounterVec
	// notifications: attempts to POST an event to a notifyUrl, by outcome.
	notifications *prometheus.CounterVec
	waiting       *waitingCollector
	lightYields   prometheus.Counter
}

// topTenants is how many tenants hookline_worker_tenant_tickets_waiting
// shows: the ones with the most tickets waiting, at the time of the scrape.
const topTenants = 5

// waitingCollector reports the tickets a worker has fetched and not yet
// started, read at scrape time. Per tenant it shows only the topTenants
// busiest, so the series stay bounded whatever the number of tenants.
type waitingCollector struct {
	q                     atomic.Pointer[fairQueue]
	tickets, tenants, top *prometheus.Desc
}

func (c *waitingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tickets
	ch <- c.tenants
	ch <- c.top
}

func (c *waitingCollector) Collect(ch chan<- prometheus.Metric) {
	q := c.q.Load()
	if q == nil {
		return
	}
	top, tenants := q.top(topTenants)
	q.mu.Lock()
	waiting := q.waiting
	q.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.tickets, prometheus.GaugeValue, float64(waiting))
	ch <- prometheus.MustNewConstMetric(c.tenants, prometheus.GaugeValue, float64(tenants))
	for _, tw := range top {
		ch <- prometheus.MustNewConstMetric(c.top, prometheus.GaugeValue, float64(tw.Tickets), tw.Tenant)
	}
}

// NewMetrics registers the worker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_delivery_attempts_total",
			Help: "Webhook delivery attempts by outcome (delivered, retrying, failed; released = handed back, not a customer attempt).",
		}, []string{"outcome"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_pages_delivered_total", Help: "Pages delivered (2xx).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_pages_failed_total", Help: "Pages finally undelivered and recorded in a failure log.",
		}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_uploads_finished_total", Help: "Uploads that reached a final status.",
		}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookline_delivery_duration_seconds", Help: "Duration of webhook requests.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookline_worker_requests_in_flight", Help: "Webhook requests under way in this worker.",
		}),
		infraErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_worker_infrastructure_errors_total",
			Help: "Tickets handed back because NATS or Redis failed (no customer attempt spent).",
		}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_pages_rate_limited_total",
			Help: "Times a page waited for its template's rate limit (its ticket delayed; no attempt spent).",
		}),
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_pages_held_paused_total",
			Help: "Times a page waited because its template is paused (its ticket delayed; no attempt spent).",
		}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_template_probes_total", Help: "Probes sent to paused templates' endpoints, by outcome (delivered, failed).",
		}, []string{"outcome"}),
		stateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_template_state_changes_total",
			Help: "Templates paused (failures in a row) or resumed (a delivered probe) by the workers, by change.",
		}, []string{"change"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_notifications_total",
			Help: "Attempts to POST an event to a template's notifyUrl, by outcome (delivered, retrying, failed).",
		}, []string{"outcome"}),
		waiting: &waitingCollector{
			tickets: prometheus.NewDesc("hookline_worker_tickets_waiting",
				"Tickets this worker has fetched and not yet started, all tenants.", nil, nil),
			tenants: prometheus.NewDesc("hookline_worker_tenants_waiting",
				"Tenants with tickets waiting in this worker.", nil, nil),
			top: prometheus.NewDesc("hookline_worker_tenant_tickets_waiting",
				"Tickets waiting in this worker for each of the 5 tenants with the most (others are not listed).", []string{"tenant"}, nil),
		},
	}
	reg.MustRegister(m.limited, m.held, m.probes, m.stateChanges, m.notifications)
	m.lightYields = prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_worker_light_yields_total",
		Help: "Carried chains of tenants with much work that gave their slot up because another tenant's light work was marked."})
	reg.MustRegister(m.lightYields, m.waiting, m.attempts, m.delivered, m.failed, m.uploads, m.duration, m.inFlight, m.infraErrors)
	return m
}
