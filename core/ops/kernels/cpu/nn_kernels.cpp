// CPU kernels of the nn layers: linear (OpenBLAS, bias pre-filled and beta = 1; float32 batches of
// 1-4 on AVX-512: gemv_f32.cpp), leaky_relu, dropout (Philox), embedding and interpolate, with
// their backward ops.
#include <cblas.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

#include "core/ops/kernels/cpu/gemv_f32.h"
#include "core/ops/kernels/cpu/nn_common.h"
#include "core/ops/kernels/cpu/register.h"
#include "core/util/philox.h"

namespace heron {
namespace cpu {
namespace {
using namespace nn;

// OpenBLAS's thread count follows Heron's (matmul_kernels.cpp keeps it in sync afterwards; this
// covers a linear called before any matmul). HERON_BLAS_POOL=1 keeps OpenBLAS single-threaded.
void sync_blas_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* e = std::getenv("HERON_BLAS_POOL");
    openblas_set_num_threads(e && e[0] == '1' ? 1 : get_num_threads());
  });
}

inline void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
                 const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

// ------------------------------------------------------------------ linear
template <typename T>
void linear_kernel(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& out) {
  const int64_t M = x.size(0), K = x.size(1), O = w.size(0);
  T* op = out.data<T>();
  if constexpr (std::is_same_v<T, float>) {
    // Batch <= 4 (a classifier at inference): our own AVX-512 dot products at memory speed.
    if (linear_gemv_f32_ok(M, K, O)) {
      linear_gemv_f32(x.data<float>(), w.data<float>(), b.defined() ? b.data<float>() : nullptr, op, M, K, O);
      return;
    }
  }
  if (b.defined()) {
    const T* bp = b.data<T>();
    parallel_for(0, M, std::max<int64_t>(1, kGrain / std::max<int64_t>(O, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memcpy(op + r * O, bp, sizeof(T) * O);
    });
  }
  if (K == 0) {
    if (!b.defined()) std::fill_n(op, M * O, T(0));
    return;
  }
  sync_blas_once();
  const T beta = b.defined() ? T(1) : T(0);
  // Small batches (inference: a classifier at batch 1 is a 1 x 1280 . 1280 x 1000 product):
  // blocks of output features over Heron's pool, each below the size OpenBLAS threads by itself,
  // so no OpenBLAS thread synchronisation (which stalls when other pools spin in the process).
  // The blocks depend on the shape only (not the thread count): results are the same bits at any
  // thread count.
  constexpr int64_t kSerial = int64_t{1} << 18;
  if (M <= 64 && M * O * K >= kSerial && O >= 32) {
    const int64_t blk = std::max<int64_t>(16, (kSerial / std::max<int64_t>(1, M * K)) & ~int64_t{15});
    const int64_t nblk = (O + blk - 1) / blk;
    const T* xp = x.data<T>();
    const T* wp = w.data<T>();
    parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t bi = b0; bi < b1; ++bi) {
        const int64_t o0 = bi * blk, o1 = std::min(O, o0 + blk);
        gemm(CblasNoTrans, CblasTrans, M, o1 - o0, K, xp, K, wp + o0 * K, K, beta, op + o0, O);
      }
    });
    return;
  }
  gemm(CblasNoTrans, CblasTrans, M, O, K, x.data<T>(), K, w.data<T>(), K, beta, op, O);
}

