# hookline: `make run` runs everything in one process; `make test` runs the suite.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

MODULES := ./proto/... ./pkg/... ./services/ingest/... ./services/worker/... ./services/hookline/... ./scripts/bench/...
BINARIES := hookline ingest worker
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/hookline/hookline/services/worker.Version=$(VERSION) -X github.com/hookline/hookline/services/ingest.Version=$(VERSION)

.PHONY: all build run test test-short vet lint fuzz fuzz-ci chaos bench proto deps redis chromium clean deploy-check

all: build

deps:
	@command -v go >/dev/null || { echo "Go 1.26 is required: https://go.dev/dl/"; exit 1; }
	@for m in proto pkg services/ingest services/worker services/hookline scripts/bench; do (cd $$m && go mod download); done

redis:
	@scripts/ensure-redis.sh

# Chromium runs the console's browser tests (services/hookline/internal/e2e).
chromium:
	@scripts/ensure-chromium.sh

build: deps
	@mkdir -p bin
	go build -ldflags "$(LDFLAGS)" -o bin/ ./services/hookline/cmd/hookline ./services/ingest/cmd/ingest ./services/worker/cmd/worker

# redis-server keeps dev mode's upload state (AOF in HOOKLINE_DATA_DIR).
run: build redis
	./bin/hookline dev

vet:
	go vet $(MODULES)

# The suite, then every micro-benchmark once, so that none rots unnoticed.
test: deps redis chromium vet
	go test -race -count=1 $(MODULES)
	go test -count=1 -run '^$$' -bench . -benchtime 1x $(MODULES)

test-short: deps redis chromium
	go test -count=1 $(MODULES)

STATICCHECK_VERSION := v0.8.2
GOSEC_VERSION := v2.30.0

# staticcheck and gosec, pinned and installed into bin/ on first use.
lint: deps
	@mkdir -p bin
	@test -x bin/staticcheck || GOBIN=$(CURDIR)/bin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@test -x bin/gosec || GOBIN=$(CURDIR)/bin go install github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VERSION)
	bin/staticcheck $(MODULES)
	bin/gosec -quiet -exclude-generated $(MODULES)

HELM_VERSION := v4.1.4
KUBECONFORM_VERSION := v0.7.0
# The Kubernetes 1.30 schemas (and the KEDA and Prometheus Operator ones)
# beside the repository: ../shared/k8s-schemas.
K8S_SCHEMAS ?= $(abspath $(CURDIR)/../shared/k8s-schemas)
CHART := deploy/helm/hookline
# Kinds with no schema in K8S_SCHEMAS: skipped by name, so that any other
# kind without a schema fails.
KUBECONFORM_SKIP := ServiceAccount,NetworkPolicy,ServiceMonitor,PrometheusRule
KUBECONFORM = bin/kubeconform -strict -summary -kubernetes-version 1.30.0 -skip $(KUBECONFORM_SKIP) \
	-schema-location '$(K8S_SCHEMAS)/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json' \
	-schema-location '$(K8S_SCHEMAS)/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'

# The deployment files: the Helm chart linted, rendered with its defaults,
# with every option on and with the redis_exporter reading the Secret, and
# validated against the schemas; the alert rules checked and unit-tested
# with promtool.
deploy-check: deps
	@mkdir -p bin
	@test -x bin/helm || GOBIN=$(CURDIR)/bin go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	@test -x bin/kubeconform || GOBIN=$(CURDIR)/bin go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	@test -d $(K8S_SCHEMAS) || { echo "deploy-check: no schemas in $(K8S_SCHEMAS)"; exit 1; }
	bin/helm lint --strict $(CHART)
	bin/helm lint --strict $(CHART) -f $(CHART)/ci/all-on-values.yaml
	bin/helm template hookline $(CHART) | $(KUBECONFORM) -
	bin/helm template hookline $(CHART) -f $(CHART)/ci/all-on-values.yaml | $(KUBECONFORM) -
	bin/helm template hookline $(CHART) --set redisExporter.enabled=true --set redisExporter.passwordKey=REDIS_PASSWORD | $(KUBECONFORM) -
	@bin/helm template hookline $(CHART) -f $(CHART)/ci/all-on-values.yaml --show-only templates/redis-exporter.yaml 2>/dev/null | grep -q 'app.kubernetes.io/part-of: hookline' \
	  || { echo "deploy-check: the redis_exporter pods must carry the labels the PodMonitor selects"; exit 1; }
	@out=$$(bin/helm template hookline $(CHART) -f $(CHART)/ci/all-on-values.yaml --set image.tag=hookline-check --set redisExporter.image.tag=exporter-check \
	  --show-only templates/redis-exporter.yaml --show-only templates/networkpolicy.yaml 2>/dev/null) \
	  && [ "$$(printf '%s\n' "$$out" | grep -c 'app.kubernetes.io/version: "exporter-check"')" -eq 4 ] \
	  && [ "$$(printf '%s\n' "$$out" | grep -c 'app.kubernetes.io/version: "hookline-check"')" -eq 2 ] \
	  || { echo "deploy-check: the redis_exporter objects must carry the exporter's image tag as app.kubernetes.io/version, hookline's objects hookline's"; exit 1; }
	@! bin/helm template hookline $(CHART) -f $(CHART)/ci/all-on-values.yaml --show-only templates/worker.yaml 2>/dev/null | grep -q '^  replicas:' \
	  || { echo "deploy-check: with KEDA on, the worker Deployment must not set replicas"; exit 1; }
	@scripts/ensure-promtool.sh
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

# Each fuzz target runs FUZZTIME (default 1m): go test allows one target per run.
FUZZTIME ?= 1m
FUZZ_PACKAGES := ./pkg/records ./pkg/webhook ./pkg/jsonenc ./pkg/queue ./services/ingest
fuzz: deps
	@set -e; for pkg in $(FUZZ_PACKAGES); do \
	  for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# A short run of every fuzz target, for CI: a count of inputs rather than a
# duration, since a duration that ends mid-run can fail with "context deadline
# exceeded" in the go command (a known race of time-bounded fuzzing).
fuzz-ci:
	$(MAKE) fuzz FUZZTIME=20000x

# Fault tests on real processes (NATS, Redis, ingest and workers killed and restarted).
chaos: deps redis
	cd services/hookline && go test -tags chaos -count=1 -timeout 20m ./internal/chaos/

# The benchmark: starts everything on loopback and writes docs/benchmarks.md.
# BENCH_QUICK=1 finishes in under a minute.
bench: build redis
	cd scripts/bench && go run .

proto:
	scripts/gen-proto.sh

clean:
	rm -rf bin .hookline
