#!/usr/bin/env bash
# Makes sure redis-server is on PATH for the tests: installs it with the system
# package manager when it is missing and that is possible, otherwise says
# exactly what to install. Tests may also use an existing Redis via REDIS_URL.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ -n "${REDIS_URL:-}" ]; then
  echo "redis-server is not installed; tests will use REDIS_URL=${REDIS_URL%%@*}…" >&2
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
  echo "redis-server is missing: installing it with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
elif command -v dnf >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
  $sudo dnf install -y redis
elif command -v brew >/dev/null 2>&1; then
  brew install redis
fi

if ! command -v redis-server >/dev/null 2>&1; then
  cat >&2 <<'MSG'
redis-server is required by the tests and could not be installed automatically.
Install it, then run the command again:
  Debian/Ubuntu: sudo apt-get install redis-server
  Fedora/RHEL:   sudo dnf install redis
  macOS:         brew install redis
or point the tests at a Redis you already run: REDIS_URL=redis://127.0.0.1:6379/15 make test
MSG
  exit 1
fi