template <typename T>
void linear_backward_kernel(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& gi, const Tensor& gw, const Tensor& gb) {
  const int64_t M = x.size(0), K = x.size(1), O = w.size(0);
  const T* gp = g.data<T>();
  sync_blas_once();
  if (gi.defined() && gi.numel() > 0) {
    if (O == 0) std::fill_n(gi.data<T>(), gi.numel(), T(0));
    else gemm(CblasNoTrans, CblasNoTrans, M, K, O, gp, O, w.data<T>(), K, T(0), gi.data<T>(), K);
  }
  if (gw.defined() && gw.numel() > 0) {
    if (M == 0) std::fill_n(gw.data<T>(), gw.numel(), T(0));
    else gemm(CblasTrans, CblasNoTrans, O, K, M, gp, O, x.data<T>(), K, T(0), gw.data<T>(), K);
  }
  if (gb.defined() && gb.numel() > 0) {
    // Column sums of g, by blocks of columns (deterministic).
    T* gbp = gb.data<T>();
    constexpr int64_t CB = 256;
    parallel_for(0, (O + CB - 1) / CB, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t c0 = blk * CB, c1 = std::min(O, c0 + CB);
        double acc[CB] = {};
        for (int64_t r = 0; r < M; ++r) {
          const T* row = gp + r * O;
          for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
        }
        for (int64_t c = c0; c < c1; ++c) gbp[c] = static_cast<T>(acc[c - c0]);
      }
    });
  }
}

// ------------------------------------------------------------------ leaky_relu
template <typename T>
void leaky_relu_kernel(const Tensor& x, const Tensor& out, double slope) {
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  const T s = static_cast<T>(slope);
  parallel_for(0, x.numel(), kGrain, [xp, op, s](int64_t i0, int64_t i1) {
    const T* __restrict xr = xp;
    T* __restrict o = op;
    for (int64_t i = i0; i < i1; ++i) {
      // max(v, 0) + s * min(v, 0): branch-free (random signs defeat the branch predictor) and
      // exact (one of the two terms is zero); nan propagates.
      const T v = xr[i];
      o[i] = std::max(v, T(0)) + s * std::min(v, T(0));
    }
  });
}

template <typename T>
void leaky_relu_backward_kernel(const Tensor& g, const Tensor& x, const Tensor& gi, double slope) {
  const T* gp = g.data<T>();
  const T* xp = x.data<T>();
  T* op = gi.data<T>();
  const T s = static_cast<T>(slope);
  parallel_for(0, x.numel(), kGrain, [gp, xp, op, s](int64_t i0, int64_t i1) {
    const T* __restrict gr = gp;
    const T* __restrict xr = xp;
    T* __restrict o = op;
    const T f[2] = {s, T(1)};  // factor by (x > 0), looked up instead of branched on
    for (int64_t i = i0; i < i1; ++i) o[i] = gr[i] * f[xr[i] > T(0)];
  });
}

// ------------------------------------------------------------------ dropout
template <typename T>
void dropout_kernel(const Tensor& x, const Tensor& out, const Tensor& mask, double p, double scale, uint64_t seed, uint64_t offset) {
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  bool* mp = mask.data<bool>();
  const int64_t n = x.numel();
  // keep when u = word / 2^32 >= p, i.e. word >= ceil(p * 2^32); p = 1 drops everything.
  const double thr_d = std::ceil(p * 4294967296.0);
  const bool drop_all = thr_d >= 4294967296.0;
  const uint32_t thr = drop_all ? 0u : static_cast<uint32_t>(thr_d);
  const T f[2] = {T(0), static_cast<T>(scale)};
  const int64_t nblocks = (n + 3) / 4;
  parallel_for(0, nblocks, std::max<int64_t>(1, kGrain / 4), [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      auto wd = philox_block(seed, offset + static_cast<uint64_t>(blk));
      for (int k = 0; k < 4; ++k) {
        const int64_t i = blk * 4 + k;
        if (i >= n) break;
        const bool keep = !drop_all && wd[k] >= thr;
        mp[i] = keep;
        op[i] = xp[i] * f[keep];  // x * mask * scale, like PyTorch (branch-free)
      }
    }
  });
}

template <typename T>
void dropout_backward_kernel(const Tensor& g, const Tensor& mask, const Tensor& gi, double scale) {
  const T* gp = g.data<T>();
  const bool* mp = mask.data<bool>();
  T* op = gi.data<T>();
  const T sc = static_cast<T>(scale);
  parallel_for(0, g.numel(), kGrain, [gp, mp, op, sc](int64_t i0, int64_t i1) {
    const T* __restrict gr = gp;
    const bool* __restrict mr = mp;
    T* __restrict o = op;
    const T f[2] = {T(0), sc};
    for (int64_t i = i0; i < i1; ++i) o[i] = gr[i] * f[mr[i]];
  });
}

