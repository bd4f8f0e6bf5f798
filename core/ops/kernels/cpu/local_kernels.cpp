// CPU kernels of local_conv2d / local_share_conv2d (impl/local.h): the naive reference loops
// (local_naive.inc) and the optimized path. The optimized path turns every product into small
// GEMMs over one spatial group's filter, with the input and the output gradient repacked once per
// call into position-major, batch-minor layouts ([H][W][C][N]) so that each GEMM operand is
// gathered by contiguous copies; the GEMM micro-kernels are register-blocked over MR filter rows x
// two SIMD vectors of columns and dispatched at run time (AVX-512 / AVX2+FMA / scalar). Every
// output element is one fused-multiply-add chain in the reference's order (the reduction is never
// split across threads or reordered), so the result is bitwise the naive kernel's.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/local.h"
#include "core/ops/kernels/cpu/vec_math.h"
#include "core/util/thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#define HERON_LOCAL_X86 1
#define HERON_LOCAL_INLINE __attribute__((always_inline))
#if defined(__clang__)
#define HERON_LOCAL_KEEP __attribute__((noinline, optnone))
#else
#define HERON_LOCAL_KEEP __attribute__((noipa))
#endif
#include <immintrin.h>
#endif

namespace heron {
namespace cpu {
namespace {

namespace plain {
#include "core/ops/kernels/cpu/local_naive.inc"
}  // namespace plain

#if HERON_LOCAL_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace fma2 {
#include "core/ops/kernels/cpu/local_naive.inc"

// c[MR rows x up to 16 columns] = fma chains; rows >= `rows` compute a copy of the last row and
// are not stored. b rows must be readable for 16 columns.
template <int MR>
inline void mk_avx2(int64_t R, const float* a, int64_t a_i, int64_t a_r, const float* b, int64_t ldb, float* c, int64_t ldc,
                    int rows, int cols, bool accum) {
  __m256 c0[MR], c1[MR];
  const float* ap[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    ap[i] = a + (i < rows ? i : rows - 1) * a_i;
    c0[i] = _mm256_setzero_ps();
    c1[i] = _mm256_setzero_ps();
  }
  alignas(32) float tmp[16] = {};
  if (accum)
    for (int i = 0; i < rows; ++i) {
      std::memcpy(tmp, c + i * ldc, sizeof(float) * cols);
      c0[i] = _mm256_load_ps(tmp);
      c1[i] = _mm256_load_ps(tmp + 8);
    }
  for (int64_t r = 0; r < R; ++r) {
    const __m256 b0 = _mm256_loadu_ps(b + r * ldb), b1 = _mm256_loadu_ps(b + r * ldb + 8);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(ap[i] + r * a_r);
      c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
    }
  }
  for (int i = 0; i < rows; ++i) {
    if (cols == 16) {
      _mm256_storeu_ps(c + i * ldc, c0[i]);
      _mm256_storeu_ps(c + i * ldc + 8, c1[i]);
    } else {
      _mm256_store_ps(tmp, c0[i]);
      _mm256_store_ps(tmp + 8, c1[i]);
      std::memcpy(c + i * ldc, tmp, sizeof(float) * cols);
    }
  }
}

void gemm_avx2(int64_t M, int64_t Nc, int64_t R, const float* a, int64_t a_i, int64_t a_r, const float* b, int64_t ldb, float* c,
               int64_t ldc, bool accum) {
  constexpr int MR = 6, NR = 16;
  for (int64_t j0 = 0; j0 < Nc; j0 += NR)
    for (int64_t i0 = 0; i0 < M; i0 += MR)
      mk_avx2<MR>(R, a + i0 * a_i, a_i, a_r, b + j0, ldb, c + i0 * ldc + j0, ldc, int(std::min<int64_t>(MR, M - i0)),
                  int(std::min<int64_t>(NR, Nc - j0)), accum);
}

// d[c * ldd + r] = s[r * lds + c] for an 8 x 8 block (the layout changes of the optimized kernels).
inline void transpose8x8(const float* s, int64_t lds, float* d, int64_t ldd) {
  __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + lds), r2 = _mm256_loadu_ps(s + 2 * lds),
         r3 = _mm256_loadu_ps(s + 3 * lds), r4 = _mm256_loadu_ps(s + 4 * lds), r5 = _mm256_loadu_ps(s + 5 * lds),
         r6 = _mm256_loadu_ps(s + 6 * lds), r7 = _mm256_loadu_ps(s + 7 * lds);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
               u3 = _mm256_shuffle_ps(t1, t3, 0xEE), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

void transpose_avx2(const float* s, int64_t lds, float* d, int64_t ldd, int64_t R, int64_t C) {
  const int64_t R8 = R / 8 * 8, C8 = C / 8 * 8;
  for (int64_t r = 0; r < R8; r += 8) {
    for (int64_t c = 0; c < C8; c += 8) transpose8x8(s + r * lds + c, lds, d + c * ldd + r, ldd);
    for (int64_t c = C8; c < C; ++c)
      for (int64_t i = r; i < r + 8; ++i) d[c * ldd + i] = s[i * lds + c];
  }
  for (int64_t r = R8; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) d[c * ldd + r] = s[r * lds + c];
}
}  // namespace fma2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("prfchw")
namespace fma2 {
// Announces rows d + i * ldd (i < rows, len elements each) that are about to be written: a
// prefetch for ownership of each line, so the writes do not wait for their lines one by one
// (measured: the input gradient's write-out ~25% cheaper). Kept out of line (its own target) and
// out of interprocedural analysis, which would drop a call whose only effect is a prefetch.
template <typename T>
HERON_LOCAL_KEEP void prefetch_rows_w(T* d, int64_t ldd, int64_t rows, int64_t len) {
  for (int64_t i = 0; i < rows; ++i) {
    const char* p = reinterpret_cast<const char*>(d + i * ldd);
    for (int64_t b = 0; b < int64_t(len * sizeof(T)); b += 64) __builtin_prefetch(p + b, 1, 3);
  }
}
}  // namespace fma2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
namespace avx512 {
template <int MR>
inline void mk(int64_t R, const float* a, int64_t a_i, int64_t a_r, const float* b, int64_t ldb, float* c, int64_t ldc, int rows,
               int cols, bool accum) {
  __m512 c0[MR], c1[MR];
  const float* ap[MR];
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols <= 16 ? __mmask16(0) : __mmask16((1u << (cols - 16)) - 1);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    ap[i] = a + (i < rows ? i : rows - 1) * a_i;
    if (accum && i < rows) {
      c0[i] = _mm512_maskz_loadu_ps(m0, c + i * ldc);
      c1[i] = _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
    } else {
      c0[i] = _mm512_setzero_ps();
      c1[i] = _mm512_setzero_ps();
    }
  }
  // A with a row stride along r (the forward's filter, streamed from memory once): prefetch ahead.
  const int64_t pf = a_r == 1 ? 0 : 12 * a_r;
  for (int64_t r = 0; r < R; ++r) {
    if (pf) _mm_prefetch(reinterpret_cast<const char*>(ap[0] + r * a_r + pf), _MM_HINT_T0);
    const __m512 b0 = _mm512_loadu_ps(b + r * ldb), b1 = _mm512_loadu_ps(b + r * ldb + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(ap[i][r * a_r]);
      c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    if (i < rows) {
      _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
      _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
    }
}

// 6 rows x 64 columns (4 vectors): fewer broadcasts per FMA, for full 64-column blocks. Stream:
// c is 64-byte aligned and written once, with non-temporal stores (no read of the old lines).
template <bool Stream = false>
inline void mk64(int64_t R, const float* a, int64_t a_i, int64_t a_r, const float* b, int64_t ldb, float* c, int64_t ldc, int rows,
                 bool accum) {
  constexpr int MR = 6;
  __m512 acc[MR][4];
  const float* ap[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    ap[i] = a + (i < rows ? i : rows - 1) * a_i;
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[i][v] = (accum && i < rows) ? _mm512_loadu_ps(c + i * ldc + 16 * v) : _mm512_setzero_ps();
  }
  for (int64_t r = 0; r < R; ++r) {
    const float* br = b + r * ldb;
    const __m512 b0 = _mm512_loadu_ps(br), b1 = _mm512_loadu_ps(br + 16), b2 = _mm512_loadu_ps(br + 32),
                 b3 = _mm512_loadu_ps(br + 48);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(ap[i][r * a_r]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(av, b2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(av, b3, acc[i][3]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    if (i < rows)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        if constexpr (Stream)
          _mm512_stream_ps(c + i * ldc + 16 * v, acc[i][v]);
        else
          _mm512_storeu_ps(c + i * ldc + 16 * v, acc[i][v]);
      }
}

void gemm(int64_t M, int64_t Nc, int64_t R, const float* a, int64_t a_i, int64_t a_r, const float* b, int64_t ldb, float* c,
          int64_t ldc, bool accum) {
  constexpr int NR = 32;
  if (a_r == 1 && Nc % 64 == 0) {  // rows streamed from a packed operand: the wide kernel
    for (int64_t j0 = 0; j0 < Nc; j0 += 64)
      for (int64_t i0 = 0; i0 < M; i0 += 6)
        mk64(R, a + i0 * a_i, a_i, a_r, b + j0, ldb, c + i0 * ldc + j0, ldc, int(std::min<int64_t>(6, M - i0)), accum);
    return;
  }
  const bool eight = M % 12 != 0 && M % 8 == 0 && M <= 96;  // no wasted rows (64 output channels)
  for (int64_t j0 = 0; j0 < Nc; j0 += NR) {
    const int cols = int(std::min<int64_t>(NR, Nc - j0));
    if (eight) {
      for (int64_t i0 = 0; i0 < M; i0 += 8)
        mk<8>(R, a + i0 * a_i, a_i, a_r, b + j0, ldb, c + i0 * ldc + j0, ldc, int(std::min<int64_t>(8, M - i0)), cols, accum);
    } else {
      for (int64_t i0 = 0; i0 < M; i0 += 12)
        mk<12>(R, a + i0 * a_i, a_i, a_r, b + j0, ldb, c + i0 * ldc + j0, ldc, int(std::min<int64_t>(12, M - i0)), cols, accum);
    }
  }
}
// gemm(M, Nc, R, ...) without accumulation for a packed A (a_r == 1), Nc % 64 == 0 and c, ldc
// 64-byte aligned: the result goes out with non-temporal stores (an output written once and not
// read again soon, e.g. local's weight gradient, as large as the weight).
void gemm_stream(int64_t M, int64_t Nc, int64_t R, const float* a, int64_t a_i, const float* b, int64_t ldb, float* c, int64_t ldc) {
  for (int64_t j0 = 0; j0 < Nc; j0 += 64)
    for (int64_t i0 = 0; i0 < M; i0 += 6)
      mk64<true>(R, a + i0 * a_i, a_i, 1, b + j0, ldb, c + i0 * ldc + j0, ldc, int(std::min<int64_t>(6, M - i0)), false);
}
inline void store_fence() { _mm_sfence(); }

// Backward-data with the column-to-image step fused: like gemm(M, np * 32 * nbp, R, ...) with a
// dense A (row i at a + i * R: the filter rows, reduction over the R = OC/G output channels) whose
// 32-column block jb holds batch entries n0 = (jb % nbp) * 32 .. n0 + 31 of position p = jb / nbp;
// instead of being stored, each finished row segment is added to rowp[i] + p * pstride + n0 (one
// plain add per element, after its whole FMA chain). Blocks go in position order, so every
// destination receives its additions in that order.
//
// One tile: MR rows x 32 columns. AS > 0: the row stride R is the compile-time AS (every row
// address is one base register plus a constant; with a run-time stride the 12 row pointers do not
// fit the registers and spill). Full: rows == MR (else rows >= `rows` compute a copy of the last
// row and are not stored). Over its first steps the tile prefetches, one line per step, the npf
// lines at pf: the A tile that comes next (the filter is streamed from memory once).
template <int MR, int AS, bool Full>
inline void mk_add(int64_t R, const float* a, const float* b, int64_t ldb, float* const* rowp, int64_t off, int rows,
                   const float* pf, int64_t npf) {
  const int64_t a_i = AS > 0 ? AS : R;
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm512_setzero_ps();
    c1[i] = _mm512_setzero_ps();
  }
  const auto step = [&](int64_t r) HERON_LOCAL_INLINE {
    const __m512 b0 = _mm512_loadu_ps(b + r * ldb), b1 = _mm512_loadu_ps(b + r * ldb + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[(Full ? i : std::min(i, rows - 1)) * a_i + r]);
      c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
    }
  };
  const int64_t rp = std::min(R, npf);
  int64_t r = 0;
  for (; r < rp; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(pf + 16 * r), _MM_HINT_T0);
    step(r);
  }
  for (; r < R; ++r) step(r);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    if (Full || i < rows) {
      float* d = rowp[i] + off;
      _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), c0[i]));
      _mm512_storeu_ps(d + 16, _mm512_add_ps(_mm512_loadu_ps(d + 16), c1[i]));
    }
}

