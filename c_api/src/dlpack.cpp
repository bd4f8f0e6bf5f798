// DLPack (v1.x versioned, and legacy) import and export. Zero-copy both ways.
#include <cstring>
#include <new>

#include "c_api/include/heron.h"
#include "core/ops/dispatcher.h"

using namespace heron;

namespace {

// dtype <-> DLPack (code, bits): kDLInt 0, kDLUInt 1, kDLFloat 2, kDLBfloat 4, kDLBool 6.
heron_DLDataType to_dl(DType t) {
  switch (t) {
    case DType::Float32: return {2, 32, 1};
    case DType::Float64: return {2, 64, 1};
    case DType::Float16: return {2, 16, 1};
    case DType::BFloat16: return {4, 16, 1};
    case DType::Int8: return {0, 8, 1};
    case DType::UInt8: return {1, 8, 1};
    case DType::Int32: return {0, 32, 1};
    case DType::Int64: return {0, 64, 1};
    case DType::Bool: return {6, 8, 1};
  }
  return {2, 32, 1};
}

DType from_dl(heron_DLDataType d) {
  if (d.lanes != 1) throw Error(ErrorCode::TypeError, str_cat("from_dlpack: vector dtypes (lanes = ", d.lanes, ") are not supported"));
  switch (d.code) {
    case 0:
      if (d.bits == 8) return DType::Int8;
      if (d.bits == 32) return DType::Int32;
      if (d.bits == 64) return DType::Int64;
      break;
    case 1:
      if (d.bits == 8) return DType::UInt8;
      break;
    case 2:
      if (d.bits == 16) return DType::Float16;
      if (d.bits == 32) return DType::Float32;
      if (d.bits == 64) return DType::Float64;
      break;
    case 4:
      if (d.bits == 16) return DType::BFloat16;
      break;
    case 6:
      if (d.bits == 8) return DType::Bool;
      break;
  }
  throw Error(ErrorCode::TypeError, str_cat("from_dlpack: unsupported DLPack dtype (code ", int(d.code), ", bits ", int(d.bits), ")"));
}

struct ExportCtx {
  Ref<TensorImpl> keep;
  int64_t shape_strides[128];
};

// DLPack exports hold shape and strides inline: at most 64 dims (checked before allocating).
void check_exportable(const Tensor& t) {
  if (t.dim() > 64)
    throw Error(ErrorCode::InvalidArgument, str_cat("to_dlpack: tensors with more than 64 dims cannot be exported (got ", t.dim(), ")"));
}

template <typename M>
void fill_export(M* m, ExportCtx* ctx, const Tensor& t) {
  int32_t nd = static_cast<int32_t>(t.dim());
  for (int32_t i = 0; i < nd; ++i) {
    ctx->shape_strides[i] = t.shape()[i];
    ctx->shape_strides[64 + i] = t.strides()[i];
  }
  auto& dev = device_impl(t.device());
  m->dl_tensor.data = t.storage()->data();
  m->dl_tensor.byte_offset = static_cast<uint64_t>(t.offset()) * t.itemsize();
  m->dl_tensor.device = {dev.dlpack_type(), t.device().index};
  m->dl_tensor.ndim = nd;
  m->dl_tensor.dtype = to_dl(t.dtype());
  m->dl_tensor.shape = ctx->shape_strides;
  m->dl_tensor.strides = ctx->shape_strides + 64;
  m->manager_ctx = ctx;
}

void deleter_versioned(heron_DLManagedTensorVersioned* self) {
  if (!self) return;
  delete static_cast<ExportCtx*>(self->manager_ctx);
  delete self;
}
void deleter_legacy(heron_DLManagedTensor* self) {
  if (!self) return;
  delete static_cast<ExportCtx*>(self->manager_ctx);
  delete self;
}

Tensor import_dl(const heron_DLTensor& dl, void (*release)(void*), void* owner) {
  if (dl.ndim < 0 || dl.ndim > 64) throw Error(ErrorCode::InvalidArgument, str_cat("from_dlpack: ndim ", dl.ndim, " is out of range"));
  DType dt = from_dl(dl.dtype);
  int16_t dev_type = DeviceRegistry::get().find_dlpack(dl.device.device_type);
  if (dev_type < 0)
    throw Error(ErrorCode::InvalidArgument, str_cat("from_dlpack: DLPack device type ", dl.device.device_type, " is not available in this build"));
  if (dl.ndim > 0 && !dl.shape) throw Error(ErrorCode::NullHandle, "from_dlpack: shape is NULL");
  size_t isz = itemsize(dt);
  if (dl.byte_offset % isz != 0)
    throw Error(ErrorCode::InvalidArgument, str_cat("from_dlpack: byte_offset ", dl.byte_offset, " is not a multiple of the item size ", isz));
  Dims shape(dl.shape, static_cast<size_t>(dl.ndim));
  Dims strides = dl.strides ? Dims(dl.strides, static_cast<size_t>(dl.ndim)) : contiguous_strides(shape);
  int64_t lo = 0, hi = 0, n = 1;
  bool overflow = false;
  for (int32_t i = 0; i < dl.ndim; ++i) {
    if (shape[i] < 0) throw Error(ErrorCode::InvalidArgument, str_cat("from_dlpack: negative dimension in ", shape.str()));
    if (shape[i] == 0) { n = 0; continue; }
    if (n != 0) overflow |= __builtin_mul_overflow(n, shape[i], &n);
    int64_t ext = 0;
    overflow |= __builtin_mul_overflow(shape[i] - 1, strides[i], &ext);
    overflow |= ext < 0 ? __builtin_add_overflow(lo, ext, &lo) : __builtin_add_overflow(hi, ext, &hi);
  }
  int64_t span = 0;
  if (!overflow && n != 0) overflow |= __builtin_mul_overflow(hi - lo + 1, static_cast<int64_t>(isz), &span);
  if (overflow)
    throw Error(ErrorCode::InvalidArgument, str_cat("from_dlpack: shape ", shape.str(), " with strides ", strides.str(), " overflows int64"));
  if (n == 0) lo = hi = 0;
  char* base = static_cast<char*>(dl.data) + dl.byte_offset + lo * static_cast<int64_t>(isz);
  size_t nbytes = static_cast<size_t>(hi - lo + 1) * isz;
  Device d{dev_type, static_cast<int16_t>(dl.device.device_id)};
  auto storage = make_ref<Storage>(base, nbytes, d, release, owner);
  return Tensor::make(std::move(storage), dt, shape, strides, -lo);
}

thread_local std::string t_msg;
heron_status fail_ex() {
  try {
    throw;
  } catch (const Error& e) {
    // Route through the generic error state of heron_c.cpp by calling an API that sets it.
    t_msg = e.what();
    return static_cast<heron_status>(e.code());
  } catch (const std::bad_alloc&) {
    t_msg = "out of memory";
    return HERON_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    t_msg = e.what();
    return HERON_ERR_RUNTIME;
  } catch (...) {
    t_msg = "unknown error";
    return HERON_ERR_RUNTIME;
  }
}

}  // namespace

