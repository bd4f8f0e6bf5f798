// CPU convolution products (float32 / float64) on OpenBLAS gemms.
//
// 3x3 stride-1 undilated ungrouped convolutions with >= 16 input and output channels use
// Winograd F(2x2, 3x3) (16 products per 2x2 output block instead of 36) for all three products:
// forward, backward data (a Winograd convolution of gy with the flipped, transposed weight) and
// backward weight (the adjoint of the forward algorithm). On the ResNet shape (N=32, C=K=64,
// 56x56) it took 1.8x less CPU time than im2col + gemm forward and backward-data, 1.5x less
// backward-weight. Everything else is im2col + gemm:
//
//   forward         y[n, g] (Kg x OHW)       = w[g] (Kg x CgRS) @ col(x[n, g]) (CgRS x OHW)
//   backward data   gx[n, g] = col2im(w[g]^T (CgRS x Kg) @ gy[n, g] (Kg x OHW)), split by channels
//   backward weight gw[g]  += gy[n, g] (Kg x OHW) @ col(x[n, g])^T, one accumulator per task
//
// Images are cut into tiles of whole output rows whose column buffer stays in L2 (one gemm per
// tile); small images are grouped, several per gemm. 1x1 stride-1 unpadded convolutions skip
// im2col (the image is the column matrix); stride-1 convolutions of narrow images build
// "wide" columns (see make_plan). The items (tiles, image groups, Winograd tile blocks) are
// pulled dynamically by Heron's pool tasks, each running single-threaded gemms (OpenBLAS is set
// to one thread for the op), as im2col / col2im / transforms then run in parallel too. Against
// OpenBLAS's own threads on one item at a time (HERON_CONV_BLAS=1), ResNet shape, 2 cores: forward
// about equal (100-105 ms), forward data+weight gradients 1.2x slower with BLAS threads (276 vs
// 228 ms); before Winograd, im2col forward was 1.07-1.28x slower with BLAS threads.
//
// Tuning and measuring switches (read once): HERON_CONV_TILE_KB (default 384) sets the buffer
// size a tile aims at; HERON_CONV_BLAS=1 runs the items one at a time with OpenBLAS's own
// threads; HERON_CONV_WINOGRAD=0 / HERON_CONV_WIDE=0 turn those paths off.
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/kernels/cpu/blas_threads.h"
#include "core/ops/impl/conv.h"
#include "core/ops/kernels/cpu/conv_gemm.h"
#include "core/ops/kernels/cpu/split_items.h"
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
// HERON_CONV_DEPTHWISE=0 sends depthwise convolutions through the grouped GEMM path (for tests
// and measurements).
bool depthwise_enabled() {
  static const bool v = [] {
    const char* e = std::getenv("HERON_CONV_DEPTHWISE");
    return !(e && std::string(e) == "0");
  }();
  return v;
}
bool wide_enabled() {
  static const bool v = [] { const char* e = std::getenv("HERON_CONV_WIDE"); return !(e && e[0] == '0'); }();
  return v;
}
bool blas_threaded_mode() {
  static const bool v = [] { const char* e = std::getenv("HERON_CONV_BLAS"); return e && e[0] == '1'; }();
  return v;
}


struct Plan {
  int64_t Cg, Kg, RS, CgRS, OHW, HW;
  bool direct;     // 1x1, stride 1, no padding: x itself is the column matrix
  int64_t rows;    // output rows per tile
  int64_t tiles;   // tiles per image
  bool wide;       // stride 1: columns cover padded-width rows (see `wide` below)
  int64_t Wp;      // padded input width (wide)
  int64_t Hp;      // padded input height (wide)
  int64_t cols;    // columns per output row: Wp when wide, else OW
  int64_t nb;      // images per item (> 1 only for small images: one tile holds several)
  int64_t groups;  // image groups: ceil(N / nb)
  int64_t parts;   // work split over the pool
};

template <typename T>
// `reduce`: the plan of a reduction over images (the weight gradient), which must not depend on the
// thread count (see split_items_fixed).
Plan make_plan(const ConvGeom& g, bool allow_wide, bool reduce = false) {
  Plan p;
  p.Cg = g.C / g.G;
  p.Kg = g.K / g.G;
  p.RS = g.kH * g.kW;
  p.CgRS = p.Cg * p.RS;
  p.OHW = g.OH * g.OW;
  p.HW = g.H * g.W;
  p.direct = g.kH == 1 && g.kW == 1 && g.sH == 1 && g.sW == 1 && g.pH == 0 && g.pW == 0 && g.OH == g.H && g.OW == g.W;
  p.parts = blas_threaded_mode() ? 1 : reduce ? kReduceParts : get_num_threads();
  // Wide columns: with stride 1, the patches of a tile of output rows, taken over the padded
  // input's full width Wp, are for each (c, i, j) one contiguous run of the padded input, so
  // im2col becomes one copy per (c, i, j) instead of one per output row. The gemm then also
  // computes Wp - OW garbage columns per row (dropped). Measured (single thread, CPU time): 12%
  // faster forward on 7x7 and 14x14 images, but 6% slower on 56x56 (im2col is cheap there
  // next to the gemm, and the output is staged), and no gain for the backward-data product;
  // so used for the forward and backward-weight products of narrow images only.
  p.Wp = g.OW + (g.kW - 1) * g.dW;
  p.Hp = g.OH + (g.kH - 1) * g.dH;
  p.wide = allow_wide && wide_enabled() && g.sH == 1 && g.sW == 1 && !p.direct && p.RS > 1 && g.OW < 32 &&
           3 * (p.Wp - g.OW) <= g.OW;
  p.cols = p.wide ? p.Wp : g.OW;
  const int64_t row_bytes = std::max<int64_t>(1, p.CgRS * p.cols * int64_t(sizeof(T)));
  p.rows = blas_threaded_mode() ? g.OH : std::min<int64_t>(g.OH, std::max<int64_t>(1, tile_bytes() / row_bytes));
  p.tiles = (g.OH + p.rows - 1) / p.rows;
  p.nb = 1;
  if (p.tiles == 1 && !blas_threaded_mode()) {
    // Several small images per gemm, keeping at least one item per thread.
    const int64_t fit = tile_bytes() / std::max<int64_t>(1, row_bytes * g.OH);
    const int64_t per_part = (g.N + p.parts - 1) / std::max<int64_t>(1, p.parts);
    p.nb = std::max<int64_t>(1, std::min(fit, per_part));
  }
  p.groups = (g.N + p.nb - 1) / p.nb;
  return p;
}

