// CPU convolution products (float32 / float64): im2col + OpenBLAS gemm.
//
// Each image is cut into tiles of whole output rows whose column buffer (C/G*kH*kW rows of the
// tile's output pixels) stays in L2; a tile is one gemm. The (image, group, tile) items are split
// over Heron's pool, each thread running single-threaded gemms (OpenBLAS is set to one thread for
// the op): measured faster than one big OpenBLAS-threaded gemm per image (see benchmarks/conv.py),
// as the im2col / col2im work is then parallel too and the threads never wait on each other.
// 1x1 stride-1 unpadded convolutions skip im2col (the image is the column matrix).
//
//   forward         y[n, g] (Kg x OHW)       = w[g] (Kg x CgRS) @ col(x[n, g]) (CgRS x OHW)
//   backward data   gx[n, g] = col2im(w[g]^T (CgRS x Kg) @ gy[n, g] (Kg x OHW)), split by channels
//   backward weight gw[g]  += gy[n, g] (Kg x OHW) @ col(x[n, g])^T, one accumulator per thread
//
// HERON_CONV_TILE_KB (default 384) sets the column-buffer size a tile aims at; HERON_CONV_BLAS=1
// runs the items one at a time with OpenBLAS's own threads instead (for measuring).
#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/conv.h"
#include "core/util/thread_pool.h"

namespace heron {
namespace cpu {
namespace {

inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
              beta, c, ldc);
}
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
                 int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b, ldb,
              beta, c, ldc);
}

int64_t tile_bytes() {
  static const int64_t v = [] {
    const char* e = std::getenv("HERON_CONV_TILE_KB");
    int64_t kb = e ? std::atoll(e) : 384;
    return std::max<int64_t>(kb, 1) * 1024;
  }();
  return v;
}
bool blas_threaded_mode() {
  static const bool v = [] { const char* e = std::getenv("HERON_CONV_BLAS"); return e && e[0] == '1'; }();
  return v;
}

// OpenBLAS runs single-threaded while our pool splits the work (restored afterwards).
struct BlasSingleThread {
  int prev;
  bool on;
  explicit BlasSingleThread(bool enable) : prev(openblas_get_num_threads()), on(enable && prev != 1) {
    if (on) openblas_set_num_threads(1);
  }
  ~BlasSingleThread() {
    if (on) openblas_set_num_threads(prev);
  }
};

// Runs fn(part, item_begin, item_end) over `items` split into contiguous parts over the pool.
template <typename F>
void split_items(int64_t items, int64_t parts, F fn) {
  if (parts <= 1) {
    fn(0, 0, items);
    return;
  }
  parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) fn(p, p * items / parts, (p + 1) * items / parts);
  });
}

struct Plan {
  int64_t Cg, Kg, RS, CgRS, OHW, HW;
  bool direct;     // 1x1, stride 1, no padding: x itself is the column matrix
  int64_t rows;    // output rows per tile
  int64_t tiles;   // tiles per image
  int64_t parts;   // work split over the pool
};

template <typename T>
Plan make_plan(const ConvGeom& g, int64_t items_per_tile_group) {
  Plan p;
  p.Cg = g.C / g.G;
  p.Kg = g.K / g.G;
  p.RS = g.kH * g.kW;
  p.CgRS = p.Cg * p.RS;
  p.OHW = g.OH * g.OW;
  p.HW = g.H * g.W;
  p.direct = g.kH == 1 && g.kW == 1 && g.sH == 1 && g.sW == 1 && g.pH == 0 && g.pW == 0 && g.OH == g.H && g.OW == g.W;
  const int64_t row_bytes = std::max<int64_t>(1, p.CgRS * g.OW * int64_t(sizeof(T)));
  if (blas_threaded_mode()) {
    p.rows = g.OH;
  } else {
    p.rows = std::min<int64_t>(g.OH, std::max<int64_t>(1, tile_bytes() / row_bytes));
  }
  p.tiles = (g.OH + p.rows - 1) / p.rows;
  (void)items_per_tile_group;
  p.parts = blas_threaded_mode() ? 1 : get_num_threads();
  return p;
}

