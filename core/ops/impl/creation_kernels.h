// Kernel signatures of the creation and random ops (impl/creation.cpp, impl/random.cpp) and their
// per-device kernels (kernels/<device>/creation_kernels.cpp, random_kernels.cpp).
#pragma once
#include <cstdint>

#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"
#include "core/tensor/tensor.h"

namespace heron {

// out[...] = v converted to out's dtype; out may be any strided view. Registered per dtype under
// OpId::full and used by every op that fills (zeros, ones, full, *_like, eye, pad).
using FillFn = void (*)(const Tensor& out, const Scalar& v);

// Fills t (any view) with v on t's device.
inline void fill_tensor(const Tensor& t, const Scalar& v) {
  if (t.numel() == 0) return;
  kernel<FillFn>(ops::OpId::full, t.device(), t.dtype())(t, v);
}

// out (contiguous, 1-d) [i] = start + i * step; exact int64 arithmetic when start and step are
// both integers, double otherwise. Registered per numeric dtype under OpId::arange.
using ArangeFn = void (*)(const Tensor& out, const Scalar& start, const Scalar& step);

// out (contiguous, 1-d, n = numel >= 2) evenly from start to end inclusive, computed in double
// symmetrically from both ends. Registered per numeric dtype under OpId::linspace.
using LinspaceFn = void (*)(const Tensor& out, double start, double end);

// ---------------------------------------------------------------- random
// Every random kernel fills a contiguous output; element i depends only on (seed, offset, i): the
// Philox block it reads is offset + i / per_block. The block layout is part of the contract
// between implementation (which reserves the blocks) and kernels (which read them):
//   rand:      float64 -> 2 elements per block (53 bits each), other floats -> 4 per block (one word)
//   randn:     2 per block (Box-Muller on two 53-bit uniforms)
//   randint:   2 per block (64 bits each)
//   bernoulli: 2 per block (53 bits each)
//   randperm:  one block per Fisher-Yates step (n blocks)
inline uint64_t rand_elems_per_block(DType dt) { return dt == DType::Float64 ? 2 : 4; }
inline uint64_t blocks_for(int64_t n, uint64_t per_block) {
  return (static_cast<uint64_t>(n) + per_block - 1) / per_block;
}

// rand: uniform in [a, b).  randn: normal, mean a, standard deviation b.
using RandFn = void (*)(const Tensor& out, double a, double b, uint64_t seed, uint64_t offset);
// Uniform integers in [low, high) (high > low, the impl checks the range fits out's dtype).
using RandintFn = void (*)(const Tensor& out, int64_t low, int64_t high, uint64_t seed, uint64_t offset);
// out = 1 where uniform < p else 0; p contiguous, same shape and dtype as out. Throws
// InvalidArgument naming the first offending probability outside [0, 1] (or nan).
using BernoulliFn = void (*)(const Tensor& out, const Tensor& p, uint64_t seed, uint64_t offset);
// A permutation of 0..n-1 (n = out.numel()), Fisher-Yates: for i = n-1 .. 1, swap i with
// j = uniform in [0, i] from block offset + i.
using RandpermFn = void (*)(const Tensor& out, uint64_t seed, uint64_t offset);

}  // namespace heron
