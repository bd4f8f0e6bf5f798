'use strict';
// Heron for Node.js: tensors, every op of the schema (generated, ops_gen.js), autograd,
// optimizers, safetensors, .heron models and sessions. The engine runs in libheron through its
// C ABI; handles are released by the garbage collector (or early with .release()).
const util = require('util');
const fs = require('fs');
const rt = require('./runtime');
const ops = require('./ops_gen');

const { binding, Tensor, DTYPES, DTYPE_CODE, describe, wrap } = rt;

const ARRAY_OF = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int32: Int32Array,
  int64: BigInt64Array, bool: Uint8Array,
};
const DTYPE_OF_ARRAY = new Map([[Float32Array, 'float32'], [Float64Array, 'float64'], [Int8Array, 'int8'],
  [Uint8Array, 'uint8'], [Int32Array, 'int32'], [BigInt64Array, 'int64']]);

function inferShape(data) {
  const shape = [];
  let v = data;
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

function flatten(data, shape, depth, out) {
  if (depth === shape.length) {
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new RangeError(`tensor: ragged nested array: expected length ${shape[depth]} at depth ${depth}`);
  }
  for (const x of data) flatten(x, shape, depth + 1, out);
}

/**
 * A tensor from JavaScript data: a TypedArray (its dtype unless `dtype` is given), a nested Array,
 * or a number. Options: shape (default: the data's), dtype, device, requiresGrad.
 */
function tensor(data, options = {}) {
  rt.checkOptions('tensor', options, ['shape', 'dtype', 'device', 'requiresGrad']);
  let flat;
  let shape;
  let dtype = options.dtype;
  if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
    const own = DTYPE_OF_ARRAY.get(data.constructor);
    if (!own) throw new TypeError(`tensor: unsupported TypedArray ${data.constructor.name}`);
    dtype = dtype || own;
    flat = data;
    shape = options.shape || [data.length];
  } else if (Array.isArray(data) || typeof data === 'number' || typeof data === 'boolean' || typeof data === 'bigint') {
    shape = options.shape || inferShape(data);
    const vals = [];
    if (Array.isArray(data) && options.shape) {
      const f = [];
      flatten(data, inferShape(data), 0, f);
      vals.push(...f);
    } else {
      flatten(data, shape, 0, vals);
    }
    if (!dtype) {
      if (vals.length && vals.every((x) => typeof x === 'boolean')) dtype = 'bool';
      else if (vals.length && vals.every((x) => typeof x === 'bigint')) dtype = 'int64';
      else dtype = 'float32';
    }
    flat = vals;
  } else {
    throw new TypeError(`tensor: expected a TypedArray, an Array or a number, got ${describe(data)}`);
  }
  if (!(dtype in DTYPE_CODE)) throw new TypeError(`tensor: unknown dtype ${describe(dtype)}; expected one of ${DTYPES.join(', ')}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TypeError(`tensor: shape must be an array of non-negative integers, got ${describe(shape)}`);
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== numel) throw new RangeError(`tensor: ${flat.length} values do not fill shape [${shape.join(', ')}] (${numel})`);
  const half = dtype === 'float16' || dtype === 'bfloat16';
  const Arr = half ? Float32Array : ARRAY_OF[dtype];
  let buf;
  if (flat instanceof Arr) {
    buf = flat;
  } else {
    buf = new Arr(numel);
    for (let i = 0; i < numel; i++) {
      const x = flat[i];
      if (Arr === BigInt64Array) buf[i] = typeof x === 'bigint' ? x : BigInt(Math.trunc(Number(x)));
      else buf[i] = typeof x === 'boolean' ? (x ? 1 : 0) : Number(x);
    }
  }
  let h = binding.tensor_from_host(buf, half ? DTYPE_CODE.float32 : DTYPE_CODE[dtype], shape, null);
  let t = wrap(h);
  if (half) t = ops.cast(t, dtype);
  if (options.device && options.device !== 'cpu') t = ops.toDevice(t, options.device);
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

function decode(t) {
  const dt = t.dtype;
  if (dt === 'float16' || dt === 'bfloat16') return new Float32Array(binding.tensor_to_host(ops.cast(t, 'float32')._h));
  return new ARRAY_OF[dt](binding.tensor_to_host(t._h));
}

function nest(flat, shape, off, depth) {
  if (depth === shape.length) return flat[off];
  const stride = shape.slice(depth + 1).reduce((a, b) => a * b, 1);
  const out = new Array(shape[depth]);
  for (let i = 0; i < shape[depth]; i++) out[i] = nest(flat, shape, off + i * stride, depth + 1);
  return out;
}

Object.defineProperties(Tensor.prototype, {
  shape: { get() { return binding.tensor_shape(this._h); } },
  ndim: { get() { return binding.tensor_ndim(this._h); } },
  numel: { get() { return binding.tensor_numel(this._h); } },
  dtype: { get() { return DTYPES[binding.tensor_dtype(this._h)]; } },
  device: {
    get() {
      const [type, index] = binding.tensor_device(this._h);
      return type === 'cpu' ? 'cpu' : `${type}:${index}`;
    },
  },
  requiresGrad: {
    get() { return binding.tensor_requires_grad(this._h) !== 0; },
    set(v) {
      if (typeof v !== 'boolean') throw new TypeError(`requiresGrad must be a boolean, got ${describe(v)}`);
      binding.tensor_set_requires_grad(this._h, v ? 1 : 0);
    },
  },
  grad: {
    get() {
      const h = binding.tensor_grad(this._h);
      return h === null ? null : wrap(h);
    },
    set(g) {
      if (g !== null && !(g instanceof Tensor)) throw new TypeError(`grad must be a Tensor or null, got ${describe(g)}`);
      binding.tensor_set_grad(this._h, g === null ? null : g._h);
    },
  },
  isLeaf: { get() { return binding.tensor_is_leaf(this._h) !== 0; } },
  gradFn: { get() { return binding.tensor_grad_fn_name(this._h); } },
});

Object.assign(Tensor.prototype, {
  /** The elements, flat, in row-major order: a TypedArray of the dtype (float16/bfloat16 as Float32Array, bool as Uint8Array). */
  toArray() { return decode(this); },
  /** The elements as nested Arrays (numbers, booleans for bool, BigInt for int64). */
  toNested() {
    const flat = decode(this);
    const vals = this.dtype === 'bool' ? Array.from(flat, (x) => x !== 0) : Array.from(flat);
    return nest(vals, this.shape, 0, 0);
  },
  /** The single element of a one-element tensor, as a number (BigInt for int64, boolean for bool). */
  item() {
    if (this.numel !== 1) throw new RangeError(`item: the tensor has ${this.numel} elements, not 1`);
    const v = decode(this)[0];
    return this.dtype === 'bool' ? v !== 0 : v;
  },
  backward(grad = null, options = {}) {
    rt.checkOptions('backward', options, ['retainGraph']);
    if (grad !== null && !(grad instanceof Tensor)) throw new TypeError(`backward: grad must be a Tensor or null, got ${describe(grad)}`);
    binding.backward([this._h], [grad === null ? null : grad._h], options.retainGraph ? 1 : 0);
  },
  /** As backward(), on libuv's thread pool (the event loop keeps running); resolves when done. */
  backwardAsync(grad = null, options = {}) {
    rt.checkOptions('backwardAsync', options, ['retainGraph']);
    if (grad !== null && !(grad instanceof Tensor)) throw new TypeError(`backwardAsync: grad must be a Tensor or null, got ${describe(grad)}`);
    return binding.backward_async([this._h], [grad === null ? null : grad._h], options.retainGraph ? 1 : 0);
  },
  detach() { return wrap(binding.tensor_detach(this._h)); },
  zeroGrad() { binding.tensor_zero_grad(this._h); },
  retainGrad() { binding.tensor_retain_grad(this._h); },
  requiresGrad_(v = true) { this.requiresGrad = v; return this; },
  /** Frees the handle now instead of at garbage collection; later uses raise a TypeError. */
  release() { binding.release(this._h); },
  toString() { return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`; },
  [util.inspect.custom]() {
    const n = this.numel;
    return `${this.toString().slice(0, -1)}, data=${n <= 20 ? JSON.stringify(this.toNested(), (k, v) => (typeof v === 'bigint' ? `${v}n` : v)) : '...'})`;
  },
});