// col (CgRS x (r1-r0)*OW) = the patches of output rows [r0, r1) of one group's channels xg (Cg planes of H x W).
template <typename T>
void im2col(const T* xg, T* col, const ConvGeom& g, const Plan& p, int64_t r0, int64_t r1) {
  const int64_t OW = g.OW, W = g.W, H = g.H, tn = (r1 - r0) * OW;
  for (int64_t c = 0; c < p.Cg; ++c) {
    const T* plane = xg + c * p.HW;
    for (int64_t i = 0; i < g.kH; ++i) {
      for (int64_t j = 0; j < g.kW; ++j) {
        T* dst = col + ((c * g.kH + i) * g.kW + j) * tn;
        const int64_t iw0 = j * g.dW - g.pW;
        // Output columns whose input column iw = ow*sW + iw0 lies in [0, W).
        int64_t lo = iw0 >= 0 ? 0 : (-iw0 + g.sW - 1) / g.sW;
        int64_t hi = W - 1 - iw0 < 0 ? 0 : (W - 1 - iw0) / g.sW + 1;
        lo = std::min(lo, OW);
        hi = std::min(std::max(hi, lo), OW);
        for (int64_t oh = r0; oh < r1; ++oh, dst += OW) {
          const int64_t ih = oh * g.sH - g.pH + i * g.dH;
          if (ih < 0 || ih >= H) {
            std::memset(dst, 0, sizeof(T) * OW);
            continue;
          }
          const T* src = plane + ih * W + iw0;
          for (int64_t ow = 0; ow < lo; ++ow) dst[ow] = T(0);
          if (g.sW == 1) {
            std::memcpy(dst + lo, src + lo, sizeof(T) * (hi - lo));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.sW];
          }
          for (int64_t ow = hi; ow < OW; ++ow) dst[ow] = T(0);
        }
      }
    }
  }
}

// Adds col (nc*RS rows of (r1-r0)*OW output pixels) into the planes of channels [c0, c0+nc) xg.
template <typename T>
void col2im(const T* col, T* xg, const ConvGeom& g, const Plan& p, int64_t c0, int64_t nc, int64_t r0, int64_t r1) {
  const int64_t OW = g.OW, W = g.W, H = g.H, tn = (r1 - r0) * OW;
  for (int64_t c = 0; c < nc; ++c) {
    T* plane = xg + (c0 + c) * p.HW;
    for (int64_t i = 0; i < g.kH; ++i) {
      for (int64_t j = 0; j < g.kW; ++j) {
        const T* src = col + ((c * g.kH + i) * g.kW + j) * tn;
        const int64_t iw0 = j * g.dW - g.pW;
        int64_t lo = iw0 >= 0 ? 0 : (-iw0 + g.sW - 1) / g.sW;
        int64_t hi = W - 1 - iw0 < 0 ? 0 : (W - 1 - iw0) / g.sW + 1;
        lo = std::min(lo, OW);
        hi = std::min(std::max(hi, lo), OW);
        for (int64_t oh = r0; oh < r1; ++oh, src += OW) {
          const int64_t ih = oh * g.sH - g.pH + i * g.dH;
          if (ih < 0 || ih >= H) continue;
          T* dst = plane + ih * W + iw0;
          if (g.sW == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.sW] += src[ow];
          }
        }
      }
    }
  }
}

template <typename T>
std::vector<T>& scratch() {
  thread_local std::vector<T> buf;
  return buf;
}

