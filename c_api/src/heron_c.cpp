// The C ABI over the core. Every entry point catches everything: no exception crosses.
#include "c_api/include/heron.h"

#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#include "core/autograd/autograd.h"
#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"
#include "core/util/philox.h"
#include "core/util/thread_pool.h"

#ifndef HERON_VERSION_STRING
#define HERON_VERSION_STRING "0.1.0"
#endif

using namespace heron;

struct heron_tensor {};  // never instantiated: handles are TensorImpl pointers
struct heron_op {};      // never instantiated: handles are OpInfo pointers

namespace {

struct ErrorState {
  heron_status code = HERON_OK;
  std::string message;
  std::string op;
};
ErrorState& err() {
  thread_local ErrorState e;
  return e;
}

heron_status fail(heron_status code, std::string msg, std::string op = {}) {
  auto& e = err();
  e.code = code;
  e.message = std::move(msg);
  e.op = std::move(op);
  return code;
}

heron_status from_exception() {
  try {
    throw;
  } catch (const Error& ex) {
    return fail(static_cast<heron_status>(ex.code()), ex.what(), ex.op());
  } catch (const std::bad_alloc&) {
    return fail(HERON_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& ex) {
    return fail(HERON_ERR_RUNTIME, ex.what());
  } catch (...) {
    return fail(HERON_ERR_RUNTIME, "unknown error");
  }
}

#define HERON_TRY try {
#define HERON_CATCH \
  }                 \
  catch (...) { return from_exception(); }

// Handles are TensorImpl pointers. A released handle whose memory has not been reused is
// recognised by its cleared magic (best effort: see docs/c_api.md).
TensorImpl* impl_of(const heron_tensor* t, const char* what = "tensor") {
  if (!t) throw Error(ErrorCode::NullHandle, str_cat(what, " is NULL"));
  auto* impl = reinterpret_cast<TensorImpl*>(const_cast<heron_tensor*>(t));
  if (impl->magic != TensorImpl::kLiveMagic)
    throw Error(ErrorCode::NullHandle, str_cat(what, " is not a live tensor handle (already released?)"));
  return impl;
}
Tensor borrow(const heron_tensor* t, const char* what = "tensor") { return Tensor(Ref<TensorImpl>::borrow(impl_of(t, what))); }
heron_tensor* give(Tensor t) { return reinterpret_cast<heron_tensor*>(Ref<TensorImpl>(t.ref()).release()); }

template <typename T>
void require(T* p, const char* what) {
  if (!p) throw Error(ErrorCode::NullHandle, str_cat(what, " is NULL"));
}

Device parse_device(const char* device) {
  if (!device) return host_device();
  return DeviceRegistry::get().parse(device);
}

DType check_dtype(int32_t dtype) {
  if (!dtype_valid(dtype)) throw Error(ErrorCode::TypeError, str_cat("unknown dtype code ", dtype, " (expected 0..", kNumDTypes - 1, ")"));
  return static_cast<DType>(dtype);
}

Dims check_shape(const int64_t* shape, int32_t ndim) {
  if (ndim < 0 || ndim > 64) throw Error(ErrorCode::InvalidArgument, str_cat("ndim ", ndim, " is out of range [0, 64]"));
  if (ndim > 0 && !shape) throw Error(ErrorCode::NullHandle, "shape is NULL");
  Dims d(shape, static_cast<size_t>(ndim));
  int64_t n = 1;
  for (int32_t i = 0; i < ndim; ++i) {
    if (d[i] < 0) throw Error(ErrorCode::InvalidArgument, str_cat("negative dimension ", d[i], " in shape ", d.str()));
    if (d[i] > 0 && n > (int64_t{1} << 62) / d[i]) throw Error(ErrorCode::InvalidArgument, str_cat("shape ", d.str(), " is too large"));
    n *= d[i];
  }
  return d;
}

// (size - 1) * stride for size >= 1, into *out; false when it does not fit in an int64.
bool checked_extent(int64_t size, int64_t stride, int64_t* out) {
  uint64_t n = static_cast<uint64_t>(size - 1);
  uint64_t mag = stride < 0 ? 0 - static_cast<uint64_t>(stride) : static_cast<uint64_t>(stride);
  if (n != 0 && mag > static_cast<uint64_t>(INT64_MAX) / n) return false;
  uint64_t p = n * mag;  // <= INT64_MAX
  *out = stride < 0 ? -static_cast<int64_t>(p) : static_cast<int64_t>(p);
  return true;
}
// *acc += v where acc and v have the same sign (acc >= 0 for v >= 0, acc <= 0 for v < 0); false on overflow.
bool checked_add(int64_t* acc, int64_t v) {
  if (v >= 0 ? *acc > INT64_MAX - v : *acc < -INT64_MAX - v) return false;
  *acc += v;
  return true;
}

}  // namespace

