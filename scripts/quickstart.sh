#!/bin/sh
# The quickstart: start a private berthd on a temp root and talk to it.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
work=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
bin/berthd --root "$work/root" --state "$work/run" --config /dev/null >"$work/berthd.log" 2>&1 &
daemon_pid=$!
export BERTH_HOST="unix://$work/run/berth.sock"
i=0; while [ ! -S "$work/run/berth.sock" ]; do i=$((i+1)); [ $i -lt 200 ] || { cat "$work/berthd.log"; exit 1; }; sleep 0.05; done
echo '$ berth version'
bin/berth version
