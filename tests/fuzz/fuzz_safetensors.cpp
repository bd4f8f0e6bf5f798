// Fuzz target for the safetensors reader (untrusted input): any byte string either loads or throws
// heron::Error; it never crashes, hangs or reads out of bounds. libFuzzer entry point; built with
// clang -fsanitize=fuzzer when available (target heron_fuzz_safetensors_libfuzzer), otherwise linked
// with fuzz_driver.cpp, a small standalone driver (target heron_fuzz_safetensors).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    heron::io::TensorMap m = heron::io::load_safetensors_buffer(data, size, "fuzz");
    // Whatever loads must serialize and load back to the same names.
    std::string again = heron::io::save_safetensors_buffer(m, &m.metadata);
    heron::io::TensorMap m2 = heron::io::load_safetensors_buffer(again.data(), again.size(), "fuzz round trip");
    if (m2.size() != m.size()) __builtin_trap();
    for (size_t i = 0; i < m.size(); ++i)
      if (m.key(i) != m2.key(i) || m.tensor(i).nbytes() != m2.tensor(i).nbytes()) __builtin_trap();
  } catch (const heron::Error&) {
  }
  return 0;
}