// Shared with dlpack.cpp (not exported: the version script keeps only heron_* of heron.h... and
// this one is hidden by -fvisibility=hidden).
heron_status heron_internal_set_error(heron_status code, const char* msg, const char* op) {
  return fail(code, msg ? msg : "", op ? op : "");
}

extern "C" {

uint32_t heron_abi_version(void) { return HERON_ABI_VERSION; }
const char* heron_version_string(void) { return HERON_VERSION_STRING; }

heron_status heron_abi_check(uint32_t header_version) {
  uint32_t lib = HERON_ABI_VERSION;
  uint32_t hmaj = header_version >> 16, hmin = header_version & 0xffff;
  uint32_t lmaj = lib >> 16, lmin = lib & 0xffff;
  if (hmaj != lmaj)
    return fail(HERON_ERR_ABI_MISMATCH, str_cat("Heron ABI mismatch: the caller was built for ABI ", hmaj, ".", hmin,
                                                " but the loaded libheron provides ", lmaj, ".", lmin,
                                                " (different major version); rebuild against this library"));
  if (hmin > lmin)
    return fail(HERON_ERR_ABI_MISMATCH, str_cat("Heron ABI mismatch: the caller was built for ABI ", hmaj, ".", hmin,
                                                " but the loaded libheron only provides ", lmaj, ".", lmin,
                                                "; install a newer libheron"));
  return HERON_OK;
}

heron_status heron_last_error_code(void) { return err().code; }
const char* heron_last_error_message(void) { return err().message.c_str(); }
const char* heron_last_error_op(void) { return err().op.c_str(); }
void heron_clear_error(void) {
  auto& e = err();
  e.code = HERON_OK;
  e.message.clear();
  e.op.clear();
}

// ------------------------------------------------------------------ dtypes
const char* heron_dtype_name(int32_t dtype) { return dtype_valid(dtype) ? heron::dtype_name(static_cast<DType>(dtype)) : nullptr; }
size_t heron_dtype_size(int32_t dtype) { return dtype_valid(dtype) ? heron::itemsize(static_cast<DType>(dtype)) : 0; }
heron_status heron_dtype_from_name(const char* name, int32_t* out) {
  HERON_TRY
  require(name, "name");
  require(out, "out");
  for (int i = 0; i < kNumDTypes; ++i)
    if (std::strcmp(name, heron::dtype_name(static_cast<DType>(i))) == 0) { *out = i; return HERON_OK; }
  return fail(HERON_ERR_NOT_FOUND, str_cat("unknown dtype name '", name, "'"));
  HERON_CATCH
}
heron_status heron_promote_types(int32_t a, int32_t b, int32_t* out) {
  HERON_TRY
  require(out, "out");
  *out = static_cast<int32_t>(promote_types(check_dtype(a), check_dtype(b)));
  return HERON_OK;
  HERON_CATCH
}

// ------------------------------------------------------------------ handles
int64_t heron_live_handles(void) { return live_handle_counter().load(); }
heron_status heron_tensor_retain(heron_tensor* t) {
  HERON_TRY
  impl_of(t)->incref();
  return HERON_OK;
  HERON_CATCH
}
void heron_tensor_release(heron_tensor* t) {
  if (!t) return;
  auto* impl = reinterpret_cast<TensorImpl*>(t);
  if (impl->magic == TensorImpl::kLiveMagic) impl->decref();  // a dead handle is ignored, not double-freed
}

// ------------------------------------------------------------------ devices
int32_t heron_device_type_count(void) { return static_cast<int32_t>(DeviceRegistry::get().size()); }
heron_status heron_device_type_name(int32_t i, const char** out) {
  HERON_TRY
  require(out, "out");
  if (i < 0 || i >= heron_device_type_count())
    return fail(HERON_ERR_INDEX, str_cat("device type index ", i, " is out of range [0, ", heron_device_type_count(), ")"));
  *out = DeviceRegistry::get().at(static_cast<int16_t>(i))->name();
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_device_count(const char* name, int32_t* out) {
  HERON_TRY
  require(name, "name");
  require(out, "out");
  int16_t t = DeviceRegistry::get().find(name);
  if (t < 0) return fail(HERON_ERR_NOT_FOUND, str_cat("unknown device '", name, "'"));
  *out = DeviceRegistry::get().at(t)->count();
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_device_synchronize(const char* device) {
  HERON_TRY
  require(device, "device");
  Device d = DeviceRegistry::get().parse(device);
  device_impl(d).synchronize(d.index);
  return HERON_OK;
  HERON_CATCH
}

// ------------------------------------------------------------------ tensors
heron_status heron_tensor_from_host(const void* data, size_t nbytes, int32_t dtype, const int64_t* shape, int32_t ndim,
                                    const char* device, heron_tensor** out) {
  HERON_TRY
  require(out, "out");
  DType dt = check_dtype(dtype);
  Dims sh = check_shape(shape, ndim);
  size_t need = static_cast<size_t>(sh.numel()) * heron::itemsize(dt);
  if (nbytes != need)
    return fail(HERON_ERR_INVALID_ARGUMENT, str_cat("tensor_from_host: ", nbytes, " bytes given, but shape ", sh.str(), " of ",
                                                    heron::dtype_name(dt), " needs ", need));
  if (need > 0 && !data) return fail(HERON_ERR_NULL_HANDLE, "tensor_from_host: data is NULL");
  Device d = parse_device(device);
  Tensor t = Tensor::empty(sh, dt, d);
  device_impl(d).copy_from_host(t.raw_data(), data, need, d.index);
  *out = give(std::move(t));
  return HERON_OK;
  HERON_CATCH
}

heron_status heron_tensor_from_external(void* data, size_t nbytes, int32_t dtype, const int64_t* shape, const int64_t* strides,
                                        int32_t ndim, void (*deleter)(void*), void* ctx, heron_tensor** out) {
  HERON_TRY
  require(out, "out");
  DType dt = check_dtype(dtype);
  Dims sh = check_shape(shape, ndim);
  size_t isz = heron::itemsize(dt);
  Dims st = strides ? Dims(strides, static_cast<size_t>(ndim)) : contiguous_strides(sh);
  if (!data && sh.numel() > 0) return fail(HERON_ERR_NULL_HANDLE, "tensor_from_external: data is NULL");
  if (reinterpret_cast<uintptr_t>(data) % isz != 0)
    return fail(HERON_ERR_INVALID_ARGUMENT, str_cat("tensor_from_external: data address ", data, " is not aligned to ", isz,
                                                    " bytes, as ", heron::dtype_name(dt), " needs"));
  // The lowest and highest element reached must lie inside the buffer; negative strides reach
  // below `data`, which is not allowed here (pass the lowest address and an offset-free layout).
  // The extents are computed without int64 overflow: huge strides must not wrap around into range.
  int64_t lo = 0, hi = 0;
  bool overflow = false;
  const bool empty = sh.numel() == 0;
  for (int32_t i = 0; i < ndim && !empty; ++i) {
    int64_t ext = 0;
    if (!checked_extent(sh[i], st[i], &ext) || !checked_add(ext < 0 ? &lo : &hi, ext)) { overflow = true; break; }
  }
  if (overflow)
    return fail(HERON_ERR_INVALID_ARGUMENT, str_cat("tensor_from_external: shape ", sh.str(), " with strides ", st.str(),
                                                    " reaches element offsets beyond the int64 range"));
  if (!empty && (lo < 0 || static_cast<uint64_t>(hi) >= nbytes / isz))
    return fail(HERON_ERR_INVALID_ARGUMENT,
                str_cat("tensor_from_external: shape ", sh.str(), " with strides ", st.str(), " reaches elements [", lo, ", ", hi,
                        "], outside the buffer of ", nbytes, " bytes (", nbytes / isz, " elements)"));
  auto storage = make_ref<Storage>(data, nbytes, host_device(), deleter, ctx);
  *out = give(Tensor::make(std::move(storage), dt, sh, st, 0));
  return HERON_OK;
  HERON_CATCH
}

heron_status heron_tensor_from_scalar(const heron_attr* value, int32_t dtype, heron_tensor** out) {
  HERON_TRY
  require(value, "value");
  require(out, "out");
  bool wrapped = dtype == -1;
  DType dt;
  if (value->kind == HERON_ATTR_INT) dt = DType::Int64;
  else if (value->kind == HERON_ATTR_FLOAT) dt = DType::Float64;
  else if (value->kind == HERON_ATTR_BOOL) dt = DType::Bool;
  else return fail(HERON_ERR_TYPE, str_cat("tensor_from_scalar: value must be an INT, FLOAT or BOOL attribute, got kind ", value->kind));
  if (!wrapped) dt = check_dtype(dtype);
  Tensor t = Tensor::empty(Dims{}, dt, host_device());
  visit_dtype(dt, [&](auto v) {
    using T = decltype(v);
    T* p = t.data<T>();
    if (value->kind == HERON_ATTR_FLOAT) *p = convert<T>(value->f);
    else if (value->kind == HERON_ATTR_BOOL) *p = convert<T>(value->i != 0);
    else *p = convert<T>(value->i);
  });
  t.set_wrapped_number(wrapped);
  *out = give(std::move(t));
  return HERON_OK;
  HERON_CATCH
}

heron_status heron_tensor_ndim(const heron_tensor* t, int32_t* out) {
  HERON_TRY
  require(out, "out");
  *out = static_cast<int32_t>(impl_of(t)->shape.size());
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_shape(const heron_tensor* t, int64_t* out, int32_t capacity) {
  HERON_TRY
  auto* i = impl_of(t);
  int32_t n = static_cast<int32_t>(i->shape.size());
  if (n > 0) require(out, "out");
  if (capacity < n) return fail(HERON_ERR_BUFFER_TOO_SMALL, str_cat("tensor_shape: capacity ", capacity, " < ndim ", n));
  if (n) std::memcpy(out, i->shape.data(), n * sizeof(int64_t));
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_strides(const heron_tensor* t, int64_t* out, int32_t capacity) {
  HERON_TRY
  auto* i = impl_of(t);
  int32_t n = static_cast<int32_t>(i->strides.size());
  if (n > 0) require(out, "out");
  if (capacity < n) return fail(HERON_ERR_BUFFER_TOO_SMALL, str_cat("tensor_strides: capacity ", capacity, " < ndim ", n));
  if (n) std::memcpy(out, i->strides.data(), n * sizeof(int64_t));
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_offset(const heron_tensor* t, int64_t* out) {
  HERON_TRY
  require(out, "out");
  *out = impl_of(t)->offset;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_numel(const heron_tensor* t, int64_t* out) {
  HERON_TRY
  require(out, "out");
  *out = impl_of(t)->numel;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_dtype(const heron_tensor* t, int32_t* out) {
  HERON_TRY
  require(out, "out");
  *out = static_cast<int32_t>(impl_of(t)->dtype);
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_device(const heron_tensor* t, const char** type_name, int32_t* index) {
  HERON_TRY
  auto* i = impl_of(t);
  Device d = i->storage->device();
  if (type_name) *type_name = DeviceRegistry::get().at(d.type)->name();
  if (index) *index = d.index;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_is_contiguous(const heron_tensor* t, int32_t* out) {
  HERON_TRY
  require(out, "out");
  *out = borrow(t).is_contiguous() ? 1 : 0;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_shares_storage(const heron_tensor* a, const heron_tensor* b, int32_t* out) {
  HERON_TRY
  require(out, "out");
  *out = impl_of(a, "a")->storage.get() == impl_of(b, "b")->storage.get() ? 1 : 0;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_data_ptr(const heron_tensor* t, void** out) {
  HERON_TRY
  require(out, "out");
  *out = borrow(t).raw_data();
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_to_host(const heron_tensor* t, void* dst, size_t nbytes) {
  HERON_TRY
  Tensor x = borrow(t);
  size_t need = x.nbytes();
  if (nbytes != need)
    return fail(HERON_ERR_INVALID_ARGUMENT, str_cat("tensor_to_host: destination holds ", nbytes, " bytes, but the tensor of shape ",
                                                    x.shape().str(), " and dtype ", heron::dtype_name(x.dtype()), " needs ", need));
  if (need == 0) return HERON_OK;
  require(dst, "dst");
  Tensor c = x.contiguous();
  device_impl(c.device()).copy_to_host(dst, c.raw_data(), need, c.device().index);
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_item_double(const heron_tensor* t, double* out) {
  HERON_TRY
  require(out, "out");
  Tensor x = borrow(t);
  if (x.numel() != 1)
    return fail(HERON_ERR_INVALID_ARGUMENT, str_cat("item: a tensor with ", x.numel(), " elements cannot be converted to a scalar"));
  Tensor h = x.to(host_device());
  *out = visit_dtype(h.dtype(), [&](auto v) { using T = decltype(v); return static_cast<double>(static_cast<opmath_t<T>>(*h.data<T>())); });
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_item_int64(const heron_tensor* t, int64_t* out) {
  HERON_TRY
  require(out, "out");
  Tensor x = borrow(t);
  if (x.numel() != 1)
    return fail(HERON_ERR_INVALID_ARGUMENT, str_cat("item: a tensor with ", x.numel(), " elements cannot be converted to a scalar"));
  Tensor h = x.to(host_device());
  *out = visit_dtype(h.dtype(), [&](auto v) { using T = decltype(v); return convert<int64_t>(*h.data<T>()); });
  return HERON_OK;
  HERON_CATCH
}

// ------------------------------------------------------------------ ops
heron_status heron_op_find(const char* name, const heron_op** out) {
  HERON_TRY
  require(name, "name");
  require(out, "out");
  const OpInfo* op = find_op(name);
  if (!op) return fail(HERON_ERR_NOT_FOUND, str_cat("unknown op '", name, "'"));
  *out = reinterpret_cast<const heron_op*>(op);
  return HERON_OK;
  HERON_CATCH
}
int32_t heron_op_count(void) { return num_ops(); }
heron_status heron_op_at(int32_t i, const heron_op** out) {
  HERON_TRY
  require(out, "out");
  const OpInfo* op = op_by_id(i);
  if (!op) return fail(HERON_ERR_INDEX, str_cat("op index ", i, " is out of range [0, ", num_ops(), ")"));
  *out = reinterpret_cast<const heron_op*>(op);
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_op_name(const heron_op* op, const char** out) {
  HERON_TRY
  require(op, "op");
  require(out, "out");
  *out = reinterpret_cast<const OpInfo*>(op)->name;
  return HERON_OK;
  HERON_CATCH
}
const char* heron_ops_schema_json(void) { return ops_schema_json(); }

heron_status heron_op_schema_json(const heron_op* op, const char** out) {
  HERON_TRY
  require(op, "op");
  require(out, "out");
  // Per-op JSON: cut out of the canonical document once, on first use.
  static std::vector<std::string> per_op = [] {
    std::vector<std::string> v(num_ops());
    std::string all = ops_schema_json();
    size_t pos = all.find("\"ops\":[");
    pos += 7;
    for (int i = 0; i < num_ops(); ++i) {
      // each op object: balanced braces, strings may contain braces
      size_t start = pos, depth = 0;
      bool in_str = false;
      for (; pos < all.size(); ++pos) {
        char c = all[pos];
        if (in_str) {
          if (c == '\\') ++pos;
          else if (c == '"') in_str = false;
        } else if (c == '"') in_str = true;
        else if (c == '{') ++depth;
        else if (c == '}' && --depth == 0) { ++pos; break; }
      }
      v[i] = all.substr(start, pos - start);
      ++pos;  // comma
    }
    return v;
  }();
  *out = per_op[reinterpret_cast<const OpInfo*>(op)->id].c_str();
  return HERON_OK;
  HERON_CATCH
}

heron_status heron_op_call(const heron_op* op_handle, heron_tensor* const* inputs, size_t n_inputs, const heron_attr* attrs,
                           size_t n_attrs, heron_tensor** outputs, size_t capacity, size_t* n_outputs) {
  const OpInfo* op = reinterpret_cast<const OpInfo*>(op_handle);
  try {
    if (!op) return fail(HERON_ERR_NULL_HANDLE, "op_call: op is NULL");
    if (n_inputs > 0 && !inputs) return fail(HERON_ERR_NULL_HANDLE, str_cat(op->name, ": inputs is NULL"), op->name);
    if (n_attrs > 0 && !attrs) return fail(HERON_ERR_NULL_HANDLE, str_cat(op->name, ": attrs is NULL"), op->name);
    if (!outputs && capacity > 0) return fail(HERON_ERR_NULL_HANDLE, str_cat(op->name, ": outputs is NULL"), op->name);
    size_t fixed = static_cast<size_t>(op->n_inputs);
    if (op->variadic_input ? n_inputs < fixed : n_inputs != fixed)
      return fail(HERON_ERR_INVALID_ARGUMENT,
                  str_cat(op->name, ": expected ", op->variadic_input ? "at least " : "", fixed, " input", fixed == 1 ? "" : "s",
                          ", got ", n_inputs),
                  op->name);
    if (n_inputs > 4096) return fail(HERON_ERR_INVALID_ARGUMENT, str_cat(op->name, ": too many inputs (", n_inputs, ")"), op->name);
    // Borrow the inputs: no refcount traffic for the common small case.
    Tensor stack_ins[8];
    std::vector<Tensor> heap_ins;
    Tensor* ins = stack_ins;
    if (n_inputs > 8) { heap_ins.resize(n_inputs); ins = heap_ins.data(); }
    for (size_t i = 0; i < n_inputs; ++i) {
      bool optional = op->input_optional[i < fixed ? i : fixed];
      if (!inputs[i]) {
        if (optional) continue;
        return fail(HERON_ERR_NULL_HANDLE, str_cat(op->name, ": input ", i, " is NULL"), op->name);
      }
      ins[i] = Tensor(Ref<TensorImpl>::borrow(impl_of(inputs[i], "input")));
    }
    OpCtx ctx(op, ins, n_inputs);
    op->invoke(ctx, attrs, n_attrs);
    size_t n = ctx.outputs.size();
    if (n_outputs) *n_outputs = n;
    if (n > capacity)
      return fail(HERON_ERR_BUFFER_TOO_SMALL, str_cat(op->name, ": the op produced ", n, " outputs, but capacity is ", capacity), op->name);
    for (size_t i = 0; i < n; ++i) outputs[i] = give(std::move(ctx.outputs[i]));
    return HERON_OK;
  } catch (Error& ex) {
    if (op) ex.set_op_if_empty(op->name);
    std::string msg = ex.what();
    if (op && msg.rfind(op->name, 0) != 0) msg = str_cat(op->name, ": ", msg);
    return fail(static_cast<heron_status>(ex.code()), msg, ex.op());
  } catch (...) {
    heron_status s = from_exception();
    if (op) err().op = op->name;
    return s;
  }
}

// ------------------------------------------------------------------ threads, rng
heron_status heron_set_num_threads(int32_t n) {
  HERON_TRY
  set_num_threads(n);
  return HERON_OK;
  HERON_CATCH
}
int32_t heron_get_num_threads(void) {
  try {
    return get_num_threads();
  } catch (...) {
    return 1;
  }
}
void heron_manual_seed(uint64_t seed) { Generator::default_generator().manual_seed(seed); }

// ------------------------------------------------------------------ autograd
heron_status heron_tensor_set_requires_grad(heron_tensor* t, int32_t requires_grad) {
  HERON_TRY
  autograd::set_requires_grad(borrow(t), requires_grad != 0);
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_requires_grad(const heron_tensor* t, int32_t* out) {
  HERON_TRY
  Tensor x = borrow(t);
  require(out, "out");
  *out = autograd::requires_grad(x) ? 1 : 0;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_is_leaf(const heron_tensor* t, int32_t* out) {
  HERON_TRY
  Tensor x = borrow(t);
  require(out, "out");
  *out = autograd::is_leaf(x) ? 1 : 0;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_grad(const heron_tensor* t, heron_tensor** out) {
  HERON_TRY
  Tensor x = borrow(t);
  require(out, "out");
  Tensor g = autograd::grad(x);
  *out = g.defined() ? give(g) : nullptr;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_set_grad(heron_tensor* t, const heron_tensor* grad) {
  HERON_TRY
  Tensor x = borrow(t);
  autograd::set_grad(x, grad ? borrow(grad, "grad") : Tensor());
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_zero_grad(heron_tensor* t) {
  HERON_TRY
  Tensor g = autograd::grad(borrow(t));
  if (g.defined()) {
    autograd::NoGradGuard ng;
    ops::FullAttrs fa;
    fa.size = Dims{};
    fa.fill_value = Scalar(int64_t{0});
    fa.dtype = g.dtype();
    g.copy_from(ops::full(fa));
    autograd::bump_version(g);
  }
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_retain_grad(heron_tensor* t) {
  HERON_TRY
  autograd::retain_grad(borrow(t));
  return HERON_OK;
  HERON_CATCH
}
namespace {
// Owns a C hook's user pointer: free_user runs once, when the last copy of the hook goes away.
struct CHookUser {
  void* user;
  heron_free_fn free_user;
  ~CHookUser() {
    if (free_user) free_user(user);
  }
};
}  // namespace
heron_status heron_tensor_register_post_accumulate_grad_hook(heron_tensor* t, heron_grad_hook_fn fn, void* user,
                                                             heron_free_fn free_user, int64_t* out_id) {
  HERON_TRY
  Tensor x = borrow(t);
  require(out_id, "out_id");
  if (!fn) throw Error(ErrorCode::NullHandle, "register_post_accumulate_grad_hook: fn is NULL");
  if (!autograd::requires_grad(x) || !autograd::is_leaf(x))
    throw Error(ErrorCode::InvalidArgument,
                "register_post_accumulate_grad_hook: only leaf tensors that require grad accumulate gradients");
  auto owner = std::make_shared<CHookUser>(CHookUser{user, nullptr});
  *out_id = autograd::add_post_accumulate_grad_hook(x, [fn, owner](const Tensor& leaf) {
    char msg[1024] = {0};
    int32_t rc = fn(owner->user, reinterpret_cast<heron_tensor*>(leaf.impl()), msg, sizeof msg);
    if (rc != 0) {
      msg[sizeof msg - 1] = 0;
      throw Error(ErrorCode::Runtime, str_cat("post-accumulate-grad hook failed: ",
                                              msg[0] ? msg : "the hook returned an error"));
    }
  });
  owner->free_user = free_user;  // registered: from now on the hook owns `user`
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_remove_post_accumulate_grad_hook(heron_tensor* t, int64_t id, int32_t* removed) {
  HERON_TRY
  bool r = autograd::remove_post_accumulate_grad_hook(borrow(t), id);
  if (removed) *removed = r ? 1 : 0;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_detach(const heron_tensor* t, heron_tensor** out) {
  HERON_TRY
  Tensor x = borrow(t);
  require(out, "out");
  *out = give(autograd::detach(x));
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_tensor_grad_fn_name(const heron_tensor* t, const char** out) {
  HERON_TRY
  Tensor x = borrow(t);
  require(out, "out");
  *out = autograd::grad_fn_name(x);
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_backward(heron_tensor* const* tensors, heron_tensor* const* grads, size_t n, int32_t retain_graph) {
  HERON_TRY
  if (n > 0) require(tensors, "tensors");
  std::vector<Tensor> roots, gs;
  for (size_t i = 0; i < n; ++i) {
    roots.push_back(borrow(tensors[i], "tensors[i]"));
    gs.push_back(grads && grads[i] ? borrow(grads[i], "grads[i]") : Tensor());
  }
  autograd::backward(roots, gs, retain_graph != 0);
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_autograd_grad(heron_tensor* const* roots, heron_tensor* const* grads, size_t n_roots,
                                 heron_tensor* const* inputs, size_t n_inputs, int32_t retain_graph,
                                 int32_t allow_unused, heron_tensor** out) {
  HERON_TRY
  if (n_roots > 0) require(roots, "roots");
  if (n_inputs > 0) {
    require(inputs, "inputs");
    require(out, "out");
  }
  std::vector<Tensor> rs, gs, ins;
  for (size_t i = 0; i < n_roots; ++i) {
    rs.push_back(borrow(roots[i], "roots[i]"));
    gs.push_back(grads && grads[i] ? borrow(grads[i], "grads[i]") : Tensor());
  }
  for (size_t i = 0; i < n_inputs; ++i) ins.push_back(borrow(inputs[i], "inputs[i]"));
  std::vector<Tensor> res = autograd::grad(rs, gs, ins, retain_graph != 0, allow_unused != 0);
  for (size_t i = 0; i < n_inputs; ++i) out[i] = res[i].defined() ? give(res[i]) : nullptr;
  return HERON_OK;
  HERON_CATCH
}
heron_status heron_set_grad_enabled(int32_t enabled, int32_t* previous) {
  if (previous) *previous = autograd::grad_mode() ? 1 : 0;
  autograd::set_grad_mode(enabled != 0);
  return HERON_OK;
}
int32_t heron_is_grad_enabled(void) { return autograd::grad_mode() ? 1 : 0; }
heron_status heron_set_anomaly_enabled(int32_t enabled, int32_t* previous) {
  if (previous) *previous = autograd::anomaly_mode() ? 1 : 0;
  autograd::set_anomaly_mode(enabled != 0);
  return HERON_OK;
}
int32_t heron_is_anomaly_enabled(void) { return autograd::anomaly_mode() ? 1 : 0; }

}  // extern "C"
