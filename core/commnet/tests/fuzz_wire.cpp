// Fuzz target for the frame-header parser (libFuzzer entry point). Any byte string is split into
// 48-byte headers; each must decode or be rejected with a described reason, never crash, and a
// header that decodes must re-encode to the very same bytes (the parser accepts nothing it would not
// write). With clang: clang++ -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz_wire.cpp src/wire.cpp
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "heron_commnet/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace heron_commnet;
  for (size_t off = 0; off + kHeaderSize <= size; off += kHeaderSize) {
    const uint8_t* p = data + off;
    for (uint64_t limit : {uint64_t(0), uint64_t(1) << 20, ~uint64_t(0)}) {
      FrameHeader h;
      DecodeResult r = decode_header(p, limit, &h);
      std::string why = describe_decode_error(r, p, limit);
      if (why.empty()) std::abort();
      if (r == DecodeResult::kOk) {
        uint8_t again[kHeaderSize];
        encode_header(h, again);
        if (std::memcmp(again, p, kHeaderSize) != 0) std::abort();
        if (frame_has_payload(h.type) && h.length > limit) std::abort();
      }
    }
  }
  return 0;
}
