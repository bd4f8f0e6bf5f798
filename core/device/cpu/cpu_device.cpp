// The host device. Memory is 64-byte aligned so that SIMD kernels and mmap'd weights line up.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/device/device.h"
#include "core/util/error.h"

namespace heron {
namespace {

#if defined(__linux__) && defined(MADV_HUGEPAGE)
// Freed large blocks are kept for reuse by the next allocation of the same (2 MiB-rounded) size,
// up to HERON_CPU_CACHE_MB (default 512; 0 disables): a fresh block costs a page fault and the
// kernel zeroing it on first touch, which for a 46 MB workspace allocated on every training step
// is several milliseconds. An allocation that finds no block of its size first releases cached
// blocks worth at least its size, so the resident total never grows because of the cache.
class LargeBlockCache {
 public:
  void* take(size_t n) {
    std::lock_guard<std::mutex> lk(mu_);
    for (size_t i = 0; i < blocks_.size(); ++i)
      if (blocks_[i].n == n) {
        void* p = blocks_[i].p;
        cached_ -= n;
        blocks_[i] = blocks_.back();
        blocks_.pop_back();
        return p;
      }
    // A miss: release cached blocks (oldest first) worth at least n bytes before the caller
    // allocates n fresh ones, so the resident total never grows because of the cache.
    size_t freed = 0;
    size_t k = 0;
    while (k < blocks_.size() && freed < n) freed += blocks_[k].n, std::free(blocks_[k].p), ++k;
    blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(k));
    cached_ -= freed;
    return nullptr;
  }
  bool put(void* p, size_t n) {
    if (n > cap()) return false;
    std::lock_guard<std::mutex> lk(mu_);
    while (cached_ + n > cap() && !blocks_.empty()) {  // oldest first
      std::free(blocks_.front().p);
      cached_ -= blocks_.front().n;
      blocks_.erase(blocks_.begin());
    }
    blocks_.push_back(Block{p, n});
    cached_ += n;
    return true;
  }

 private:
  struct Block {
    void* p;
    size_t n;
  };
  static size_t cap() {
    static const size_t c = [] {
      const char* e = std::getenv("HERON_CPU_CACHE_MB");
#if defined(__SANITIZE_ADDRESS__)
      const long mb = 0;  // AddressSanitizer must see every free (use-after-free checks)
      (void)e;
#else
      const long mb = e ? std::strtol(e, nullptr, 10) : 512;
#endif
      return mb > 0 ? static_cast<size_t>(mb) << 20 : size_t{0};
    }();
    return c;
  }
  std::mutex mu_;
  std::vector<Block> blocks_;
  size_t cached_ = 0;
};
LargeBlockCache& large_cache() {
  static LargeBlockCache* c = new LargeBlockCache();  // never destroyed: blocks may be freed during exit
  return *c;
}
#endif

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
      if (void* c = large_cache().take(nh)) return c;
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
    if (n >= (size_t{4} << 20)) {
      constexpr size_t kHuge = size_t{2} << 20;
      const size_t nh = (n + kHuge - 1) & ~(kHuge - 1);
      if (!large_cache().put(p, nh)) std::free(p);
      return;
    }
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
