// Package e2e holds hookline's end-to-end tests: a real embedded NATS server
// with JetStream, a real redis-server, the ingest API and delivery workers
// running in the test process, and httptest receivers on loopback.
package e2e
