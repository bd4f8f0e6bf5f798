// The host device. Memory is 64-byte aligned so that SIMD kernels and mmap'd weights line up.
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/device/device.h"
#include "core/util/error.h"

namespace heron {
namespace {

class CpuDevice final : public DeviceInterface {
 public:
  const char* name() const override { return "cpu"; }
  bool is_host() const override { return true; }
  int count() const override { return 1; }
  void* allocate(size_t nbytes, int) override {
    size_t n = (nbytes + 63) & ~static_cast<size_t>(63);
    if (n == 0) n = 64;
    void* p = std::aligned_alloc(64, n);
    if (!p) throw Error(ErrorCode::OutOfMemory, str_cat("cpu: failed to allocate ", nbytes, " bytes"));
    return p;
  }
  void deallocate(void* p, size_t, int) override { std::free(p); }
  void copy_from_host(void* dst, const void* src, size_t n, int) override { if (n) std::memcpy(dst, src, n); }
  void copy_to_host(void* dst, const void* src, size_t n, int) override { if (n) std::memcpy(dst, src, n); }
  void copy_on_device(void* dst, const void* src, size_t n, int) override { if (n) std::memmove(dst, src, n); }
  int dlpack_type() const override { return 1; }  // kDLCPU
};

CpuDevice g_cpu;
DeviceRegistrar g_register_cpu(&g_cpu);

}  // namespace
}  // namespace heron