// ------------------------------------------------------------------ embedding
template <typename I>
inline int64_t check_index(const I* ip, int64_t i, int64_t num) {
  const int64_t v = static_cast<int64_t>(ip[i]);
  if (v < 0 || v >= num)
    throw Error(ErrorCode::IndexError,
                str_cat("embedding: index ", v, " (at flat position ", i, ") is out of range for a weight with ", num, " rows"), "embedding");
  return v;
}

template <typename T, typename I>
void embedding_gather(const T* wp, const I* ip, T* op, int64_t n, int64_t num, int64_t dim) {
  for (int64_t i = 0; i < n; ++i) check_index(ip, i, num);
  parallel_for(0, n, std::max<int64_t>(1, kGrain / std::max<int64_t>(dim, 1)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) std::memcpy(op + i * dim, wp + static_cast<int64_t>(ip[i]) * dim, sizeof(T) * dim);
  });
}

template <typename T>
void embedding_kernel(const Tensor& w, const Tensor& idx, const Tensor& out) {
  const int64_t num = w.size(0), dim = w.size(1), n = idx.numel();
  if (idx.dtype() == DType::Int64) embedding_gather(w.data<T>(), idx.data<int64_t>(), out.data<T>(), n, num, dim);
  else embedding_gather(w.data<T>(), idx.data<int32_t>(), out.data<T>(), n, num, dim);
}

template <typename T, typename I>
void embedding_scatter(const T* gp, const I* ip, T* op, int64_t n, int64_t num, int64_t dim, int64_t pad) {
  for (int64_t i = 0; i < n; ++i) check_index(ip, i, num);
  std::fill_n(op, num * dim, T(0));
  // Threads own disjoint ranges of rows and each scans all indices: no races, and every row
  // accumulates in index order (deterministic).
  const int64_t parts = std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, n * dim / kGrain));
  parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t lo = num * p / parts, hi = num * (p + 1) / parts;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t r = static_cast<int64_t>(ip[i]);
        if (r < lo || r >= hi || r == pad) continue;
        T* dst = op + r * dim;
        const T* src = gp + i * dim;
        for (int64_t k = 0; k < dim; ++k) dst[k] += src[k];
      }
    }
  });
}

template <typename T>
void embedding_backward_kernel(const Tensor& g, const Tensor& idx, const Tensor& gw, int64_t pad) {
  const int64_t num = gw.size(0), dim = gw.size(1), n = idx.numel();
  if (idx.dtype() == DType::Int64) embedding_scatter(g.data<T>(), idx.data<int64_t>(), gw.data<T>(), n, num, dim, pad);
  else embedding_scatter(g.data<T>(), idx.data<int32_t>(), gw.data<T>(), n, num, dim, pad);
}

// ------------------------------------------------------------------ interpolate
// Index rules of PyTorch (UpSample.h), computed in T's precision like its CPU kernels.
template <typename T>
T area_scale(int64_t in, int64_t out, bool align_corners, double given) {
  if (align_corners) return out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
  return given > 0 ? static_cast<T>(1.0 / given) : static_cast<T>(in) / static_cast<T>(out);
}

template <typename T>
int64_t nearest_index(int64_t o, int64_t in, int64_t out, double given) {
  if (in == out) return o;
  if (out == 2 * in) return o >> 1;
  const float scale = given > 0 ? static_cast<float>(1.0 / given) : static_cast<float>(in) / static_cast<float>(out);
  return std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * scale)), in - 1);
}

// Bilinear taps along one dim: i0, i1, weights l0, l1.
template <typename T>
struct Tap {
  int64_t i0, i1;
  T l0, l1;
};