// One item of work: images [n0, n0+cnt), group gi, output rows [r0, r1).
struct Item {
  int64_t n0, cnt, gi, r0, r1;
  int64_t blk;  // columns per image: (r1 - r0) * cols
  int64_t tn;   // columns: cnt * blk
};
inline Item item_at(int64_t it, const ConvGeom& g, const Plan& p) {
  Item m;
  const int64_t t = it % p.tiles, rest = it / p.tiles;
  m.gi = rest % g.G;
  const int64_t ib = rest / g.G;
  m.n0 = ib * p.nb;
  m.cnt = std::min(p.nb, g.N - m.n0);
  m.r0 = t * p.rows;
  m.r1 = std::min(g.OH, m.r0 + p.rows);
  m.blk = (m.r1 - m.r0) * p.cols;
  m.tn = m.cnt * m.blk;
  return m;
}

// col (CgRS rows of (r1-r0)*OW, row stride ld) = the patches of output rows [r0, r1) of one
// group's channels xg (Cg planes of H x W).
template <typename T>
void im2col(const T* xg, T* col, int64_t ld, const ConvGeom& g, const Plan& p, int64_t r0, int64_t r1) {
  const int64_t OW = g.OW, W = g.W, H = g.H, tn = ld;
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
            for (int64_t ow = 0; ow < OW; ++ow) dst[ow] = T(0);
            continue;
          }
          const T* src = plane + ih * W + iw0;
          for (int64_t ow = 0; ow < lo; ++ow) dst[ow] = T(0);
          if (g.sW == 1) {
            // Short rows (small images) are copied inline: a memcpy call per row costs more.
            if (hi - lo >= 64) std::memcpy(dst + lo, src + lo, sizeof(T) * (hi - lo));
            else
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.sW];
          }
          for (int64_t ow = hi; ow < OW; ++ow) dst[ow] = T(0);
        }
      }
    }
  }
}

