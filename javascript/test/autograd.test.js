'use strict';
const { test } = require('node:test');
const { heron, assert, checkLeaks, close } = require('./helpers');

checkLeaks();

test('gradients match closed forms', () => {
  const x = heron.tensor([1, 2, 3], { requiresGrad: true });
  const y = heron.sum(heron.mul(x, x)); // d/dx = 2x
  assert.ok(y.requiresGrad);
  assert.equal(typeof y.gradFn, 'string');
  y.backward();
  close(x.grad.toArray(), [2, 4, 6]);
  const z = heron.sum(heron.exp(x)); // accumulates: 2x + e^x
  z.backward();
  close(x.grad.toArray(), [2 + Math.E, 4 + Math.E ** 2, 6 + Math.E ** 3], 1e-5);
  x.zeroGrad();
  close(x.grad.toArray(), [0, 0, 0]);
  const [g] = heron.grad(heron.sum(heron.sin(x)), [x]);
  close(g.toArray(), [Math.cos(1), Math.cos(2), Math.cos(3)], 1e-6);
  assert.ok(x.isLeaf && !heron.mul(x, 2).isLeaf);
  assert.equal(x.detach().requiresGrad, false);
});

test('matmul and softmax cross-entropy gradients', () => {
  const w = heron.tensor([[1, 0], [0, 1], [1, 1]], { requiresGrad: true }); // (3, 2)
  const xin = heron.tensor([[1, 2, 3]]);
  const out = heron.matmul(xin, w); // [[4, 5]]
  heron.sum(out).backward();
  close(w.grad.toArray(), [1, 1, 2, 2, 3, 3]); // d sum(x w)/dw = x^T 1
  const logits = heron.tensor([[0, 0]], { requiresGrad: true });
  heron.crossEntropy(logits, heron.tensor([1n], { dtype: 'int64' })).backward();
  close(logits.grad.toArray(), [0.5, -0.5]); // softmax - onehot
});

test('noGrad turns recording off and restores it', () => {
  const x = heron.tensor([1], { requiresGrad: true });
  const y = heron.noGrad(() => heron.mul(x, 2));
  assert.equal(y.requiresGrad, false);
  assert.ok(heron.isGradEnabled());
  assert.throws(() => heron.noGrad(() => { throw new Error('inside'); }), /inside/);
  assert.ok(heron.isGradEnabled());
  assert.throws(() => heron.tensor([1]).backward(), (e) => e.code !== undefined);
});

test('SGD with momentum and Adam follow their update rules', () => {
  // f(p) = sum(p^2) / 2, grad = p
  const p = heron.tensor([1, -2], { requiresGrad: true });
  const sgd = new heron.optim.SGD([p], { lr: 0.1, momentum: 0.9 });
  let buf = null;
  let ref = [1, -2];
  for (let k = 0; k < 3; k++) {
    sgd.zeroGrad();
    heron.div(heron.sum(heron.mul(p, p)), 2).backward();
    sgd.step();
    const g = ref;
    buf = buf === null ? g.slice() : buf.map((b, i) => 0.9 * b + g[i]);
    ref = ref.map((v, i) => v - 0.1 * buf[i]);
  }
  close(p.toArray(), ref, 1e-6);
  const q = heron.tensor([0.5, 3], { requiresGrad: true });
  const adam = new heron.optim.Adam([q], { lr: 0.01 });
  let m = [0, 0];
  let v = [0, 0];
  let r = [0.5, 3];
  for (let t = 1; t <= 3; t++) {
    adam.zeroGrad();
    heron.div(heron.sum(heron.mul(q, q)), 2).backward();
    adam.step();
    const g = r;
    m = m.map((mi, i) => 0.9 * mi + 0.1 * g[i]);
    v = v.map((vi, i) => 0.999 * vi + 0.001 * g[i] * g[i]);
    r = r.map((ri, i) => ri - (0.01 / (1 - 0.9 ** t)) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
  }
  close(q.toArray(), r, 1e-5);
  assert.throws(() => new heron.optim.SGD([1, 2]), TypeError);
  assert.throws(() => new heron.optim.Adam([q], { learningRate: 1 }), /unknown option/);
});

test('async backward and optimizer steps give the synchronous results', async () => {
  const mk = () => heron.tensor([0.5, -1.5, 2], { requiresGrad: true });
  const a = mk();
  const b = mk();
  const loss = (p) => heron.sum(heron.mul(heron.exp(p), p));
  loss(a).backward();
  await loss(b).backwardAsync();
  close(b.grad.toArray(), a.grad.toArray(), 0);
  const o1 = new heron.optim.Adam([a], { lr: 0.1 });
  const o2 = new heron.optim.Adam([b], { lr: 0.1 });
  for (let k = 0; k < 3; k++) {
    o1.step();
    await o2.stepAsync();
    assert.equal(b.requiresGrad, true);
  }
  close(b.toArray(), a.toArray(), 0);
  const [s] = await heron.callOpAsync('sum', [b]);
  close(s.toArray(), [heron.sum(a).item()], 1e-7);
  await heron.backwardAsync([heron.sum(b)]);
  await assert.rejects(heron.callOpAsync('reshape', [b], { shape: [2, 2] }), RangeError);
  await assert.rejects(heron.tensor([1]).backwardAsync(), /grad/);
  const sgd = new heron.optim.SGD([b], { lr: 0.5, momentum: 0.9 });
  await sgd.stepAsync(); // in-place update of a leaf that requires grad: runs with grad mode off
});