// A (M x R, dense) for this call; `next`: the A of the caller's next call (or null), whose first
// tile is prefetched during the last tile of this one.
template <int AS>
void gemm_add_as(int64_t M, int64_t np, int64_t nbp, int64_t R, const float* a, const float* b, int64_t ldb, float* const* rowp,
                 int64_t pstride, const float* next) {
  constexpr int MR = 12;
  const int64_t nt = (M + MR - 1) / MR, nblk = np * nbp;
  for (int64_t jb = 0; jb < nblk; ++jb) {
    const int64_t off = (jb / nbp) * pstride + (jb % nbp) * 32;
    for (int64_t t = 0; t < nt; ++t) {
      const int64_t i0 = t * MR;
      const int rows = int(std::min<int64_t>(MR, M - i0));
      // The next tile's rows (of this A, or of the next call's), +1 line for a tile that does not
      // start on a line boundary.
      const float* pf = t + 1 < nt ? a + (i0 + MR) * R : jb + 1 < nblk ? a : next;
      const int64_t npf = pf ? (std::min<int64_t>(MR, t + 1 < nt ? M - i0 - MR : M) * R + 15) / 16 + 1 : 0;
      if (rows == MR)
        mk_add<MR, AS, true>(R, a + i0 * R, b + jb * 32, ldb, rowp + i0, off, rows, pf, npf);
      else
        mk_add<MR, 0, false>(R, a + i0 * R, b + jb * 32, ldb, rowp + i0, off, rows, pf, npf);
    }
  }
}

