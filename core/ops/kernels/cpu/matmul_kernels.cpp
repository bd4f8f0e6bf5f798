// CPU matmul. float32/float64 go to OpenBLAS (cblas_?gemm, ?gemv for vector shapes), with each
// operand passed in place whenever its last two dims are row- or column-contiguous (lda and
// CblasTrans); only other layouts are copied, one matrix at a time. float16/bfloat16 are
// converted to float32 per matrix and use sgemm (computing in float). Integers use an exact
// own kernel (wrapping like two's-complement arithmetic).
//
// All BLAS-specific code of Heron lives here, including the thread-count listener: products are
// parallelised by OpenBLAS itself with its thread count kept equal to Heron's
// (heron::set_num_threads), or, with HERON_BLAS_POOL=1, over Heron's pool with OpenBLAS kept
// single-threaded.
#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/linalg.h"
#include "core/ops/kernels/cpu/loops.h"

namespace heron {
namespace cpu {
namespace {

// ------------------------------------------------------------------ BLAS threads
// By default OpenBLAS threads the product itself (its thread count follows Heron's). With
// HERON_BLAS_POOL=1 OpenBLAS runs single-threaded and big products are split into row (or column)
// blocks over Heron's own pool, one independent gemm per block. Measured on 2 cores: alone,
// OpenBLAS's own threading reaches 197 GFLOP/s at 2048^2 against 167 for the split (two
// half-size gemms pack B twice); but OpenBLAS's threads synchronise by spinning, which collapses
// when another spinning BLAS shares the process (numpy's, with default settings): there the split
// was 2-4x faster at 256^2. Pick the pool mode for such processes (or set OPENBLAS_THREAD_TIMEOUT).
bool pool_mode() {
  static const bool on = [] { const char* e = std::getenv("HERON_BLAS_POOL"); return e && e[0] == '1'; }();
  return on;
}
void set_blas_threads(int n) { openblas_set_num_threads(pool_mode() ? 1 : n); }

struct BlasThreadsInit {
  BlasThreadsInit() { add_num_threads_listener(&set_blas_threads); }
};
BlasThreadsInit g_blas_threads_init;

// On first use, set OpenBLAS's thread count (1, or Heron's with HERON_BLAS_POOL=0).
void sync_blas_threads_once() {
  static std::once_flag once;
  std::call_once(once, [] { set_blas_threads(get_num_threads()); });
}

// ------------------------------------------------------------------ geometry
// A matrix view: rows x cols at p with element strides (rs, cs).
template <typename T>
struct Mat {
  const T* p;
  int64_t rows, cols, rs, cs;
};

// Can BLAS read this matrix in place? Sets trans / ld for row-major cblas.
template <typename T>
bool blas_layout(const Mat<T>& m, CBLAS_TRANSPOSE& t, int64_t& ld) {
  if ((m.cs == 1 || m.cols == 1) && (m.rows == 1 || m.rs >= std::max<int64_t>(1, m.cols))) {
    t = CblasNoTrans;
    ld = m.rows == 1 ? std::max<int64_t>(1, m.cols) : m.rs;
    return true;
  }
  if ((m.rs == 1 || m.rows == 1) && (m.cols == 1 || m.cs >= std::max<int64_t>(1, m.rows))) {
    t = CblasTrans;
    ld = m.cols == 1 ? std::max<int64_t>(1, m.rows) : m.cs;
    return true;
  }
  return false;
}

// Copies a matrix into a contiguous row-major buffer of type U.
template <typename U, typename T>
void pack(const Mat<T>& m, U* dst) {
  for (int64_t i = 0; i < m.rows; ++i) {
    const T* r = m.p + i * m.rs;
    U* d = dst + i * m.cols;
    if (m.cs == 1) {
      for (int64_t j = 0; j < m.cols; ++j) d[j] = static_cast<U>(static_cast<opmath_t<T>>(r[j]));
    } else {
      for (int64_t j = 0; j < m.cols; ++j) d[j] = static_cast<U>(static_cast<opmath_t<T>>(r[j * m.cs]));
    }
  }
}

inline void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
inline void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
                 const double* b, int64_t ldb, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
}
inline void gemv(CBLAS_TRANSPOSE t, int64_t r, int64_t c, const float* a, int64_t lda, const float* x, int64_t incx, float* y) {
  cblas_sgemv(CblasRowMajor, t, r, c, 1.0f, a, lda, x, incx, 0.0f, y, 1);
}
inline void gemv(CBLAS_TRANSPOSE t, int64_t r, int64_t c, const double* a, int64_t lda, const double* x, int64_t incx, double* y) {
  cblas_dgemv(CblasRowMajor, t, r, c, 1.0, a, lda, x, incx, 0.0, y, 1);
}
inline float dot(int64_t n, const float* x, int64_t incx, const float* y, int64_t incy) { return cblas_sdot(n, x, incx, y, incy); }
inline double dot(int64_t n, const double* x, int64_t incx, const double* y, int64_t incy) { return cblas_ddot(n, x, incx, y, incy); }

// Own kernel for integers: c (m x n, contiguous) = a @ b, accumulating in Acc.
template <typename T, typename Acc>
void small_matmul(const Mat<T>& a, const Mat<T>& b, T* c) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  auto ld = [](const T& v) -> Acc {
    if constexpr (std::is_integral_v<Acc>) return static_cast<Acc>(static_cast<int64_t>(v));
    else return static_cast<Acc>(static_cast<opmath_t<T>>(v));
  };
  auto st = [](Acc v) -> T {
    if constexpr (std::is_integral_v<Acc>) return static_cast<T>(static_cast<int64_t>(v));
    else return T(static_cast<opmath_t<T>>(v));
  };
  constexpr int64_t kN = 256;
  Acc acc[kN];
  for (int64_t j0 = 0; j0 < n; j0 += kN) {
    int64_t nn = std::min(kN, n - j0);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < nn; ++j) acc[j] = Acc(0);
      const T* ar = a.p + i * a.rs;
      for (int64_t p = 0; p < k; ++p) {
        Acc av = ld(ar[p * a.cs]);
        const T* br = b.p + p * b.rs + j0 * b.cs;
        if (b.cs == 1) {
          for (int64_t j = 0; j < nn; ++j) acc[j] += av * ld(br[j]);
        } else {
          for (int64_t j = 0; j < nn; ++j) acc[j] += av * ld(br[j * b.cs]);
        }
      }
      T* cr = c + i * n + j0;
      for (int64_t j = 0; j < nn; ++j) cr[j] = st(acc[j]);
    }
  }
}

