// Intrusive reference counting. Objects that cross the ABI as handles derive from RefCounted:
// the handle is the object itself, heron_*_retain/release map onto incref/decref.
#pragma once
#include <atomic>
#include <cstdint>
#include <utility>

namespace heron {

// Number of live handle-able objects (tensors, and later sessions/models); tests assert it returns to 0.
std::atomic<int64_t>& live_handle_counter();

class RefCounted {
 public:
  RefCounted() = default;
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;
  virtual ~RefCounted() = default;
  void incref() const { refcount_.fetch_add(1, std::memory_order_relaxed); }
  void decref() const {
    if (refcount_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  int64_t refcount() const { return refcount_.load(std::memory_order_relaxed); }
 private:
  mutable std::atomic<int64_t> refcount_{1};
};

// Owning smart pointer; Ref<T>::adopt takes over the initial reference of `new T`.
template <typename T>
class Ref {
 public:
  Ref() = default;
  Ref(std::nullptr_t) {}
  static Ref adopt(T* p) { Ref r; r.p_ = p; return r; }
  static Ref borrow(T* p) { if (p) p->incref(); return adopt(p); }
  Ref(const Ref& o) : p_(o.p_) { if (p_) p_->incref(); }
  Ref(Ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  template <typename U> Ref(const Ref<U>& o) : p_(o.get()) { if (p_) p_->incref(); }
  Ref& operator=(const Ref& o) { Ref(o).swap(*this); return *this; }
  Ref& operator=(Ref&& o) noexcept { Ref(std::move(o)).swap(*this); return *this; }
  ~Ref() { if (p_) p_->decref(); }
  void swap(Ref& o) noexcept { std::swap(p_, o.p_); }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  // Gives up ownership without decref (the caller now owns one reference).
  T* release() { T* p = p_; p_ = nullptr; return p; }
  void reset() { Ref().swap(*this); }
 private:
  T* p_ = nullptr;
};

template <typename T, typename... Args>
Ref<T> make_ref(Args&&... args) { return Ref<T>::adopt(new T(std::forward<Args>(args)...)); }

}  // namespace heron
