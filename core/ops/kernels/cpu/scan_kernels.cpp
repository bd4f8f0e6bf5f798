// CPU kernels along one dim: cumsum, cumprod, softmax, log_softmax.
//
// The positions of the other dims are walked with StridedIter (coalesced, parallel); each call
// of the loop gets n positions with a common stride. They are processed in blocks of up to 64
// positions at once, the dim being the outer loop, so a scan over an outer dim reads contiguous
// rows and vectorizes, and a scan over the innermost dim is a plain loop per line.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/reduce.h"
#include "core/ops/kernels/cpu/loops.h"
#include "core/ops/kernels/cpu/reduce_simd.h"
#include "core/ops/kernels/cpu/vec_math.h"

namespace heron {
namespace cpu {
namespace {

constexpr int64_t kBlock = 64;        // positions scanned together
constexpr int64_t kSoftBlock = 16384; // positions normalized together

template <typename T>
constexpr bool kFloatLike = std::is_floating_point_v<opmath_t<T>>;

// Byte strides of t's dims, and the iteration shape with `dim` collapsed to 1.
struct LineGeom {
  Dims shape;
  int64_t L = 1;
  int64_t in_step = 0, out_step = 0;
  std::array<Dims, 2> strides;
};

LineGeom line_geom(const Tensor& in, const Tensor& out, int64_t dim) {
  LineGeom g;
  g.shape = in.shape();
  Dims si(in.dim()), so(in.dim());
  for (int64_t d = 0; d < in.dim(); ++d) {
    si[d] = in.strides()[d] * static_cast<int64_t>(in.itemsize());
    so[d] = out.strides()[d] * static_cast<int64_t>(out.itemsize());
  }
  if (in.dim() > 0) {
    g.L = g.shape[dim];
    g.in_step = si[dim];
    g.out_step = so[dim];
    g.shape[dim] = 1;
  }
  g.strides = {so, si};
  return g;
}

inline int64_t iabs(int64_t v) { return v < 0 ? -v : v; }

template <typename T, bool Prod>
void scan_kernel(const Tensor& in, const Tensor& out, int64_t dim) {
  using Acc = std::conditional_t<kFloatLike<T>, opmath_t<T>, uint64_t>;
  using Out = std::conditional_t<kFloatLike<T>, T, int64_t>;
  if (out.numel() == 0) return;
  auto load = [](T v) -> Acc {
    if constexpr (kFloatLike<T>) return static_cast<Acc>(v);
    else return static_cast<uint64_t>(static_cast<int64_t>(v));
  };
  auto store = [](Acc a) -> Out {
    if constexpr (kFloatLike<T>) return Out(a);
    else return static_cast<int64_t>(a);
  };
  LineGeom g = line_geom(in, out, dim);
  StridedIter<2> it(g.shape, {static_cast<char*>(out.raw_data()), static_cast<char*>(in.raw_data())}, g.strides);
  const int64_t L = g.L, is = g.in_step, os = g.out_step;
  it.run(
      [&](char** p, const int64_t* s, int64_t n) {
        if (n == 1 || iabs(s[1]) > iabs(is)) {
          // The dim is the inner one: one line after the other.
          for (int64_t i = 0; i < n; ++i) {
            const char* ip = p[1] + i * s[1];
            char* op = p[0] + i * s[0];
            Acc acc = Prod ? Acc(1) : Acc(0);
            for (int64_t l = 0; l < L; ++l) {
              Acc v = load(*reinterpret_cast<const T*>(ip + l * is));
              acc = Prod ? acc * v : acc + v;
              *reinterpret_cast<Out*>(op + l * os) = store(acc);
            }
          }
          return;
        }
        // The positions are inner: scan blocks of them row by row (vectorizes).
        Acc acc[kBlock];
        for (int64_t b = 0; b < n; b += kBlock) {
          int64_t m = std::min(kBlock, n - b);
          char* op = p[0] + b * s[0];
          const char* ip = p[1] + b * s[1];
          for (int64_t i = 0; i < m; ++i) acc[i] = Prod ? Acc(1) : Acc(0);
          for (int64_t l = 0; l < L; ++l) {
            const char* irow = ip + l * is;
            char* orow = op + l * os;
            if (s[0] == static_cast<int64_t>(sizeof(Out)) && s[1] == static_cast<int64_t>(sizeof(T))) {
              const T* x = reinterpret_cast<const T*>(irow);
              Out* y = reinterpret_cast<Out*>(orow);
              for (int64_t i = 0; i < m; ++i) {
                acc[i] = Prod ? acc[i] * load(x[i]) : acc[i] + load(x[i]);
                y[i] = store(acc[i]);
              }
            } else {
              for (int64_t i = 0; i < m; ++i) {
                Acc v = load(*reinterpret_cast<const T*>(irow + i * s[1]));
                acc[i] = Prod ? acc[i] * v : acc[i] + v;
                *reinterpret_cast<Out*>(orow + i * s[0]) = store(acc[i]);
              }
            }
          }
        }
      },
      std::max<int64_t>(1, kGrain / std::max<int64_t>(L, 1)));
}

// Sum of n contiguous values with 8 accumulators (vectorizes; no long dependency chain).
template <typename T>
T sum8(const T* x, int64_t n) {
  T r[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) r[j] += x[i + j];
  T s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; ++i) s += x[i];
  return s;
}

// exp over n contiguous floats in place (SIMD for float32; std::exp otherwise).
inline void exp_inplace(float* x, int64_t n) { vec::exp_f32(x, x, n); }
inline void exp_inplace(double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

template <typename T>
void softmax_kernel(const Tensor& in, const Tensor& out, int64_t dim, bool log) {
  using Acc = opmath_t<T>;
  constexpr bool kSame = std::is_same_v<Acc, T>;  // float32 / float64: out holds the exps
  if (out.numel() == 0) return;
  LineGeom g = line_geom(in, out, dim);
  StridedIter<2> it(g.shape, {static_cast<char*>(out.raw_data()), static_cast<char*>(in.raw_data())}, g.strides);
  const int64_t L = g.L, is = g.in_step, os = g.out_step;
  const Acc ninf = -std::numeric_limits<Acc>::infinity();
  it.run(
      [&](char** p, const int64_t* s, int64_t n) {
        if (n == 1 || iabs(s[1]) > iabs(is)) {
          // The dim is the inner one: line by line.
          for (int64_t i = 0; i < n; ++i) {
            const char* ip = p[1] + i * s[1];
            char* op = p[0] + i * s[0];
            auto x = [&](int64_t l) -> Acc { return static_cast<Acc>(*reinterpret_cast<const T*>(ip + l * is)); };
            auto y = [&](int64_t l) -> T& { return *reinterpret_cast<T*>(op + l * os); };
            Acc mx = ninf;
            bool done = false;
#if defined(__SSE2__)
            if constexpr (kSame) {
              if (is == static_cast<int64_t>(sizeof(T)) && L >= 16) {
                mx = extreme_sse<true>(reinterpret_cast<const T*>(ip), L);
                done = true;
              }
            }
#endif
            if (!done)
              for (int64_t l = 0; l < L; ++l) {
                Acc v = x(l);
                mx = (v > mx || v != v) ? v : mx;
              }
            Acc sum = 0;
            if constexpr (kSame) {
              if (os == static_cast<int64_t>(sizeof(T)) && is == static_cast<int64_t>(sizeof(T))) {
                const T* xl = reinterpret_cast<const T*>(ip);
                T* yl = reinterpret_cast<T*>(op);
                for (int64_t l = 0; l < L; ++l) yl[l] = xl[l] - mx;
                exp_inplace(yl, L);
                sum = sum8(yl, L);
                if (log) {
                  Acc ls = std::log(sum);
                  for (int64_t l = 0; l < L; ++l) yl[l] = (xl[l] - mx) - ls;
                } else {
                  Acc inv = Acc(1) / sum;
                  for (int64_t l = 0; l < L; ++l) yl[l] *= inv;
                }
                continue;
              }
            }
            for (int64_t l = 0; l < L; ++l) sum += std::exp(x(l) - mx);
            if (log) {
              Acc ls = std::log(sum);
              for (int64_t l = 0; l < L; ++l) y(l) = T(static_cast<Acc>((x(l) - mx) - ls));
            } else {
              Acc inv = Acc(1) / sum;
              for (int64_t l = 0; l < L; ++l) y(l) = T(static_cast<Acc>(std::exp(x(l) - mx) * inv));
            }
          }
          return;
        }
        // The positions are inner: blocks of positions (whole rows when they fit), each pass
        // streaming over the rows.
        const int64_t B = std::min(n, kSoftBlock);
        std::vector<Acc> mxv(static_cast<size_t>(B)), smv(static_cast<size_t>(B));
        Acc* mx = mxv.data();
        Acc* sm = smv.data();
        for (int64_t b = 0; b < n; b += B) {
          int64_t m = std::min(B, n - b);
          char* op = p[0] + b * s[0];
          const char* ip = p[1] + b * s[1];
          auto x = [&](int64_t l, int64_t i) -> Acc {
            return static_cast<Acc>(*reinterpret_cast<const T*>(ip + l * is + i * s[1]));
          };
          auto y = [&](int64_t l, int64_t i) -> T& { return *reinterpret_cast<T*>(op + l * os + i * s[0]); };
          for (int64_t i = 0; i < m; ++i) {
            mx[i] = ninf;
            sm[i] = 0;
          }
          bool maxed = false;
#if defined(__SSE2__)
          if constexpr (kSame) {
            if (s[1] == static_cast<int64_t>(sizeof(T))) {
              for (int64_t l = 0; l < L; ++l) extreme_row_sse<true>(mx, reinterpret_cast<const T*>(ip + l * is), m);
              maxed = true;
            }
          }
#endif
          if (!maxed)
            for (int64_t l = 0; l < L; ++l)
              for (int64_t i = 0; i < m; ++i) {
                Acc v = x(l, i);
                mx[i] = (v > mx[i] || v != v) ? v : mx[i];
              }
          bool stored = false;
          if constexpr (kSame) {
            if (s[0] == static_cast<int64_t>(sizeof(T))) {
              for (int64_t l = 0; l < L; ++l) {
                T* yr = &y(l, 0);
                for (int64_t i = 0; i < m; ++i) yr[i] = x(l, i) - mx[i];
                exp_inplace(yr, m);
                for (int64_t i = 0; i < m; ++i) sm[i] += yr[i];
              }
              stored = true;
            }
          }
          if (!stored)
            for (int64_t l = 0; l < L; ++l)
              for (int64_t i = 0; i < m; ++i) sm[i] += std::exp(x(l, i) - mx[i]);
          if (log) {
            for (int64_t i = 0; i < m; ++i) sm[i] = std::log(sm[i]);
            for (int64_t l = 0; l < L; ++l)
              for (int64_t i = 0; i < m; ++i) y(l, i) = T(static_cast<Acc>((x(l, i) - mx[i]) - sm[i]));
          } else {
            for (int64_t i = 0; i < m; ++i) sm[i] = Acc(1) / sm[i];
            for (int64_t l = 0; l < L; ++l)
              for (int64_t i = 0; i < m; ++i) {
                if (stored) y(l, i) = static_cast<T>(static_cast<Acc>(y(l, i)) * sm[i]);
                else y(l, i) = T(static_cast<Acc>(std::exp(x(l, i) - mx[i]) * sm[i]));
              }
          }
        }
      },
      std::max<int64_t>(1, kGrain / std::max<int64_t>(4 * L, 1)));
}

#define HERON_REG_SCAN(OP, PROD)                                                                            \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, (&scan_kernel<float, PROD>));                 \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, (&scan_kernel<double, PROD>));                \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float16, (&scan_kernel<Half, PROD>));                  \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::BFloat16, (&scan_kernel<BFloat16, PROD>));             \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Int8, (&scan_kernel<int8_t, PROD>));                   \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::UInt8, (&scan_kernel<uint8_t, PROD>));                 \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Int32, (&scan_kernel<int32_t, PROD>));                 \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Int64, (&scan_kernel<int64_t, PROD>));                 \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Bool, (&scan_kernel<bool, PROD>))

HERON_REG_SCAN(cumsum, false);
HERON_REG_SCAN(cumprod, true);

#define HERON_REG_SOFTMAX(OP)                                                                  \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, &softmax_kernel<float>);         \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, &softmax_kernel<double>);        \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float16, &softmax_kernel<Half>);          \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::BFloat16, &softmax_kernel<BFloat16>)

HERON_REG_SOFTMAX(softmax);
HERON_REG_SOFTMAX(log_softmax);

}  // namespace
}  // namespace cpu
}  // namespace heron
