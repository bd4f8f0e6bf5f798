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

// One LSTM point-wise step over n units: gates holds the pre-activations i, f, g, o (n each) and
// gets their activations; c (the previous cell state) becomes f*c + i*g, also stored to c_save
// when not null; h = o*tanh(c), also stored to y when not null.
void lstm_step_f32(float* gates, float* c, float* c_save, float* h, float* y, int64_t n);

}  // namespace vec
}  // namespace cpu
}  // namespace heron
