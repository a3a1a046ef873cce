// Package webhook delivers hookline pages to customers' webhook endpoints.
//
// It holds the pieces a worker needs to send one page of an upload:
//
//   - [AppendBody] builds the JSON body of a page without re-encoding the records;
//   - [Client] sends one HTTP POST per page with a shared, connection-reusing transport,
//     classifies every failure ([ErrStatus], [ErrTimeout], [ErrConnection],
//     [ErrForbiddenAddress], [ErrInvalidURL]) and keeps a bounded prefix of the answer;
//   - [Guard] is the SSRF guard: it runs on the resolved address being dialled, so DNS
//     rebinding cannot slip a private address past it;
//   - [Sign], [Verify] and [NewSecret] implement Standard Webhooks signatures
//     (https://www.standardwebhooks.com/);
//   - [ParseRetryAfter] reads Retry-After answers of 429 and 503 responses;
//   - [ValidateURL], [ValidateAuthHeaderName] and [ValidateAuthHeaderValue] are the
//     save-time checks of a destination.
//
// Error messages produced by this package never contain the auth header value or the
// signing secret.
package webhook