// One product with BLAS (float / double): in place when the layouts allow, else packed.
template <typename T>
void blas_one(const Mat<T>& a, const Mat<T>& b, T* c, std::vector<T>& scratch, int64_t ldc = -1) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
  int64_t lda = 1, ldb = 1;
  const T* ap = a.p;
  const T* bp = b.p;
  bool a_ok = blas_layout(a, ta, lda), b_ok = blas_layout(b, tb, ldb);
  if (!a_ok || !b_ok) {
    scratch.resize(static_cast<size_t>((a_ok ? 0 : m * k) + (b_ok ? 0 : k * n)));
    T* s = scratch.data();
    if (!a_ok) { pack(a, s); ap = s; ta = CblasNoTrans; lda = std::max<int64_t>(1, k); s += m * k; }
    if (!b_ok) { pack(b, s); bp = s; tb = CblasNoTrans; ldb = std::max<int64_t>(1, n); }
  }
  if (m == 1 && n == 1) {
    // Dot product: the row of a and the column of b as vectors.
    int64_t incx = ta == CblasNoTrans ? 1 : lda, incy = tb == CblasNoTrans ? ldb : 1;
    c[0] = dot(k, ap, incx, bp, incy);
  } else if (n == 1) {
    // y (m) = A x, x = the column of b.
    int64_t incx = tb == CblasNoTrans ? ldb : 1;
    if (ta == CblasNoTrans) gemv(CblasNoTrans, m, k, ap, lda, bp, incx, c);
    else gemv(CblasTrans, k, m, ap, lda, bp, incx, c);
  } else if (m == 1) {
    // y (n) = B^T x, x = the row of a.
    int64_t incx = ta == CblasNoTrans ? 1 : lda;
    if (tb == CblasNoTrans) gemv(CblasTrans, k, n, bp, ldb, ap, incx, c);
    else gemv(CblasNoTrans, n, k, bp, ldb, ap, incx, c);
  } else {
    gemm(ta, tb, m, n, k, ap, lda, bp, ldb, c, ldc < 0 ? n : ldc);
  }
}

