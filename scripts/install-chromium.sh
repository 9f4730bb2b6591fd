#!/usr/bin/env bash
# Debian's chromium for the dashboard's browser tests (Playwright drives it; its own
# browser download does not work here). Installs only when missing; needs root for apt.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is missing: install it with 'sudo apt-get install -y chromium'" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