// Adds col (nc*RS rows of (r1-r0)*OW output pixels, row stride ld) into the planes of channels
// [c0, c0+nc) of xg.
template <typename T>
void col2im(const T* col, int64_t ld, T* xg, const ConvGeom& g, const Plan& p, int64_t c0, int64_t nc, int64_t r0, int64_t r1) {
  const int64_t OW = g.OW, W = g.W, H = g.H, tn = ld;
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
std::vector<T>& scratch(int which) {
  thread_local std::vector<T> buf[3];
  return buf[which];
}

// Wide columns of an item: each image's tile rows of the zero-padded input (with the halo of
// (kH-1)*dH rows and a tail of (kW-1)*dW) copied to pad, then one run per (c, i, j) into buf.
template <typename T>
void wide_columns(const T* x, const Item& m, const ConvGeom& g, const Plan& p, std::vector<T>& pad, std::vector<T>& buf) {
  const int64_t prows = (m.r1 - m.r0) + (g.kH - 1) * g.dH;
  const int64_t plane = prows * p.Wp + (g.kW - 1) * g.dW;
  pad.resize(static_cast<size_t>(p.Cg * plane));
  buf.resize(static_cast<size_t>(p.CgRS * m.tn));
  for (int64_t b = 0; b < m.cnt; ++b) {
    const T* xg = x + ((m.n0 + b) * g.C + m.gi * p.Cg) * p.HW;
    for (int64_t c = 0; c < p.Cg; ++c) {
      T* dp = pad.data() + c * plane;
      const T* src = xg + c * p.HW;
      for (int64_t pr = 0; pr < prows; ++pr, dp += p.Wp) {
        const int64_t ih = m.r0 + pr - g.pH;
        if (ih < 0 || ih >= g.H) {
          std::fill_n(dp, p.Wp, T(0));
          continue;
        }
        std::fill_n(dp, g.pW, T(0));
        std::memcpy(dp + g.pW, src + ih * g.W, sizeof(T) * g.W);
        std::fill_n(dp + g.pW + g.W, p.Wp - g.pW - g.W, T(0));
      }
      std::fill_n(pad.data() + c * plane + prows * p.Wp, (g.kW - 1) * g.dW, T(0));
      for (int64_t i = 0; i < g.kH; ++i)
        for (int64_t j = 0; j < g.kW; ++j)
          std::memcpy(buf.data() + ((c * g.kH + i) * g.kW + j) * m.tn + b * m.blk,
                      pad.data() + c * plane + i * g.dH * p.Wp + j * g.dW, sizeof(T) * m.blk);
    }
  }
}

// The column matrix of an item: x itself (1x1 direct, one image), wide columns, or im2col into buf.
template <typename T>
const T* columns(const T* x, const Item& m, const ConvGeom& g, const Plan& p, std::vector<T>& buf, int64_t& ld) {
  const T* xg = x + (m.n0 * g.C + m.gi * p.Cg) * p.HW;
  if (p.direct && m.cnt == 1) {
    ld = p.HW;
    return xg + m.r0 * g.OW;
  }
  ld = m.tn;
  if (p.wide) {
    wide_columns(x, m, g, p, scratch<T>(2), buf);
    return buf.data();
  }
  buf.resize(static_cast<size_t>(p.CgRS * m.tn));
  for (int64_t b = 0; b < m.cnt; ++b) im2col(xg + b * g.C * p.HW, buf.data() + b * m.blk, ld, g, p, m.r0, m.r1);
  return buf.data();
}

// gy of an item as a (Kg x tn) matrix: in place for one image (not wide), else gathered into buf
// (wide: zeros in the garbage columns).
template <typename T>
const T* grad_rows(const T* gy, const Item& m, const ConvGeom& g, const Plan& p, std::vector<T>& buf, int64_t& ld) {
  const T* gyg = gy + (m.n0 * g.K + m.gi * p.Kg) * p.OHW + m.r0 * g.OW;
  if (m.cnt == 1 && !p.wide) {
    ld = p.OHW;
    return gyg;
  }
  buf.resize(static_cast<size_t>(p.Kg * m.tn));
  ld = m.tn;
  const int64_t rows = m.r1 - m.r0;
  for (int64_t k = 0; k < p.Kg; ++k)
    for (int64_t b = 0; b < m.cnt; ++b) {
      const T* src = gyg + (b * g.K + k) * p.OHW;
      T* dst = buf.data() + k * m.tn + b * m.blk;
      if (!p.wide) {
        std::memcpy(dst, src, sizeof(T) * rows * g.OW);
        continue;
      }
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(dst + r * p.Wp, src + r * g.OW, sizeof(T) * g.OW);
        std::fill_n(dst + r * p.Wp + g.OW, p.Wp - g.OW, T(0));
      }
    }
  return buf.data();
}

// ------------------------------------------------------------------ Winograd F(2x2, 3x3)
// 3x3 stride-1 undilated ungrouped convolutions: each 2x2 output block comes from a 4x4 input
// block through 16 products instead of 36 (the 16 gemms U[e] (K x C) @ V[e] (C x tiles)), with
// the input, weight and output transforms of Lavin & Gray. Also the backward-data product of
// such a convolution (a Winograd convolution of gy with the flipped, transposed weight).
// HERON_CONV_WINOGRAD=0 turns it off.
bool winograd_enabled() {
  static const bool v = [] { const char* e = std::getenv("HERON_CONV_WINOGRAD"); return !(e && e[0] == '0'); }();
  return v;
}

// Whether a convolution with top/left padding pt/pl takes the Winograd path.
inline bool winograd_ok(const ConvGeom& g) {
  return winograd_enabled() && g.kH == 3 && g.kW == 3 && g.sH == 1 && g.sW == 1 && g.dH == 1 && g.dW == 1 && g.G == 1 &&
         g.C >= 16 && g.K >= 16 && g.OH >= 4 && g.OW >= 4 && g.pH <= 2 && g.pW <= 2;
}

// U[e][k][c] = (G w[k][c] G^T)[e] for a weight read as w[(k * C + c) * 9 + i * 3 + j] (flip: as
// w[(c * K' + k)...] rotated 180 degrees, for the backward-data product).
template <typename T>
void winograd_weight(const T* w, T* U, int64_t K, int64_t C, bool flip_transpose) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) {
      T f[3][3];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
          f[i][j] = flip_transpose ? w[(c * K + k) * 9 + (2 - i) * 3 + (2 - j)] : w[(k * C + c) * 9 + i * 3 + j];
      T t[4][3];  // G f
      for (int j = 0; j < 3; ++j) {
        t[0][j] = f[0][j];
        t[1][j] = T(0.5) * (f[0][j] + f[1][j] + f[2][j]);
        t[2][j] = T(0.5) * (f[0][j] - f[1][j] + f[2][j]);
        t[3][j] = f[2][j];
      }
      for (int i = 0; i < 4; ++i) {  // (G f) G^T
        T u0 = t[i][0], u1 = T(0.5) * (t[i][0] + t[i][1] + t[i][2]), u2 = T(0.5) * (t[i][0] - t[i][1] + t[i][2]), u3 = t[i][2];
        U[((i * 4 + 0) * K + k) * C + c] = u0;
        U[((i * 4 + 1) * K + k) * C + c] = u1;
        U[((i * 4 + 2) * K + k) * C + c] = u2;
        U[((i * 4 + 3) * K + k) * C + c] = u3;
      }
    }
}

// Calls fn(n, t0, nt, col) for the per-image pieces of global tiles [T0, T0 + nt) (tiles
// numbered image by image): an item of work may span several small images.
template <typename F>
void for_image_tiles(int64_t T0, int64_t nt, int64_t tiles, F fn) {
  for (int64_t col = 0; col < nt;) {
    const int64_t n = (T0 + col) / tiles, t0 = (T0 + col) % tiles, cnt = std::min(nt - col, tiles - t0);
    fn(n, t0, cnt, col);
    col += cnt;
  }
}

