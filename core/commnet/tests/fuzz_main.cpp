// A standalone driver for the libFuzzer-style target: valid headers of every frame type, then
// N random mutations of them (bit flips, field rewrites with a recomputed checksum, truncations).
//   commnet_fuzz_wire [--iterations N] [--seed S]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "heron_commnet/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  using namespace heron_commnet;
  long iterations = 100000;
  unsigned long long seed = 12345;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) iterations = std::atol(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
  }
  std::vector<std::vector<uint8_t>> corpus;
  for (int t = 1; t <= 7; ++t) {
    FrameHeader h;
    h.type = static_cast<FrameType>(t);
    h.src_rank = static_cast<uint32_t>(t * 3);
    h.tag = 0x0102030405060708ull * t;
    h.offset = 17;
    h.length = static_cast<uint64_t>(t) << (t * 4);
    h.id = 99;
    std::vector<uint8_t> b(kHeaderSize);
    encode_header(h, b.data());
    corpus.push_back(b);
  }
  std::mt19937_64 rng(seed);
  long accepted = 0;
  for (auto& c : corpus) LLVMFuzzerTestOneInput(c.data(), c.size());
  for (long it = 0; it < iterations; ++it) {
    std::vector<uint8_t> s = corpus[rng() % corpus.size()];
    int rounds = 1 + static_cast<int>(rng() % 3);
    for (int r = 0; r < rounds; ++r) {
      switch (rng() % 5) {
        case 0: s[rng() % s.size()] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: s[rng() % s.size()] = static_cast<uint8_t>(rng()); break;
        case 2: {  // rewrite a field and fix the checksum so the deeper checks run
          FrameHeader h;
          if (decode_header(s.data(), ~uint64_t(0), &h) != DecodeResult::kOk) break;
          switch (rng() % 4) {
            case 0: h.version = static_cast<uint16_t>(rng()); break;
            case 1: h.type = static_cast<FrameType>(rng() % 10); break;
            case 2: h.flags = static_cast<uint8_t>(rng()); break;
            default: h.length = rng(); break;
          }
          encode_header(h, s.data());
          break;
        }
        case 3: s.resize(rng() % (s.size() + 1)); break;
        default: {  // two headers back to back
          const auto& o = corpus[rng() % corpus.size()];
          s.insert(s.end(), o.begin(), o.end());
        }
      }
      if (s.empty()) s.assign(kHeaderSize, 0);
    }
    FrameHeader h;
    if (s.size() >= kHeaderSize && decode_header(s.data(), uint64_t(1) << 20, &h) == DecodeResult::kOk) ++accepted;
    LLVMFuzzerTestOneInput(s.data(), s.size());
  }
  std::printf("commnet_fuzz_wire: %ld inputs, %ld decodable headers, no crash\n", iterations, accepted);
  return 0;
}
