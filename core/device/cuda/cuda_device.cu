// The cuda device: allocator, host/device copies, synchronisation. The CUDA runtime is linked
// statically (it loads the driver, libcuda, at run time), so a CUDA-enabled libheron still loads
// on machines without a GPU or driver: the device then reports 0 devices.
#include <cuda_runtime.h>

#include "core/device/cuda/cuda_common.h"
#include "core/device/device.h"
#include "core/util/error.h"

namespace heron {
namespace cuda {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw Error(e == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::DeviceError,
                str_cat("cuda: ", what, " failed: ", cudaGetErrorString(e)));
}

void set_device(int index) { check(cudaSetDevice(index), "cudaSetDevice"); }

namespace {

class CudaDevice final : public DeviceInterface {
 public:
  const char* name() const override { return "cuda"; }
  int count() const override {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no device / no driver" error
      return 0;
    }
    return n;
  }
  void* allocate(size_t nbytes, int index) override {
    set_device(index);
    void* p = nullptr;
    check(cudaMalloc(&p, nbytes ? nbytes : 1), "cudaMalloc");
    return p;
  }
  void deallocate(void* p, size_t, int index) override {
    cudaSetDevice(index);
    cudaFree(p);  // never throws from a destructor path
  }
  void copy_from_host(void* dst, const void* src, size_t n, int index) override {
    if (!n) return;
    set_device(index);
    check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "cudaMemcpy host->device");
  }
  void copy_to_host(void* dst, const void* src, size_t n, int index) override {
    if (!n) return;
    set_device(index);
    check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "cudaMemcpy device->host");
  }
  void copy_on_device(void* dst, const void* src, size_t n, int index) override {
    if (!n) return;
    set_device(index);
    check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice), "cudaMemcpy device->device");
  }
  void synchronize(int index) override {
    set_device(index);
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }
  int dlpack_type() const override { return 2; }  // kDLCUDA
};

CudaDevice g_cuda;
DeviceRegistrar g_register(&g_cuda);

}  // namespace
}  // namespace cuda
}  // namespace heron