// V[e][c][t] (matrix e at V + e * vs, row c at c * ld) = the input transform of tiles
// [t0, t0 + nt) of image xn (C planes of H x W; tiles of TW per row; padding pH / pW).
template <typename T>
void winograd_input(const T* xn, T* Vd, int64_t vs, int64_t ld, const ConvGeom& g, int64_t C, int64_t TW, int64_t t0,
                    int64_t nt) {
  const int64_t H = g.H, W = g.W;
  // Input transform: V[e][c][t] = (B^T d B)[e], d the 4x4 input block of tile t. Per channel
  // and tile row, the 4 input rows are copied zero-padded into R, so the loop over the row's
  // tiles has no bounds checks. (Scalar code: for small images with few channels these
  // transforms, not the gemms, are most of the time.)
  const int64_t WR = 2 * TW + 2;
  std::vector<T>& R = scratch<T>(2);
  R.assign(static_cast<size_t>(4 * WR), T(0));  // the padding columns stay zero
  const int64_t lo = std::max<int64_t>(0, g.pW), hi = std::min<int64_t>(WR, g.pW + W);  // R[q] = x[q - pW]
  for (int64_t c = 0; c < C; ++c) {
    const T* plane = xn + c * H * W;
    for (int64_t t = 0; t < nt;) {
      const int64_t th = (t0 + t) / TW, tw0 = (t0 + t) % TW, tw1 = std::min(TW, tw0 + (nt - t));
      for (int a = 0; a < 4; ++a) {
        T* r = R.data() + a * WR;
        const int64_t ih = 2 * th - g.pH + a;
        if (hi <= lo) continue;
        if (ih < 0 || ih >= H) std::fill_n(r + lo, hi - lo, T(0));
        else std::memcpy(r + lo, plane + ih * W + (lo - g.pW), sizeof(T) * (hi - lo));
      }
      const T* __restrict r0 = R.data();
      const T* __restrict r1 = r0 + WR;
      const T* __restrict r2 = r1 + WR;
      const T* __restrict r3 = r2 + WR;
      T* __restrict v = Vd + c * ld + t - tw0;
      for (int64_t tw = tw0; tw < tw1; ++tw) {
        const int64_t q = 2 * tw;
        T d[4][4] = {{r0[q], r0[q + 1], r0[q + 2], r0[q + 3]},
                     {r1[q], r1[q + 1], r1[q + 2], r1[q + 3]},
                     {r2[q], r2[q + 1], r2[q + 2], r2[q + 3]},
                     {r3[q], r3[q + 1], r3[q + 2], r3[q + 3]}};
        T u[4][4];  // B^T d
        for (int e = 0; e < 4; ++e) {
          u[0][e] = d[0][e] - d[2][e];
          u[1][e] = d[1][e] + d[2][e];
          u[2][e] = d[2][e] - d[1][e];
          u[3][e] = d[1][e] - d[3][e];
        }
        for (int i = 0; i < 4; ++i) {  // (B^T d) B
          v[(i * 4 + 0) * vs + tw] = u[i][0] - u[i][2];
          v[(i * 4 + 1) * vs + tw] = u[i][1] + u[i][2];
          v[(i * 4 + 2) * vs + tw] = u[i][2] - u[i][1];
          v[(i * 4 + 3) * vs + tw] = u[i][1] - u[i][3];
        }
      }
      t += tw1 - tw0;
    }
  }
}

