package worker

import (
	"context"

	"github.com/hookline/hookline/pkg/tracker"
)

// A template that only a pause by hand can hold (no rate limit, no pause
// after failures) needs no gate of its own while it is active: the tracker
// call that leases its page (Begin, or the Finish that carries on to it)
// reads the template's paused state in the same round trip. Any other
// template asks its gate before each page, since its rate limit's schedule
// and its failures in a row depend on every request.

// byHandOnly reports whether only a pause by hand can hold p's pages back.
func byHandOnly(p tracker.Protection) bool {
	return p.Limit.Requests == 0 && p.PauseAfterFailures == 0
}

// pauseCall is call naming the template whose paused state the tracker's
// answer should carry: the upload's when only a pause by hand can hold it,
// the ticket's while the upload is not known yet (u nil). A ticket that
// names no template (queued before tickets did) reads none: its page asks
// the gate.
func pauseCall(call tracker.Call, t Ticket, u *tracker.Upload) tracker.Call {
	switch {
	case u == nil:
		call.Tenant, call.Template = t.GetTenant(), t.GetTemplate()
	case byHandOnly(u.Destination.Protection(0)):
		call.Tenant, call.Template = u.Tenant, u.Template
	}
	return call
}

// gate says whether the page may go now. pause is the template's paused
// state read with the page's lease: an active template that only a pause by
// hand can hold lets it go at once. Otherwise the template's gate answers,
// as for a paused template (held, or its probe), whatever its protection.
func (d *Deliverer) gate(ctx context.Context, u *tracker.Upload, pause tracker.PauseState) (tracker.Gate, error) {
	p := u.Destination.Protection(pausedRecheck)
	if pause == tracker.TemplateActive && byHandOnly(p) {
		return tracker.Gate{Kind: tracker.Go}, nil
	}
	return d.tr.Gate(ctx, u.Tenant, u.Template, p)
}
