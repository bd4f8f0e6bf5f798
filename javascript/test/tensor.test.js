'use strict';
const { test } = require('node:test');
const { heron, assert, checkLeaks, close } = require('./helpers');

checkLeaks();

test('tensors round-trip JavaScript data in every dtype', () => {
  const cases = [
    [new Float32Array([1.5, -2, 3.25]), 'float32'], [new Float64Array([1e-300, 2, -3]), 'float64'],
    [new Int8Array([-128, 0, 127]), 'int8'], [new Uint8Array([0, 1, 255]), 'uint8'],
    [new Int32Array([-(2 ** 31), 0, 2 ** 31 - 1]), 'int32'], [new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n]), 'int64'],
  ];
  for (const [arr, dt] of cases) {
    const t = heron.tensor(arr);
    assert.equal(t.dtype, dt);
    assert.deepEqual(t.shape, [3]);
    assert.deepEqual(Array.from(t.toArray()), Array.from(arr));
  }
  const b = heron.tensor([true, false, true]);
  assert.equal(b.dtype, 'bool');
  assert.deepEqual(b.toNested(), [true, false, true]);
  for (const dt of ['float16', 'bfloat16']) {
    const h = heron.tensor([0.5, -2, 1024], { dtype: dt });
    assert.equal(h.dtype, dt);
    assert.deepEqual(Array.from(h.toArray()), [0.5, -2, 1024]); // exactly representable in both
  }
});

test('nested arrays, shapes and scalars', () => {
  const t = heron.tensor([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(t.shape, [2, 3]);
  assert.equal(t.ndim, 2);
  assert.equal(t.numel, 6);
  assert.equal(t.device, 'cpu');
  assert.deepEqual(t.toNested(), [[1, 2, 3], [4, 5, 6]]);
  const r = heron.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [3, 2] });
  assert.deepEqual(r.toNested(), [[1, 2], [3, 4], [5, 6]]);
  const s = heron.tensor(7.5);
  assert.deepEqual(s.shape, []);
  assert.equal(s.item(), 7.5);
  assert.equal(heron.tensor([5n], { dtype: 'int64' }).item(), 5n);
  const e = heron.tensor([], { shape: [0, 3] });
  assert.deepEqual(e.shape, [0, 3]);
  assert.equal(e.toArray().length, 0);
});

test('bad tensor input gives TypeError / RangeError before the engine', () => {
  assert.throws(() => heron.tensor('abc'), TypeError);
  assert.throws(() => heron.tensor([[1, 2], [3]]), /ragged/);
  assert.throws(() => heron.tensor([1, 2, 3], { shape: [2, 2] }), RangeError);
  assert.throws(() => heron.tensor([1], { dtype: 'float128' }), /unknown dtype/);
  assert.throws(() => heron.tensor([1], { colour: 'red' }), /unknown option 'colour'/);
  assert.throws(() => heron.tensor([1, 2]).item(), /2 elements/);
  assert.throws(() => new heron.Tensor({}), TypeError);
});

test('a released or foreign handle raises instead of crashing', () => {
  const t = heron.tensor([1, 2]);
  t.release();
  assert.throws(() => t.shape, /released/);
  t.release(); // twice is harmless
  const fake = Object.create(heron.Tensor.prototype);
  fake._h = { not: 'a handle' };
  assert.throws(() => fake.shape, TypeError);
  const m = new heron.Model(require('path').join(__dirname, '..', '..', 'tests', 'data', 'mnist_convnet.heron'));
  const wrong = Object.create(heron.Tensor.prototype);
  wrong._h = m._h; // a model handle where a tensor is expected
  assert.throws(() => wrong.shape, /expected a heron_tensor handle, got heron_model/);
});

