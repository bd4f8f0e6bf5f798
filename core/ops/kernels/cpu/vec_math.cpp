// Runtime-dispatched SIMD loops (see vec_math.h). The body (vec_math_body.inc) is compiled three
// times: portable scalar code, and on x86-64 an AVX2+FMA and an AVX-512F build whose functions
// carry target attributes (via a pragma region), so the library still runs on any x86-64 CPU.
#include "core/ops/kernels/cpu/vec_math.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HERON_VEC_X86 1
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports _mm512_undefined_ps() inside the AVX-512 intrinsics as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace heron {
namespace cpu {
namespace vec {
namespace {

struct Table {
  void (*binary_f32)(BinOp, float*, const float*, int64_t, const float*, int64_t, int64_t, float);
  void (*binary_f64)(BinOp, double*, const double*, int64_t, const double*, int64_t, int64_t, double);
  void (*exp_f32)(float*, const float*, int64_t);
  void (*sigmoid_f32)(float*, const float*, int64_t);
  void (*silu_f32)(float*, const float*, int64_t);
  void (*tanh_f32)(float*, const float*, int64_t);
  void (*lstm_rows_f32)(const LstmRows&, int64_t, int64_t);
};

// ---------------------------------------------------------------- portable scalar build
namespace isa_scalar {
struct VF {
  typedef float V;
  typedef bool M;
  static constexpr int W = 1;
  static V load(const float* p) { return *p; }
  static void store(float* p, V v) { *p = v; }
  static V set1(float x) { return x; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V div(V a, V b) { return a / b; }
  // a*b is exact in double, so this is a fused multiply-add up to a double rounding.
  static V fma(V a, V b, V c) { return static_cast<float>(static_cast<double>(a) * b + c); }
  static V min(V a, V b) { return a < b ? a : b; }  // b when either is nan, like minps
  static V max(V a, V b) { return a > b ? a : b; }
  static V round(V a) { return std::nearbyint(a); }
  static V floor(V a) { return std::floor(a); }
  static V pow2i(V n) {
    if (n != n) return n;
    uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  static V ldexp(V a, V n) { return a * pow2i(n); }
  static V recip(V a) { return 1.0f / a; }
  static V abs(V a) { return std::fabs(a); }
  static V copysign(V mag, V s) { return std::copysign(mag, s); }
  static M lt(V a, V b) { return a < b; }
  static V select(M m, V t, V f) { return m ? t : f; }
};
struct VD {
  typedef double V;
  static constexpr int W = 1;
  static V load(const double* p) { return *p; }
  static void store(double* p, V v) { *p = v; }
  static V set1(double x) { return x; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V div(V a, V b) { return a / b; }
};
#include "core/ops/kernels/cpu/vec_math_body.inc"
}  // namespace isa_scalar

#if HERON_VEC_X86
// ---------------------------------------------------------------- AVX2 + FMA build
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace isa_avx2 {
struct VF {
  typedef __m256 V;
  typedef __m256 M;
  static constexpr int W = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V floor(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V pow2i(V n) {
    __m256i i = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(i, 23));
  }
  static V ldexp(V a, V n) { return _mm256_mul_ps(a, pow2i(n)); }
  static V recip(V a) { return _mm256_div_ps(_mm256_set1_ps(1.0f), a); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static V copysign(V mag, V s) {
    const V m = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(m, mag), _mm256_and_ps(m, s));
  }
  static M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static V select(M m, V t, V f) { return _mm256_blendv_ps(f, t, m); }
};
struct VD {
  typedef __m256d V;
  static constexpr int W = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
};
#include "core/ops/kernels/cpu/vec_math_body.inc"
}  // namespace isa_avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

// ---------------------------------------------------------------- AVX-512F build
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif
namespace isa_avx512 {
struct VF {
  typedef __m512 V;
  typedef __mmask16 M;
  static constexpr int W = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V floor(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V pow2i(V n) {
    __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(i, 23));
  }
  static V ldexp(V a, V n) { return _mm512_scalef_ps(a, n); }
  // 14-bit estimate, one Newton step: r (2 - a r).
  static V recip(V a) {
    const V r = _mm512_rcp14_ps(a);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(a, r, _mm512_set1_ps(1.0f)), r);
  }
  // Bit operations on floats need AVX-512DQ; the integer forms are AVX-512F.
  static V abs(V a) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)));
  }
  static V copysign(V mag, V s) {
    const __m512i m = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(m, _mm512_castps_si512(mag)),
                                               _mm512_and_si512(m, _mm512_castps_si512(s))));
  }
  static M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static V select(M m, V t, V f) { return _mm512_mask_blend_ps(m, f, t); }
};
struct VD {
  typedef __m512d V;
  static constexpr int W = 8;
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V div(V a, V b) { return _mm512_div_pd(a, b); }
};
#include "core/ops/kernels/cpu/vec_math_body.inc"
}  // namespace isa_avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // HERON_VEC_X86

const Table* table_for(Isa isa) {
#if HERON_VEC_X86
  if (isa == Isa::Avx512) return &isa_avx512::kTable;
  if (isa == Isa::Avx2) return &isa_avx2::kTable;
#endif
  (void)isa;
  return &isa_scalar::kTable;
}

Isa detect() {
#if HERON_VEC_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Scalar;
}

std::atomic<int> g_isa{-1};

Isa initial_isa() {
  Isa best = best_isa();
  // HERON_SIMD=scalar|avx2|avx512 caps the ISA (for benchmarks and debugging).
  if (const char* env = std::getenv("HERON_SIMD")) {
    Isa want = best;
    if (!std::strcmp(env, "scalar")) want = Isa::Scalar;
    else if (!std::strcmp(env, "avx2")) want = Isa::Avx2;
    else if (!std::strcmp(env, "avx512")) want = Isa::Avx512;
    if (static_cast<int>(want) < static_cast<int>(best)) best = want;
  }
  return best;
}

inline const Table* active() {
  int i = g_isa.load(std::memory_order_relaxed);
  if (i < 0) {
    i = static_cast<int>(initial_isa());
    g_isa.store(i, std::memory_order_relaxed);
  }
  return table_for(static_cast<Isa>(i));
}

}  // namespace

Isa best_isa() {
  static const Isa best = detect();
  return best;
}

Isa active_isa() {
  active();
  return static_cast<Isa>(g_isa.load(std::memory_order_relaxed));
}

Isa set_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(best_isa())) isa = best_isa();
  g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "unknown";
}

void binary_f32(BinOp op, float* out, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n, float alpha) {
  active()->binary_f32(op, out, a, sa, b, sb, n, alpha);
}
void binary_f64(BinOp op, double* out, const double* a, int64_t sa, const double* b, int64_t sb, int64_t n, double alpha) {
  active()->binary_f64(op, out, a, sa, b, sb, n, alpha);
}
void exp_f32(float* out, const float* in, int64_t n) { active()->exp_f32(out, in, n); }
void sigmoid_f32(float* out, const float* in, int64_t n) { active()->sigmoid_f32(out, in, n); }
void silu_f32(float* out, const float* in, int64_t n) { active()->silu_f32(out, in, n); }
void tanh_f32(float* out, const float* in, int64_t n) { active()->tanh_f32(out, in, n); }
void lstm_rows_f32(const LstmRows& args, int64_t rows, int64_t n) { active()->lstm_rows_f32(args, rows, n); }

}  // namespace vec
}  // namespace cpu
}  // namespace heron
