#!/usr/bin/env node
// npm pack / npm publish: copies heron.h, heron_ops.h and libheron into vendor/, so the package
// builds and runs where it is installed without this repository.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const find = (what) => execFileSync(process.execPath, [path.join(__dirname, 'find-heron.js'), what], { encoding: 'utf8' }).trim();
const inc = find('include');
const lib = find('libdir');
if (path.resolve(inc) === path.join(root, 'vendor', 'include')) process.exit(0); // already vendored
fs.rmSync(path.join(root, 'vendor'), { recursive: true, force: true });
fs.mkdirSync(path.join(root, 'vendor', 'include'), { recursive: true });
fs.mkdirSync(path.join(root, 'vendor', 'lib'), { recursive: true });
for (const h of ['heron.h', 'heron_ops.h']) fs.copyFileSync(path.join(inc, h), path.join(root, 'vendor', 'include', h));
for (const f of fs.readdirSync(lib)) {
  if (!f.startsWith('libheron.so')) continue;
  // symlinks become copies of their target (npm packs files, not links)
  fs.copyFileSync(fs.realpathSync(path.join(lib, f)), path.join(root, 'vendor', 'lib', f));
}
console.log(`vendored heron from ${inc} and ${lib}`);
