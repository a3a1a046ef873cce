#!/usr/bin/env bash
# Regenerates the Go code of proto/ (committed, so builds never need protoc).
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
if ! command -v protoc >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
  else
    echo "protoc is required: install protobuf-compiler (Debian/Ubuntu) or protobuf (brew)" >&2
    exit 1
  fi
fi
GOBIN="$PWD/bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
cd proto
PATH="$PWD/../bin:$PATH" protoc --go_out=. --go_opt=paths=source_relative hookline/v1/*.proto
echo "generated proto/hookline/v1/*.pb.go"
