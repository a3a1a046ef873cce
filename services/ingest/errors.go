package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/records"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/services/ingest/importer"
)

// APIError is an error with its HTTP answer.
type APIError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *APIError) Error() string { return e.Message }

func badRequest(field, msg string) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: "invalid_argument", Message: msg, Field: field}
}

// errUnavailable marks a failure of our own queue or store: nothing was accepted.
var errUnavailable = importer.ErrUnavailable

// errQueueFull: the queue refuses new pages until workers catch up.
var errQueueFull = errors.New("queue full")

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Field   string        `json:"field,omitempty"`
	Details []errorDetail `json:"details,omitempty"`
}

// toHTTP maps an error to its HTTP status and body: the one place where
// errors become status codes.
func toHTTP(err error) (int, errorDetail) {
	var api *APIError
	var fields FieldErrors
	var field *FieldError
	var parse *records.ParseError
	var tooBig *http.MaxBytesError
	var quota *QuotaError
	var option *records.OptionError
	var limit *records.LimitError
	var column *records.ColumnError
	var pageSize *records.PageSizeError
	var tooMany *importer.TooManyRecordsError
	switch {
	case errors.As(err, &api):
		return api.Status, errorDetail{Code: api.Code, Message: api.Message, Field: api.Field}
	case errors.As(err, &fields):
		d := errorDetail{Code: "invalid_argument", Message: fields[0].Message, Field: fields[0].Field}
		if len(fields) > 1 {
			for _, f := range fields {
				d.Details = append(d.Details, errorDetail{Code: "invalid_argument", Message: f.Message, Field: f.Field})
			}
		}
		return http.StatusBadRequest, d
	case errors.As(err, &field):
		return http.StatusBadRequest, errorDetail{Code: "invalid_argument", Message: field.Message, Field: field.Field}
	case errors.As(err, &parse):
		return http.StatusBadRequest, errorDetail{Code: "invalid_argument", Message: parse.Error(), Field: "file"}
	case errors.As(err, &column):
		return http.StatusBadRequest, errorDetail{Code: "invalid_argument", Message: column.Error(), Field: "file"}
	case errors.As(err, &option):
		return http.StatusBadRequest, errorDetail{Code: "invalid_argument", Message: option.Msg, Field: option.Field}
	case errors.As(err, &limit):
		return http.StatusRequestEntityTooLarge, errorDetail{Code: "too_large", Message: limit.Msg, Field: "file"}
	case errors.As(err, &pageSize):
		return http.StatusRequestEntityTooLarge, errorDetail{Code: "too_large", Message: pageSize.Error(), Field: "destination.webhook.chunkSize"}
	case errors.As(err, &tooMany):
		return http.StatusRequestEntityTooLarge, errorDetail{Code: "too_large", Message: tooMany.Error(), Field: "records"}
	case errors.Is(err, importer.ErrNoRecords):
		return http.StatusBadRequest, errorDetail{Code: "invalid_argument", Message: err.Error(), Field: "records"}
	case errors.Is(err, records.ErrUnknownFormat):
		return http.StatusUnsupportedMediaType, errorDetail{Code: "unsupported_media_type", Message: err.Error(), Field: "file"}
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, errorDetail{Code: "too_large", Message: "request body is over the limit of " + itoa(tooBig.Limit) + " bytes"}
	case errors.Is(err, ErrTemplateNotFound):
		return http.StatusNotFound, errorDetail{Code: "not_found", Message: err.Error(), Field: "template"}
	case errors.Is(err, tracker.ErrNotFound):
		return http.StatusNotFound, errorDetail{Code: "not_found", Message: err.Error()}
	case errors.Is(err, tracker.ErrInProgress):
		return http.StatusConflict, errorDetail{Code: "conflict", Message: err.Error() + "; retry when it has answered", Field: "Idempotency-Key"}
	case errors.Is(err, tracker.ErrBusy):
		return http.StatusConflict, errorDetail{Code: "conflict", Message: err.Error() + ": retry once every page is delivered or failed"}
	case errors.As(err, &quota):
		return http.StatusTooManyRequests, errorDetail{Code: "quota_exceeded", Message: quota.Message, Field: quota.Field}
	case errors.Is(err, ErrTenantNotFound):
		return http.StatusNotFound, errorDetail{Code: "not_found", Message: err.Error(), Field: "tenant"}
	case errors.Is(err, ErrTenantExists):
		return http.StatusConflict, errorDetail{Code: "conflict", Message: err.Error(), Field: "id"}
	case errors.Is(err, ErrAPIKeyNotFound):
		return http.StatusNotFound, errorDetail{Code: "not_found", Message: err.Error(), Field: "keyId"}
	case errors.Is(err, errQueueFull) || queue.IsFull(err):
		return http.StatusServiceUnavailable, errorDetail{Code: "queue_full", Message: "the delivery queue is full; nothing was accepted, try again later"}
	case errors.Is(err, errUnavailable), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting):
		return http.StatusServiceUnavailable, errorDetail{Code: "unavailable", Message: "the queue or the store is unavailable; nothing was accepted, try again"}
	}
	return http.StatusInternalServerError, errorDetail{Code: "internal", Message: "internal error"}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func writeError(w http.ResponseWriter, log *zap.Logger, err error) {
	status, d := toHTTP(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if status >= 500 {
		log.Warn("request failed", zap.Int("status", status), zap.Error(err))
	}
	writeJSON(w, status, errorBody{Error: d})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