// y (N, K, OH, OW) = winograd conv of x (N, C, H, W) with U (16, K, C), padding pt / pl.
template <typename T>
void winograd_conv(const T* x, const T* U, const T* b, T* y, const ConvGeom& g) {
  const int64_t C = g.C, K = g.K, H = g.H, W = g.W, OH = g.OH, OW = g.OW;
  const int64_t TH = (OH + 1) / 2, TW = (OW + 1) / 2, tiles = TH * TW;
  // Tiles per block: V (16 x C x tb) about 384 KB.
  const int64_t tb = std::max<int64_t>(8, std::min<int64_t>(tiles, tile_bytes() / (16 * C * int64_t(sizeof(T)))));
  const int64_t all = g.N * tiles, items = (all + tb - 1) / tb;
  const int64_t parts = std::min<int64_t>(blas_threaded_mode() ? 1 : get_num_threads(), items);
  BlasSingleThread guard(parts > 1);
  split_items(items, parts, [&](int64_t, int64_t it, int64_t) {
    const int64_t T0 = it * tb, nt = std::min(tb, all - T0);
    std::vector<T>& V = scratch<T>(0);
    std::vector<T>& M = scratch<T>(1);
    // The 16 matrices of V and M are padded apart: at a multiple of 4 KiB their simultaneous
    // streams alias in L1 (measured 1.3x slower transforms).
    const int64_t vs = C * nt + 48, es = K * nt + 48;
    V.resize(static_cast<size_t>(16 * vs));
    M.resize(static_cast<size_t>(16 * es));
    for_image_tiles(T0, nt, tiles, [&](int64_t n, int64_t t0, int64_t cnt, int64_t col) {
      winograd_input(x + n * C * H * W, V.data() + col, vs, nt, g, C, TW, t0, cnt);
    });
    std::vector<T>& R = scratch<T>(2);
    for (int e = 0; e < 16; ++e)
      gemm(false, false, K, nt, C, U + e * K * C, C, V.data() + e * vs, nt, T(0), M.data() + e * es, nt);
    // Output transform: y block = A^T m A, per output channel: the blocks' 4 values for all the
    // image's tiles in one loop, then stored tile row by tile row (an odd last column apart).
    for_image_tiles(T0, nt, tiles, [&](int64_t n, int64_t t0, int64_t nloc, int64_t col) {
      if (static_cast<int64_t>(R.size()) < 4 * nloc) R.resize(static_cast<size_t>(4 * nloc));
      T* __restrict o00 = R.data();
      T* __restrict o01 = o00 + nloc;
      T* __restrict o10 = o01 + nloc;
      T* __restrict o11 = o10 + nloc;
      for (int64_t k = 0; k < K; ++k) {
        T* yk = y + (n * K + k) * OH * OW;
        const T bv = b ? b[k] : T(0);
        const T* __restrict mt = M.data() + col + k * nt;
        for (int64_t j = 0; j < nloc; ++j) {
          T q0[4], q1[4];
          for (int e = 0; e < 4; ++e) {
            const T m0 = mt[e * es + j], m1 = mt[(4 + e) * es + j], m2 = mt[(8 + e) * es + j], m3 = mt[(12 + e) * es + j];
            q0[e] = m0 + m1 + m2;
            q1[e] = m1 - m2 - m3;
          }
          o00[j] = q0[0] + q0[1] + q0[2] + bv;
          o01[j] = q0[1] - q0[2] - q0[3] + bv;
          o10[j] = q1[0] + q1[1] + q1[2] + bv;
          o11[j] = q1[1] - q1[2] - q1[3] + bv;
        }
        for (int64_t t = 0; t < nloc;) {
          const int64_t th = (t0 + t) / TW, tw0 = (t0 + t) % TW, cnt = std::min(TW - tw0, nloc - t);
          const int64_t oh = 2 * th;
          T* y0 = yk + oh * OW + 2 * tw0;
          const int64_t full = std::min(cnt, (OW - 2 * tw0) / 2);  // blocks with both columns inside
          for (int64_t j = 0; j < full; ++j) {
            y0[2 * j] = o00[t + j];
            y0[2 * j + 1] = o01[t + j];
          }
          if (full < cnt) y0[2 * full] = o00[t + full];
          if (oh + 1 < OH) {
            T* y1 = y0 + OW;
            for (int64_t j = 0; j < full; ++j) {
              y1[2 * j] = o10[t + j];
              y1[2 * j + 1] = o11[t + j];
            }
            if (full < cnt) y1[2 * full] = o10[t + full];
          }
          t += cnt;
        }
      }
    });
  });
}

// gw (K, C, 3, 3) of a Winograd-eligible convolution, as the adjoint of the forward algorithm:
// dU[e] (K x C) = sum over tiles of (A dY A^T)[e] (K x tiles) @ V[e]^T, then gw = G^T dU G.
template <typename T>
void winograd_weight_grad(const T* x, const T* gy, T* gw, const ConvGeom& g) {
  const int64_t C = g.C, K = g.K, H = g.H, W = g.W, OH = g.OH, OW = g.OW;
  const int64_t TH = (OH + 1) / 2, TW = (OW + 1) / 2, tiles = TH * TW;
  const int64_t tb = std::max<int64_t>(8, std::min<int64_t>(tiles, tile_bytes() / (16 * C * int64_t(sizeof(T)))));
  const int64_t all = g.N * tiles, items = (all + tb - 1) / tb;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(blas_threaded_mode() ? 1 : kReduceParts, items));
  const int64_t usize = 16 * K * C;
  std::vector<T> dU(static_cast<size_t>(parts * usize), T(0));
  BlasSingleThread guard(!blas_threaded_mode());  // BLAS's own split would depend on the thread count
  split_items_fixed(items, parts, [&](int64_t part, int64_t it, int64_t) {
    const int64_t T0 = it * tb, nt = std::min(tb, all - T0);
    std::vector<T>& V = scratch<T>(0);
    std::vector<T>& M = scratch<T>(1);
    const int64_t vs = C * nt + 48, es = K * nt + 48;
    V.resize(static_cast<size_t>(16 * vs));
    M.resize(static_cast<size_t>(16 * es));
    for_image_tiles(T0, nt, tiles, [&](int64_t n, int64_t t0, int64_t nloc, int64_t col) {
      winograd_input(x + n * C * H * W, V.data() + col, vs, nt, g, C, TW, t0, nloc);
      // dM[e][k][t] = (A dY A^T)[e], dY the tile's 2x2 block of gy (zeros outside the output).
      for (int64_t k = 0; k < K; ++k) {
        const T* gk = gy + (n * K + k) * OH * OW;
        T* m = M.data() + col + k * nt;
        for (int64_t t = 0; t < nloc; ++t) {
          const int64_t th = (t0 + t) / TW, tw = (t0 + t) % TW, oh = 2 * th, ow = 2 * tw;
          const bool r1 = oh + 1 < OH, c1 = ow + 1 < OW;
          const T y00 = gk[oh * OW + ow], y01 = c1 ? gk[oh * OW + ow + 1] : T(0);
          const T y10 = r1 ? gk[(oh + 1) * OW + ow] : T(0), y11 = (r1 && c1) ? gk[(oh + 1) * OW + ow + 1] : T(0);
          // rows of A dY (A = [[1,0],[1,1],[1,-1],[0,-1]]), then each row times A^T.
          const T a[4][2] = {{y00, y01}, {y00 + y10, y01 + y11}, {y00 - y10, y01 - y11}, {-y10, -y11}};
          for (int i = 0; i < 4; ++i) {
            m[(i * 4 + 0) * es + t] = a[i][0];
            m[(i * 4 + 1) * es + t] = a[i][0] + a[i][1];
            m[(i * 4 + 2) * es + t] = a[i][0] - a[i][1];
            m[(i * 4 + 3) * es + t] = -a[i][1];
          }
        }
      }
    });
    T* du = dU.data() + part * usize;
    for (int e = 0; e < 16; ++e)
      gemm(false, true, K, C, nt, M.data() + e * es, nt, V.data() + e * vs, nt, T(1), du + e * K * C, C);
  });
  for (int64_t q = 1; q < parts; ++q)
    for (int64_t i = 0; i < usize; ++i) dU[i] += dU[q * usize + i];
  // gw[k][c] = G^T dU[k][c] G, G^T = [[1, .5, .5, 0], [0, .5, -.5, 0], [0, .5, .5, 1]].
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) {
      T u[4][4];
      for (int e = 0; e < 16; ++e) u[e / 4][e % 4] = dU[(e * K + k) * C + c];
      T r[3][4];
      for (int j = 0; j < 4; ++j) {
        r[0][j] = u[0][j] + T(0.5) * (u[1][j] + u[2][j]);
        r[1][j] = T(0.5) * (u[1][j] - u[2][j]);
        r[2][j] = T(0.5) * (u[1][j] + u[2][j]) + u[3][j];
      }
      T* o = gw + (k * C + c) * 9;
      for (int i = 0; i < 3; ++i) {
        o[i * 3 + 0] = r[i][0] + T(0.5) * (r[i][1] + r[i][2]);
        o[i * 3 + 1] = T(0.5) * (r[i][1] - r[i][2]);
        o[i * 3 + 2] = T(0.5) * (r[i][1] + r[i][2]) + r[i][3];
      }
    }
}

