// Dims: a small vector of int64 for shapes and strides; up to 6 dims live inline (no allocation),
// more spill to the heap. Eager ops on small tensors allocate nothing for their metadata.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <initializer_list>
#include <new>
#include <string>
#include <vector>

namespace heron {

class Dims {
 public:
  static constexpr size_t kInline = 6;
  Dims() = default;
  explicit Dims(size_t n, int64_t v = 0) { resize(n, v); }
  Dims(std::initializer_list<int64_t> il) { assign(il.begin(), il.size()); }
  Dims(const int64_t* p, size_t n) { assign(p, n); }
  Dims(const std::vector<int64_t>& v) { assign(v.data(), v.size()); }
  Dims(const Dims& o) { assign(o.data(), o.size()); }
  Dims(Dims&& o) noexcept { move_from(o); }
  Dims& operator=(const Dims& o) { if (this != &o) assign(o.data(), o.size()); return *this; }
  Dims& operator=(Dims&& o) noexcept { if (this != &o) { free_heap(); move_from(o); } return *this; }
  ~Dims() { free_heap(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int64_t* data() { return heap_ ? heap_ : inline_; }
  const int64_t* data() const { return heap_ ? heap_ : inline_; }
  int64_t& operator[](size_t i) { return data()[i]; }
  int64_t operator[](size_t i) const { return data()[i]; }
  int64_t* begin() { return data(); }
  int64_t* end() { return data() + size_; }
  const int64_t* begin() const { return data(); }
  const int64_t* end() const { return data() + size_; }
  int64_t back() const { return data()[size_ - 1]; }

  void reserve(size_t n) {
    if (n <= capacity()) return;
    auto* p = static_cast<int64_t*>(std::malloc(n * sizeof(int64_t)));
    if (!p) throw std::bad_alloc();
    if (size_) std::memcpy(p, data(), size_ * sizeof(int64_t));
    free_heap();
    heap_ = p;
    cap_ = n;
  }
  void resize(size_t n, int64_t v = 0) {
    reserve(n);
    for (size_t i = size_; i < n; ++i) data()[i] = v;
    size_ = n;
  }
  void push_back(int64_t v) {
    if (size_ == capacity()) reserve(std::max<size_t>(capacity() * 2, 8));
    data()[size_++] = v;
  }
  void insert(size_t pos, int64_t v) {
    push_back(0);
    int64_t* d = data();
    std::memmove(d + pos + 1, d + pos, (size_ - 1 - pos) * sizeof(int64_t));
    d[pos] = v;
  }
  void erase(size_t pos) {
    int64_t* d = data();
    std::memmove(d + pos, d + pos + 1, (size_ - 1 - pos) * sizeof(int64_t));
    --size_;
  }
  void clear() { size_ = 0; }
  bool operator==(const Dims& o) const {
    return size_ == o.size_ && (size_ == 0 || std::memcmp(data(), o.data(), size_ * sizeof(int64_t)) == 0);
  }
  bool operator!=(const Dims& o) const { return !(*this == o); }
  std::vector<int64_t> vec() const { return std::vector<int64_t>(begin(), end()); }
  int64_t numel() const { int64_t n = 1; for (size_t i = 0; i < size_; ++i) n *= data()[i]; return n; }
  std::string str() const {
    std::string s = "[";
    for (size_t i = 0; i < size_; ++i) { if (i) s += ", "; s += std::to_string(data()[i]); }
    return s + "]";
  }

 private:
  size_t capacity() const { return heap_ ? cap_ : kInline; }
  void assign(const int64_t* p, size_t n) {
    if (n > capacity()) reserve(n);
    if (n) std::memmove(data(), p, n * sizeof(int64_t));
    size_ = n;
  }
  void move_from(Dims& o) {
    if (o.heap_) { heap_ = o.heap_; cap_ = o.cap_; size_ = o.size_; o.heap_ = nullptr; o.size_ = 0; }
    else { heap_ = nullptr; size_ = o.size_; std::memcpy(inline_, o.inline_, size_ * sizeof(int64_t)); }
  }
  void free_heap() { if (heap_) { std::free(heap_); heap_ = nullptr; } }
  int64_t inline_[kInline];
  int64_t* heap_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};

inline std::string shape_str(const Dims& d) { return d.str(); }

}  // namespace heron
