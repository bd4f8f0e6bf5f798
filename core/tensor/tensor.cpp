#include "core/tensor/tensor.h"

#include <algorithm>
#include <mutex>

#include "core/tensor/allocation_hook.h"

namespace heron {

std::atomic<int64_t>& live_handle_counter() {
  static std::atomic<int64_t> counter{0};
  return counter;
}

// ------------------------------------------------------------------ Storage
namespace {
thread_local AllocationHook* t_allocation_hook = nullptr;
}
AllocationHook* set_allocation_hook(AllocationHook* hook) {
  AllocationHook* prev = t_allocation_hook;
  t_allocation_hook = hook;
  return prev;
}

Storage::Storage(size_t nbytes, Device d) : nbytes_(nbytes), device_(d) {
  if (AllocationHook* h = t_allocation_hook) {
    if (void* p = h->allocate(this, nbytes, d, &deleter_, &ctx_)) {
      data_ = p;
      external_ = true;
      return;
    }
    deleter_ = nullptr;
    ctx_ = nullptr;
  }
  data_ = device_impl(d).allocate(nbytes, d.index);
}
Storage::Storage(void* data, size_t nbytes, Device d, void (*deleter)(void*), void* ctx)
    : data_(data), nbytes_(nbytes), device_(d), external_(true), deleter_(deleter), ctx_(ctx) {}
struct Storage::Derived {
  struct Entry {
    std::string key;
    uint32_t version;
    std::shared_ptr<const void> value;
  };
  std::mutex mu;
  std::vector<Entry> entries;
};

Storage::Derived* Storage::derived_slot() const {
  Derived* d = derived_.load(std::memory_order_acquire);
  if (d) return d;
  Derived* fresh = new Derived();
  if (derived_.compare_exchange_strong(d, fresh, std::memory_order_acq_rel)) return fresh;
  delete fresh;  // another thread installed one first
  return d;
}

std::shared_ptr<const void> Storage::find_derived(const std::string& key) const {
  Derived* d = derived_.load(std::memory_order_acquire);
  if (!d) return nullptr;
  const uint32_t v = version();
  std::lock_guard<std::mutex> lock(d->mu);
  for (const auto& e : d->entries)
    if (e.key == key) return e.version == v ? e.value : nullptr;
  return nullptr;
}

void Storage::put_derived(const std::string& key, std::shared_ptr<const void> value) const {
  Derived* d = derived_slot();
  const uint32_t v = version();
  std::lock_guard<std::mutex> lock(d->mu);
  for (auto& e : d->entries)
    if (e.key == key) {
      e.version = v;
      e.value = std::move(value);
      return;
    }
  d->entries.push_back({key, v, std::move(value)});
}

Storage::~Storage() {
  delete derived_.load(std::memory_order_acquire);
  if (AllocationHook* h = t_allocation_hook) h->destroyed(this);
  if (external_) {
    if (deleter_) deleter_(ctx_);
  } else if (data_) {
    device_impl(device_).deallocate(data_, nbytes_, device_.index);
  }
}

// ------------------------------------------------------------------ TensorImpl
TensorImpl::TensorImpl(Ref<Storage> st, DType dt, Dims sh, Dims str, int64_t off)
    : storage(std::move(st)), dtype(dt), shape(std::move(sh)), strides(std::move(str)), offset(off) {
  recompute_numel();
  live_handle_counter().fetch_add(1, std::memory_order_relaxed);
}
TensorImpl::~TensorImpl() { magic = 0; live_handle_counter().fetch_sub(1, std::memory_order_relaxed); }

// ------------------------------------------------------------------ helpers
Dims contiguous_strides(const Dims& shape) {
  Dims s(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return s;
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* what) {
  int64_t n = std::max<int64_t>(ndim, 1);
  if (d < -n || d >= n)
    throw Error(ErrorCode::IndexError,
                str_cat(what, " ", d, " is out of range for a tensor of ", ndim, " dimension",
                        ndim == 1 ? "" : "s", " (expected in [", -n, ", ", n - 1, "])"));
  return d < 0 ? d + n : d;
}

Dims broadcast_shapes(const Dims& a, const Dims& b) {
  size_t n = std::max(a.size(), b.size());
  Dims out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("shapes ", a.str(), " and ", b.str(), " cannot be broadcast together (dimension ", i,
                          ": ", da, " vs ", db, ")"));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  // Table in DType code order: f32 f64 f16 bf16 i8 u8 i32 i64 b
  using D = DType;
  static const D table[kNumDTypes][kNumDTypes] = {
      /* f32 */ {D::Float32, D::Float64, D::Float32, D::Float32, D::Float32, D::Float32, D::Float32, D::Float32, D::Float32},
      /* f64 */ {D::Float64, D::Float64, D::Float64, D::Float64, D::Float64, D::Float64, D::Float64, D::Float64, D::Float64},
      /* f16 */ {D::Float32, D::Float64, D::Float16, D::Float32, D::Float16, D::Float16, D::Float16, D::Float16, D::Float16},
      /* bf16*/ {D::Float32, D::Float64, D::Float32, D::BFloat16, D::BFloat16, D::BFloat16, D::BFloat16, D::BFloat16, D::BFloat16},
      /* i8  */ {D::Float32, D::Float64, D::Float16, D::BFloat16, D::Int8, D::Int32 /*fixed below*/, D::Int32, D::Int64, D::Int8},
      /* u8  */ {D::Float32, D::Float64, D::Float16, D::BFloat16, D::Int32, D::UInt8, D::Int32, D::Int64, D::UInt8},
      /* i32 */ {D::Float32, D::Float64, D::Float16, D::BFloat16, D::Int32, D::Int32, D::Int32, D::Int64, D::Int32},
      /* i64 */ {D::Float32, D::Float64, D::Float16, D::BFloat16, D::Int64, D::Int64, D::Int64, D::Int64, D::Int64},
      /* b   */ {D::Float32, D::Float64, D::Float16, D::BFloat16, D::Int8, D::UInt8, D::Int32, D::Int64, D::Bool},
  };
  // int8 with uint8 promotes to int16 in PyTorch; we have no int16, so int32 (documented).
  return table[static_cast<int>(a)][static_cast<int>(b)];
}

namespace {
enum Category { kBool = 0, kInt = 1, kFloat = 2 };
Category category(DType t) { return t == DType::Bool ? kBool : is_floating(t) ? kFloat : kInt; }
struct Slot { bool set = false; DType t = DType::Bool; };
void add(Slot& s, DType t) { s.t = s.set ? promote_types(s.t, t) : t; s.set = true; }
// torch's combine_categories(higher, lower)
Slot combine(Slot higher, Slot lower) {
  if (!higher.set) return lower;
  if (!lower.set) return higher;
  if (category(higher.t) == kFloat) return higher;
  if (higher.t == DType::Bool || category(lower.t) == kFloat) {
    Slot r; r.set = true; r.t = promote_types(higher.t, lower.t); return r;
  }
  return higher;
}
}  // namespace

DType result_type(const Tensor* const* ts, size_t n) {
  Slot dim, zero, wrapped;
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = *ts[i];
    if (!t.defined()) continue;
    if (t.is_wrapped_number()) {
      // A wrapped float takes the default float dtype; ints are int64; bools bool.
      DType w = is_floating(t.dtype()) ? kDefaultFloat : t.dtype();
      add(wrapped, w);
    } else if (t.dim() == 0) {
      add(zero, t.dtype());
    } else {
      add(dim, t.dtype());
    }
  }
  Slot r = combine(dim, combine(zero, wrapped));
  return r.set ? r.t : kDefaultFloat;
}