// Depthwise convolution (groups == C == K): per (image, channel) plane, the output row is
// accumulated tap by tap over the range of output columns whose input column is inside the image,
// so the inner loop has no bounds checks (contiguous and vectorised for stride 1). Per-group GEMMs
// of one channel each would be ~20x slower (MobileNetV2's 3x3 depthwise layers).
template <typename T>
void depthwise_forward(const T* x, const T* w, const T* b, T* y, const ConvGeom& g) {
  const int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW, kH = g.kH, kW = g.kW;
  const int64_t sH = g.sH, sW = g.sW, pH = g.pH, pW = g.pW, dH = g.dH, dW = g.dW;
  const int64_t planes = g.N * g.C;
  parallel_for(0, planes, std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, OH * OW * kH * kW)),
               [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const int64_t c = pl % g.C;
      const T* xp = x + pl * H * W;
      const T* wc = w + c * kH * kW;
      T* yp = y + pl * OH * OW;
      const T bias = b ? b[c] : T(0);
      for (int64_t oh = 0; oh < OH; ++oh) {
        T* yr = yp + oh * OW;
        for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = bias;
        for (int64_t i = 0; i < kH; ++i) {
          const int64_t ih = oh * sH - pH + i * dH;
          if (ih < 0 || ih >= H) continue;
          const T* xr = xp + ih * W;
          for (int64_t j = 0; j < kW; ++j) {
            const T wv = wc[i * kW + j];
            const int64_t off = j * dW - pW;  // iw = ow * sW + off
            int64_t lo = off >= 0 ? 0 : (-off + sW - 1) / sW;
            int64_t hi = (W - 1 - off) >= 0 ? (W - 1 - off) / sW + 1 : 0;
            hi = std::min(hi, OW);
            if (sW == 1) {
              const T* xs = xr + off;
              for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xs[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * sW + off];
            }
          }
        }
      }
    }
  });
}

// The float32 fast paths of conv_gemm.h (implicit GEMM / Winograd, depthwise) with epilogue e;
// false when neither takes this convolution.
bool conv_fast_f32(const Tensor& x, const Tensor& w, const Tensor& y, const ConvGeom& g, const ConvEpilogue& e) {
  if (conv_gemm_supported(g)) {
    conv_gemm_f32(x, w, y, g, e);
    return true;
  }
  if (depthwise_f32_supported(g) && depthwise_enabled()) {
    depthwise_f32(x, w, y, g, e);
    return true;
  }
  return false;
}

