'use strict';
// Shared by the test files: the live-handle check every file ends with, and a numeric closeness check.
const assert = require('node:assert/strict');
const { after, before } = require('node:test');
const heron = require('..');

async function settle() {
  for (let i = 0; i < 4; i++) {
    global.gc();
    await new Promise((r) => setImmediate(r));
  }
}

/** Registers before/after hooks asserting that the file leaves no live handle behind. */
function checkLeaks() {
  let start = 0;
  before(async () => {
    await settle();
    start = heron.liveHandles();
  });
  after(async () => {
    await settle();
    assert.equal(heron.liveHandles(), start, 'every handle created by this file is released');
  });
}

function close(got, want, tol = 1e-6) {
  const g = Array.from(got, Number);
  const w = Array.from(want, Number);
  assert.equal(g.length, w.length, `length ${g.length} != ${w.length}`);
  for (let i = 0; i < g.length; i++) {
    if (Number.isNaN(w[i])) assert.ok(Number.isNaN(g[i]), `[${i}] ${g[i]} is not NaN`);
    else assert.ok(Math.abs(g[i] - w[i]) <= tol * (1 + Math.abs(w[i])), `[${i}] ${g[i]} != ${w[i]}`);
  }
}

module.exports = { heron, assert, checkLeaks, close, settle };