DType result_type(const Tensor& a, const Tensor& b) {
  const Tensor* ts[2] = {&a, &b};
  return result_type(ts, 2);
}

// ------------------------------------------------------------------ Tensor
Tensor Tensor::empty(const Dims& shape, DType dtype, Device device) {
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0)
      throw Error(ErrorCode::InvalidArgument, str_cat("negative dimension ", shape[i], " in shape ", shape.str()));
    n *= shape[i];
  }
  size_t nbytes = static_cast<size_t>(n) * heron::itemsize(dtype);
  auto st = make_ref<Storage>(nbytes, device);
  return Tensor(make_ref<TensorImpl>(std::move(st), dtype, shape, contiguous_strides(shape), 0));
}

Tensor Tensor::make(Ref<Storage> storage, DType dtype, Dims shape, Dims strides, int64_t offset) {
  return Tensor(make_ref<TensorImpl>(std::move(storage), dtype, std::move(shape), std::move(strides), offset));
}

int64_t Tensor::size(int64_t d) const { return impl_->shape[wrap_dim(d, dim())]; }
int64_t Tensor::stride(int64_t d) const { return impl_->strides[wrap_dim(d, dim())]; }

bool Tensor::is_contiguous() const {
  const Dims& sh = impl_->shape;
  const Dims& st = impl_->strides;
  for (size_t i = 0; i < sh.size(); ++i)
    if (sh[i] == 0) return true;  // an empty tensor is contiguous whatever its strides (as in PyTorch)
  int64_t expected = 1;
  for (size_t i = sh.size(); i-- > 0;) {
    if (sh[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= sh[i];
  }
  return true;
}

bool Tensor::shares_storage(const Tensor& o) const {
  return defined() && o.defined() && storage().get() == o.storage().get();
}

// ------------------------------------------------------------------ views
Tensor Tensor::as_strided(const Dims& shape, const Dims& strides, int64_t offset) const {
  if (shape.size() != strides.size())
    throw Error(ErrorCode::InvalidArgument,
                str_cat("as_strided: shape ", shape.str(), " and strides ", strides.str(), " differ in length"));
  if (offset < 0) throw Error(ErrorCode::InvalidArgument, str_cat("as_strided: negative offset ", offset));
  // Bounds check against the storage: lowest and highest element reached, with checked arithmetic
  // (a huge stride must not wrap around into range).
  int64_t lo = offset, hi = offset, n = 1;
  bool overflow = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) throw Error(ErrorCode::InvalidArgument, str_cat("as_strided: negative size in ", shape.str()));
    if (shape[i] == 0) { n = 0; continue; }
    int64_t ext = 0;
    overflow |= __builtin_mul_overflow(shape[i] - 1, strides[i], &ext);
    overflow |= ext < 0 ? __builtin_add_overflow(lo, ext, &lo) : __builtin_add_overflow(hi, ext, &hi);
    if (n != 0) overflow |= __builtin_mul_overflow(n, shape[i], &n);
  }
  int64_t cap = static_cast<int64_t>(storage()->nbytes() / heron::itemsize(dtype()));
  if (overflow)
    throw Error(ErrorCode::InvalidArgument,
                str_cat("as_strided: shape ", shape.str(), " with strides ", strides.str(), " overflows int64"));
  if (n > 0 && (lo < 0 || hi >= cap))
    throw Error(ErrorCode::InvalidArgument,
                str_cat("as_strided: shape ", shape.str(), ", strides ", strides.str(), " and offset ", offset,
                        " reach elements [", lo, ", ", hi, "] outside the storage of ", cap, " elements"));
  Tensor t = make(storage(), dtype(), shape, strides, offset);
  return t;
}

