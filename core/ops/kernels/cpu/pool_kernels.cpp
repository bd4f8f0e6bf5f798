// CPU 2-d pooling (float32 / float64), parallel over the N*C planes. Windows follow PyTorch:
// max pooling pads with -inf and lets nan win; average pooling's divisor counts the padding
// that lies inside the padded input (count_include_pad) or only the input cells.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <limits>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/conv.h"
#include "core/ops/kernels/cpu/pool_simd.h"
#include "core/util/thread_pool.h"

namespace heron {
namespace cpu {
namespace {

// Planes per task so that a task does at least ~32k element visits.
int64_t plane_grain(int64_t per_plane) { return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, per_plane)); }

// Branch-free "take v if v > best or v is nan" (nan wins, as in PyTorch): on random data the
// comparison is unpredictable, and compilers keep branches for float selects, so blend the bits.
template <typename T>
inline void take_if_greater(T v, int64_t vi, T& best, int64_t& bi) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const bool t = (v > best) | (v != v);
  const U m = U(0) - static_cast<U>(t);
  U vb, bb;
  std::memcpy(&vb, &v, sizeof(T));
  std::memcpy(&bb, &best, sizeof(T));
  bb = (vb & m) | (bb & ~m);
  std::memcpy(&best, &bb, sizeof(T));
  const uint64_t mi = uint64_t(0) - static_cast<uint64_t>(t);
  bi = static_cast<int64_t>((static_cast<uint64_t>(vi) & mi) | (static_cast<uint64_t>(bi) & ~mi));
}

template <typename T>
void max_forward(const Tensor& xt, const Tensor& yt, const Tensor& it, const PoolGeom& g) {
  const T* x = xt.data<T>();
  T* y = yt.data<T>();
  int64_t* ix = it.defined() ? it.data<int64_t>() : nullptr;  // none: values only (indices dropped unread)
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  const int64_t W = g.W;
  const bool k2s2 = g.kH == 2 && g.kW == 2 && g.sH == 2 && g.sW == 2 && g.pH == 0 && g.pW == 0 && g.dH == 1 &&
                    g.dW == 1 && 2 * g.OH <= g.H && 2 * g.OW <= g.W;
  const bool simd = std::is_same_v<T, float> && max_pool_f32_simd_ok(g);
  parallel_for(0, g.NC, plane_grain(OHW * g.kH * g.kW), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const T* xp = x + pl * HW;
      if constexpr (std::is_same_v<T, float>) {
        if (simd) {
          max_pool_f32_simd(xp, y + pl * OHW, ix ? ix + pl * OHW : nullptr, g);
          continue;
        }
      }
      if (k2s2) {  // the common 2x2 / stride 2 window: straight-line, branch-free
        T* yp = y + pl * OHW;
        int64_t* ip = ix ? ix + pl * OHW : nullptr;
        const int64_t OH = g.OH, OW = g.OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const T* r0 = xp + 2 * oh * W;
          const T* r1 = r0 + W;
          for (int64_t ow = 0; ow < OW; ++ow) {
            const int64_t c = 2 * ow;
            T best = r0[c];
            int64_t bi = 2 * oh * W + c;
            const T v1 = r0[c + 1], v2 = r1[c], v3 = r1[c + 1];
            take_if_greater(v1, bi + 1, best, bi);
            take_if_greater(v2, 2 * oh * W + W + c, best, bi);
            take_if_greater(v3, 2 * oh * W + W + c + 1, best, bi);
            yp[oh * OW + ow] = best;
            if (ip) ip[oh * OW + ow] = bi;
          }
        }
        continue;
      }
      T* yp = y + pl * OHW;
      int64_t* ip = ix ? ix + pl * OHW : nullptr;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        int64_t h0 = oh * g.sH - g.pH;
        int64_t ih_lo = h0;
        while (ih_lo < 0) ih_lo += g.dH;
        const int64_t h_end = std::min(h0 + (g.kH - 1) * g.dH + 1, g.H);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          int64_t w0 = ow * g.sW - g.pW;
          int64_t iw_lo = w0;
          while (iw_lo < 0) iw_lo += g.dW;
          const int64_t w_end = std::min(w0 + (g.kW - 1) * g.dW + 1, g.W);
          T best = -std::numeric_limits<T>::infinity();
          int64_t bi = ih_lo * g.W + iw_lo;
          // Branch-free update (random data makes `v > best` unpredictable): nan wins, as in PyTorch.
          for (int64_t ih = ih_lo; ih < h_end; ih += g.dH) {
            const T* row = xp + ih * W;
            for (int64_t iw = iw_lo; iw < w_end; iw += g.dW) {
              take_if_greater(row[iw], ih * W + iw, best, bi);
            }
          }
          yp[oh * g.OW + ow] = best;
          if (ip) ip[oh * g.OW + ow] = bi;
        }
      }
    }
  });
}

template <typename T>
void max_backward(const Tensor& gyt, const Tensor& it, const Tensor& gxt, const PoolGeom& g) {
  const T* gy = gyt.data<T>();
  const int64_t* ix = it.data<int64_t>();
  T* gx = gxt.data<T>();
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  parallel_for(0, g.NC, plane_grain(HW + OHW), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      T* gp = gx + pl * HW;
      std::fill_n(gp, HW, T(0));
      const T* yp = gy + pl * OHW;
      const int64_t* ip = ix + pl * OHW;
      for (int64_t q = 0; q < OHW; ++q) {
        int64_t i = ip[q];
        if (i < 0 || i >= HW)
          throw Error(ErrorCode::IndexError,
                      str_cat("max_pool2d_backward: index ", i, " out of range for an input plane of ", g.H, " x ", g.W,
                              " (", HW, " cells)"), "max_pool2d_backward");
        gp[i] += yp[q];
      }
    }
  });
}