void gemm_add(int64_t M, int64_t np, int64_t nbp, int64_t R, const float* a, const float* b, int64_t ldb, float* const* rowp,
              int64_t pstride, const float* next) {
  switch (R) {  // the common channel counts with compile-time row addresses
    case 32: return gemm_add_as<32>(M, np, nbp, R, a, b, ldb, rowp, pstride, next);
    case 64: return gemm_add_as<64>(M, np, nbp, R, a, b, ldb, rowp, pstride, next);
    case 128: return gemm_add_as<128>(M, np, nbp, R, a, b, ldb, rowp, pstride, next);
    case 256: return gemm_add_as<256>(M, np, nbp, R, a, b, ldb, rowp, pstride, next);
    default: return gemm_add_as<0>(M, np, nbp, R, a, b, ldb, rowp, pstride, next);
  }
}
}  // namespace avx512
#pragma GCC pop_options
#endif

bool has_fma() {
#if HERON_LOCAL_X86
  return vec::active_isa() != vec::Isa::Scalar;
#else
  return false;
#endif
}

template <typename T>
using GemmFn = void (*)(int64_t, int64_t, int64_t, const T*, int64_t, int64_t, const T*, int64_t, T*, int64_t, bool);

// The GEMM for dtype T on this machine and how many columns it may read past Nc (b rows are
// padded to a multiple of this).
template <typename T>
GemmFn<T> pick_gemm(int64_t& nr) {
  nr = 1;
#if HERON_LOCAL_X86
  if constexpr (std::is_same_v<T, float>) {
    if (vec::active_isa() == vec::Isa::Avx512) {
      nr = 32;
      return &avx512::gemm;
    }
    if (vec::active_isa() == vec::Isa::Avx2) {
      nr = 16;
      return &fma2::gemm_avx2;
    }
  }
  if (has_fma()) return &fma2::gemm_scalar<T>;
#endif
  return &plain::gemm_scalar<T>;
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Copies one batch run (n contiguous values, typically 8..64): inline, no library call.
template <typename T>
inline void copy_run(T* __restrict d, const T* __restrict s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = s[i];
}

// d[c * ldd + r] = s[r * lds + c] for r < R, c < C: the layout changes (NCHW <-> position-major)
// of the optimized kernels, in 8 x 8 blocks (AVX2 for float). Pure data movement: exact.
template <typename T>
void transpose(const T* s, int64_t lds, T* d, int64_t ldd, int64_t R, int64_t C) {
#if HERON_LOCAL_X86
  if constexpr (std::is_same_v<T, float>)
    if (has_fma()) return fma2::transpose_avx2(s, lds, d, ldd, R, C);
#endif
  for (int64_t r0 = 0; r0 < R; r0 += 8)
    for (int64_t c0 = 0; c0 < C; c0 += 8)
      for (int64_t c = c0; c < std::min(C, c0 + 8); ++c)
        for (int64_t r = r0; r < std::min(R, r0 + 8); ++r) d[c * ldd + r] = s[r * lds + c];
}

// Per-thread scratch that lives across calls (no page faults on every call); slot 0..3. The
// contents are whatever the last user left: callers write before they read, except that GEMM
// operands may have unread padding columns (finite values, never stored).
template <typename T>
T* scratch(int slot, size_t n) {
  thread_local std::vector<T> bufs[4];
  std::vector<T>& b = bufs[slot];
  if (b.size() < n) b.assign(n, T(0));
  return b.data();
}

// A zero-padded, position-major copy of x: xt[((ih + pH) * IWp + iw + pW) * IC + c) * N + n], in the
// calling thread's scratch slot 2.
template <typename T>
T* pack_input(const T* x, const LocalGeom& g, int64_t& IHp, int64_t& IWp) {
  IHp = g.IH + 2 * g.pH;
  IWp = g.IW + 2 * g.pW;
  const int64_t pix = g.IC * g.N;
  T* d = scratch<T>(2, size_t(IHp * IWp * pix));
  parallel_for(0, IHp, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t ihp = h0; ihp < h1; ++ihp) {
      T* row = d + ihp * IWp * pix;
      const int64_t ih = ihp - g.pH;
      if (ih < 0 || ih >= g.IH) {
        std::fill(row, row + IWp * pix, T(0));
        continue;
      }
      std::fill(row, row + g.pW * pix, T(0));
      std::fill(row + (g.pW + g.IW) * pix, row + IWp * pix, T(0));
      // Per channel, the (n, iw) plane of this row transposed to (iw, n).
      const int64_t nstride = g.IC * g.IH * g.IW;
      for (int64_t c = 0; c < g.IC; ++c)
        transpose(x + (c * g.IH + ih) * g.IW, nstride, row + (g.pW * g.IC + c) * g.N, g.IC * g.N, g.N, g.IW);
    }
  });
  return d;
}

