package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hookline/hookline/pkg/tracker"
)

// The progress stream of an upload (GET /v1/uploads/{id}/events): the
// tracker is read every eventPoll, a "progress" event sent when the counts
// or the status changed, a comment every eventHeartbeat, and the stream
// ends after a final status, when the upload is gone, when the client
// goes, or after eventMaxStream (the client reconnects).
const (
	eventPoll      = 250 * time.Millisecond
	eventHeartbeat = 15 * time.Second
	eventMaxStream = 30 * time.Minute
	eventWrite     = 10 * time.Second // per write, whatever the server's WriteTimeout
)

type progress struct {
	DeliveredPages int    `json:"deliveredPages"`
	FailedPages    int    `json:"failedPages"`
	PendingPages   int    `json:"pendingPages"`
	TotalPages     int    `json:"totalPages"`
	Status         string `json:"status"`
}

func progressOf(u *tracker.Upload) progress {
	return progress{DeliveredPages: u.DeliveredPages, FailedPages: u.FailedPages, PendingPages: u.PendingPages(),
		TotalPages: u.TotalPages, Status: string(u.Status)}
}

func (a *API) uploadEvents(w http.ResponseWriter, r *http.Request) {
	id, tenant := r.PathValue("id"), tenantOf(r)
	u, err := a.tracker.Get(r.Context(), id, tenant)
	if err != nil {
		writeError(w, a.log, storeErr(err))
		return
	}
	rc := http.NewResponseController(w)
	write := func(format string, args ...any) error {
		if err := rc.SetWriteDeadline(time.Now().Add(eventWrite)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	poll, beat := time.NewTicker(eventPoll), time.NewTicker(eventHeartbeat)
	defer poll.Stop()
	defer beat.Stop()
	end := time.After(eventMaxStream)
	var last *progress
	for {
		if u != nil {
			if p := progressOf(u); last == nil || p != *last {
				data, _ := json.Marshal(p)
				if write("event: progress\ndata: %s\n\n", data) != nil {
					return
				}
				last = &p
			}
			if u.Status != tracker.StatusDelivering {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-end:
			return
		case <-beat.C:
			if write(": heartbeat\n\n") != nil {
				return
			}
			u = nil
		case <-poll.C:
			u, err = a.tracker.Get(r.Context(), id, tenant)
			if errors.Is(err, tracker.ErrNotFound) {
				return // expired or deleted
			}
			if err != nil {
				u = nil // the store is away for now: poll again
			}
		}
	}
}
