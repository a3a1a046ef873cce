// Package chaos holds hookline's fault-injection tests. They run the real
// bin/ingest and bin/worker binaries (built by the tests), real nats-server
// processes (single server and a 3-server JetStream cluster), real
// redis-server processes and httptest receivers on 127.0.0.1, then break one
// part while an upload is under way: kill a worker or the ingest process,
// restart NATS or Redis, kill a stream leader, stop a worker gracefully, or
// make the receiver misbehave.
//
// The tests are behind the build tag "chaos":
//
//	cd services/hookline && go test -tags chaos -count=1 -v ./internal/chaos/
//
// They need redis-server on PATH and the Go toolchain (they build the
// binaries in TestMain). docs/reliability.md describes what they check.
package chaos
