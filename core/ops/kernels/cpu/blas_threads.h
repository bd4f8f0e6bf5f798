// OpenBLAS runs single-threaded while Heron's pool splits the work around it (restored when the
// guard goes out of scope). Shared by the CPU kernels that call BLAS inside pool tasks.
#pragma once
#include <cblas.h>

namespace heron {
namespace cpu {

struct BlasSingleThread {
  int prev;
  bool on;
  explicit BlasSingleThread(bool enable = true) : prev(openblas_get_num_threads()), on(enable && prev != 1) {
    if (on) openblas_set_num_threads(1);
  }
  ~BlasSingleThread() {
    if (on) openblas_set_num_threads(prev);
  }
  BlasSingleThread(const BlasSingleThread&) = delete;
  BlasSingleThread& operator=(const BlasSingleThread&) = delete;
};

}  // namespace cpu
}  // namespace heron