// Positions of the output are visited in chunks: one output row oh, one spatial group column sgw,
// up to `cpw` consecutive ow; a chunk's GEMM columns are (position, n), n fastest.
struct Chunks {
  int64_t ch, cw, cpw, per_row;  // per_row: chunks per (oh, sgw)
  Chunks(const LocalGeom& g) {
    ch = g.OH / g.SGH;
    cw = g.OW / g.SGW;
    cpw = std::max<int64_t>(1, std::min<int64_t>(cw, 256 / std::max<int64_t>(1, g.N)));
    per_row = (cw + cpw - 1) / cpw;
  }
};

template <typename T>
void fast_forward(const T* x, const T* w, const T* b, T* y, const LocalGeom& g) {
  int64_t NR;
  const GemmFn<T> gemm = pick_gemm<T>(NR);
  const int64_t ICg = g.IC / g.G, OCg = g.OC / g.G, K = ICg * g.FH * g.FW, N = g.N;
  int64_t IHp, IWp;
  const T* const xt = pack_input(x, g, IHp, IWp);
  const Chunks cs(g);
  const int64_t ldb = round_up(cs.cpw * N, NR), tasks = g.G * g.OH * g.SGW * cs.per_row;
  // With one position per chunk (local, large batches) the output is written position-major and
  // transposed once at the end: scattering single elements into (N, OC, OH, OW) costs more.
  // The filter is then the GEMM's vector operand, read in whole SIMD vectors (hence OC/G % NR == 0:
  // no reads past its end).
  const bool via_yt = cs.cpw == 1 && OCg % NR == 0;
  T* const yt = via_yt ? scratch<T>(3, size_t(g.OH * g.OW * g.OC * N)) : nullptr;
  parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    T* const Bp = scratch<T>(0, size_t(K * ldb + NR));
    T* const Cp = scratch<T>(1, size_t(OCg * ldb));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t c = t % cs.per_row, sgw = (t / cs.per_row) % g.SGW, oh = (t / cs.per_row / g.SGW) % g.OH,
                    gi = t / cs.per_row / g.SGW / g.OH;
      const int64_t ow0 = sgw * cs.cw + c * cs.cpw, np = std::min(cs.cpw, cs.cw - c * cs.cpw), cols = np * N;
      const T* wc = w + ((gi * g.SGH + oh / cs.ch) * g.SGW + sgw) * K * OCg;
      for (int64_t ic = 0, k = 0; ic < ICg; ++ic)
        for (int64_t fh = 0; fh < g.FH; ++fh) {
          const int64_t ihp = oh * g.sH + (g.flip ? g.FH - 1 - fh : fh) * g.dH;
          for (int64_t fw = 0; fw < g.FW; ++fw, ++k) {
            const int64_t twd = (g.flip ? g.FW - 1 - fw : fw) * g.dW;
            T* dst = Bp + k * ldb;
            for (int64_t p = 0; p < np; ++p)
              copy_run(dst + p * N, xt + ((ihp * IWp + (ow0 + p) * g.sW + twd) * g.IC + gi * ICg + ic) * N, N);
          }
        }
      T* const yc = via_yt ? yt + (oh * g.OW + ow0) * N * g.OC + gi * OCg : nullptr;
      if (via_yt) {  // one position per chunk: the GEMM writes its [n][oc] block into yt
        // Rows n, columns oc: the filter is the vector operand, streamed row by row.
        gemm(N, OCg, K, Bp, 1, ldb, wc, OCg, yc, g.OC, false);
        continue;
      }
      gemm(OCg, cols, K, wc, 1, OCg, Bp, ldb, Cp, ldb, false);
      for (int64_t o = 0; o < OCg; ++o) {  // rows of np positions go straight to y: (p, n) -> (n, p)
        const int64_t oc = gi * OCg + o;
        T* const yr = y + (oc * g.OH + oh) * g.OW + ow0;
        const int64_t nstride = g.OC * g.OH * g.OW;
        transpose(Cp + o * ldb, N, yr, nstride, np, N);
        if (b)  // y = acc + bias: the same single addition, after the move
          for (int64_t n = 0; n < N; ++n)
            for (int64_t p = 0; p < np; ++p) yr[n * nstride + p] = yr[n * nstride + p] + b[oc];
      }
    }
  });
  if (!via_yt) return;
  // yt [oh][ow][n][oc] -> y (N, OC, OH, OW), adding the bias.
  parallel_for(0, g.OH, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t oh = h0; oh < h1; ++oh)
      for (int64_t n = 0; n < N; ++n) {
        T* const yo = y + (n * g.OC * g.OH + oh) * g.OW;
        transpose(yt + (oh * g.OW * N + n) * g.OC, N * g.OC, yo, g.OH * g.OW, g.OW, g.OC);
        if (b)  // y = acc + bias: the same single addition as before, after the move
          for (int64_t oc = 0; oc < g.OC; ++oc) {
            T* o = yo + oc * g.OH * g.OW;
            for (int64_t ow = 0; ow < g.OW; ++ow) o[ow] = o[ow] + b[oc];
          }
      }
  });
}