namespace {
// Computes strides for viewing (shape, strides) as new_shape without copying, or returns false.
bool compute_view_strides(const Dims& old_shape, const Dims& old_strides, const Dims& new_shape, Dims& out) {
  out = Dims(new_shape.size());
  int64_t numel = old_shape.numel();
  if (numel == 0) { out = contiguous_strides(new_shape); return true; }
  // Walk chunks of old dims that are contiguous among themselves (PyTorch's computeStride).
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.size() ? old_strides.back() : 1;
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(old_shape.size()) - 1; tensor_d >= 0; tensor_d--) {
    tensor_numel *= old_shape[tensor_d];
    if (tensor_d == 0 || (old_shape[tensor_d - 1] != 1 &&
                          old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Dims infer_shape(const Dims& shape, int64_t numel, const char* op) {
  Dims out = shape;
  int64_t infer = -1, prod = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0) throw Error(ErrorCode::InvalidArgument, str_cat(op, ": only one dimension can be -1, got ", shape.str()));
      infer = static_cast<int64_t>(i);
    } else if (out[i] < 0) {
      throw Error(ErrorCode::InvalidArgument, str_cat(op, ": invalid size ", out[i], " in shape ", shape.str()));
    } else {
      prod *= out[i];
    }
  }
  if (infer >= 0) {
    if (prod == 0 || numel % prod != 0)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": shape ", shape.str(), " is invalid for input of size ", numel));
    out[infer] = numel / prod;
  } else if (prod != numel) {
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": shape ", shape.str(), " is invalid for input of size ", numel));
  }
  return out;
}
}  // namespace

