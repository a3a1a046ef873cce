# hookline: `make run` runs everything in one process; `make test` runs the suite.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

MODULES := ./proto/... ./pkg/... ./services/ingest/... ./services/worker/... ./services/hookline/...
BINARIES := hookline ingest worker
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/hookline/hookline/services/worker.Version=$(VERSION)

.PHONY: all build run test test-short vet fuzz proto deps redis clean

all: build

deps:
	@command -v go >/dev/null || { echo "Go 1.26 is required: https://go.dev/dl/"; exit 1; }
	@for m in proto pkg services/ingest services/worker services/hookline; do (cd $$m && go mod download); done

redis:
	@scripts/ensure-redis.sh

build: deps
	@mkdir -p bin
	go build -ldflags "$(LDFLAGS)" -o bin/ ./services/hookline/cmd/hookline ./services/ingest/cmd/ingest ./services/worker/cmd/worker

run: build
	./bin/hookline dev

vet:
	go vet $(MODULES)

test: deps redis vet
	go test -race -count=1 $(MODULES)

test-short: deps redis
	go test -count=1 $(MODULES)

# Each fuzz target runs FUZZTIME (default 1m): go test allows one target per run.
FUZZTIME ?= 1m
fuzz: deps
	@set -e; for pkg in ./pkg/records ./pkg/webhook; do \
	  for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

proto:
	scripts/gen-proto.sh

clean:
	rm -rf bin .hookline