template <typename T>
void fast_backward_data(const T* gy, const T* w, T* gx, const LocalGeom& g) {
  int64_t NR;
  const GemmFn<T> gemm = pick_gemm<T>(NR);
  const int64_t ICg = g.IC / g.G, OCg = g.OC / g.G, K = ICg * g.FH * g.FW, N = g.N, FHW = g.FH * g.FW;
  const int64_t IHp = g.IH + 2 * g.pH, IWp = g.IW + 2 * g.pW;
  // gy as [oh][ow][oc][n]: per output channel, the (n, position) plane transposed, read in long
  // sequential runs (a whole plane per batch entry).
  const int64_t P = g.OH * g.OW;
  T* const gyt = scratch<T>(3, size_t(P * g.OC * N));
  parallel_for(0, g.OC, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t oc = c0; oc < c1; ++oc) transpose(gy + oc * P, g.OC * P, gyt + oc * N, g.OC * N, N, P);
  });
  // The gradient of the padded input, [ihp][iwp][ic][n]: every task owns a block of channels and
  // adds its contributions position by position in raster order (the reference's order). A task
  // zeroes its channels of a row just before the first output row that reaches it and writes them
  // out to gx (transposed) as soon as no later output row reaches it, while they are still cached.
  T* const gxt = scratch<T>(2, size_t(IHp * IWp * g.IC * N));
  const Chunks cs(g);
  // Channel blocks: one per thread over all groups (each block reads the whole output gradient;
  // fewer, taller blocks measured faster than two per thread).
  const int64_t want = std::max<int64_t>(1, (int64_t(get_num_threads()) + g.G - 1) / g.G);
  const int64_t icb = std::max<int64_t>(1, (ICg + want - 1) / want), nb = (ICg + icb - 1) / icb;
  const int64_t ldb = round_up(cs.cpw * N, NR);
