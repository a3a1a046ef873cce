package worker

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
)

// report counts an attempt's outcome against its template's failures in a
// row, when the template pauses after failures or the attempt was a probe,
// and announces the pause or resume that made. A failure to count is
// logged: the page's own outcome is recorded all the same.
func (d *Deliverer) report(ctx context.Context, u *tracker.Upload, res webhook.Result, probe bool, log *zap.Logger) {
	dest := u.Destination
	if probe {
		outcome := "failed"
		if res.Delivered() {
			outcome = "delivered"
		}
		d.metrics.probes.WithLabelValues(outcome).Inc()
		log.Info("probe of a paused template", zap.String("template", u.Template), zap.String("outcome", outcome), zap.Int("status", res.StatusCode))
	}
	if dest.PauseAfterFailures == 0 && !probe {
		return
	}
	reason := ""
	if !res.Delivered() {
		last := fmt.Sprintf("status %d", res.StatusCode)
		if res.Err != nil {
			last = res.Err.Error()
		}
		reason = fmt.Sprintf("%d failed attempts in a row (the last: %s)", dest.PauseAfterFailures, last)
	}
	ctx = context.WithoutCancel(ctx)
	change, at, err := d.tr.Report(ctx, u.Tenant, u.Template, dest.Protection(0), res.Delivered(), probe, reason)
	if err != nil {
		d.metrics.infraErrors.Inc()
		log.Warn("count the attempt against the template's failures in a row", zap.String("template", u.Template), zap.Error(err))
		return
	}
	if change != tracker.NoChange {
		d.changed(ctx, u, change, reason, at, log)
	}
}

// changed announces a template's pause or resume.
func (d *Deliverer) changed(ctx context.Context, u *tracker.Upload, change tracker.Change, reason string, at time.Time, log *zap.Logger) {
	d.metrics.stateChanges.WithLabelValues(string(change)).Inc()
	if change == tracker.Paused {
		log.Warn("template paused", zap.String("tenant", u.Tenant), zap.String("template", u.Template), zap.String("reason", reason))
	} else {
		log.Info("template resumed by a delivered probe", zap.String("tenant", u.Tenant), zap.String("template", u.Template))
	}
	ev := queue.TemplateEvent{Type: "template." + string(change), Tenant: u.Tenant, Template: u.Template, Reason: reason, At: at}
	if err := d.q.PublishTemplateEvent(ctx, ev); err != nil {
		log.Warn("publish template event", zap.String("template", u.Template), zap.Error(err))
	}
	body, id := ev.Notice()
	if err := d.notify(ctx, u, ev.Type, id, body, u.Tenant+"."+id); err != nil {
		log.Warn("queue template notification", zap.String("template", u.Template), zap.Error(err))
	}
}