Tensor Tensor::view(const Dims& shape) const {
  Dims sh = infer_shape(shape, numel(), "view");
  Dims st;
  if (!compute_view_strides(this->shape(), strides(), sh, st))
    throw Error(ErrorCode::InvalidArgument,
                str_cat("view: shape ", sh.str(), " is not compatible with the input's shape ", this->shape().str(),
                        " and strides ", strides().str(), "; use reshape, which copies when it must"));
  return make(storage(), dtype(), sh, st, offset());
}

Tensor Tensor::reshape(const Dims& shape) const {
  Dims sh = infer_shape(shape, numel(), "reshape");
  Dims st;
  if (compute_view_strides(this->shape(), strides(), sh, st)) return make(storage(), dtype(), sh, st, offset());
  Tensor c = contiguous();
  return make(c.storage(), c.dtype(), sh, contiguous_strides(sh), c.offset());
}

Tensor Tensor::permute(const Dims& dims) const {
  int64_t n = dim();
  if (static_cast<int64_t>(dims.size()) != n)
    throw Error(ErrorCode::InvalidArgument,
                str_cat("permute: dims ", dims.str(), " must have one entry per dimension of the input (", n, ")"));
  Dims sh(n), st(n);
  std::vector<bool> seen(n, false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = wrap_dim(dims[i], n);
    if (seen[d]) throw Error(ErrorCode::InvalidArgument, str_cat("permute: dim ", dims[i], " repeats in ", dims.str()));
    seen[d] = true;
    sh[i] = shape()[d];
    st[i] = strides()[d];
  }
  return make(storage(), dtype(), sh, st, offset());
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  int64_t n = dim();
  if (n == 0) { wrap_dim(d0, 0); wrap_dim(d1, 0); return make(storage(), dtype(), shape(), strides(), offset()); }
  d0 = wrap_dim(d0, n);
  d1 = wrap_dim(d1, n);
  Dims sh = shape(), st = strides();
  std::swap(sh[d0], sh[d1]);
  std::swap(st[d0], st[d1]);
  return make(storage(), dtype(), sh, st, offset());
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  if (dim() == 0) throw Error(ErrorCode::IndexError, "slice: cannot slice a 0-d tensor");
  d = wrap_dim(d, dim());
  if (step == 0) throw Error(ErrorCode::InvalidArgument, "slice: step cannot be zero");
  int64_t len = shape()[d];
  // Python slice semantics (like numpy, negative steps allowed).
  auto clamp_idx = [&](int64_t v, bool is_start) {
    if (v < 0) v += len;
    if (step > 0) return std::min(std::max<int64_t>(v, 0), len);
    (void)is_start;
    return std::min(std::max<int64_t>(v, -1), len - 1);
  };
  const int64_t kMax = INT64_MAX, kMin = INT64_MIN;
  int64_t s, e;
  if (step > 0) {
    s = start == kMin ? 0 : clamp_idx(start, true);
    e = end == kMax ? len : clamp_idx(end, false);
  } else {
    s = start == kMax ? len - 1 : clamp_idx(start, true);
    e = end == kMin ? -1 : clamp_idx(end, false);
  }
  int64_t count = 0;
  if (step > 0 && e > s) count = (e - s + step - 1) / step;
  if (step < 0 && s > e) count = (s - e + (-step) - 1) / (-step);
  Dims sh = shape(), st = strides();
  sh[d] = count;
  int64_t off = offset() + (count > 0 ? s * st[d] : 0);
  st[d] *= step;
  return make(storage(), dtype(), sh, st, off);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  if (dim() == 0) throw Error(ErrorCode::IndexError, "select: invalid index of a 0-d tensor");
  d = wrap_dim(d, dim());
  int64_t len = shape()[d];
  if (index < -len || index >= len)
    throw Error(ErrorCode::IndexError,
                str_cat("index ", index, " is out of bounds for dimension ", d, " with size ", len));
  if (index < 0) index += len;
  Dims sh = shape(), st = strides();
  int64_t off = offset() + index * st[d];
  sh.erase(d);
  st.erase(d);
  return make(storage(), dtype(), sh, st, off);
}