for (const m of ops.METHODS) {
  Tensor.prototype[m] = function method(...args) { return ops[m](this, ...args); };
}

// ------------------------------------------------------------------ autograd
function isGradEnabled() { return binding.is_grad_enabled() !== 0; }
function setGradEnabled(v) { return binding.set_grad_enabled(v ? 1 : 0) !== 0; }
/** Runs fn with gradient recording off (restored afterwards, also on throw). */
function noGrad(fn) {
  const prev = setGradEnabled(false);
  try {
    return fn();
  } finally {
    setGradEnabled(prev);
  }
}
function backward(tensors, grads = null, options = {}) {
  rt.checkOptions('backward', options, ['retainGraph']);
  const ts = Array.isArray(tensors) ? tensors : [tensors];
  const gs = grads === null ? ts.map(() => null) : (Array.isArray(grads) ? grads : [grads]);
  binding.backward(ts.map((t) => t._h), gs.map((g) => (g === null ? null : g._h)), options.retainGraph ? 1 : 0);
}
/** Gradients of the roots with respect to the inputs (leaves' .grad untouched); null for unused inputs with allowUnused. */
function grad(outputs, inputs, options = {}) {
  rt.checkOptions('grad', options, ['gradOutputs', 'retainGraph', 'allowUnused']);
  const os = Array.isArray(outputs) ? outputs : [outputs];
  const is = Array.isArray(inputs) ? inputs : [inputs];
  const gs = options.gradOutputs ? options.gradOutputs.map((g) => (g === null ? null : g._h)) : os.map(() => null);
  return binding.autograd_grad(os.map((t) => t._h), gs, is.map((t) => t._h), options.retainGraph ? 1 : 0,
    options.allowUnused ? 1 : 0).map((h) => (h === null ? null : wrap(h)));
}

