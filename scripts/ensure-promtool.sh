#!/usr/bin/env bash
# Makes sure promtool is on PATH for `make deploy-check`: installs Debian's
# prometheus package (which ships promtool) with apt-get when it is missing,
# otherwise says what to install.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
  echo "promtool is missing: installing the prometheus package with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if ! command -v promtool >/dev/null 2>&1; then
  cat >&2 <<'MSG'
promtool is required by `make deploy-check` and could not be installed automatically.
Install it, then run the command again:
  Debian/Ubuntu: sudo apt-get install prometheus
  or a release from https://github.com/prometheus/prometheus/releases (promtool is in the archive)
MSG
  exit 1
fi