template <typename T>
std::vector<Tap<T>> bilinear_taps(int64_t in, int64_t out, bool align_corners, double given) {
  std::vector<Tap<T>> taps(static_cast<size_t>(out));
  const T scale = area_scale<T>(in, out, align_corners, given);
  for (int64_t o = 0; o < out; ++o) {
    T src;
    if (align_corners) {
      src = scale * static_cast<T>(o);
    } else {
      src = scale * (static_cast<T>(o) + T(0.5)) - T(0.5);
      if (src < T(0)) src = T(0);
    }
    int64_t i0 = static_cast<int64_t>(src);
    if (i0 > in - 1) i0 = in - 1;
    const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
    T l1 = src - static_cast<T>(i0);
    l1 = l1 < T(0) ? T(0) : (l1 > T(1) ? T(1) : l1);
    taps[o] = {i0, i1, T(1) - l1, l1};
  }
  return taps;
}

template <typename T>
void interpolate_kernel(const Tensor& x, const Tensor& out, const InterpParams& p) {
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  const int64_t plane_in = p.IH * p.IW, plane_out = p.OH * p.OW;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(plane_out, 1));
  if (!p.bilinear) {
    std::vector<int64_t> ih(p.OH), iw(p.OW);
    for (int64_t o = 0; o < p.OH; ++o) ih[o] = nearest_index<T>(o, p.IH, p.OH, p.scale_h);
    for (int64_t o = 0; o < p.OW; ++o) iw[o] = nearest_index<T>(o, p.IW, p.OW, p.scale_w);
    parallel_for(0, p.P, grain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t h = 0; h < p.OH; ++h) {
          const T* src = xp + c * plane_in + ih[h] * p.IW;
          T* dst = op + c * plane_out + h * p.OW;
          for (int64_t w = 0; w < p.OW; ++w) dst[w] = src[iw[w]];
        }
    });
    return;
  }
  // Separable: the input rows some output row reads are first interpolated along W into hw
  // (IH x OW per plane), then each output row is a vectorised blend of two hw rows.
  auto th = bilinear_taps<T>(p.IH, p.OH, p.align_corners, p.scale_h);
  auto tw = bilinear_taps<T>(p.IW, p.OW, p.align_corners, p.scale_w);
  std::vector<char> used(static_cast<size_t>(p.IH), 0);
  for (const auto& a : th) used[a.i0] = used[a.i1] = 1;
  parallel_for(0, p.P, grain, [&](int64_t c0, int64_t c1) {
    thread_local std::vector<T> hw;
    hw.resize(static_cast<size_t>(p.IH * p.OW));
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t i = 0; i < p.IH; ++i) {
        if (!used[i]) continue;
        const T* r = xp + c * plane_in + i * p.IW;
        T* hr = hw.data() + i * p.OW;
        for (int64_t w = 0; w < p.OW; ++w) {
          const Tap<T>& b = tw[w];
          hr[w] = b.l0 * r[b.i0] + b.l1 * r[b.i1];
        }
      }
      for (int64_t h = 0; h < p.OH; ++h) {
        const Tap<T>& a = th[h];
        const T* r0 = hw.data() + a.i0 * p.OW;
        const T* r1 = hw.data() + a.i1 * p.OW;
        T* dst = op + c * plane_out + h * p.OW;
        for (int64_t w = 0; w < p.OW; ++w) dst[w] = a.l0 * r0[w] + a.l1 * r1[w];
      }
    }
  });
}

template <typename T>
struct TapsT {
  std::vector<int64_t> start, out;
  std::vector<T> w;
};

template <typename T>
TapsT<T> transpose_taps(const std::vector<Tap<T>>& taps, int64_t in) {
  TapsT<T> t;
  t.start.assign(static_cast<size_t>(in + 1), 0);
  for (const auto& tp : taps) {
    if (tp.l0 != T(0)) ++t.start[tp.i0 + 1];
    if (tp.l1 != T(0)) ++t.start[tp.i1 + 1];
  }
  for (int64_t i = 0; i < in; ++i) t.start[i + 1] += t.start[i];
  t.out.resize(static_cast<size_t>(t.start[in]));
  t.w.resize(static_cast<size_t>(t.start[in]));
  std::vector<int64_t> pos(t.start.begin(), t.start.end() - 1);
  for (int64_t o = 0; o < static_cast<int64_t>(taps.size()); ++o) {
    const auto& tp = taps[o];
    if (tp.l0 != T(0)) { t.out[pos[tp.i0]] = o; t.w[pos[tp.i0]++] = tp.l0; }
    if (tp.l1 != T(0)) { t.out[pos[tp.i1]] = o; t.w[pos[tp.i1]++] = tp.l1; }
  }
  return t;
}

