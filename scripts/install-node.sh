#!/usr/bin/env bash
# Install Node.js and npm from Debian's packages (for the BullMQ interop tests).
set -euo pipefail
if command -v npm >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "Node.js/npm are missing: the interop tests run the real Node BullMQ. Install Node 18+" >&2
  echo "(Debian/Ubuntu: sudo apt-get install nodejs npm), then run make again." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq nodejs npm >/dev/null
node --version
