'use strict';
// examples/node/train_mlp.js trains an MLP on MNIST-10k with the JavaScript API: >= 95% test accuracy.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('child_process');
const path = require('path');

test('the MNIST MLP trained from JavaScript reaches 95% test accuracy', () => {
  const out = execFileSync(process.execPath, [path.join(__dirname, '..', '..', 'examples', 'node', 'train_mlp.js')],
    { encoding: 'utf8', timeout: 300000 });
  const last = out.trim().split('\n').pop();
  const m = /^test_accuracy=([0-9.]+)$/.exec(last);
  assert.ok(m, `last line: ${last}`);
  assert.ok(Number(m[1]) >= 0.95, `test accuracy ${m[1]}`);
});