template <typename T>
void conv_forward(const Tensor& xt, const Tensor& wt, const Tensor& bt, const Tensor& yt, const ConvGeom& g) {
  Plan p = make_plan<T>(g, 0);
  const T* x = xt.data<T>();
  const T* w = wt.data<T>();
  const T* b = bt.defined() ? bt.data<T>() : nullptr;
  T* y = yt.data<T>();
  const int64_t items = g.N * g.G * p.tiles;
  const int64_t parts = std::min(p.parts, items);
  BlasSingleThread guard(parts > 1);
  split_items(items, parts, [&](int64_t, int64_t i0, int64_t i1) {
    std::vector<T>& buf = scratch<T>();
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t t = it % p.tiles, ng = it / p.tiles, gi = ng % g.G, n = ng / g.G;
      const int64_t r0 = t * p.rows, r1 = std::min(g.OH, r0 + p.rows), tn = (r1 - r0) * g.OW;
      const T* xg = x + (n * g.C + gi * p.Cg) * p.HW;
      T* yt0 = y + (n * g.K + gi * p.Kg) * p.OHW + r0 * g.OW;
      if (p.CgRS == 0) {
        for (int64_t k = 0; k < p.Kg; ++k) std::fill_n(yt0 + k * p.OHW, tn, T(0));
      } else {
        const T* col;
        int64_t ldcol;
        if (p.direct) {
          col = xg + r0 * g.OW;
          ldcol = p.HW;
        } else {
          buf.resize(static_cast<size_t>(p.CgRS * tn));
          im2col(xg, buf.data(), g, p, r0, r1);
          col = buf.data();
          ldcol = tn;
        }
        gemm(false, false, p.Kg, tn, p.CgRS, w + gi * p.Kg * p.CgRS, p.CgRS, col, ldcol, T(0), yt0, p.OHW);
      }
      if (b) {
        for (int64_t k = 0; k < p.Kg; ++k) {
          const T bv = b[gi * p.Kg + k];
          T* r = yt0 + k * p.OHW;
          for (int64_t q = 0; q < tn; ++q) r[q] += bv;
        }
      }
    }
  });
}

template <typename T>
void conv_backward_data(const Tensor& gyt, const Tensor& wt, const Tensor& bt, const Tensor& gxt, const ConvGeom& g) {
  Plan p = make_plan<T>(g, 0);
  const T* gy = gyt.data<T>();
  const T* w = wt.data<T>();
  const T* b = bt.defined() ? bt.data<T>() : nullptr;
  T* gx = gxt.data<T>();
  // Items: (image, group, channel block); col2im of a channel block touches only its channels.
  const int64_t ng = g.N * g.G;
  int64_t blocks = 1;
  if (ng < p.parts) blocks = std::min<int64_t>(p.Cg, (p.parts + ng - 1) / ng);
  const int64_t items = ng * blocks;
  const int64_t parts = std::min(p.parts, items);
  BlasSingleThread guard(parts > 1);
  split_items(items, parts, [&](int64_t, int64_t i0, int64_t i1) {
    std::vector<T>& buf = scratch<T>();
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t blk = it % blocks, ngi = it / blocks, gi = ngi % g.G, n = ngi / g.G;
      const int64_t c0 = blk * p.Cg / blocks, c1 = (blk + 1) * p.Cg / blocks, nc = c1 - c0;
      if (nc == 0) continue;
      T* gxg = gx + (n * g.C + gi * p.Cg) * p.HW;
      const T* gyg = gy + (n * g.K + gi * p.Kg) * p.OHW;
      const T* wg = w + gi * p.Kg * p.CgRS + c0 * p.RS;  // columns [c0*RS, c1*RS) of w[g]
      if (p.direct) {
        // gx rows [c0, c1) = w[g][:, c0:c1]^T @ gy[n, g]
        if (p.Kg == 0) std::fill_n(gxg + c0 * p.HW, nc * p.HW, T(0));
        else gemm(true, false, nc, p.HW, p.Kg, wg, p.CgRS, gyg, p.OHW, T(0), gxg + c0 * p.HW, p.HW);
      } else {
        std::fill_n(gxg + c0 * p.HW, nc * p.HW, T(0));
        if (p.Kg > 0) {
          for (int64_t t = 0; t < p.tiles; ++t) {
            const int64_t r0 = t * p.rows, r1 = std::min(g.OH, r0 + p.rows), tn = (r1 - r0) * g.OW;
            buf.resize(static_cast<size_t>(nc * p.RS * tn));
            gemm(true, false, nc * p.RS, tn, p.Kg, wg, p.CgRS, gyg + r0 * g.OW, p.OHW, T(0), buf.data(), tn);
            col2im(buf.data(), gxg, g, p, c0, nc, r0, r1);
          }
        }
      }
      if (b) {
        for (int64_t c = c0; c < c1; ++c) {
          const T bv = b[gi * p.Cg + c];
          T* r = gxg + c * p.HW;
          for (int64_t q = 0; q < p.HW; ++q) r[q] += bv;
        }
      }
    }
  });
}

