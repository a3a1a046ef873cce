#!/usr/bin/env bash
# Makes sure a Chromium is there for the console's browser tests: installs
# Debian's chromium package when it is missing and that is possible,
# otherwise says what to install. HOOKLINE_CHROMIUM names another binary.
set -euo pipefail

if [ -n "${HOOKLINE_CHROMIUM:-}" ] && [ -x "${HOOKLINE_CHROMIUM}" ]; then
  exit 0
fi
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
  echo "chromium is missing: installing it with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >/dev/null
fi

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  cat >&2 <<'MSG'
Chromium is required by the console's browser tests and could not be installed automatically.
Install it, then run the command again:
  Debian/Ubuntu: sudo apt-get install chromium
or name a Chromium or Chrome binary: HOOKLINE_CHROMIUM=/path/to/chrome make test
MSG
  exit 1
fi