// Window [h0, h1) x [w0, w1) clipped to the input, and its divisor.
struct Win {
  int64_t h0, h1, w0, w1;
  int64_t div;
};
inline Win avg_window(const PoolGeom& g, int64_t oh, int64_t ow, bool include_pad, int64_t divisor) {
  int64_t h0 = oh * g.sH - g.pH, w0 = ow * g.sW - g.pW;
  int64_t h1 = std::min(h0 + g.kH, g.H + g.pH), w1 = std::min(w0 + g.kW, g.W + g.pW);
  const int64_t pool = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.H), w1 = std::min(w1, g.W);
  int64_t div = divisor ? divisor : include_pad ? pool : (h1 - h0) * (w1 - w0);
  return Win{h0, h1, w0, w1, div};
}

template <typename T>
void avg_forward(const Tensor& xt, const Tensor& yt, const PoolGeom& g, bool include_pad, int64_t divisor) {
  const T* x = xt.data<T>();
  T* y = yt.data<T>();
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  parallel_for(0, g.NC, plane_grain(OHW * g.kH * g.kW), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const T* xp = x + pl * HW;

      T* yp = y + pl * OHW;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          Win w = avg_window(g, oh, ow, include_pad, divisor);
          T s = 0;
          for (int64_t ih = w.h0; ih < w.h1; ++ih)
            for (int64_t iw = w.w0; iw < w.w1; ++iw) s += xp[ih * g.W + iw];
          yp[oh * g.OW + ow] = (w.h0 >= w.h1 || w.w0 >= w.w1) ? T(0) : s / T(w.div);
        }
      }
    }
  });
}

template <typename T>
void avg_backward(const Tensor& gyt, const Tensor& gxt, const PoolGeom& g, bool include_pad, int64_t divisor) {
  const T* gy = gyt.data<T>();
  T* gx = gxt.data<T>();
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  parallel_for(0, g.NC, plane_grain(HW + OHW * g.kH * g.kW), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      T* gp = gx + pl * HW;
      std::fill_n(gp, HW, T(0));
      const T* yp = gy + pl * OHW;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          Win w = avg_window(g, oh, ow, include_pad, divisor);
          if (w.h0 >= w.h1 || w.w0 >= w.w1) continue;
          const T v = yp[oh * g.OW + ow] / T(w.div);
          for (int64_t ih = w.h0; ih < w.h1; ++ih)
            for (int64_t iw = w.w0; iw < w.w1; ++iw) gp[ih * g.W + iw] += v;
        }
      }
    }
  });
}

inline int64_t a_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t a_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

template <typename T>
void adaptive_forward(const Tensor& xt, const Tensor& yt, const PoolGeom& g) {
  const T* x = xt.data<T>();
  T* y = yt.data<T>();
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  if constexpr (std::is_same_v<T, float>) {
    if (OHW == 1 && global_avg_f32_simd_ok(HW)) {  // global pooling: one vector sum per plane
      parallel_for(0, g.NC, plane_grain(HW + OHW),
                   [&](int64_t p0, int64_t p1) { global_avg_f32_simd(x, y, p0, p1, HW); });
      return;
    }
  }
  parallel_for(0, g.NC, plane_grain(HW + OHW), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const T* xp = x + pl * HW;
      T* yp = y + pl * OHW;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t h0 = a_start(oh, g.H, g.OH), h1 = a_end(oh, g.H, g.OH);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t w0 = a_start(ow, g.W, g.OW), w1 = a_end(ow, g.W, g.OW);
          T s = 0;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) s += xp[ih * g.W + iw];
          yp[oh * g.OW + ow] = s / T((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
}

template <typename T>
void adaptive_backward(const Tensor& gyt, const Tensor& gxt, const PoolGeom& g) {
  const T* gy = gyt.data<T>();
  T* gx = gxt.data<T>();
  const int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  parallel_for(0, g.NC, plane_grain(HW + OHW), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      T* gp = gx + pl * HW;
      std::fill_n(gp, HW, T(0));
      const T* yp = gy + pl * OHW;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t h0 = a_start(oh, g.H, g.OH), h1 = a_end(oh, g.H, g.OH);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t w0 = a_start(ow, g.W, g.OW), w1 = a_end(ow, g.W, g.OW);
          const T v = yp[oh * g.OW + ow] / T((h1 - h0) * (w1 - w0));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) gp[ih * g.W + iw] += v;
        }
      }
    }
  });
}

template <typename T>
PoolKernels g_pool_kernels = {&max_forward<T>, &max_backward<T>, &avg_forward<T>, &avg_backward<T>, &adaptive_forward<T>,
                              &adaptive_backward<T>};

#define HERON_POOL_REGISTER(OP)                                                              \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, &g_pool_kernels<float>); \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, &g_pool_kernels<double>)

HERON_POOL_REGISTER(max_pool2d);
HERON_POOL_REGISTER(max_pool2d_backward);
HERON_POOL_REGISTER(avg_pool2d);
HERON_POOL_REGISTER(avg_pool2d_backward);
HERON_POOL_REGISTER(adaptive_avg_pool2d);
HERON_POOL_REGISTER(adaptive_avg_pool2d_backward);

}  // namespace
}  // namespace cpu
}  // namespace heron