Tensor Tensor::expand(const Dims& shape_in) const {
  int64_t n = static_cast<int64_t>(shape_in.size());
  int64_t nd = dim();
  if (n < nd)
    throw Error(ErrorCode::InvalidArgument,
                str_cat("expand: the target shape ", shape_in.str(), " has fewer dimensions than the input ", shape().str()));
  Dims sh(n), st(n);
  for (int64_t i = n - 1; i >= 0; --i) {
    int64_t j = i - (n - nd);
    int64_t want = shape_in[i];
    if (j >= 0) {
      int64_t have = shape()[j];
      if (want == -1) want = have;
      if (have == want) { sh[i] = have; st[i] = strides()[j]; }
      else if (have == 1 && want >= 0) { sh[i] = want; st[i] = 0; }
      else
        throw Error(ErrorCode::InvalidArgument,
                    str_cat("expand: the size of dimension ", j, " (", have, ") must match the target ", want,
                            " or be 1 (input ", shape().str(), ", target ", shape_in.str(), ")"));
    } else {
      if (want < 0) throw Error(ErrorCode::InvalidArgument, str_cat("expand: -1 is not allowed for a new leading dimension in ", shape_in.str()));
      sh[i] = want; st[i] = 0;
    }
  }
  return make(storage(), dtype(), sh, st, offset());
}

Tensor Tensor::squeeze() const {
  Dims sh, st;
  for (int64_t i = 0; i < dim(); ++i)
    if (shape()[i] != 1) { sh.push_back(shape()[i]); st.push_back(strides()[i]); }
  return make(storage(), dtype(), sh, st, offset());
}

Tensor Tensor::squeeze(const Dims& dims) const {
  std::vector<bool> drop(dim(), false);
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, dim());
    if (dim() > 0 && shape()[w] == 1) drop[w] = true;  // like PyTorch: non-1 dims are left alone
  }
  Dims sh, st;
  for (int64_t i = 0; i < dim(); ++i)
    if (!drop[i]) { sh.push_back(shape()[i]); st.push_back(strides()[i]); }
  return make(storage(), dtype(), sh, st, offset());
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1);
  Dims sh = shape(), st = strides();
  int64_t s = d < dim() ? sh[d] * st[d] : 1;
  sh.insert(d, 1);
  st.insert(d, s);
  return make(storage(), dtype(), sh, st, offset());
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape(Dims{1});
  start = wrap_dim(start, dim());
  end = wrap_dim(end, dim());
  if (start > end) throw Error(ErrorCode::InvalidArgument, "flatten: start_dim cannot come after end_dim");
  Dims sh;
  for (int64_t i = 0; i < start; ++i) sh.push_back(shape()[i]);
  int64_t p = 1;
  for (int64_t i = start; i <= end; ++i) p *= shape()[i];
  sh.push_back(p);
  for (int64_t i = end + 1; i < dim(); ++i) sh.push_back(shape()[i]);
  return reshape(sh);
}

}  // namespace heron
