#include "core/util/philox.h"

namespace heron {
Generator& Generator::default_generator() {
  static Generator g;
  return g;
}
}  // namespace heron
