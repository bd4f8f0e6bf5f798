// cuda kernels of the recurrent layers: the device-generic algorithm (impl/rnn_generic.h) with
// cuBLAS products and its element functors as fused kernels (gate nonlinearities and state update
// in one kernel per step), everything on the device's default stream; no host synchronisation inside the time loop.
#include <utility>
#include <vector>

#include "core/device/cuda/cuda_common.h"
#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/rnn.h"
#include "core/ops/impl/rnn_generic.h"
#include "core/ops/kernels/cuda/cublas_gemm.h"

namespace heron {
namespace cuda {
namespace {

template <typename F>
__global__ void apply_kernel(F f, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) f(i);
}

template <typename T>
struct Scale {
  T* c;
  int64_t ldc, n;
  T beta;
  __host__ __device__ void operator()(int64_t i) const {
    T& v = c[(i / n) * ldc + i % n];
    v = beta == T(0) ? T(0) : beta * v;
  }
};

struct CudaBackend {
  Device dev;
  std::vector<Tensor> held;
  template <typename F>
  void launch(int64_t n, const F& f) {
    if (n <= 0) return;
    apply_kernel<F><<<blocks_for(n), kThreads>>>(f, n);
    check_launch("rnn");
  }
  template <typename T>
  T* alloc(int64_t n) {
    held.push_back(Tensor::empty(Dims{n}, CppToDType<T>::value, dev));
    return held.back().template data<T>();
  }
  template <typename T>
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
            int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
      launch(m * n, Scale<T>{c, ldc, n, beta});
      return;
    }
    gemm_rowmajor(dev.index, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
  }
};

template <typename T>
void forward(const RnnConfig& c, const Tensor& x, const Tensor& h0, const Tensor& c0, const std::vector<Tensor>& params, const Tensor& y,
             const Tensor& hn, const Tensor& cn, const Tensor& ws, uint64_t seed, uint64_t offset) {
  set_device(y.device().index);
  CudaBackend bk{y.device(), {}};
  rnn_generic::forward<T>(bk, c, x, h0, c0, params, y, hn, cn, ws, seed, offset);
}

template <typename T>
void backward(const RnnConfig& c, const Tensor& x, const std::vector<Tensor>& params, const Tensor& ws, const Tensor& gy, const Tensor& ghn,
              const Tensor& gcn, const Tensor& gx, const Tensor& gh0, const Tensor& gc0, const std::vector<Tensor>& gparams) {
  set_device(gx.device().index);
  CudaBackend bk{gx.device(), {}};
  rnn_generic::backward<T>(bk, c, x, params, ws, gy, ghn, gcn, gx, gh0, gc0, gparams);
}

// Scratch tensors are released when the backend goes out of scope, possibly before the queued
// kernels have run: the cuda device frees with cudaFree (cuda_device.cu), which waits for the
// device, so no kernel sees its scratch reused.
template <typename T>
RnnKernels g_rnn_kernels = {&forward<T>, &backward<T>};

#define HERON_RNN_REGISTER(OP)                                                       \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cuda", DType::Float32, &g_rnn_kernels<float>); \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cuda", DType::Float64, &g_rnn_kernels<double>)
HERON_RNN_REGISTER(rnn);
HERON_RNN_REGISTER(lstm);
HERON_RNN_REGISTER(gru);
HERON_RNN_REGISTER(rnn_cell);
HERON_RNN_REGISTER(lstm_cell);
HERON_RNN_REGISTER(gru_cell);
HERON_RNN_REGISTER(rnn_backward);

}  // namespace
}  // namespace cuda
}  // namespace heron
