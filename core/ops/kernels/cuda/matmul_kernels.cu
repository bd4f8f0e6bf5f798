// cuda matmul through cuBLAS. cuBLAS is loaded with dlopen on first use, so libheron needs no
// cuBLAS to load (and a clear error says how to get it when a cuda matmul needs it).
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "core/device/cuda/cuda_common.h"
#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/creation_kernels.h"
#include "core/ops/impl/linalg.h"
#include "core/ops/kernels/cuda/cublas_gemm.h"

namespace heron {
namespace cuda {
namespace {

// The few cuBLAS entry points we use, declared by their C ABI (cublas_api.h).
using cublasHandle_t = void*;
using cublasStatus_t = int;
constexpr int CUBLAS_OP_N = 0;
constexpr int CUBLAS_OP_T = 1;
using CreateFn = cublasStatus_t (*)(cublasHandle_t*);
using SgemmBatchedFn = cublasStatus_t (*)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int,
                                          long long, const float*, int, long long, const float*, float*, int, long long,
                                          int);
using DgemmBatchedFn = cublasStatus_t (*)(cublasHandle_t, int, int, int, int, int, const double*, const double*, int,
                                          long long, const double*, int, long long, const double*, double*, int,
                                          long long, int);
using SgemmFn = cublasStatus_t (*)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int, const float*, int,
                                   const float*, float*, int);
using DgemmFn = cublasStatus_t (*)(cublasHandle_t, int, int, int, int, int, const double*, const double*, int, const double*, int,
                                   const double*, double*, int);

struct Cublas {
  void* lib = nullptr;
  CreateFn create = nullptr;
  SgemmBatchedFn sgemm = nullptr;
  DgemmBatchedFn dgemm = nullptr;
  SgemmFn sgemm1 = nullptr;
  DgemmFn dgemm1 = nullptr;
  cublasHandle_t handle[16] = {};
  std::string error;
};

Cublas& cublas(int device) {
  static Cublas cb;
  static std::once_flag once;
  std::call_once(once, [] {
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
      cb.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (cb.lib) break;
    }
    if (!cb.lib) {
      cb.error = "cuda matmul needs cuBLAS (libcublas.so.13 or .12), which was not found: pip install nvidia-cublas "
                 "or add the CUDA toolkit's lib folder to LD_LIBRARY_PATH";
      return;
    }
    cb.create = reinterpret_cast<CreateFn>(dlsym(cb.lib, "cublasCreate_v2"));
    cb.sgemm = reinterpret_cast<SgemmBatchedFn>(dlsym(cb.lib, "cublasSgemmStridedBatched"));
    cb.dgemm = reinterpret_cast<DgemmBatchedFn>(dlsym(cb.lib, "cublasDgemmStridedBatched"));
    cb.sgemm1 = reinterpret_cast<SgemmFn>(dlsym(cb.lib, "cublasSgemm_v2"));
    cb.dgemm1 = reinterpret_cast<DgemmFn>(dlsym(cb.lib, "cublasDgemm_v2"));
    if (!cb.create || !cb.sgemm || !cb.dgemm || !cb.sgemm1 || !cb.dgemm1) cb.error = "cuBLAS was found but lacks the expected entry points";
  });
  if (!cb.error.empty()) throw Error(ErrorCode::DeviceError, cb.error);
  if (device < 0 || device >= 16) throw Error(ErrorCode::DeviceError, "cuda: device index out of range for cuBLAS");
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  if (!cb.handle[device]) {
    set_device(device);
    if (cb.create(&cb.handle[device]) != 0) throw Error(ErrorCode::DeviceError, "cublasCreate failed");
  }
  return cb;
}

// Row-major C[b] = A[b] @ B[b] is column-major C^T = B^T A^T: call gemm with the operands swapped.
template <typename T>
void matmul(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  int dev = out.device().index;
  set_device(dev);
  int64_t nd = out.dim();
  int64_t m = out.shape()[nd - 2], n = out.shape()[nd - 1], k = a_in.shape()[nd - 1];
  int64_t batch = 1;
  for (int64_t d = 0; d < nd - 2; ++d) batch *= out.shape()[d];
  if (out.numel() == 0) return;
  if (k == 0) {
    fill_tensor(out, Scalar(int64_t{0}));
    return;
  }
  Tensor a = a_in.contiguous(), b = b_in.contiguous();  // materialises broadcast batch dims
  auto& cb = cublas(dev);
  const T one = 1, zero = 0;
  int status;
  if constexpr (std::is_same_v<T, float>) {
    status = cb.sgemm(cb.handle[dev], CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)m, (int)k, &one, b.data<float>(), (int)n,
                      k * n, a.data<float>(), (int)k, m * k, &zero, out.data<float>(), (int)n, m * n, (int)batch);
  } else {
    status = cb.dgemm(cb.handle[dev], CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)m, (int)k, &one, b.data<double>(), (int)n,
                      k * n, a.data<double>(), (int)k, m * k, &zero, out.data<double>(), (int)n, m * n, (int)batch);
  }
  if (status != 0) throw Error(ErrorCode::DeviceError, str_cat("cuBLAS gemm failed with status ", status));
}

// Row-major C = op(A) op(B) + beta C is column-major C^T = op(B)^T op(A)^T: the operands swap
// places and keep their transposition flags.
template <typename T>
void gemm_rm(int dev, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T beta,
             T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const int64_t lim = 2147483647;
  if (m > lim || n > lim || k > lim || lda > lim || ldb > lim || ldc > lim)
    throw Error(ErrorCode::NotImplemented, "cuda gemm: a dimension exceeds cuBLAS's 32-bit limit");
  set_device(dev);
  auto& cb = cublas(dev);
  const T one = 1;
  const int opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  int status;
  if constexpr (std::is_same_v<T, float>)
    status = cb.sgemm1(cb.handle[dev], opb, opa, (int)n, (int)m, (int)k, &one, b, (int)ldb, a, (int)lda, &beta, c, (int)ldc);
  else
    status = cb.dgemm1(cb.handle[dev], opb, opa, (int)n, (int)m, (int)k, &one, b, (int)ldb, a, (int)lda, &beta, c, (int)ldc);
  if (status != 0) throw Error(ErrorCode::DeviceError, str_cat("cuBLAS gemm failed with status ", status));
}

}  // namespace

void gemm_rowmajor(int device, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                   int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_rm(device, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}
void gemm_rowmajor(int device, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
                   int64_t ldb, double beta, double* c, int64_t ldc) {
  gemm_rm(device, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

namespace {

HERON_REGISTER_KERNEL(ops::OpId::matmul, "cuda", DType::Float32, &matmul<float>);
HERON_REGISTER_KERNEL(ops::OpId::matmul, "cuda", DType::Float64, &matmul<double>);

}  // namespace
}  // namespace cuda
}  // namespace heron
