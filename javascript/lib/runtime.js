'use strict';
// The runtime under the generated op functions (ops_gen.js): the addon, op handles, attribute
// marshalling and the Tensor class those functions return.
const path = require('path');

function loadAddon() {
  const tried = [];
  for (const p of [path.join(__dirname, '..', 'build', 'Release', 'heron_node.node'),
    path.join(__dirname, '..', 'build', 'Debug', 'heron_node.node')]) {
    try {
      return require(p);
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
      tried.push(p);
    }
  }
  throw new Error(`heron: the native addon is not built (looked for ${tried.join(', ')}); run ` +
    '`npm_config_nodedir=/usr npm install` in the javascript folder');
}

const binding = loadAddon();

const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'int8', 'uint8', 'int32', 'int64', 'bool'];
const DTYPE_CODE = Object.fromEntries(DTYPES.map((d, i) => [d, i]));
const ATTR = { DEFAULT: 0, NONE: 1, INT: 2, FLOAT: 3, BOOL: 4, STRING: 5, INTS: 6, FLOATS: 7, DTYPE: 8 };
const DEFAULT_ATTR = Object.freeze([ATTR.DEFAULT, 0]); // an attribute left at its schema default

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an Array';
  if (typeof v === 'object') return `a ${v.constructor ? v.constructor.name : 'object'}`;
  return `${typeof v} ${String(v)}`;
}

function dtypeCode(where, d) {
  if (typeof d === 'string' && d in DTYPE_CODE) return DTYPE_CODE[d];
  throw new TypeError(`${where}: unknown dtype ${describe(d)}; expected one of ${DTYPES.join(', ')}`);
}

const INTERNAL = Symbol('heron.internal');

class Tensor {
  constructor(handle, token) {
    if (token !== INTERNAL && binding.handle_kind(handle) !== 'heron_tensor') {
      throw new TypeError('Tensor: construct tensors with heron.tensor(), heron.zeros(), ... (not from a raw value)');
    }
    this._h = handle;
  }
}

/** A Tensor around a handle the addon just returned (no check needed). */
function wrap(h) { return new Tensor(h, INTERNAL); }

const opCache = new Map();
function opHandle(name) {
  let h = opCache.get(name);
  if (h === undefined) {
    h = binding.op_find(name);
    opCache.set(name, h);
  }
  return h;
}

function scalarHandle(v) {
  if (typeof v === 'boolean') return binding.tensor_from_scalar(ATTR.BOOL, v ? 1 : 0, -1);
  if (typeof v === 'bigint') return binding.tensor_from_scalar(ATTR.INT, v, -1);
  if (Number.isInteger(v)) return binding.tensor_from_scalar(ATTR.INT, v, -1);
  return binding.tensor_from_scalar(ATTR.FLOAT, v, -1);
}

function inputHandle(op, v) {
  if (v === undefined || v === null) return null;
  if (v instanceof Tensor) return v._h;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return scalarHandle(v);
  throw new TypeError(`${op}: expected a Tensor or a number, got ${describe(v)}`);
}

function tensorList(op, name, v) {
  if (!Array.isArray(v)) throw new TypeError(`${op}: '${name}' must be an array of tensors, got ${describe(v)}`);
  return v;
}

// The default `options` of generated op functions: shared, so a call without options allocates none.
const NO_OPTIONS = Object.freeze({});

// Throws the TypeError for a call of op `name` with the wrong number of arguments.
function arity(name, usage, got) {
  throw new TypeError(`${name}(${usage}): wrong number of arguments (${got})`);
}

// `allowed`: an array of names, or (generated code) one comma-separated string, which costs no
// allocation per call.
function checkOptions(op, options, allowed) {
  if (options === NO_OPTIONS) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options) || options instanceof Tensor) {
    throw new TypeError(`${op}: options must be an object, got ${describe(options)}`);
  }
  for (const k in options) {
    if (!Object.prototype.hasOwnProperty.call(options, k)) continue;
    const ok = typeof allowed === 'string' ? allowed !== '' && `,${allowed},`.includes(`,${k},`) : allowed.includes(k);
    if (!ok) {
      const names = typeof allowed === 'string' ? (allowed === '' ? [] : allowed.split(',')) : allowed;
      throw new TypeError(`${op}: unknown option '${k}'` + (names.length ? `; expected one of ${names.join(', ')}` : ''));
    }
  }
}

