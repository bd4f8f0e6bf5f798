'use strict';
const { test } = require('node:test');
const path = require('path');
const fs = require('fs');
const { heron, assert, checkLeaks, close } = require('./helpers');

checkLeaks();

test('every op of the schema is a function, and the list equals the engine\'s', () => {
  const yaml = fs.readFileSync(path.join(__dirname, '..', 'lib', 'ops_gen.js'), 'utf8');
  const engine = heron.opNames();
  const generated = [...yaml.matchAll(/^ops\.\w+ = function heron_(\w+)\(/gm)].map((m) => m[1]);
  assert.deepEqual(generated, engine, 'one generated function per engine op, in schema order');
  for (const name of engine) {
    const js = name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
    assert.equal(typeof heron[js], 'function', `heron.${js} (${name})`);
    assert.ok(yaml.includes(`rt.call(${JSON.stringify(name)},`), `${name} calls the engine by its schema name`);
  }
});

test('ops compute the closed forms, with options and defaults', () => {
  const a = heron.tensor([[1, 2], [3, 4]]);
  close(heron.add(a, a, { alpha: 0.5 }).toArray(), [1.5, 3, 4.5, 6]);
  close(heron.add(a, 1).toArray(), [2, 3, 4, 5]);
  close(a.matmul(a).toArray(), [7, 10, 15, 22]);
  close(heron.sum(a, { dim: 1 }).toArray(), [3, 7]);
  assert.deepEqual(heron.sum(a, { dim: [0], keepdim: true }).shape, [1, 2]);
  close(heron.softmax(heron.tensor([0, Math.log(3)]), 0).toArray(), [0.25, 0.75]);
  close(heron.exp(heron.tensor([0, 1])).toArray(), [1, Math.E]);
  close(heron.clamp(heron.tensor([-2, 0.5, 3]), { min: 0, max: 1 }).toArray(), [0, 0.5, 1]);
  assert.deepEqual(heron.reshape(heron.arange(6), [2, 3]).shape, [2, 3]);
  assert.deepEqual(heron.zeros([2, 3], { dtype: 'int32' }).toNested(), [[0, 0, 0], [0, 0, 0]]);
  const parts = heron.split(heron.arange(5), { splitSize: 2 });
  assert.deepEqual(parts.map((p) => p.toNested()), [[0n, 1n], [2n, 3n], [4n]]); // arange of integers is int64
  const [vals, idx] = heron.topk(heron.tensor([3, 1, 4, 1, 5]), 2);
  close(vals.toArray(), [5, 4]);
  assert.deepEqual(Array.from(idx.toArray()), [4n, 2n]);
  close(heron.var(heron.tensor([1, 2, 3, 4])).toArray(), [5 / 3]);
  // conv2d of a 3x3 ones kernel over a 4x4 ramp: sums of 3x3 windows
  const x = heron.reshape(heron.arange(16, { dtype: 'float32' }), [1, 1, 4, 4]);
  const w = heron.ones([1, 1, 3, 3]);
  close(heron.conv2d(x, w).toArray(), [45, 54, 81, 90]);
  // a tensor method generated from `method: true`
  close(a.mul(2).sub(1).toArray(), [1, 3, 5, 7]);
});

test('wrong argument types are caught before the engine, engine errors carry the ABI message', () => {
  const a = heron.tensor([1, 2, 3]);
  assert.throws(() => heron.sum(a, { dim: 'x' }), { name: 'TypeError', message: /'dim' must be an integer or an array of integers/ });
  assert.throws(() => heron.sum(a, { dims: 0 }), /unknown option 'dims'/);
  assert.throws(() => heron.reshape(a), { name: 'TypeError', message: /^reshape\(input, shape\): wrong number of arguments \(1\)$/ });
  assert.throws(() => heron.reshape(a, undefined), /missing required argument 'shape'/);
  assert.throws(() => heron.relu(a, { x: 1 }), { name: 'TypeError', message: /^relu\(input\): wrong number of arguments \(2\)$/ });
  assert.throws(() => heron.add(a, a, {}, 1), /add\(input, other\[, options\]\): wrong number of arguments \(4\)/);
  assert.throws(() => heron.relu(), TypeError);
  assert.throws(() => heron.add(a, {}), TypeError);
  assert.equal(heron.cat, undefined); // the schema calls it concat
  try {
    heron.reshape(a, [2, 2]);
    assert.fail('no error');
  } catch (e) {
    assert.ok(e instanceof RangeError);
    assert.equal(e.code, 'HERON_ERR_INVALID_ARGUMENT');
    assert.equal(e.op, 'reshape');
    assert.match(e.message, /shape \[2, 2\] is invalid for input of size 3/);
  }
  assert.throws(() => heron.matmul(a, heron.tensor([1, 2], { dtype: 'int32' })), (e) => e.code !== undefined);
  assert.throws(() => heron.crossEntropy(heron.zeros([2, 3]), heron.zeros([2]), { reduction: 'avg' }), /reduction/);
});

test('the generic op call takes schema names and tagged attribute values', () => {
  const a = heron.tensor([[1, 2], [3, 4]]);
  close(heron.callOp('sum', [a], { dim: { ints: [0] } }).toArray(), [4, 6]);
  close(heron.callOp('add', [a, a], { alpha: { scalar_float: 2.0 } }).toArray(), [3, 6, 9, 12]);
  assert.throws(() => heron.callOp('sum', [a], { axis: 0 }), /unknown attribute 'axis'/);
  assert.throws(() => heron.callOp('no_such_op', [a]), /no_such_op/);
});