template <typename T>
void conv_forward(const Tensor& xt, const Tensor& wt, const Tensor& bt, const Tensor& yt, const ConvGeom& g) {
  if constexpr (std::is_same_v<T, float>) {
    ConvEpilogue e;
    e.bias = bt.defined() ? bt.data<float>() : nullptr;
    if (conv_fast_f32(xt, wt, yt, g, e)) return;
  }
  const Plan p = make_plan<T>(g, true);
  const T* x = xt.data<T>();
  const T* w = wt.data<T>();
  const T* b = bt.defined() ? bt.data<T>() : nullptr;
  T* y = yt.data<T>();
  if (g.G > 1 && g.G == g.C && g.K == g.C && depthwise_enabled()) {
    depthwise_forward(x, w, b, y, g);
    return;
  }
  if (winograd_ok(g)) {
    std::vector<T> U(static_cast<size_t>(16 * g.K * g.C));
    winograd_weight(w, U.data(), g.K, g.C, false);
    winograd_conv(x, U.data(), b, y, g);
    return;
  }
  const int64_t items = p.groups * g.G * p.tiles;
  const int64_t parts = std::min(p.parts, items);
  BlasSingleThread guard(parts > 1);
  split_items(items, parts, [&](int64_t, int64_t i0, int64_t i1) {
    std::vector<T>& cbuf = scratch<T>(0);
    std::vector<T>& obuf = scratch<T>(1);
    for (int64_t it = i0; it < i1; ++it) {
      const Item m = item_at(it, g, p);
      T* yg = y + (m.n0 * g.K + m.gi * p.Kg) * p.OHW + m.r0 * g.OW;
      // One image, not wide: the gemm writes y in place; else into obuf, then copied per image.
      const bool staged = m.cnt > 1 || p.wide;
      T* out = yg;
      int64_t ldo = p.OHW;
      if (staged) {
        obuf.resize(static_cast<size_t>(p.Kg * m.tn));
        out = obuf.data();
        ldo = m.tn;
      }
      if (p.CgRS == 0) {
        for (int64_t k = 0; k < p.Kg; ++k) std::fill_n(out + k * ldo, m.tn, T(0));
      } else {
        int64_t ldc;
        const T* col = columns(x, m, g, p, cbuf, ldc);
        gemm(false, false, p.Kg, m.tn, p.CgRS, w + m.gi * p.Kg * p.CgRS, p.CgRS, col, ldc, T(0), out, ldo);
      }
      const int64_t rows = m.r1 - m.r0;
      for (int64_t bi = 0; bi < m.cnt; ++bi) {
        for (int64_t k = 0; k < p.Kg; ++k) {
          T* dst = yg + (bi * g.K + k) * p.OHW;
          const T bv = b ? b[m.gi * p.Kg + k] : T(0);
          if (staged) {
            const T* src = out + k * ldo + bi * m.blk;
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t q = 0; q < g.OW; ++q) dst[r * g.OW + q] = src[r * p.cols + q] + bv;
          } else if (b) {
            for (int64_t q = 0; q < rows * g.OW; ++q) dst[q] += bv;
          }
        }
      }
    }
  });
}

template <typename T>
void conv_backward_data(const Tensor& gyt, const Tensor& wt, const Tensor& bt, const Tensor& gxt, const ConvGeom& g) {
  const Plan p = make_plan<T>(g, false);
  const T* gy = gyt.data<T>();
  const T* w = wt.data<T>();
  const T* b = bt.defined() ? bt.data<T>() : nullptr;
  T* gx = gxt.data<T>();
  // A Winograd convolution of gy with the flipped, transposed weight and padding 2 - p.
  ConvGeom t{g.N, g.K, g.OH, g.OW, g.C, g.H, g.W, 3, 3, 1, 1, 2 - g.pH, 2 - g.pW, 1, 1, 1};
  if (winograd_ok(g) && winograd_ok(t)) {
    std::vector<T> U(static_cast<size_t>(16 * g.K * g.C));
    winograd_weight(w, U.data(), g.C, g.K, true);
    winograd_conv(gy, U.data(), b, gx, t);
    return;
  }
  // Items: (image group, group, channel block), all tiles of the images in one item (col2im of
  // neighbouring tiles overlaps); col2im of a channel block touches only its channels, so small
  // batches are split by channels.
  const int64_t ng = p.groups * g.G;
  int64_t blocks = 1;
  if (ng < p.parts) blocks = std::min<int64_t>(p.Cg, (p.parts + ng - 1) / ng);
  const int64_t items = ng * blocks;
  const int64_t parts = std::min(p.parts, items);
  BlasSingleThread guard(parts > 1);
  split_items(items, parts, [&](int64_t, int64_t i0, int64_t i1) {
    std::vector<T>& cbuf = scratch<T>(0);
    std::vector<T>& gbuf = scratch<T>(1);
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t blk = it % blocks, ngi = it / blocks;
      const int64_t c0 = blk * p.Cg / blocks, c1 = (blk + 1) * p.Cg / blocks, nc = c1 - c0;
      if (nc == 0) continue;
      const int64_t gi = ngi % g.G, n0 = (ngi / g.G) * p.nb, cnt = std::min(p.nb, g.N - n0);
      T* gxg = gx + (n0 * g.C + gi * p.Cg) * p.HW;
      const T* wg = w + gi * p.Kg * p.CgRS + c0 * p.RS;  // columns [c0*RS, c1*RS) of w[g]
      for (int64_t bi = 0; bi < cnt; ++bi) std::fill_n(gxg + bi * g.C * p.HW + c0 * p.HW, nc * p.HW, T(0));
      if (p.Kg > 0) {
        for (int64_t t = 0; t < p.tiles; ++t) {
          Item m{n0, cnt, gi, t * p.rows, std::min(g.OH, (t + 1) * p.rows), 0, 0};
          m.blk = (m.r1 - m.r0) * p.cols;
          m.tn = cnt * m.blk;
          int64_t ldg;
          const T* gm = grad_rows(gy, m, g, p, gbuf, ldg);
          if (p.direct && cnt == 1) {
            // gx rows [c0, c1) = w[g][:, c0:c1]^T @ gy[n, g]
            gemm(true, false, nc, m.tn, p.Kg, wg, p.CgRS, gm, ldg, T(0), gxg + c0 * p.HW + m.r0 * g.OW, p.HW);
            continue;
          }
          cbuf.resize(static_cast<size_t>(nc * p.RS * m.tn));
          gemm(true, false, nc * p.RS, m.tn, p.Kg, wg, p.CgRS, gm, ldg, T(0), cbuf.data(), m.tn);
          for (int64_t bi = 0; bi < cnt; ++bi)
            col2im(cbuf.data() + bi * m.blk, m.tn, gxg + bi * g.C * p.HW, g, p, c0, nc, m.r0, m.r1);
        }
      }
      if (b) {
        for (int64_t bi = 0; bi < cnt; ++bi) {
          for (int64_t c = c0; c < c1; ++c) {
            const T bv = b[gi * p.Cg + c];
            T* r = gxg + bi * g.C * p.HW + c * p.HW;
            for (int64_t q = 0; q < p.HW; ++q) r[q] += bv;
          }
        }
      }
    }
  });
}

