#!/usr/bin/env bash
# Install PostgreSQL's server binaries (initdb, pg_ctl) from Debian's packages without
# starting the system's cluster: the tests start private servers of their own.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "PostgreSQL is missing. Install it (Debian/Ubuntu: sudo apt-get install postgresql," >&2
  echo "macOS: brew install postgresql), then run make again." >&2
  exit 1
fi
# policy-rc.d exiting 101 tells Debian's maintainer scripts not to start services.
policy=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1; fi
trap '[ "$created" = 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
ls /usr/lib/postgresql/*/bin/initdb
