// CPU kernels of the indexing and movement ops: gather, scatter (scatter, scatter_add,
// index_put_), index offsets, nonzero, tril/triu. Signatures in core/ops/impl/index_kernels.h.
#include <algorithm>
#include <cstring>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/index_kernels.h"
#include "core/ops/kernels/cpu/loops.h"
#include "core/ops/kernels/cpu/register.h"

namespace heron {
namespace cpu {
namespace {

[[noreturn]] void index_error(int64_t raw, const IndexCheck& c) {
  throw Error(ErrorCode::IndexError,
              str_cat(c.op, ": index ", raw, " is out of bounds for dimension ", c.dim, " with size ", c.size), c.op);
}

template <typename I>
inline int64_t checked_index(I raw, const IndexCheck& c) {
  int64_t v = static_cast<int64_t>(raw);
  if (!c.check) return v;
  if (v < 0 && c.wrap) v += c.size;
  if (v < 0 || v >= c.size) index_error(static_cast<int64_t>(raw), c);
  return v;
}

template <int N>
StridedIter<N> iter_over(const Dims& shape, const std::array<const Tensor*, N>& ts) {
  std::array<char*, N> ptrs;
  std::array<Dims, N> st;
  for (int k = 0; k < N; ++k) {
    ptrs[k] = static_cast<char*>(ts[k]->raw_data());
    st[k] = broadcast_byte_strides(*ts[k], shape);
  }
  return StridedIter<N>(shape, ptrs, st);
}

template <typename F>
void visit_index_dtype(DType dt, F&& f) {
  if (dt == DType::Int64) f(int64_t{});
  else if (dt == DType::Int32) f(int32_t{});
  else throw Error(ErrorCode::TypeError, str_cat("index tensors must be int64 or int32, got ", dtype_name(dt)));
}

// ------------------------------------------------------------------ gather
template <typename T>
void gather_kernel(const Tensor& out, const Tensor& src, const Tensor& index, int64_t stride, const IndexCheck& chk) {
  auto it = iter_over<3>(out.shape(), {&out, &src, &index});
  const int64_t bstride = stride * static_cast<int64_t>(sizeof(T));
  visit_index_dtype(index.dtype(), [&](auto iv) {
    using I = decltype(iv);
    it.run([&](char** p, const int64_t* s, int64_t n) {
      if (s[2] == 0) {  // one index for the whole run (e.g. whole rows picked by index / index_select)
        const char* src_p = p[1] + checked_index(*reinterpret_cast<const I*>(p[2]), chk) * bstride;
        if (s[0] == static_cast<int64_t>(sizeof(T)) && s[1] == static_cast<int64_t>(sizeof(T))) {
          std::memcpy(p[0], src_p, static_cast<size_t>(n) * sizeof(T));
        } else {
          for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const T*>(src_p + i * s[1]);
        }
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        int64_t k = checked_index(*reinterpret_cast<const I*>(p[2] + i * s[2]), chk);
        *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const T*>(p[1] + i * s[1] + k * bstride);
      }
    });
  });
}

// ------------------------------------------------------------------ scatter
template <typename T>
void scatter_kernel(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t stride, ScatterMode mode,
                    const IndexCheck& chk) {
  auto it = iter_over<3>(dst.shape(), {&dst, &index, &src});
  const int64_t bstride = stride * static_cast<int64_t>(sizeof(T));
  visit_index_dtype(index.dtype(), [&](auto iv) {
    using I = decltype(iv);
    auto loop = [&](char** p, const int64_t* s, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        int64_t k = checked_index(*reinterpret_cast<const I*>(p[1] + i * s[1]), chk);
        T* d = reinterpret_cast<T*>(p[0] + i * s[0] + k * bstride);
        T v = *reinterpret_cast<const T*>(p[2] + i * s[2]);
        switch (mode) {
          case ScatterMode::Assign: *d = v; break;
          case ScatterMode::Add: *d = convert<T>(static_cast<opmath_t<T>>(*d) + static_cast<opmath_t<T>>(v)); break;
          case ScatterMode::Multiply: *d = convert<T>(static_cast<opmath_t<T>>(*d) * static_cast<opmath_t<T>>(v)); break;
        }
      }
    };
    // In order, on one thread: repeated indices must accumulate (or the last write win).
    it.run_range(0, it.numel(), loop);
  });
}

// ------------------------------------------------------------------ index offsets
void index_offsets_kernel(const Tensor& offsets, const std::vector<Tensor>& indices, const Dims& sizes,
                          const Dims& strides, const Dims& dims, const char* op) {
  int64_t* o = offsets.data<int64_t>();
  if (indices.empty()) {
    std::fill(o, o + offsets.numel(), int64_t{0});
    return;
  }
  for (size_t j = 0; j < indices.size(); ++j) {
    const Tensor& idx = indices[j];
    auto it = iter_over<2>(offsets.shape(), {&offsets, &idx});
    IndexCheck chk{op, dims[j], sizes[j], true, true};
    const int64_t stride = strides[j];
    const bool first = j == 0;
    visit_index_dtype(idx.dtype(), [&](auto iv) {
      using I = decltype(iv);
      it.run([&](char** p, const int64_t* s, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          int64_t k = checked_index(*reinterpret_cast<const I*>(p[1] + i * s[1]), chk);
          int64_t* q = reinterpret_cast<int64_t*>(p[0] + i * s[0]);
          *q = (first ? 0 : *q) + k * stride;
        }
      });
    });
  }
}

// ------------------------------------------------------------------ nonzero
template <typename T>
inline bool nonzero_value(T v) {
  return static_cast<opmath_t<T>>(v) != static_cast<opmath_t<T>>(0);
}

template <typename T>
Tensor nonzero_kernel(const Tensor& in) {
  const T* p = in.data<T>();
  const int64_t n = in.numel(), nd = in.dim();
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += nonzero_value(p[i]) ? 1 : 0;
  Tensor out = Tensor::empty(Dims{count, nd}, DType::Int64, in.device());
  if (count == 0) return out;
  int64_t* o = out.data<int64_t>();
  Dims idx(nd, 0);
  const Dims& shape = in.shape();
  for (int64_t i = 0; i < n; ++i) {
    if (nonzero_value(p[i])) {
      for (int64_t d = 0; d < nd; ++d) *o++ = idx[d];
    }
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

// ------------------------------------------------------------------ tril / triu
template <typename T>
void tri_kernel(const Tensor& out, const Tensor& in, int64_t diagonal, bool upper) {
  const int64_t R = in.size(-2), C = in.size(-1);
  if (C == 0 || R == 0) return;
  const int64_t rows = in.numel() / C;
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  const T zero = convert<T>(int64_t{0});
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / C), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t r = row % R;
      const T* s = src + row * C;
      T* d = dst + row * C;
      for (int64_t c = 0; c < C; ++c) {
        bool keep = upper ? (c - r >= diagonal) : (c - r <= diagonal);
        d[c] = keep ? s[c] : zero;
      }
    }
  });
}


HERON_CPU_KERNELS_ALL(ops::OpId::gather, gather_kernel);
HERON_CPU_KERNELS_ALL(ops::OpId::scatter, scatter_kernel);
HERON_CPU_KERNELS_NUMERIC(ops::OpId::scatter_add, scatter_kernel);
HERON_CPU_KERNELS_ALL(ops::OpId::index_put_, scatter_kernel);
HERON_REGISTER_KERNEL(ops::OpId::index, "cpu", DType::Int64, &index_offsets_kernel);
HERON_CPU_KERNELS_ALL(ops::OpId::nonzero, nonzero_kernel);
HERON_CPU_KERNELS_ALL(ops::OpId::tril, tri_kernel);


}  // namespace
}  // namespace cpu
}  // namespace heron
