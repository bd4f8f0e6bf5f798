// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11):
// a counter-based generator, so element i of a random tensor depends only on (seed, offset, i):
// the same numbers on every platform and thread count.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>

#include "core/util/hd.h"

namespace heron {

HERON_HD inline std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = static_cast<uint64_t>(M0) * ctr[0];
    uint64_t p1 = static_cast<uint64_t>(M1) * ctr[2];
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
    key[0] += W0;
    key[1] += W1;
  }
  return ctr;
}

// Block `block` of the stream (seed, offset): 4 random 32-bit words.
HERON_HD inline std::array<uint32_t, 4> philox_block(uint64_t seed, uint64_t block) {
  return philox4x32({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u},
                    {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
}

// Uniform in [0, 1) from 24 bits (float) or 53 bits (double).
inline float u32_to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
inline double u64_to_unit_double(uint64_t x) { return static_cast<double>(x >> 11) * (1.0 / 9007199254740992.0); }

// The default generator: a seed and a running block offset. Each random op reserves the blocks it
// uses, so consecutive ops draw disjoint streams. Thread-safe.
class Generator {
 public:
  static Generator& default_generator();
  void manual_seed(uint64_t seed) {
    std::lock_guard<std::mutex> lk(mu_);
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  // Reserves n blocks; returns (seed, first block).
  std::pair<uint64_t, uint64_t> reserve(uint64_t n) {
    std::lock_guard<std::mutex> lk(mu_);
    uint64_t first = offset_;
    offset_ += n;
    return {seed_, first};
  }
 private:
  std::mutex mu_;
  uint64_t seed_ = 0x853c49e6748fea9bULL;
  uint64_t offset_ = 0;
};

}  // namespace heron