template <typename T>
void conv_backward_weight(const Tensor& gyt, const Tensor& xt, const Tensor& gwt, const Tensor& gbt, const ConvGeom& g) {
  Plan p = make_plan<T>(g, 0);
  const T* gy = gyt.data<T>();
  if (gbt.defined()) {
    T* gb = gbt.data<T>();
    parallel_for(0, g.K, std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, g.N * p.OHW)), [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        double acc = 0;
        for (int64_t n = 0; n < g.N; ++n) {
          const T* r = gy + (n * g.K + k) * p.OHW;
          T s = 0;
          for (int64_t q = 0; q < p.OHW; ++q) s += r[q];
          acc += s;
        }
        gb[k] = T(acc);
      }
    });
  }
  if (!gwt.defined()) return;
  const T* x = xt.data<T>();
  T* gw = gwt.data<T>();
  const int64_t wsize = g.K * p.CgRS;
  const int64_t items = g.N * g.G * p.tiles;
  const int64_t parts = std::max<int64_t>(1, std::min(p.parts, items));
  std::fill_n(gw, wsize, T(0));
  if (items == 0 || wsize == 0) return;
  // Part 0 accumulates into gw itself, the others into their own buffers, summed at the end.
  std::vector<T> acc(static_cast<size_t>((parts - 1) * wsize), T(0));
  BlasSingleThread guard(parts > 1);
  split_items(items, parts, [&](int64_t part, int64_t i0, int64_t i1) {
    T* a = part == 0 ? gw : acc.data() + (part - 1) * wsize;
    std::vector<T>& buf = scratch<T>();
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t t = it % p.tiles, ng = it / p.tiles, gi = ng % g.G, n = ng / g.G;
      const int64_t r0 = t * p.rows, r1 = std::min(g.OH, r0 + p.rows), tn = (r1 - r0) * g.OW;
      const T* xg = x + (n * g.C + gi * p.Cg) * p.HW;
      const T* gyt0 = gy + (n * g.K + gi * p.Kg) * p.OHW + r0 * g.OW;
      const T* col;
      int64_t ldcol;
      if (p.direct) {
        col = xg + r0 * g.OW;
        ldcol = p.HW;
      } else {
        buf.resize(static_cast<size_t>(p.CgRS * tn));
        im2col(xg, buf.data(), g, p, r0, r1);
        col = buf.data();
        ldcol = tn;
      }
      // a[g] (Kg x CgRS) += gy tile (Kg x tn) @ col^T (tn x CgRS)
      gemm(false, true, p.Kg, p.CgRS, tn, gyt0, p.OHW, col, ldcol, T(1), a + gi * p.Kg * p.CgRS, p.CgRS);
    }
  });
  for (int64_t q = 1; q < parts; ++q) {
    const T* a = acc.data() + (q - 1) * wsize;
    for (int64_t i = 0; i < wsize; ++i) gw[i] += a[i];
  }
}

template <typename T>
ConvKernels g_conv_kernels = {&conv_forward<T>, &conv_backward_data<T>, &conv_backward_weight<T>};

#define HERON_CONV_REGISTER(OP)                                                               \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, &g_conv_kernels<float>); \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, &g_conv_kernels<double>)

HERON_CONV_REGISTER(conv1d);
HERON_CONV_REGISTER(conv2d);
HERON_CONV_REGISTER(conv_transpose2d);
HERON_CONV_REGISTER(conv1d_backward);
HERON_CONV_REGISTER(conv2d_backward);
HERON_CONV_REGISTER(conv_transpose2d_backward);

}  // namespace
}  // namespace cpu
}  // namespace heron