#if HERON_LOCAL_X86
  const bool fused = std::is_same_v<T, float> && NR == 32 && N % 32 == 0;
#endif
  parallel_for(0, g.G * nb, 1, [&](int64_t t0, int64_t t1) {
    T* const Bp = scratch<T>(0, size_t(OCg * ldb + NR));
    T* const Dp = scratch<T>(1, size_t(icb * FHW * ldb));
    std::vector<float*> rowp(size_t(icb * FHW));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t gi = t / nb, ic0 = (t % nb) * icb, ic1 = std::min(ICg, ic0 + icb), rows = (ic1 - ic0) * FHW;
      const int64_t cb = gi * ICg + ic0, ncb = ic1 - ic0;  // this task's channels of gxt and gx
      int64_t zeroed = 0, written = 0;                      // padded rows [0, zeroed) zeroed, [0, written) written out
      const auto zero_rows = [&](int64_t to) {
        for (; zeroed < to; ++zeroed)
          for (int64_t iwp = 0; iwp < IWp; ++iwp) {
            T* const d = gxt + ((zeroed * IWp + iwp) * g.IC + cb) * N;
            std::fill(d, d + ncb * N, T(0));
          }
      };
      const auto write_rows = [&](int64_t to) {
        zero_rows(std::max(zeroed, to));  // rows between the taps that no output reaches: zero gradient
        for (; written < to; ++written) {
          const int64_t ih = written - g.pH;
          if (ih < 0 || ih >= g.IH) continue;
          for (int64_t c = cb; c < cb + ncb; ++c) {
#if HERON_LOCAL_X86
            if (c + 1 < cb + ncb) fma2::prefetch_rows_w(gx + ((c + 1) * g.IH + ih) * g.IW, g.IC * g.IH * g.IW, N, g.IW);
#endif
            transpose(gxt + ((written * IWp + g.pW) * g.IC + c) * N, g.IC * N, gx + (c * g.IH + ih) * g.IW, g.IC * g.IH * g.IW,
                      g.IW, N);
          }
        }
      };
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        // Output row oh reaches padded rows oh·sH .. oh·sH + (FH−1)·dH; later rows start at (oh+1)·sH.
        zero_rows(std::min(IHp, oh * g.sH + (g.FH - 1) * g.dH + 1));
        for (int64_t sgw = 0; sgw < g.SGW; ++sgw)
          for (int64_t c = 0; c < cs.per_row; ++c) {
            const int64_t ow0 = sgw * cs.cw + c * cs.cpw, np = std::min(cs.cpw, cs.cw - c * cs.cpw), cols = np * N;
            const T* const gyc = gyt + ((oh * g.OW + ow0) * g.OC + gi * OCg) * N;
#if HERON_LOCAL_X86
            // One position per chunk, fused: the rows of B are gyt's own batch runs (ldb = N).
            const bool direct = fused && cs.cpw == 1;
#else
            const bool direct = false;
#endif
            if (!direct)
              for (int64_t o = 0; o < OCg; ++o)
                for (int64_t p = 0; p < np; ++p) copy_run(Bp + o * ldb + p * N, gyc + (p * g.OC + o) * N, N);
            const auto filter = [&](int64_t h, int64_t sw) { return w + ((gi * g.SGH + h / cs.ch) * g.SGW + sw) * K * OCg + ic0 * FHW * OCg; };
            const T* wc = filter(oh, sgw);
#if HERON_LOCAL_X86
            if (fused) {  // AVX-512, float, batch a multiple of 32: add straight into gxt
              // The filter rows of this task's next chunk (prefetched while this one finishes).
              const T* wn = c + 1 < cs.per_row ? wc
                            : sgw + 1 < g.SGW  ? filter(oh, sgw + 1)
                            : oh + 1 < g.OH    ? filter(oh + 1, 0)
                                               : nullptr;
              for (int64_t ic = ic0, k = 0; ic < ic1; ++ic)
                for (int64_t fh = 0; fh < g.FH; ++fh) {
                  const int64_t ihp = oh * g.sH + (g.flip ? g.FH - 1 - fh : fh) * g.dH;
                  for (int64_t fw = 0; fw < g.FW; ++fw, ++k)
                    rowp[k] = reinterpret_cast<float*>(gxt) +
                              ((ihp * IWp + ow0 * g.sW + (g.flip ? g.FW - 1 - fw : fw) * g.dW) * g.IC + gi * ICg + ic) * N;
                }
              avx512::gemm_add(rows, np, N / 32, OCg, reinterpret_cast<const float*>(wc), reinterpret_cast<const float*>(direct ? gyc : Bp),
                               direct ? N : ldb, rowp.data(), g.sW * g.IC * N, reinterpret_cast<const float*>(wn));
              continue;
            }
#endif
            gemm(rows, cols, OCg, wc, OCg, 1, Bp, ldb, Dp, ldb, false);
            // Position by position (ow ascending): taps of neighbouring positions may overlap.
            for (int64_t p = 0; p < np; ++p)
              for (int64_t ic = ic0, k = 0; ic < ic1; ++ic)
                for (int64_t fh = 0; fh < g.FH; ++fh) {
                  const int64_t ihp = oh * g.sH + (g.flip ? g.FH - 1 - fh : fh) * g.dH;
                  for (int64_t fw = 0; fw < g.FW; ++fw, ++k) {
                    const int64_t twd = (g.flip ? g.FW - 1 - fw : fw) * g.dW;
                    T* dst = gxt + ((ihp * IWp + (ow0 + p) * g.sW + twd) * g.IC + gi * ICg + ic) * N;
                    const T* sp = Dp + k * ldb + p * N;
                    for (int64_t n = 0; n < N; ++n) dst[n] += sp[n];
                  }
                }
          }
        write_rows(std::min(IHp, (oh + 1) * g.sH));
      }
      write_rows(IHp);  // and the rows below the last output's reach
    }
  });
}