test('the op-call fast path (V8 API) checks its handles and raises engine errors like the general path', () => {
  const { binding, opHandle } = require('../lib/runtime');
  const a = heron.tensor(new Float32Array([1, 2]));
  // results: right values, and one handle each (released by the collector; checkLeaks counts them)
  assert.deepEqual(Array.from(heron.add(a, a).toArray()), [2, 4]);
  assert.deepEqual(Array.from(new Float32Array(binding.tensor_to_host(binding.op_call_fast(opHandle('mul'), a._h, a._h)))), [1, 4]);
  // an absent optional input: null from the generated code, undefined as well
  const w = heron.tensor([[1, 0], [0, 2], [1, 1]]);
  assert.deepEqual(Array.from(heron.linear(a, w).toArray()), [1, 4, 3]);
  const viaUndefined = binding.op_call_fast(opHandle('linear'), a._h, w._h, undefined);
  assert.equal(binding.handle_kind(viaUndefined), 'heron_tensor');
  // released, foreign and wrong-kind handles: a TypeError naming the problem, never a crash
  const r = heron.tensor([1, 2]);
  r.release();
  assert.throws(() => heron.add(r, a), /this heron_tensor was released/);
  assert.throws(() => heron.add(a, r), /this heron_tensor was released/);
  const fake = Object.create(heron.Tensor.prototype);
  fake._h = { not: 'a handle' };
  assert.throws(() => heron.add(fake, a), /expected a heron_tensor handle, got another value/);
  for (const v of [1, 'x', {}, [], () => 0, 2n, Symbol('s'), new Float32Array(2)]) {
    assert.throws(() => binding.op_call_fast(opHandle('add'), v, a._h), TypeError);
  }
  const m = new heron.Model(require('path').join(__dirname, '..', '..', 'tests', 'data', 'mnist_convnet.heron'));
  const wrong = Object.create(heron.Tensor.prototype);
  wrong._h = m._h;
  assert.throws(() => heron.add(wrong, a), /expected a heron_tensor handle, got heron_model/);
  assert.throws(() => binding.op_call_fast(a._h, a._h, a._h), /expected a heron_op handle, got heron_tensor/);
  assert.throws(() => binding.op_call_fast(), /at most 21 inputs/);
  assert.throws(() => binding.op_call_fast(opHandle('add'), ...new Array(22).fill(a._h)), /at most 21 inputs/);
  // engine errors carry the ABI's code, status and op, as from the general path
  const b = heron.tensor(new Float32Array([1, 2, 3]));
  let err = null;
  try { heron.add(a, b); } catch (e) { err = e; }
  assert.ok(err instanceof RangeError, String(err));
  assert.equal(err.code, 'HERON_ERR_INVALID_ARGUMENT');
  assert.equal(err.op, 'add');
  assert.throws(() => binding.op_call_fast(opHandle('add'), a._h), /add/);
  // the addon keeps working after each of those errors
  assert.deepEqual(Array.from(heron.sub(a, a).toArray()), [0, 0]);
  m.release();
});

test('a worker thread loading the addon gets an error, and the main thread goes on', async () => {
  // the addon's handle boxes belong to the JavaScript thread that loaded it first (fast.cc)
  const { Worker } = require('worker_threads');
  const w = new Worker(`require(${JSON.stringify(require('path').join(__dirname, '..'))});`, { eval: true });
  const err = await new Promise((resolve) => {
    w.on('error', resolve);
    w.on('exit', () => resolve(null));
  });
  assert.ok(err, 'the worker must fail to load heron');
  assert.match(String(err.message), /worker threads cannot load it/);
  assert.deepEqual(Array.from(heron.add(heron.tensor([1]), heron.tensor([2])).toArray()), [3]);
});

test('dropped results are released by the collector, young and old', () => {
  // handles die young (a scavenge empties their weak handles), and after surviving collections
  // (only a full collection finds those): both must come back to the live count
  global.gc();
  const before = heron.liveHandles();
  const a = heron.tensor([1]);
  for (let i = 0; i < 100000; i++) heron.add(a, a); // several scavenges
  const kept = [];
  for (let i = 0; i < 1000; i++) kept.push(heron.add(a, a));
  for (let i = 0; i < 100000; i++) heron.add(a, a); // the kept ones survive scavenges and age
  global.gc();
  assert.equal(heron.liveHandles(), before + 1 + kept.length);
  kept.length = 0;
  global.gc();
  assert.equal(heron.liveHandles(), before + 1);
  assert.equal(a.numel, 1); // (keeps `a` alive up to here)
});

test('version, devices, seeds and threads', () => {
  assert.match(heron.version, /^\d+\.\d+\.\d+/);
  assert.ok(heron.deviceTypes().includes('cpu'));
  assert.equal(heron.deviceCount('cpu'), 1);
  assert.throws(() => heron.deviceCount('gpu'), /unknown device/);
  heron.manualSeed(42);
  const a = heron.randn([4]).toArray();
  heron.manualSeed(42);
  const b = heron.randn([4]).toArray();
  assert.deepEqual(Array.from(a), Array.from(b));
  const n = heron.getNumThreads();
  heron.setNumThreads(1);
  assert.equal(heron.getNumThreads(), 1);
  heron.setNumThreads(n);
  close([1], [1]);
});

test('native tensor memory drives the garbage collector (no growth without bound)', () => {
  // 2000 dropped 1 MiB results: V8 sees only small JavaScript objects, so unless the addon reports
  // the tensors' bytes as external memory nothing prompts a collection and the process grows by
  // gigabytes (measured before the fix: 2.5 GB after 5000).
  const { execFileSync } = require('child_process');
  const script = `
    const heron = require(${JSON.stringify(require('path').join(__dirname, '..'))});
    const x = heron.zeros([1 << 18]);
    let peak = 0;
    for (let i = 0; i < 2000; i++) {
      heron.add(x, x);
      if (i % 50 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    process.stdout.write(String(peak));`;
  const peak = Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
  assert.ok(peak > 0);
  assert.ok(peak < 600 * 2 ** 20, `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB for 1 MiB tensors dropped one at a time`);
});
