'use strict';
// Reads the MNIST-10k IDX files (gzip or raw) bundled with Heron; the test split is items 8500-9999,
// as in python/heron/datasets/mnist.py.
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const DATA = path.join(__dirname, '..', '..', 'python', 'heron', 'datasets', 'data', 'mnist10k');
const TEST_START = 8500;

function readIdx(file) {
  let b = fs.readFileSync(file);
  if (b[0] === 0x1f && b[1] === 0x8b) b = zlib.gunzipSync(b);
  const ndim = b[3];
  const dims = [];
  for (let i = 0; i < ndim; i++) dims.push(b.readUInt32BE(4 + 4 * i));
  const count = dims.reduce((a, c) => a * c, 1);
  const off = 4 + 4 * ndim;
  if (b[2] !== 0x08 || b.length !== off + count) throw new Error(`${file}: not an unsigned-byte IDX file of the expected size`);
  return { dims, data: b.subarray(off) };
}

/** {images: Float32Array (n*784, scaled to [0, 1]), labels: Uint8Array} for test items [first, first + n). */
function mnistTest(first, n, dir = DATA) {
  const img = readIdx(path.join(dir, 'images-idx3-ubyte.gz'));
  const lab = readIdx(path.join(dir, 'labels-idx1-ubyte.gz'));
  const s = TEST_START + first;
  const images = new Float32Array(n * 784);
  for (let i = 0; i < n * 784; i++) images[i] = img.data[s * 784 + i] / 255;
  return { images, labels: lab.data.slice(s, s + n) };
}

module.exports = { readIdx, mnistTest, DATA, TEST_START };
