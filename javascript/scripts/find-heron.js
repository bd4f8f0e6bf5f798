#!/usr/bin/env node
// Prints where libheron and heron.h are, for binding.gyp: `node scripts/find-heron.js include|libdir`.
// Order: HERON_INCLUDE_DIR / HERON_LIBDIR; the package's own copy (vendor/, filled by `npm pack`'s
// prepack step); the repository's build (../c_api/include and ../python/heron/lib).
'use strict';
const fs = require('fs');
const path = require('path');

const what = process.argv[2];
const root = path.resolve(__dirname, '..');
const candidates = {
  include: [process.env.HERON_INCLUDE_DIR, path.join(root, 'vendor', 'include'), path.join(root, '..', 'c_api', 'include')],
  libdir: [process.env.HERON_LIBDIR, path.join(root, 'vendor', 'lib'), path.join(root, '..', 'python', 'heron', 'lib')],
};
const file = { include: 'heron.h', libdir: 'libheron.so' }[what];
if (!file) {
  console.error('usage: find-heron.js include|libdir');
  process.exit(2);
}
for (const dir of candidates[what]) {
  if (dir && fs.existsSync(path.join(dir, file))) {
    process.stdout.write(path.resolve(dir));
    process.exit(0);
  }
}
console.error(`heron: cannot find ${file}; build Heron first (make build at the repository root) or set ` +
  (what === 'include' ? 'HERON_INCLUDE_DIR' : 'HERON_LIBDIR'));
process.exit(1);