function isInt(v) {
  return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
}

// [kind, value] for one attribute, checked against the schema type.
function attr(op, name, type, v, required) {
  if (v === undefined) {
    if (required) throw new TypeError(`${op}: missing required argument '${name}'`);
    return DEFAULT_ATTR;
  }
  if (v === null) return [ATTR.NONE, 0];
  const bad = (want) => new TypeError(`${op}: '${name}' must be ${want}, got ${describe(v)}`);
  // tagged values (conformance cases): {int: 3}, {float: 0.5}, {scalar_int: 2}, ...
  if (typeof v === 'object' && !Array.isArray(v) && !(v instanceof Tensor)) {
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const [k] = keys;
      const x = v[k];
      if (k === 'none') return [ATTR.NONE, 0];
      if (k === 'scalar_int') return [ATTR.INT, x];
      if (k === 'scalar_float') return [ATTR.FLOAT, x];
      if (k === 'float') return [ATTR.FLOAT, x === 'inf' ? Infinity : x === '-inf' ? -Infinity : x === 'nan' ? NaN : x];
      if (k === type || (k === 'string' && type === 'device')) return attr(op, name, type, x, required);
    }
    throw bad(`a ${type}`);
  }
  switch (type) {
    case 'int':
      if (!isInt(v)) throw bad('an integer');
      return [ATTR.INT, v];
    case 'float':
      if (typeof v !== 'number') throw bad('a number');
      return [ATTR.FLOAT, v];
    case 'bool':
      if (typeof v !== 'boolean') throw bad('a boolean');
      return [ATTR.BOOL, v ? 1 : 0];
    case 'string':
    case 'device':
      if (typeof v !== 'string') throw bad('a string');
      return [ATTR.STRING, v];
    case 'ints':
      if (isInt(v)) return [ATTR.INTS, [v]];
      if (!Array.isArray(v) || !v.every(isInt)) throw bad('an integer or an array of integers');
      return [ATTR.INTS, v];
    case 'floats':
      if (typeof v === 'number') return [ATTR.FLOATS, [v]];
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw bad('an array of numbers');
      return [ATTR.FLOATS, v];
    case 'dtype':
      return [ATTR.DTYPE, dtypeCode(`${op}: '${name}'`, v)];
    case 'scalar':
      if (typeof v === 'boolean') return [ATTR.BOOL, v ? 1 : 0];
      if (isInt(v)) return [ATTR.INT, v];
      if (typeof v !== 'number') throw bad('a number');
      return [ATTR.FLOAT, v];
    default:
      throw new TypeError(`${op}: unknown attribute type ${type}`);
  }
}

// Runs op `name`; mode 'one' returns the single output, 'many' the array.
function call(name, inputs, attrs, mode) {
  const hs = new Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const v = inputs[i];
    hs[i] = v instanceof Tensor ? v._h : inputHandle(name, v);
  }
  let n = attrs.length;
  while (n > 0 && attrs[n - 1][0] === ATTR.DEFAULT) n -= 1;
  const at = n === 0 ? undefined : (n === attrs.length ? attrs : attrs.slice(0, n));
  const single = mode === 'one';
  const out = hs.length <= 21 ? binding.op_call_n(opHandle(name), single, at, ...hs)
    : binding.op_call(opHandle(name), hs, at || [], single);
  if (single) return wrap(out);
  return out.map(wrap);
}

// As call(), on libuv's thread pool: resolves to the array of outputs.
async function callAsync(name, inputs, attrs) {
  const hs = inputs.map((v) => inputHandle(name, v));
  let n = attrs.length;
  while (n > 0 && attrs[n - 1][0] === ATTR.DEFAULT) n -= 1;
  const outs = await binding.op_call_async(opHandle(name), hs, attrs.slice(0, n));
  return outs.map(wrap);
}

module.exports = { binding, NO_OPTIONS, arity, callAsync, Tensor, wrap, DTYPES, DTYPE_CODE, ATTR, call, attr, checkOptions, tensorList, dtypeCode, describe, opHandle };
