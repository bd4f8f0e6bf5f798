// The host device. Memory is 64-byte aligned so that SIMD kernels and mmap'd weights line up.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

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
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // Large blocks: 2 MiB aligned and marked for transparent huge pages (like numpy), so that
    // first-touching a fresh 64 MB output costs 32 page faults instead of 16384.
    constexpr size_t kHuge = size_t{2} << 20;
    if (n >= (size_t{4} << 20)) {
      size_t nh = (n + kHuge - 1) & ~(kHuge - 1);
      void* p = std::aligned_alloc(kHuge, nh);
      if (!p) throw Error(ErrorCode::OutOfMemory, str_cat("cpu: failed to allocate ", nbytes, " bytes"));
      madvise(p, nh, MADV_HUGEPAGE);
      return p;
    }
#endif
    // Small and medium blocks: malloc + manual 64-byte alignment (glibc's memalign path is several
    // times slower than malloc's, which dominated the cost of ops on tiny tensors). The byte
    // before the aligned block holds its distance from malloc's pointer (16..64).
    char* raw = static_cast<char*>(std::malloc(n + 64));
    if (!raw) throw Error(ErrorCode::OutOfMemory, str_cat("cpu: failed to allocate ", nbytes, " bytes"));
    char* p = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + 64) & ~static_cast<uintptr_t>(63));
    p[-1] = static_cast<char>(p - raw);
    return p;
  }
  void deallocate(void* p, size_t nbytes, int) override {
    if (!p) return;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    size_t n = (nbytes + 63) & ~static_cast<size_t>(63);
    if (n >= (size_t{4} << 20)) { std::free(p); return; }
#else
    (void)nbytes;
#endif
    char* q = static_cast<char*>(p);
    std::free(q - static_cast<unsigned char>(q[-1]));
  }
  void copy_from_host(void* dst, const void* src, size_t n, int) override { if (n) std::memcpy(dst, src, n); }
  void copy_to_host(void* dst, const void* src, size_t n, int) override { if (n) std::memcpy(dst, src, n); }
  void copy_on_device(void* dst, const void* src, size_t n, int) override { if (n) std::memmove(dst, src, n); }
  int dlpack_type() const override { return 1; }  // kDLCPU
};

CpuDevice g_cpu;
DeviceRegistrar g_register_cpu(&g_cpu);

}  // namespace
}  // namespace heron