// Defined in heron_c.cpp: records an error in the thread-local state.
heron_status heron_internal_set_error(heron_status code, const char* msg, const char* op);

#define DL_TRY try {
#define DL_CATCH                                                \
  }                                                             \
  catch (...) {                                                 \
    heron_status s = fail_ex();                                 \
    /* DLPack calls are not ops: the last error names no op. */ \
    return heron_internal_set_error(s, t_msg.c_str(), "");      \
  }

namespace {
TensorImpl* live(heron_tensor* t) {
  if (!t) throw Error(ErrorCode::NullHandle, "tensor is NULL");
  auto* impl = reinterpret_cast<TensorImpl*>(t);
  if (impl->magic != TensorImpl::kLiveMagic) throw Error(ErrorCode::NullHandle, "tensor is not a live tensor handle (already released?)");
  return impl;
}
}  // namespace

extern "C" {

heron_status heron_tensor_to_dlpack(heron_tensor* t, heron_DLManagedTensorVersioned** out) {
  DL_TRY
  if (!out) throw Error(ErrorCode::NullHandle, "out is NULL");
  Tensor x(Ref<TensorImpl>::borrow(live(t)));
  check_exportable(x);
  auto* ctx = new ExportCtx{x.ref(), {}};
  auto* m = new (std::nothrow) heron_DLManagedTensorVersioned();
  if (!m) { delete ctx; throw std::bad_alloc(); }
  m->version = {1, 0};
  m->flags = 0;
  m->deleter = &deleter_versioned;
  fill_export(m, ctx, x);
  *out = m;
  return HERON_OK;
  DL_CATCH
}

heron_status heron_tensor_to_dlpack_legacy(heron_tensor* t, heron_DLManagedTensor** out) {
  DL_TRY
  if (!out) throw Error(ErrorCode::NullHandle, "out is NULL");
  Tensor x(Ref<TensorImpl>::borrow(live(t)));
  check_exportable(x);
  auto* ctx = new ExportCtx{x.ref(), {}};
  auto* m = new (std::nothrow) heron_DLManagedTensor();
  if (!m) { delete ctx; throw std::bad_alloc(); }
  m->deleter = &deleter_legacy;
  fill_export(m, ctx, x);
  *out = m;
  return HERON_OK;
  DL_CATCH
}

heron_status heron_tensor_from_dlpack(heron_DLManagedTensorVersioned* m, heron_tensor** out) {
  DL_TRY
  if (!m) throw Error(ErrorCode::NullHandle, "from_dlpack: managed tensor is NULL");
  if (!out) throw Error(ErrorCode::NullHandle, "out is NULL");
  if (m->version.major != 1)
    throw Error(ErrorCode::InvalidArgument, str_cat("from_dlpack: DLPack major version ", m->version.major, " is not supported (need 1)"));
  auto release = [](void* p) {
    auto* mm = static_cast<heron_DLManagedTensorVersioned*>(p);
    if (mm->deleter) mm->deleter(mm);
  };
  Tensor t = import_dl(m->dl_tensor, release, m);
  *out = reinterpret_cast<heron_tensor*>(Ref<TensorImpl>(t.ref()).release());
  return HERON_OK;
  DL_CATCH
}

heron_status heron_tensor_from_dlpack_legacy(heron_DLManagedTensor* m, heron_tensor** out) {
  DL_TRY
  if (!m) throw Error(ErrorCode::NullHandle, "from_dlpack: managed tensor is NULL");
  if (!out) throw Error(ErrorCode::NullHandle, "out is NULL");
  auto release = [](void* p) {
    auto* mm = static_cast<heron_DLManagedTensor*>(p);
    if (mm->deleter) mm->deleter(mm);
  };
  Tensor t = import_dl(m->dl_tensor, release, m);
  *out = reinterpret_cast<heron_tensor*>(Ref<TensorImpl>(t.ref()).release());
  return HERON_OK;
  DL_CATCH
}

}  // extern "C"
