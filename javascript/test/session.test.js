'use strict';
const { test } = require('node:test');
const path = require('path');
const fs = require('fs');
const os = require('os');
const { heron, assert, checkLeaks, close } = require('./helpers');
const { mnistTest } = require('../../examples/node/idx');

checkLeaks();
const MODEL = path.join(__dirname, '..', '..', 'tests', 'data', 'mnist_convnet.heron');

test('a .heron model runs in a session, sync and async, and classifies MNIST test images', async () => {
  const model = new heron.Model(MODEL);
  assert.deepEqual(model.inputs, [{ name: 'image', dtype: 'float32', shape: [-1, 1, 28, 28] }]);
  assert.deepEqual(model.outputs.map((o) => o.name), ['logits']);
  assert.match(model.text(), /conv2d/);
  const s = new heron.Session(model, { threads: 1, profiling: true });
  const { images, labels } = mnistTest(0, 100);
  const x = heron.tensor(images, { shape: [100, 1, 28, 28] });
  const out = s.run({ image: x }).logits;
  assert.deepEqual(out.shape, [100, 10]);
  const pred = heron.argmax(out, { dim: 1 }).toArray();
  let correct = 0;
  for (let i = 0; i < 100; i++) correct += Number(pred[i]) === labels[i] ? 1 : 0;
  assert.ok(correct >= 95, `accuracy on 100 test images ${correct}%`); // the model scores 97.7% on the test split
  const outAsync = (await s.runAsync({ image: x })).logits;
  close(outAsync.toArray(), out.toArray(), 0);
  // several runs in flight at once on one session
  const many = await Promise.all([1, 2, 3, 4].map(() => s.runAsync({ image: x })));
  for (const r of many) close(r.logits.toArray(), out.toArray(), 0);
  const prof = s.profile();
  assert.ok(Array.isArray(prof.ops) || typeof prof === 'object');
  // the same model from bytes
  const s2 = new heron.Session(fs.readFileSync(MODEL));
  close(s2.run({ image: x }).logits.toArray(), out.toArray(), 1e-6);
  // the arena and micro-batching switches change how, not what
  const s3 = new heron.Session(model, { arena: false, microbatch: false });
  close(s3.run({ image: x }).logits.toArray(), out.toArray(), 1e-6);
  assert.throws(() => new heron.Session(model, { microBatch: false }), /microBatch/);
});

test('session errors name what the model expects', async () => {
  const s = new heron.Session(MODEL);
  assert.throws(() => s.run({ img: heron.zeros([1, 1, 28, 28]) }), /image/);
  assert.throws(() => s.run({ image: heron.zeros([1, 28, 28]) }), RangeError);
  assert.throws(() => s.run({ image: [1, 2] }), TypeError);
  await assert.rejects(s.runAsync({ image: heron.zeros([1, 3, 28, 28]) }), /image/);
  assert.throws(() => new heron.Session(Buffer.from('not a model')), /model|magic|heron/i);
  assert.throws(() => new heron.Session('/no/such/file.heron'), /no\/such/);
  assert.throws(() => new heron.Session(MODEL, { device: 'tpu' }), /tpu/);
});

test('safetensors round-trip through a file and a buffer', () => {
  const t = {
    w: heron.tensor([[1, 2], [3, 4]], { dtype: 'float64' }),
    i: heron.tensor(new Int32Array([7, -8, 9])),
  };
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'heron-')), 'x.safetensors');
  heron.saveSafetensors(t, file, { note: 'js' });
  const back = heron.loadSafetensors(file);
  assert.deepEqual(Object.keys(back).sort(), ['i', 'w']);
  assert.deepEqual(back.w.toNested(), [[1, 2], [3, 4]]);
  assert.equal(back.w.dtype, 'float64');
  assert.deepEqual(Array.from(back.i.toArray()), [7, -8, 9]);
  const bytes = heron.saveSafetensors(t);
  assert.ok(Buffer.isBuffer(bytes));
  assert.deepEqual(heron.loadSafetensors(bytes).w.toNested(), [[1, 2], [3, 4]]);
  // PyTorch's own file (tests/data) loads unchanged
  const torch = heron.loadSafetensors(path.join(__dirname, '..', '..', 'tests', 'data', 'convnet_torch.safetensors'));
  assert.ok(Object.keys(torch).length > 0);
  assert.throws(() => heron.loadSafetensors(Buffer.from([1, 2, 3])), /safetensors|header|short|truncated/i);
  assert.throws(() => heron.saveSafetensors({ w: 1 }), /not a Tensor/);
});