// Taps of one dim for either mode (nearest: one tap of weight 1).
template <typename T>
std::vector<Tap<T>> taps_for(const InterpParams& p, int64_t in, int64_t out, double scale) {
  if (p.bilinear) return bilinear_taps<T>(in, out, p.align_corners, scale);
  std::vector<Tap<T>> taps(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const int64_t i = nearest_index<T>(o, in, out, scale);
    taps[o] = {i, i, T(1), T(0)};
  }
  return taps;
}

// Gather form of the adjoint (no read-modify-write scatter, deterministic): per plane, first
// ht[h, j] = sum over the outputs w reading column j of weight * g[h, w], then
// gi[i, :] = sum over the output rows h reading row i of weight * ht[h, :].
template <typename T>
void interpolate_backward_kernel(const Tensor& g, const Tensor& gi, const InterpParams& p) {
  const T* gp = g.data<T>();
  T* op = gi.data<T>();
  const int64_t plane_in = p.IH * p.IW, plane_out = p.OH * p.OW;
  const TapsT<T> th = transpose_taps(taps_for<T>(p, p.IH, p.OH, p.scale_h), p.IH);
  const TapsT<T> tw = transpose_taps(taps_for<T>(p, p.IW, p.OW, p.scale_w), p.IW);
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(plane_out, 1));
  parallel_for(0, p.P, grain, [&](int64_t c0, int64_t c1) {
    thread_local std::vector<T> ht;
    ht.resize(static_cast<size_t>(p.OH * p.IW));
    for (int64_t c = c0; c < c1; ++c) {
      const T* gpl = gp + c * plane_out;
      for (int64_t h = 0; h < p.OH; ++h) {
        const T* grow = gpl + h * p.OW;
        T* hrow = ht.data() + h * p.IW;
        for (int64_t j = 0; j < p.IW; ++j) {
          T acc = T(0);
          for (int64_t k = tw.start[j]; k < tw.start[j + 1]; ++k) acc += tw.w[k] * grow[tw.out[k]];
          hrow[j] = acc;
        }
      }
      T* dst = op + c * plane_in;
      for (int64_t i = 0; i < p.IH; ++i) {
        T* drow = dst + i * p.IW;
        std::fill_n(drow, p.IW, T(0));
        for (int64_t k = th.start[i]; k < th.start[i + 1]; ++k) {
          const T wgt = th.w[k];
          const T* hrow = ht.data() + th.out[k] * p.IW;
          for (int64_t j = 0; j < p.IW; ++j) drow[j] += wgt * hrow[j];
        }
      }
    }
  });
}

#define NN_FLOAT_KERNELS(OP, FN)                                   \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float32, &FN<float>); \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float64, &FN<double>)

NN_FLOAT_KERNELS(ops::OpId::linear, linear_kernel);
NN_FLOAT_KERNELS(ops::OpId::linear_backward, linear_backward_kernel);
NN_FLOAT_KERNELS(ops::OpId::leaky_relu, leaky_relu_kernel);
NN_FLOAT_KERNELS(ops::OpId::leaky_relu_backward, leaky_relu_backward_kernel);
NN_FLOAT_KERNELS(ops::OpId::dropout, dropout_kernel);
NN_FLOAT_KERNELS(ops::OpId::dropout_backward, dropout_backward_kernel);
NN_FLOAT_KERNELS(ops::OpId::embedding, embedding_kernel);
NN_FLOAT_KERNELS(ops::OpId::embedding_backward, embedding_backward_kernel);
NN_FLOAT_KERNELS(ops::OpId::interpolate, interpolate_kernel);
NN_FLOAT_KERNELS(ops::OpId::interpolate_backward, interpolate_backward_kernel);

}  // namespace
}  // namespace cpu
}  // namespace heron
