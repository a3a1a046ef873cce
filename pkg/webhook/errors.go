package webhook

import "errors"

// Error classes of a delivery attempt. Test them with errors.Is on Result.Err.
var (
	// ErrStatus means the endpoint answered with a non-2xx status, 3xx included:
	// redirects are never followed.
	ErrStatus = errors.New("non-2xx status")
	// ErrTimeout means no full answer arrived within Destination.Timeout.
	ErrTimeout = errors.New("timeout")
	// ErrConnection means the exchange failed below HTTP: DNS, refused or reset
	// connections, TLS errors, a connection closed before the answer.
	ErrConnection = errors.New("connection failed")
	// ErrForbiddenAddress means the SSRF guard refused the address being dialled.
	ErrForbiddenAddress = errors.New("forbidden address")
	// ErrInvalidURL means the destination cannot be used as configured: its URL
	// (not absolute http/https, no host, user info, ...) or, in Client.Send, an
	// unusable auth header or signing secret.
	ErrInvalidURL = errors.New("invalid url")
)

// classError is an error of one class with a human message of its own: Error returns
// only the message, errors.Is matches the class and the cause.
type classError struct {
	class error
	msg   string
	cause error
}

func (e *classError) Error() string { return e.msg }

func (e *classError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.class}
	}
	return []error{e.class, e.cause}
}

func newClassError(class error, msg string, cause error) error {
	return &classError{class: class, msg: msg, cause: cause}
}
