#!/usr/bin/env bash
# Packs the Node.js package (npm pack, with libheron vendored), installs the tarball into a scratch
# npm project offline and runs a smoke example from there: nothing may work only in the source tree.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"; rm -rf "$here/vendor"' EXIT
nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
cd "$here"
tgz="$(npm pack --silent --pack-destination "$work" 2>/dev/null | tail -n 1)"
mkdir -p "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm_config_nodedir="$nodedir" npm install --offline --no-audit --no-fund "$work/$tgz" >/dev/null 2>&1 || { echo "npm install of the packed tarball failed"; exit 1; }
cat > smoke.js <<'JS'
const heron = require('heron');
const a = heron.tensor([[1, 2], [3, 4]]);
const s = heron.sum(heron.matmul(a, a)).item();
if (s !== 54) throw new Error(`sum(a @ a) = ${s}, want 54`);
console.log(`installed package works: heron ${heron.version}, sum(a @ a) = ${s}, ${heron.opNames().length} ops`);
JS
HERON_LIBDIR= HERON_INCLUDE_DIR= node smoke.js