template <typename T>
void fast_backward_filter(const T* gy, const T* x, T* gw, const LocalGeom& g) {
  int64_t NR;
  const GemmFn<T> gemm = pick_gemm<T>(NR);
  const int64_t ICg = g.IC / g.G, OCg = g.OC / g.G, K = ICg * g.FH * g.FW, N = g.N, FHW = g.FH * g.FW;
  int64_t IHp, IWp;
  const T* const xt = pack_input(x, g, IHp, IWp);
  // gy as [oh][ow][n][oc] (+ NR readable columns past the end).
  T* const gyt = scratch<T>(3, size_t(g.OH * g.OW * N * g.OC + NR));
  std::fill(gyt + g.OH * g.OW * N * g.OC, gyt + g.OH * g.OW * N * g.OC + NR, T(0));
  parallel_for(0, g.OH, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t oh = h0; oh < h1; ++oh)
      for (int64_t n = 0; n < N; ++n)
        transpose(gy + (n * g.OC * g.OH + oh) * g.OW, g.OH * g.OW, gyt + (oh * g.OW * N + n) * g.OC, N * g.OC, g.OC, g.OW);
  });
  const Chunks cs(g);
  const int64_t cells = g.G * g.SGH * g.SGW;
  // Enough tasks for the pool: split a group's filter rows (ic) when there are few groups.
  const int64_t want = std::max<int64_t>(1, (8 + cells - 1) / cells);
  const int64_t icb = std::max<int64_t>(1, (ICg + want - 1) / want), nb = (ICg + icb - 1) / icb;
  const int64_t lda = cs.cpw * N;
#if HERON_LOCAL_X86
  // One chunk per cell (local: every filter is written by one GEMM, never re-read here) and
  // AVX-512 with 64-column rows on 64-byte boundaries: stream the weight gradient out.
  const bool stream = std::is_same_v<T, float> && NR == 32 && cs.cpw == 1 && cs.ch == 1 && cs.per_row == 1 &&
                      OCg % 64 == 0 && reinterpret_cast<uintptr_t>(gw) % 64 == 0;
