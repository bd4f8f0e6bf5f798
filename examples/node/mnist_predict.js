'use strict';
// Loads a .heron MNIST model (the one `make demo` exports) and prints its predictions for the
// first 20 MNIST-10k test images:   node examples/node/mnist_predict.js out/mnist/mnist.heron
const path = require('path');
const heron = require(process.env.HERON_NODE_PACKAGE || path.join(__dirname, '..', '..', 'javascript'));
const { mnistTest } = require('./idx');

const modelPath = process.argv[2] || path.join(__dirname, '..', '..', 'tests', 'data', 'mnist_convnet.heron');
const session = new heron.Session(modelPath);
const { images } = mnistTest(0, 20);
const x = heron.tensor(images, { shape: [20, 1, 28, 28] });
const [input] = session.inputNames;
const [output] = session.outputNames;
const logits = session.run({ [input]: x })[output];
const pred = heron.argmax(logits, { dim: 1 }).toArray();
console.log(`predictions: ${Array.from(pred).join(' ')}`);