// A big product split into row (or column) blocks over Heron's pool, each a single-threaded gemm.
template <typename T>
void pooled_one(const Mat<T>& a, const Mat<T>& b, T* c) {
  const int64_t m = a.rows, n = b.cols;
  const int64_t parts = get_num_threads();
  if (m >= n) {
    int64_t blk = ((m + parts - 1) / parts + 15) & ~int64_t{15};
    parallel_for(0, (m + blk - 1) / blk, 1, [&](int64_t p0, int64_t p1) {
      thread_local std::vector<T> scratch;
      for (int64_t p = p0; p < p1; ++p) {
        int64_t i0 = p * blk, i1 = std::min(m, i0 + blk);
        blas_one(Mat<T>{a.p + i0 * a.rs, i1 - i0, a.cols, a.rs, a.cs}, b, c + i0 * n, scratch, n);
      }
    });
  } else {
    int64_t blk = ((n + parts - 1) / parts + 15) & ~int64_t{15};
    parallel_for(0, (n + blk - 1) / blk, 1, [&](int64_t p0, int64_t p1) {
      thread_local std::vector<T> scratch;
      for (int64_t p = p0; p < p1; ++p) {
        int64_t j0 = p * blk, j1 = std::min(n, j0 + blk);
        blas_one(a, Mat<T>{b.p + j0 * b.cs, b.rows, j1 - j0, b.rs, b.cs}, c + j0, scratch, n);
      }
    });
  }
}

constexpr int64_t kBlasSerial = 1 << 18;  // m*n*k below which OpenBLAS runs single-threaded

// Whether the products of a batch run in parallel with each other (each single-threaded) rather
// than one at a time split over the threads: small products (OpenBLAS would not thread them),
// and in pool mode any batch with at least one product per thread.
inline bool batch_parallel(const Tensor& out, int64_t mn, int64_t work) {
  if (work < kBlasSerial) return true;
  return pool_mode() && out.numel() / std::max<int64_t>(mn, 1) >= get_num_threads();
}

// Whether a batch of products above kBlasSerial is better run in parallel over the batch with each
// product cut into single-threaded row blocks (see blas_matmul): at least one product per thread,
// products up to 4M multiply-adds, and a row (n*k) within kBlasSerial.
constexpr int64_t kBatchSplitMax = int64_t{1} << 22;
inline bool split_batch(const Tensor& out, int64_t m, int64_t n, int64_t k) {
  const int64_t threads = get_num_threads();
  const int64_t nb = out.numel() / std::max<int64_t>(m * n, 1);
  return threads > 1 && nb >= threads && m * n * k <= kBatchSplitMax && n * k <= kBlasSerial;
}

// Iterates the batch: fn(batch index, a matrix, b matrix, c pointer).
template <typename T, typename F>
void for_batches(const Tensor& a, const Tensor& b, const Tensor& out, int64_t work_per_batch, bool parallel_ok, F fn) {
  const int64_t nd = out.dim();
  const int64_t m = out.shape()[nd - 2], n = out.shape()[nd - 1], k = a.shape()[nd - 1];
  int64_t nb = 1;
  for (int64_t d = 0; d < nd - 2; ++d) nb *= out.shape()[d];
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  T* cp = out.data<T>();
  const int64_t ars = a.strides()[nd - 2], acs = a.strides()[nd - 1];
  const int64_t brs = b.strides()[nd - 2], bcs = b.strides()[nd - 1];
  auto body = [&](int64_t b0, int64_t b1) {
    for (int64_t t = b0; t < b1; ++t) {
      int64_t rem = t, ao = 0, bo = 0;
      for (int64_t d = nd - 3; d >= 0; --d) {
        int64_t i = rem % out.shape()[d];
        rem /= out.shape()[d];
        ao += i * a.strides()[d];
        bo += i * b.strides()[d];
      }
      fn(t, Mat<T>{ap + ao, m, k, ars, acs}, Mat<T>{bp + bo, k, n, brs, bcs}, cp + t * m * n);
    }
  };
  if (parallel_ok && nb > 1) {
    int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(work_per_batch, 1));
    parallel_for(0, nb, grain, body);
  } else {
    body(0, nb);
  }
}

template <typename T>
void blas_matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t nd = out.dim();
  const int64_t m = out.shape()[nd - 2], n = out.shape()[nd - 1], k = a.shape()[nd - 1];
  if (k == 0) {
    std::fill_n(out.data<T>(), out.numel(), T(0));
    return;
  }
  const int64_t work = m * n * k;
  sync_blas_threads_once();
  // Small products run single-threaded inside OpenBLAS, so batches of them go over our pool;
  // big ones are split over the pool one product at a time (or use OpenBLAS's threads).
  bool par = batch_parallel(out, m * n, work);
  bool pooled = !par && pool_mode();
  if (!par && !pooled && split_batch(out, m, n, k)) {
    // A batch of mid-size products (attention scores, einsum's batched contractions): the batch
    // runs over our pool, each product cut into row blocks small enough (m*n*k <= kBlasSerial)
    // that OpenBLAS keeps them single-threaded, instead of one product at a time with OpenBLAS's
    // threads synchronising for each.
    const int64_t rows = std::max<int64_t>(1, kBlasSerial / std::max<int64_t>(n * k, 1));
    for_batches<T>(a, b, out, kBlasSerial, true, [rows, m, n](int64_t, const Mat<T>& am, const Mat<T>& bm, T* c) {
      thread_local std::vector<T> scratch;
      for (int64_t i0 = 0; i0 < m; i0 += rows) {
        int64_t r = std::min(rows, m - i0);
        blas_one(Mat<T>{am.p + i0 * am.rs, r, am.cols, am.rs, am.cs}, bm, c + i0 * n, scratch, n);
      }
    });
    return;
  }
  for_batches<T>(a, b, out, work, par, [pooled](int64_t, const Mat<T>& am, const Mat<T>& bm, T* c) {
    if (pooled) { pooled_one(am, bm, c); return; }
    thread_local std::vector<T> scratch;
    blas_one(am, bm, c, scratch);
  });
}

