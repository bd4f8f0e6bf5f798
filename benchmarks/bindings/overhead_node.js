'use strict';
// Per-op call overhead from Node.js: heron.add on two 1-element float32 tensors, median over
// repeats of ns per call (the result is dropped; the garbage collector releases it).
const path = require('path');
const heron = require(path.join(__dirname, '..', '..', 'javascript'));
const iters = Number(process.argv[2] || 20000);
const reps = Number(process.argv[3] || 15);
const a = heron.tensor(new Float32Array([1]));
const b = heron.tensor(new Float32Array([1]));
const t = [];
for (let r = 0; r < reps; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) heron.add(a, b);
  t.push(Number(process.hrtime.bigint() - t0) / iters);
}
t.sort((x, y) => x - y);
console.log(t[Math.floor(reps / 2)].toFixed(1));
