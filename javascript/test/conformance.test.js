'use strict';
// Runs every case of tests/conformance/cases.json (written by the Python reference with numpy as
// the oracle; format in tests/conformance/README.md) through the generic op call.
const { test } = require('node:test');
const fs = require('fs');
const path = require('path');
const { heron, assert, checkLeaks } = require('./helpers');

checkLeaks();
const FILE = process.env.HERON_CONFORMANCE_CASES || path.join(__dirname, '..', '..', 'tests', 'conformance', 'cases.json');

function num(v) {
  if (v === 'nan') return NaN;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  return v;
}

function decode(T) {
  if (T === null) return null;
  if (Array.isArray(T)) return T.map(decode);
  const { dtype, shape, data } = T;
  if (dtype === 'bool') return heron.tensor(data.map(Boolean), { shape, dtype });
  if (dtype === 'int64') return heron.tensor(data.map((x) => BigInt(x)), { shape, dtype });
  return heron.tensor(data.map(num), { shape, dtype });
}

function compare(id, what, got, want, rtol, atol) {
  assert.equal(got.dtype, want.dtype, `${id}: ${what} dtype`);
  assert.deepEqual(got.shape, want.shape, `${id}: ${what} shape`);
  const g = Array.from(got.toArray());
  const w = want.data.map(num);
  const exact = !want.dtype.startsWith('float') && want.dtype !== 'bfloat16';
  for (let i = 0; i < w.length; i++) {
    const a = want.dtype === 'bool' ? g[i] !== 0 : Number(g[i]);
    const b = want.dtype === 'bool' ? Boolean(w[i]) : Number(w[i]);
    if (exact) assert.equal(a, b, `${id}: ${what}[${i}]`);
    else if (Number.isNaN(b)) assert.ok(Number.isNaN(a), `${id}: ${what}[${i}] = ${a}, want NaN`);
    else if (!Number.isFinite(b)) assert.equal(a, b, `${id}: ${what}[${i}]`);
    else assert.ok(Math.abs(a - b) <= atol + rtol * Math.abs(b), `${id}: ${what}[${i}] = ${a}, want ${b}`);
  }
}

function flatInputs(ins) {
  const out = [];
  for (const t of ins) {
    if (Array.isArray(t)) out.push(...t);
    else out.push(t);
  }
  return out;
}

function runCase(c) {
  const rtol = c.rtol ?? 1e-5;
  const atol = c.atol ?? 1e-6;
  const ins = c.inputs.map(decode);
  const wantGrads = c.grad_outputs ? c.grads : null;
  if (wantGrads) {
    ins.forEach((t, k) => {
      if (t === null || wantGrads[k] === null) return;
      if (Array.isArray(t)) t.forEach((e, j) => { if (wantGrads[k][j] !== null) e.requiresGrad = true; });
      else t.requiresGrad = true;
    });
  }
  if (c.seed !== undefined) heron.manualSeed(c.seed);
  let outs = heron.callOp(c.op, flatInputs(ins), c.attrs || {});
  if (!Array.isArray(outs)) outs = [outs];
  const flat = (xs) => xs.flatMap((x) => (Array.isArray(x) ? x : [x]));
  const wantOuts = flat(c.outputs);
  assert.equal(outs.length, wantOuts.length, `${c.id}: number of outputs`);
  outs.forEach((o, k) => compare(c.id, `output ${k}`, o, wantOuts[k], rtol, atol));
  if (wantGrads) {
    const gos = flat(c.grad_outputs);
    const roots = [];
    const grads = [];
    gos.forEach((g, k) => { if (g !== null) { roots.push(outs[k]); grads.push(decode(g)); } });
    heron.backward(roots, grads);
    ins.forEach((t, k) => {
      const w = wantGrads[k];
      if (w === null || t === null) return;
      if (Array.isArray(t)) t.forEach((e, j) => { if (w[j] !== null) compare(c.id, `grad of input ${k}[${j}]`, e.grad, w[j], rtol, atol); });
      else compare(c.id, `grad of input ${k}`, t.grad, w, rtol, atol);
    });
  }
}

test('every conformance case gives the reference outputs and gradients', (t) => {
  if (!fs.existsSync(FILE)) {
    if (process.env.CI === 'true') assert.fail(`${FILE} is missing`);
    t.skip(`!!! ${FILE} is missing: run tests/conformance/make_cases.py`);
    return;
  }
  const { version, cases } = JSON.parse(fs.readFileSync(FILE, 'utf8'));
  assert.equal(version, 1);
  assert.ok(cases.length > 0);
  const failures = [];
  for (const c of cases) {
    try {
      runCase(c);
    } catch (e) {
      failures.push(`${c.id}: ${e.message.split('\n')[0]}`);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases failed`);
});