#endif
  parallel_for(0, cells * nb, 1, [&](int64_t t0, int64_t t1) {
    T* const Ap = scratch<T>(0, size_t(icb * FHW * lda));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t cell = t / nb, ic0 = (t % nb) * icb, ic1 = std::min(ICg, ic0 + icb), rows = (ic1 - ic0) * FHW;
      const int64_t sgw = cell % g.SGW, sgh = (cell / g.SGW) % g.SGH, gi = cell / g.SGW / g.SGH;
      T* gc = gw + cell * K * OCg + ic0 * FHW * OCg;
      bool first = true;
      for (int64_t oh = sgh * cs.ch; oh < (sgh + 1) * cs.ch; ++oh)
        for (int64_t c = 0; c < cs.per_row; ++c) {
          const int64_t ow0 = sgw * cs.cw + c * cs.cpw, np = std::min(cs.cpw, cs.cw - c * cs.cpw), cols = np * N;
          const T* const gyc = gyt + (oh * g.OW + ow0) * N * g.OC + gi * OCg;
          if (cs.cpw == 1) {
            // One position per chunk (local): for a fixed tap the A rows (ic) are consecutive
            // batch runs of xt, so the GEMM reads them in place, one tap at a time (rows are
            // independent; each row's chain over the positions keeps its order).
            for (int64_t fh = 0; fh < g.FH; ++fh) {
              const int64_t ihp = oh * g.sH + (g.flip ? g.FH - 1 - fh : fh) * g.dH;
              for (int64_t fw = 0; fw < g.FW; ++fw) {
                const int64_t twd = (g.flip ? g.FW - 1 - fw : fw) * g.dW;
                const T* a = xt + ((ihp * IWp + ow0 * g.sW + twd) * g.IC + gi * ICg + ic0) * N;
                T* const c = gc + (fh * g.FW + fw) * OCg;
#if HERON_LOCAL_X86
                if (stream && first) {
                  avx512::gemm_stream(ic1 - ic0, OCg, N, reinterpret_cast<const float*>(a), N, reinterpret_cast<const float*>(gyc),
                                      g.OC, reinterpret_cast<float*>(c), FHW * OCg);
                  continue;
                }
#endif
                gemm(ic1 - ic0, OCg, N, a, N, 1, gyc, g.OC, c, FHW * OCg, !first);
              }
            }
            first = false;
            continue;
          }
          for (int64_t ic = ic0, k = 0; ic < ic1; ++ic)
            for (int64_t fh = 0; fh < g.FH; ++fh) {
              const int64_t ihp = oh * g.sH + (g.flip ? g.FH - 1 - fh : fh) * g.dH;
              for (int64_t fw = 0; fw < g.FW; ++fw, ++k) {
                const int64_t twd = (g.flip ? g.FW - 1 - fw : fw) * g.dW;
                T* dst = Ap + k * cols;
                for (int64_t p = 0; p < np; ++p)
                  copy_run(dst + p * N, xt + ((ihp * IWp + (ow0 + p) * g.sW + twd) * g.IC + gi * ICg + ic) * N, N);
              }
            }
          gemm(rows, OCg, cols, Ap, cols, 1, gyc, g.OC, gc, OCg, !first);
          first = false;
        }
    }
#if HERON_LOCAL_X86
    if (stream) avx512::store_fence();  // the streamed stores are visible before the task ends
#endif
  });
}

template <typename T>
void forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const LocalGeom& g, bool naive) {
  const T* bp = b.defined() ? b.data<T>() : nullptr;
  if (!naive) return fast_forward<T>(x.data<T>(), w.data<T>(), bp, y.data<T>(), g);
#if HERON_LOCAL_X86
  if (has_fma()) return fma2::naive_forward<T>(x.data<T>(), w.data<T>(), bp, y.data<T>(), g);
#endif
  plain::naive_forward<T>(x.data<T>(), w.data<T>(), bp, y.data<T>(), g);
}

template <typename T>
void backward_data(const Tensor& gy, const Tensor& w, const Tensor& gx, const LocalGeom& g, bool naive) {
  if (!naive) return fast_backward_data<T>(gy.data<T>(), w.data<T>(), gx.data<T>(), g);
#if HERON_LOCAL_X86
  if (has_fma()) return fma2::naive_backward_data<T>(gy.data<T>(), w.data<T>(), gx.data<T>(), g);
#endif
  plain::naive_backward_data<T>(gy.data<T>(), w.data<T>(), gx.data<T>(), g);
}

template <typename T>
void backward_filter(const Tensor& gy, const Tensor& x, const Tensor& gw, const LocalGeom& g, bool naive) {
  if (!naive) {
    if (g.N * g.OH * g.OW == 0) {  // an empty reduction: zeros
      std::fill(gw.data<T>(), gw.data<T>() + gw.numel(), T(0));
      return;
    }
    return fast_backward_filter<T>(gy.data<T>(), x.data<T>(), gw.data<T>(), g);
  }
#if HERON_LOCAL_X86
  if (has_fma()) return fma2::naive_backward_filter<T>(gy.data<T>(), x.data<T>(), gw.data<T>(), g);
#endif
  plain::naive_backward_filter<T>(gy.data<T>(), x.data<T>(), gw.data<T>(), g);
}

template <typename T>
LocalKernels g_local_kernels = {&forward<T>, &backward_data<T>, &backward_filter<T>};

#define HERON_LOCAL_REGISTER(OP)                                                       \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, &g_local_kernels<float>); \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, &g_local_kernels<double>)

HERON_LOCAL_REGISTER(local_conv2d);
HERON_LOCAL_REGISTER(local_share_conv2d);
HERON_LOCAL_REGISTER(local_conv2d_backward);
HERON_LOCAL_REGISTER(local_share_conv2d_backward);

}  // namespace
}  // namespace cpu
}  // namespace heron