// ------------------------------------------------------------------ optimizers
function paramList(where, params) {
  const ps = Array.from(params);
  for (const p of ps) if (!(p instanceof Tensor)) throw new TypeError(`${where}: params must be Tensors, got ${describe(p)}`);
  if (!ps.length) throw new RangeError(`${where}: got an empty parameter list`);
  return ps;
}

class Optimizer {
  constructor(name, params) {
    this.params = paramList(name, params);
  }
  zeroGrad() { for (const p of this.params) p.grad = null; }
  withGrads() { return this.params.filter((p) => p.grad !== null); }
  /** One update of every parameter that has a gradient (one fused op). */
  step() {
    const job = this._prepare();
    if (job) noGrad(() => callOp(...job));
  }
  /** As step(), on libuv's thread pool; resolves when the parameters are updated. */
  async stepAsync() {
    const job = this._prepare();
    if (job) await noGrad(() => callOpAsync(...job));
  }
}

/** SGD with momentum, dampening, Nesterov and weight decay (PyTorch's torch.optim.SGD), one fused op per step. */
class SGD extends Optimizer {
  constructor(params, options = {}) {
    super('SGD', params);
    rt.checkOptions('SGD', options, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov', 'maximize']);
    this.options = { lr: 0.001, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...options };
    this.buffers = new Map();
  }
  _prepare() {
    const o = this.options;
    const ps = this.withGrads();
    if (!ps.length) return null;
    const tensors = [...ps, ...ps.map((p) => p.grad)];
    let first = false;
    if (o.momentum !== 0) {
      first = ps.some((p) => !this.buffers.has(p));
      for (const p of ps) if (!this.buffers.has(p)) this.buffers.set(p, ops.zerosLike(p));
      tensors.push(...ps.map((p) => this.buffers.get(p)));
    }
    return ['sgd_step_', tensors, { lr: o.lr, momentum: o.momentum, dampening: o.dampening, weight_decay: o.weightDecay,
      nesterov: o.nesterov, maximize: o.maximize, first_step: first }];
  }
}

/** Adam / AdamW (PyTorch's torch.optim.Adam, decoupledWeightDecay for AdamW), one fused op per step. */
class Adam extends Optimizer {
  constructor(params, options = {}) {
    super('Adam', params);
    rt.checkOptions('Adam', options, ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad', 'maximize', 'decoupledWeightDecay']);
    this.options = { lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false,
      decoupledWeightDecay: false, ...options };
    this.state = new Map();
    this.stepCount = 0;
  }
  _prepare() {
    const o = this.options;
    const ps = this.withGrads();
    if (!ps.length) return null;
    this.stepCount += 1;
    for (const p of ps) {
      if (!this.state.has(p)) {
        this.state.set(p, { m: ops.zerosLike(p), v: ops.zerosLike(p), vmax: o.amsgrad ? ops.zerosLike(p) : null });
      }
    }
    const st = ps.map((p) => this.state.get(p));
    const tensors = [...ps, ...ps.map((p) => p.grad), ...st.map((s) => s.m), ...st.map((s) => s.v)];
    if (o.amsgrad) tensors.push(...st.map((s) => s.vmax));
    return ['adam_step_', tensors, { lr: o.lr, beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weight_decay: o.weightDecay,
      amsgrad: o.amsgrad, maximize: o.maximize, step: this.stepCount, decoupled_weight_decay: o.decoupledWeightDecay }];
  }
}

// ------------------------------------------------------------------ safetensors
function mapToObject(m) {
  const n = binding.tensor_map_size(m);
  const out = {};
  for (let i = 0; i < n; i++) out[binding.tensor_map_key(m, i)] = wrap(binding.tensor_map_tensor(m, i));
  return out;
}
function objectToMap(where, tensors) {
  if (tensors === null || typeof tensors !== 'object') throw new TypeError(`${where}: expected an object {name: Tensor}, got ${describe(tensors)}`);
  const m = binding.tensor_map_create();
  for (const [k, t] of Object.entries(tensors)) {
    if (!(t instanceof Tensor)) throw new TypeError(`${where}: '${k}' is not a Tensor`);
    binding.tensor_map_set(m, k, t._h);
  }
  return m;
}
/** {name: Tensor} from a .safetensors file (a path) or its bytes (a Buffer / TypedArray / ArrayBuffer). */
function loadSafetensors(source) {
  const m = typeof source === 'string' ? binding.safetensors_load_file(source) : binding.safetensors_load_buffer(source);
  try { return mapToObject(m); } finally { binding.release(m); }
}
/** Writes {name: Tensor} to a .safetensors file; without a path, returns the bytes as a Buffer. */
function saveSafetensors(tensors, path = null, metadata = null) {
  const m = objectToMap('saveSafetensors', tensors);
  const meta = metadata === null ? null : JSON.stringify(metadata);
  try {
    if (path === null) return binding.safetensors_save_buffer(m, meta);
    binding.safetensors_save_file(path, m, meta);
    return undefined;
  } finally {
    binding.release(m);
  }
}

// ------------------------------------------------------------------ models and sessions
class Model {
  /** A .heron model from a path or its bytes; verified on load. */
  constructor(source) {
    this._h = typeof source === 'string' ? binding.model_load_file(source) : binding.model_load_buffer(source);
  }
  get inputs() {
    return Array.from({ length: binding.model_num_inputs(this._h) }, (_, i) => binding.model_input_info(this._h, i));
  }
  get outputs() {
    return Array.from({ length: binding.model_num_outputs(this._h) }, (_, i) => binding.model_output_info(this._h, i));
  }
  text() { return binding.model_text(this._h); }
  save(path) { binding.model_save_file(this._h, path); }
  release() { binding.release(this._h); }
}

class Session {
  /** A session over a model (a Model, a path or bytes). Options: device ('cpu'), threads, profiling, optimize, arena, microbatch. */
  constructor(model, options = {}) {
    rt.checkOptions('Session', options, ['device', 'threads', 'profiling', 'optimize', 'arena', 'microbatch']);
    const m = model instanceof Model ? model : new Model(model);
    const o = binding.session_options_create();
    try {
      if (options.device !== undefined) binding.session_options_set_device(o, options.device);
      if (options.threads !== undefined) binding.session_options_set_threads(o, options.threads);
      if (options.profiling !== undefined) binding.session_options_set_profiling(o, options.profiling ? 1 : 0);
      if (options.optimize !== undefined) binding.session_options_set_optimization(o, options.optimize ? 1 : 0);
      if (options.arena !== undefined) binding.session_options_set_arena(o, options.arena ? 1 : 0);
      if (options.microbatch !== undefined) binding.session_options_set_microbatch(o, options.microbatch ? 1 : 0);
      this._h = binding.session_create(m._h, o);
    } finally {
      binding.release(o);
    }
    this.inputNames = m.inputs.map((i) => i.name);
    this.outputNames = m.outputs.map((i) => i.name);
    this.model = m;
  }
  _args(feeds, outputNames) {
    if (feeds === null || typeof feeds !== 'object' || feeds instanceof Tensor) {
      throw new TypeError(`Session.run: expected an object {inputName: Tensor}, got ${describe(feeds)}`);
    }
    const names = Object.keys(feeds);
    const ts = names.map((k) => {
      const v = feeds[k];
      if (!(v instanceof Tensor)) throw new TypeError(`Session.run: input '${k}' must be a Tensor, got ${describe(v)}`);
      return v._h;
    });
    const outs = outputNames || this.outputNames;
    return [names, ts, outs];
  }
  _result(outs, hs) { return Object.fromEntries(outs.map((n, i) => [n, wrap(hs[i])])); }
  /** Runs the model: {inputName: Tensor} -> {outputName: Tensor}. */
  run(feeds, outputNames = null) {
    const [names, ts, outs] = this._args(feeds, outputNames);
    return this._result(outs, binding.session_run(this._h, names, ts, outs));
  }
  /** As run(), on libuv's thread pool: the event loop keeps running. Resolves to {outputName: Tensor}. */
  async runAsync(feeds, outputNames = null) {
    const [names, ts, outs] = this._args(feeds, outputNames);
    return this._result(outs, await binding.session_run_async(this._h, names, ts, outs));
  }
  /** The profile (versioned JSON, docs/guide/deploy.md) as an object. */
  profile() { return JSON.parse(binding.session_profile_json(this._h)); }
  chromeTrace() { return JSON.parse(binding.session_chrome_trace(this._h)); }
  clearProfile() { binding.session_clear_profile(this._h); }
  peakMemory() { const [last, max] = binding.session_peak_memory(this._h); return { last, max }; }
  release() { binding.release(this._h); }
}

// ------------------------------------------------------------------ misc
function deviceTypes() {
  return Array.from({ length: binding.device_type_count() }, (_, i) => binding.device_type_name(i));
}
function deviceCount(name) { return binding.device_count(name); }
function manualSeed(seed) { binding.manual_seed(seed); }
function setNumThreads(n) { binding.set_num_threads(n); }
function getNumThreads() { return binding.get_num_threads(); }
function liveHandles() { return binding.live_handles(); }
function opNames() {
  return Array.from({ length: binding.op_count() }, (_, i) => binding.op_name(binding.op_at(i)));
}
/** Runs op `name` with inputs (Tensors, numbers or null) and attributes {schemaName: value} (the generic path). */
function callOp(name, inputs, attrs = {}) {
  const [schema, list] = attrList(name, attrs);
  const many = schema.outputs.length > 1 || schema.outputs.some((o) => o.variadic);
  return rt.call(name, inputs, list, many ? 'many' : 'one');
}
const schemas = new Map(); // op name -> its parsed schema (read once: optimizers call ops by name every step)
function attrList(name, attrs) {
  let schema = schemas.get(name);
  if (schema === undefined) {
    schema = JSON.parse(binding.op_schema_json(rt.opHandle(name)));
    schemas.set(name, schema);
  }
  const known = schema.attrs.map((a) => a.name);
  for (const k of Object.keys(attrs)) {
    if (!known.includes(k)) throw new TypeError(`${name}: unknown attribute '${k}'; expected one of ${known.join(', ')}`);
  }
  return [schema, schema.attrs.map((a) => rt.attr(name, a.name, a.type, attrs[a.name], false))];
}
/** As callOp(), on libuv's thread pool: resolves to the array of outputs. */
function callOpAsync(name, inputs, attrs = {}) {
  const [, list] = attrList(name, attrs);
  return rt.callAsync(name, inputs, list);
}
/** As backward(), on libuv's thread pool; resolves when the gradients are accumulated. */
function backwardAsync(tensors, grads = null, options = {}) {
  rt.checkOptions('backwardAsync', options, ['retainGraph']);
  const ts = Array.isArray(tensors) ? tensors : [tensors];
  const gs = grads === null ? ts.map(() => null) : (Array.isArray(grads) ? grads : [grads]);
  return binding.backward_async(ts.map((t) => t._h), gs.map((g) => (g === null ? null : g._h)), options.retainGraph ? 1 : 0);
}
function fromFile(path) { return fs.readFileSync(path); }

// (no `delete` on the exports: it would turn the object into dictionary mode, and every
// heron.op lookup in user code into a hash lookup)
const { METHODS: _methods, ...opFunctions } = ops;
module.exports = {
  ...opFunctions,
  Tensor,
  tensor,
  dtypes: DTYPES.slice(),
  isGradEnabled,
  setGradEnabled,
  noGrad,
  backward,
  grad,
  optim: { SGD, Adam },
  loadSafetensors,
  saveSafetensors,
  Model,
  Session,
  deviceTypes,
  deviceCount,
  manualSeed,
  setNumThreads,
  getNumThreads,
  liveHandles,
  opNames,
  callOp,
  callOpAsync,
  backwardAsync,
  fromFile,
  version: binding.version_string(),
  abiVersion: binding.abi_version(),
};
