// Helpers shared by the cuda device and its kernels: error checks, launch geometry and a strided
// N-d iterator that kernels receive by value.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/tensor/tensor.h"

namespace heron {
namespace cuda {

void check(cudaError_t e, const char* what);
void set_device(int index);
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

constexpr int kMaxDims = 10;
constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b > 65535 * 32 ? 65535 * 32 : b);
}

// N operands over one shape, byte strides per operand (0 where broadcast), passed by value.
template <int N>
struct Iter {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];
  char* base[N];
  __device__ void offsets(int64_t linear, char** ptrs) const {
    for (int k = 0; k < N; ++k) ptrs[k] = base[k];
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t i = linear % shape[d];
      linear /= shape[d];
      for (int k = 0; k < N; ++k) ptrs[k] += i * strides[k][d];
    }
  }
};

// Builds an Iter for out (operand 0) and inputs broadcast to out's shape; throws NotImplemented
// past kMaxDims dims.
template <int N>
Iter<N> make_iter(const Tensor& out, const Tensor* const* ins) {
  Iter<N> it{};
  const Dims& sh = out.shape();
  if (sh.size() > static_cast<size_t>(kMaxDims))
    throw Error(ErrorCode::NotImplemented, str_cat("cuda kernels support up to ", kMaxDims, " dims, got ", sh.size()));
  it.ndim = static_cast<int>(sh.size());
  for (int d = 0; d < it.ndim; ++d) it.shape[d] = sh[d];
  for (int k = 0; k < N; ++k) {
    const Tensor& t = k == 0 ? out : *ins[k - 1];
    it.base[k] = static_cast<char*>(t.raw_data());
    int64_t isz = static_cast<int64_t>(t.itemsize());
    size_t off = sh.size() - t.shape().size();
    for (int d = 0; d < it.ndim; ++d) {
      int64_t j = d - static_cast<int64_t>(off);
      it.strides[k][d] = (j < 0 || t.shape()[j] == 1) ? 0 : t.strides()[j] * isz;
    }
  }
  return it;
}

}  // namespace cuda
}  // namespace heron
