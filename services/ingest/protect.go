package ingest

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/tracker"
)

// ReasonByHand is the pauseReason of a template paused with POST .../pause.
const ReasonByHand = "paused by hand"

func (a *API) pauseTemplate(w http.ResponseWriter, r *http.Request)  { a.setPaused(w, r, true) }
func (a *API) resumeTemplate(w http.ResponseWriter, r *http.Request) { a.setPaused(w, r, false) }

// setPaused pauses or resumes a template by hand and answers the template.
// A template paused by hand sends no probes: only a resume ends the pause.
// The change is announced on hookline.events.<tenant>.template.paused or
// .resumed; a call that changes nothing announces nothing.
func (a *API) setPaused(w http.ResponseWriter, r *http.Request, pause bool) {
	tenant, code := tenantOf(r), r.PathValue("code")
	t, err := a.templates.Get(r.Context(), tenant, code)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	reason := ""
	if pause {
		reason = ReasonByHand
	}
	change, at, err := a.tracker.SetPaused(r.Context(), tenant, code, pause, reason, 0)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	if change != tracker.NoChange && a.events != nil {
		a.log.Info("template "+string(change)+" by hand", zap.String("tenant", tenant), zap.String("template", code))
		a.metrics.stateChanges.WithLabelValues(string(change)).Inc()
		ev := queue.TemplateEvent{Type: "template." + string(change), Tenant: tenant, Template: code, Reason: reason, At: at}
		if err := a.events.PublishTemplateEvent(context.WithoutCancel(r.Context()), ev); err != nil {
			a.log.Warn("publish template event", zap.String("template", code), zap.Error(err))
		}
	}
	view, err := a.view(r.Context(), t)
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// TemplateEvents publishes templates' changes of state.
type TemplateEvents interface {
	PublishTemplateEvent(ctx context.Context, ev queue.TemplateEvent) error
}

// WithTemplateEvents announces pauses and resumes by hand with p.
func WithTemplateEvents(p TemplateEvents) APIOption { return func(a *API) { a.events = p } }
