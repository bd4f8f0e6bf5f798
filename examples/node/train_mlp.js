'use strict';
// Trains an MLP (784-256-10, ReLU) on MNIST-10k with Heron's JavaScript API: Adam, mini-batches of
// 64, dropout, a few epochs; prints the test accuracy last:  node examples/node/train_mlp.js [epochs]
const path = require('path');
const heron = require(process.env.HERON_NODE_PACKAGE || path.join(__dirname, '..', '..', 'javascript'));
const { mnistTest, TEST_START } = require('./idx');

const epochs = Number(process.argv[2] || 12);
const TRAIN = TEST_START; // items [0, 8500) train, [8500, 10000) test
heron.manualSeed(0);

// the training split: mnistTest(first, n) counts from the test start, so read from -TEST_START
const train = mnistTest(-TEST_START, TRAIN);
const test = mnistTest(0, 10000 - TEST_START);

function param(shape, fanIn) { // PyTorch's default Linear init: U(-1/sqrt(fanIn), 1/sqrt(fanIn))
  const b = 1 / Math.sqrt(fanIn);
  const t = heron.sub(heron.mul(heron.rand(shape), 2 * b), b);
  t.requiresGrad = true;
  return t;
}
const w1 = param([256, 784], 784);
const b1 = param([256], 784);
const w2 = param([10, 256], 256);
const b2 = param([10], 256);
// inputs standardised with MNIST's mean and deviation; dropout on the hidden layer while training
const forward = (x, training) => {
  const h = heron.relu(heron.linear(heron.div(heron.sub(x, 0.1307), 0.3081), w1, { bias: b1 }));
  return heron.linear(training ? heron.dropout(h, { p: 0.3, training: true })[0] : h, w2, { bias: b2 });
};
const opt = new heron.optim.Adam([w1, b1, w2, b2], { lr: 1e-3 });

let seed = 12345;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const order = Array.from({ length: TRAIN }, (_, i) => i);
const bx = new Float32Array(64 * 784);
const by = new BigInt64Array(64);
for (let e = 1; e <= epochs; e++) {
  opt.options.lr = e > Math.ceil(epochs * 2 / 3) ? 3e-4 : 1e-3; // a step decay for the last third
  for (let i = TRAIN - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
  let lossSum = 0;
  let steps = 0;
  for (let s = 0; s + 64 <= TRAIN; s += 64) {
    for (let k = 0; k < 64; k++) {
      const idx = order[s + k];
      bx.set(train.images.subarray(idx * 784, (idx + 1) * 784), k * 784);
      by[k] = BigInt(train.labels[idx]);
    }
    opt.zeroGrad();
    const loss = heron.crossEntropy(forward(heron.tensor(bx, { shape: [64, 784] }), true), heron.tensor(by));
    loss.backward();
    opt.step();
    lossSum += loss.item();
    steps += 1;
  }
  console.log(`epoch ${e}: loss ${(lossSum / steps).toFixed(4)}`);
}
const logits = heron.noGrad(() => forward(heron.tensor(test.images, { shape: [test.labels.length, 784] }), false));
const pred = heron.argmax(logits, { dim: 1 }).toArray();
let correct = 0;
for (let i = 0; i < test.labels.length; i++) correct += Number(pred[i]) === test.labels[i] ? 1 : 0;
console.log(`test_accuracy=${(correct / test.labels.length).toFixed(4)}`);