template <typename T>
void conv_backward_weight(const Tensor& gyt, const Tensor& xt, const Tensor& gwt, const Tensor& gbt, const ConvGeom& g) {
  const Plan p = make_plan<T>(g, true, /*reduce=*/true);
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
  if (winograd_ok(g)) {
    winograd_weight_grad(x, gy, gw, g);
    return;
  }
  const int64_t items = p.groups * g.G * p.tiles;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(blas_threaded_mode() ? 1 : kReduceParts, items));
  std::fill_n(gw, wsize, T(0));
  if (items == 0 || wsize == 0 || g.N == 0) return;
  // Part 0 accumulates into gw itself, the others into their own buffers, summed at the end.
  std::vector<T> acc(static_cast<size_t>((parts - 1) * wsize), T(0));
  BlasSingleThread guard(!blas_threaded_mode());  // BLAS's own split would depend on the thread count
  split_items_fixed(items, parts, [&](int64_t part, int64_t i0, int64_t i1) {
    T* a = part == 0 ? gw : acc.data() + (part - 1) * wsize;
    std::vector<T>& cbuf = scratch<T>(0);
    std::vector<T>& gbuf = scratch<T>(1);
    for (int64_t it = i0; it < i1; ++it) {
      const Item m = item_at(it, g, p);
      int64_t ldc, ldg;
      const T* col = columns(x, m, g, p, cbuf, ldc);
      const T* gm = grad_rows(gy, m, g, p, gbuf, ldg);
      // a[g] (Kg x CgRS) += gy (Kg x tn) @ col^T (tn x CgRS)
      gemm(false, true, p.Kg, p.CgRS, m.tn, gm, ldg, col, ldc, T(1), a + m.gi * p.Kg * p.CgRS, p.CgRS);
    }
  });
  for (int64_t q = 1; q < parts; ++q) {
    const T* a = acc.data() + (q - 1) * wsize;
    for (int64_t i = 0; i < wsize; ++i) gw[i] += a[i];
  }
}

// conv2d_fused: the fast path applies the epilogue in its store; otherwise the convolution, then
// one pass adding the residual and clamping.
template <typename T>
void conv_forward_fused(const Tensor& xt, const Tensor& wt, const Tensor& bt, const Tensor& rt, const Tensor& yt, const ConvGeom& g,
                        double lo, double hi) {
  if constexpr (std::is_same_v<T, float>) {
    ConvEpilogue e;
    e.bias = bt.defined() ? bt.data<float>() : nullptr;
    e.residual = rt.defined() ? rt.data<float>() : nullptr;
    e.lo = static_cast<float>(lo);
    e.hi = static_cast<float>(hi);
    if (conv_fast_f32(xt, wt, yt, g, e)) return;
  }
  conv_forward<T>(xt, wt, bt, yt, g);
  T* y = yt.data<T>();
  const T* r = rt.defined() ? rt.data<T>() : nullptr;
  const int64_t n = yt.numel();
  const bool clamp = lo > -std::numeric_limits<double>::infinity() || hi < std::numeric_limits<double>::infinity();
  if (!r && !clamp) return;
  const T tlo = static_cast<T>(lo), thi = static_cast<T>(hi);
  parallel_for(0, n, int64_t{1} << 15, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T v = r ? y[i] + r[i] : y[i];
      if (clamp) v = std::min(std::max(v, tlo), thi);  // nan stays nan (like clamp)
      y[i] = v;
    }
  });
}

template <typename T>
ConvKernels g_conv_kernels = {&conv_forward<T>, &conv_backward_data<T>, &conv_backward_weight<T>, &conv_forward_fused<T>};

#define HERON_CONV_REGISTER(OP)                                                               \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, &g_conv_kernels<float>); \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, &g_conv_kernels<double>)

HERON_CONV_REGISTER(conv1d);
HERON_CONV_REGISTER(conv2d);
HERON_CONV_REGISTER(conv2d_fused);
HERON_CONV_REGISTER(conv_transpose2d);
HERON_CONV_REGISTER(conv1d_backward);
HERON_CONV_REGISTER(conv2d_backward);
HERON_CONV_REGISTER(conv_transpose2d_backward);

}  // namespace
}  // namespace cpu
}  // namespace heron
