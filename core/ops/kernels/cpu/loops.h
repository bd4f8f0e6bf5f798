// CPU elementwise iteration: N operands (operand 0 is usually the output) over one shape, each
// with its own byte strides (0 where broadcast). Dims are coalesced, the innermost dim becomes a
// 1-d loop `loop(char** ptrs, const int64_t* strides, int64_t n)`, and large ranges are split
// over the thread pool.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>

#include "core/tensor/tensor.h"
#include "core/util/thread_pool.h"

namespace heron {
namespace cpu {

constexpr int64_t kGrain = 32768;  // elements per parallel chunk, at least

// Byte strides of `t` viewed in `shape` (t broadcast to shape; t's dims align to the right).
inline Dims broadcast_byte_strides(const Tensor& t, const Dims& shape) {
  Dims out(shape.size(), 0);
  size_t off = shape.size() - t.shape().size();
  int64_t isz = static_cast<int64_t>(t.itemsize());
  for (size_t i = 0; i < t.shape().size(); ++i)
    out[off + i] = t.shape()[i] == 1 ? 0 : t.strides()[i] * isz;
  return out;
}

template <int N>
struct StridedIter {
  Dims shape;                       // coalesced shape (outermost first)
  std::array<Dims, N> strides;      // byte strides per operand, coalesced
  std::array<char*, N> base;

  StridedIter(const Dims& shape_in, const std::array<char*, N>& ptrs, const std::array<Dims, N>& strides_in)
      : base(ptrs) {
    // Drop size-1 dims, then merge dim i into i+1 when every operand is contiguous across them.
    Dims sh;
    std::array<Dims, N> st;
    for (size_t d = 0; d < shape_in.size(); ++d) {
      if (shape_in[d] == 1) continue;
      sh.push_back(shape_in[d]);
      for (int k = 0; k < N; ++k) st[k].push_back(strides_in[k][d]);
    }
    Dims csh;
    std::array<Dims, N> cst;
    for (size_t d = 0; d < sh.size(); ++d) {
      if (!csh.empty()) {
        bool merge = true;
        for (int k = 0; k < N; ++k)
          if (cst[k].back() != st[k][d] * sh[d]) { merge = false; break; }
        if (merge) {
          int64_t last = csh.size() - 1;
          csh[last] *= sh[d];
          for (int k = 0; k < N; ++k) cst[k][last] = st[k][d];
          continue;
        }
      }
      csh.push_back(sh[d]);
      for (int k = 0; k < N; ++k) cst[k].push_back(st[k][d]);
    }
    shape = csh;
    strides = cst;
  }

  int64_t numel() const { return shape.numel(); }

  // Runs loop over the flat element range [begin, end) (in row-major order of `shape`).
  template <typename Loop>
  void run_range(int64_t begin, int64_t end, Loop& loop) const {
    const int64_t nd = static_cast<int64_t>(shape.size());
    if (nd == 0) {
      std::array<char*, N> p = base;
      int64_t zero[N] = {};
      if (begin < end) loop(p.data(), zero, 1);
      return;
    }
    const int64_t inner = shape[nd - 1];
    int64_t inner_strides[N];
    for (int k = 0; k < N; ++k) inner_strides[k] = strides[k][nd - 1];
    // Decompose begin into a multi-index.
    Dims idx(nd, 0);
    int64_t rem = begin;
    for (int64_t d = nd - 1; d >= 0; --d) { idx[d] = rem % shape[d]; rem /= shape[d]; }
    int64_t pos = begin;
    while (pos < end) {
      std::array<char*, N> p;
      for (int k = 0; k < N; ++k) {
        char* q = base[k];
        for (int64_t d = 0; d < nd; ++d) q += idx[d] * strides[k][d];
        p[k] = q;
      }
      int64_t n = std::min(inner - idx[nd - 1], end - pos);
      loop(p.data(), inner_strides, n);
      pos += n;
      idx[nd - 1] += n;
      for (int64_t d = nd - 1; d > 0 && idx[d] >= shape[d]; --d) { idx[d] = 0; ++idx[d - 1]; }
    }
  }

  template <typename Loop>
  void run(Loop&& loop, int64_t grain = kGrain) const {
    int64_t n = numel();
    if (n == 0) return;
    if (n < grain * 2) { run_range(0, n, loop); return; }
    parallel_for(0, n, grain, [&](int64_t b, int64_t e) { run_range(b, e, loop); });
  }
};

// Output (fresh, contiguous) + inputs broadcast to out's shape.
template <int N>
StridedIter<N> make_iter(const Tensor& out, const std::array<const Tensor*, N - 1>& ins) {
  std::array<char*, N> ptrs;
  std::array<Dims, N> st;
  ptrs[0] = static_cast<char*>(out.raw_data());
  st[0] = broadcast_byte_strides(out, out.shape());
  for (int k = 1; k < N; ++k) {
    ptrs[k] = static_cast<char*>(ins[k - 1]->raw_data());
    st[k] = broadcast_byte_strides(*ins[k - 1], out.shape());
  }
  return StridedIter<N>(out.shape(), ptrs, st);
}

// Elementwise map over contiguous or strided operands, with fast paths for the contiguous case.
// f: (opmath inputs...) -> output value.  Out and ins are typed by template parameters.
template <typename Out, typename In, typename F>
void unary_map(const Tensor& out, const Tensor& in, F f) {
  auto it = make_iter<2>(out, {&in});
  it.run([&](char** p, const int64_t* s, int64_t n) {
    if (s[0] == sizeof(Out) && s[1] == sizeof(In)) {
      Out* o = reinterpret_cast<Out*>(p[0]);
      const In* a = reinterpret_cast<const In*>(p[1]);
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(p[0] + i * s[0]) = f(*reinterpret_cast<const In*>(p[1] + i * s[1]));
    }
  });
}

template <typename Out, typename A, typename B, typename F>
void binary_map(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  auto it = make_iter<3>(out, {&a, &b});
  it.run([&](char** p, const int64_t* s, int64_t n) {
    Out* o = reinterpret_cast<Out*>(p[0]);
    if (s[0] == sizeof(Out) && s[1] == sizeof(A) && s[2] == sizeof(B)) {
      const A* x = reinterpret_cast<const A*>(p[1]);
      const B* y = reinterpret_cast<const B*>(p[2]);
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (s[0] == sizeof(Out) && s[1] == sizeof(A) && s[2] == 0) {
      const A* x = reinterpret_cast<const A*>(p[1]);
      const B y = *reinterpret_cast<const B*>(p[2]);
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y);
    } else if (s[0] == sizeof(Out) && s[1] == 0 && s[2] == sizeof(B)) {
      const A x = *reinterpret_cast<const A*>(p[1]);
      const B* y = reinterpret_cast<const B*>(p[2]);
      for (int64_t i = 0; i < n; ++i) o[i] = f(x, y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(p[0] + i * s[0]) =
            f(*reinterpret_cast<const A*>(p[1] + i * s[1]), *reinterpret_cast<const B*>(p[2] + i * s[2]));
    }
  });
}

}  // namespace cpu
}  // namespace heron
