// A spin-wait hint: lets the other hardware thread of the core run and saves power while a thread
// polls a flag (x86 `pause`, ARM `yield`). Shared by the thread pool and the same-host all-reduce.
#pragma once

namespace heron {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace heron
