// SIMD loops over contiguous float32/float64 arrays for the hottest elementwise ops, with runtime
// dispatch: each routine exists as a portable scalar build, an AVX2+FMA build and an AVX-512F
// build (x86-64 only, compiled with function-level target attributes, never -march=native); the
// best one the CPU supports is picked on first use. All builds of one routine use the same
// algorithm, so results only differ by the rounding of fused multiply-adds.
#pragma once
#include <cstdint>

namespace heron {
namespace cpu {
namespace vec {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// The ISA in use, and the best one this CPU supports.
Isa active_isa();
Isa best_isa();
// Forces an ISA (capped at best_isa()); returns the one now active. For tests and benchmarks.
Isa set_isa(Isa isa);
const char* isa_name(Isa isa);

enum class BinOp : int { Add = 0, Sub = 1, Mul = 2, Div = 3 };

// out[i] = a[i*sa] (op) b[i*sb], where sa, sb are 0 (a broadcast scalar) or 1 (contiguous).
// For Add/Sub, b is multiplied by alpha first unless alpha == 1.
void binary_f32(BinOp op, float* out, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n, float alpha);
void binary_f64(BinOp op, double* out, const double* a, int64_t sa, const double* b, int64_t sb, int64_t n, double alpha);

// Transcendentals over contiguous float32 (out may equal in).
void exp_f32(float* out, const float* in, int64_t n);      // <= 2 ulp; handles inf, nan, overflow, subnormals
void sigmoid_f32(float* out, const float* in, int64_t n);  // 1 / (1 + exp(-x))
void silu_f32(float* out, const float* in, int64_t n);     // x / (1 + exp(-x))
void tanh_f32(float* out, const float* in, int64_t n);

// One LSTM point-wise step over `rows` rows of n units. Row r of each array starts at
// pointer + r * its leading dimension (c, c_prev and c_save share ldc). g holds the
// pre-activations i, f, g, o (n each) and gets their activations; the previous cell state c is
// copied to c_prev when not null and becomes f*c + i*g, also stored to c_save when not null;
// h = o*tanh(c), also stored to y and h2 when not null. The gate math is a leaner form than
// sigmoid_f32/tanh_f32 (vec_math_body.inc), within a few ulp.
struct LstmRows {
  float* g;
  int64_t ldg;
  float* c;
  float* c_prev;
  float* c_save;
  int64_t ldc;
  float* h;
  int64_t ldh;
  float* y;
  int64_t ldy;
  float* h2;
  int64_t ldh2;
};
void lstm_rows_f32(const LstmRows& args, int64_t rows, int64_t n);

}  // namespace vec
}  // namespace cpu
}  // namespace heron
