// Tensor = storage + dtype + shape + strides + offset. Views share storage.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device/device.h"
#include "core/tensor/dims.h"
#include "core/tensor/dtype.h"
#include "core/util/error.h"
#include "core/util/refcount.h"

namespace heron {

// A block of device memory. Either owned (freed through the device) or external (freed by the
// caller's deleter).
class Storage : public RefCounted {
 public:
  // Allocates nbytes on device d (64-byte aligned on the host).
  Storage(size_t nbytes, Device d);
  // Wraps external memory; deleter(ctx) is called when the last view dies (may be null).
  Storage(void* data, size_t nbytes, Device d, void (*deleter)(void*), void* ctx);
  ~Storage() override;
  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  bool external() const { return external_; }
  // Bumped by every in-place write through an op; autograd checks it on saved tensors.
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

  // Frozen: the owner promises the contents never change again (a session's private weights). Only
  // then may kernels cache forms derived from them (memory shared with numpy or a mapped file can
  // change without an op bumping the version).
  void freeze() const { frozen_.store(true, std::memory_order_release); }
  bool frozen() const { return frozen_.load(std::memory_order_acquire); }

  // A form a kernel derived from this (frozen) storage's contents (e.g. convolution weights packed
  // for a GEMM micro-kernel), cached with the storage and freed with it. `key` names the kernel,
  // the layout and the region it was derived from (offset, shape). find_derived returns null when
  // there is no entry or it was made at another version. Thread-safe.
  std::shared_ptr<const void> find_derived(const std::string& key) const;
  void put_derived(const std::string& key, std::shared_ptr<const void> value) const;

 private:
  struct Derived;
  Derived* derived_slot() const;
  mutable std::atomic<Derived*> derived_{nullptr};
  mutable std::atomic<bool> frozen_{false};
  std::atomic<uint32_t> version_{0};
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  bool external_ = false;
  void (*deleter_)(void*) = nullptr;
  void* ctx_ = nullptr;
};

class TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Ref<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation
  static Tensor empty(const Dims& shape, DType dtype, Device device);
  // Wraps a view of a storage.
  static Tensor make(Ref<Storage> storage, DType dtype, Dims shape, Dims strides, int64_t offset);

  bool defined() const { return static_cast<bool>(impl_); }
  TensorImpl* impl() const { return impl_.get(); }
  const Ref<TensorImpl>& ref() const { return impl_; }

  // ---- metadata
  DType dtype() const;
  Device device() const;
  const Dims& shape() const;
  const Dims& strides() const;
  int64_t offset() const;
  int64_t dim() const;
  int64_t numel() const;
  int64_t size(int64_t d) const;   // negative d counts from the end
  int64_t stride(int64_t d) const;
  size_t itemsize() const { return heron::itemsize(dtype()); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * itemsize(); }
  bool is_contiguous() const;
  const Ref<Storage>& storage() const;
  void* raw_data() const;  // storage data + offset * itemsize
  template <typename T> T* data() const { return static_cast<T*>(raw_data()); }
  bool is_wrapped_number() const;
  void set_wrapped_number(bool v);
  bool shares_storage(const Tensor& o) const;

  // ---- views (share storage)
  Tensor as_strided(const Dims& shape, const Dims& strides, int64_t offset) const;
  Tensor view(const Dims& shape) const;      // error if strides cannot express it
  Tensor reshape(const Dims& shape) const;   // view when possible, else a copy
  Tensor permute(const Dims& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step) const;  // python-style clamping
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Dims& shape) const;    // -1 keeps a dim; new leading dims allowed
  Tensor squeeze() const;
  Tensor squeeze(const Dims& dims) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;

  // ---- copies
  Tensor contiguous() const;                 // this when already contiguous
  Tensor clone() const;                      // always a new contiguous tensor
  Tensor to(DType dtype) const;              // this when dtype equal
  Tensor to(Device device) const;
  // Copies src into this (broadcasting src, casting dtype, any device pair).
  void copy_from(const Tensor& src);

 private:
  Ref<TensorImpl> impl_;
};

class TensorImpl : public RefCounted {
 public:
  TensorImpl(Ref<Storage> storage, DType dtype, Dims shape, Dims strides, int64_t offset);
  ~TensorImpl() override;
  static constexpr uint64_t kLiveMagic = 0x48455230544e5352ULL;
  // kLiveMagic while alive, cleared on destruction: lets the ABI recognise (best effort) a handle
  // that was already released.
  uint64_t magic = kLiveMagic;
  Ref<Storage> storage;
  DType dtype;
  Dims shape;
  Dims strides;
  int64_t offset = 0;
  int64_t numel = 1;
  bool wrapped_number = false;  // a Python/JS scalar operand: takes part in promotion as a scalar
  // Slot for autograd metadata ([training]); opaque to the tensor layer.
  std::shared_ptr<void> autograd_meta;
  void recompute_numel() { numel = shape.numel(); }
};

inline DType Tensor::dtype() const { return impl_->dtype; }
inline Device Tensor::device() const { return impl_->storage->device(); }
inline const Dims& Tensor::shape() const { return impl_->shape; }
inline const Dims& Tensor::strides() const { return impl_->strides; }
inline int64_t Tensor::offset() const { return impl_->offset; }
inline int64_t Tensor::dim() const { return static_cast<int64_t>(impl_->shape.size()); }
inline int64_t Tensor::numel() const { return impl_->numel; }
inline const Ref<Storage>& Tensor::storage() const { return impl_->storage; }
inline void* Tensor::raw_data() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * static_cast<int64_t>(heron::itemsize(impl_->dtype));
}
inline bool Tensor::is_wrapped_number() const { return impl_->wrapped_number; }
inline void Tensor::set_wrapped_number(bool v) { impl_->wrapped_number = v; }

// ---- helpers shared by ops
Dims contiguous_strides(const Dims& shape);
// Normalizes a possibly negative axis against ndim; throws IndexError naming the op.
int64_t wrap_dim(int64_t d, int64_t ndim, const char* what = "dim");
// numpy broadcasting of two shapes; throws InvalidArgument naming both shapes.
Dims broadcast_shapes(const Dims& a, const Dims& b);
// PyTorch's result_type over operands (dimensioned tensors > 0-d tensors > wrapped numbers).
DType result_type(const Tensor* const* ts, size_t n);
DType result_type(const Tensor& a, const Tensor& b);
// The dtype a wrapped Python float becomes (float32, like torch.get_default_dtype()).
constexpr DType kDefaultFloat = DType::Float32;

}  // namespace heron