// float16 / bfloat16: convert each matrix to float32, multiply with sgemm, convert back.
template <typename T>
void half_matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t nd = out.dim();
  const int64_t m = out.shape()[nd - 2], n = out.shape()[nd - 1], k = a.shape()[nd - 1];
  if (k == 0) {
    std::fill_n(out.data<T>(), out.numel(), T(0.0f));
    return;
  }
  const int64_t work = m * n * k;
  sync_blas_threads_once();
  bool par = batch_parallel(out, m * n, work);
  bool pooled = !par && pool_mode();
  for_batches<T>(a, b, out, work, par, [m, n, k, pooled](int64_t, const Mat<T>& am, const Mat<T>& bm, T* c) {
    thread_local std::vector<float> buf;
    thread_local std::vector<float> scratch;
    buf.resize(static_cast<size_t>(m * k + k * n + m * n));
    float* af = buf.data();
    float* bf = af + m * k;
    float* cf = bf + k * n;
    pack(am, af);
    pack(bm, bf);
    if (pooled) pooled_one(Mat<float>{af, m, k, k, 1}, Mat<float>{bf, k, n, n, 1}, cf);
    else blas_one(Mat<float>{af, m, k, k, 1}, Mat<float>{bf, k, n, n, 1}, cf, scratch);
    for (int64_t i = 0; i < m * n; ++i) c[i] = T(cf[i]);
  });
}

// Integers: exact, wrapping (accumulates in uint64).
template <typename T>
void int_matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t nd = out.dim();
  const int64_t m = out.shape()[nd - 2], n = out.shape()[nd - 1], k = a.shape()[nd - 1];
  if (k == 0) {
    std::fill_n(out.data<T>(), out.numel(), T(0));
    return;
  }
  const int64_t work = m * n * k;
  int64_t nb = out.numel() / std::max<int64_t>(m * n, 1);
  if (nb == 1 && work > (int64_t{1} << 16) && m > 1) {
    // One big product: split its rows over the pool.
    for_batches<T>(a, b, out, work, false, [&](int64_t, const Mat<T>& am, const Mat<T>& bm, T* c) {
      parallel_for(0, m, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(n * k, 1)), [&](int64_t i0, int64_t i1) {
        Mat<T> sub{am.p + i0 * am.rs, i1 - i0, am.cols, am.rs, am.cs};
        small_matmul<T, uint64_t>(sub, bm, c + i0 * n);
      });
    });
    return;
  }
  for_batches<T>(a, b, out, work, true, [](int64_t, const Mat<T>& am, const Mat<T>& bm, T* c) { small_matmul<T, uint64_t>(am, bm, c); });
}

HERON_REGISTER_KERNEL(ops::OpId::matmul, "cpu", DType::Float32, &blas_matmul<float>);
HERON_REGISTER_KERNEL(ops::OpId::matmul, "cpu", DType::Float64, &blas_matmul<double>);
HERON_REGISTER_KERNEL(ops::OpId::matmul, "cpu", DType::Float16, &half_matmul<Half>);
HERON_REGISTER_KERNEL(ops::OpId::matmul, "cpu", DType::BFloat16, &half_matmul<BFloat16>);
HERON_REGISTER_KERNEL(ops::OpId::matmul, "cpu", DType::Int8, &int_matmul<int8_t>);
HERON_REGISTER_KERNEL(ops::OpId::matmul, "cpu", DType::UInt8, &int_matmul<uint8_t>);
HERON_REGISTER_KERNEL(ops::OpId::matmul, "cpu", DType::Int32, &int_matmul<int32_t>);
HERON_REGISTER_KERNEL(ops::OpId::matmul, "cpu", DType::Int64, &int_matmul<int64_t>);

}  // namespace
}  // namespace cpu
}  // namespace heron
