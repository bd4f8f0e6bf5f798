// CPU copy_ kernel: strided, broadcasting, converting copy. Registered per destination dtype.
#include <cstring>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/kernels/cpu/loops.h"
#include "core/ops/kernels/cpu/register.h"

namespace heron {
namespace cpu {
namespace {

template <typename Dst>
void copy_kernel(const Tensor& dst, const Tensor& src) {
  std::array<char*, 2> ptrs{static_cast<char*>(dst.raw_data()), static_cast<char*>(src.raw_data())};
  std::array<Dims, 2> st{broadcast_byte_strides(dst, dst.shape()), broadcast_byte_strides(src, dst.shape())};
  // Destination dims of stride 0 cannot be written meaningfully; they only arise from expand
  // views, where every write lands on one element (last write wins), as in PyTorch.
  StridedIter<2> it(dst.shape(), ptrs, st);
  visit_dtype(src.dtype(), [&](auto sv) {
    using Src = decltype(sv);
    it.run([&](char** p, const int64_t* s, int64_t n) {
      if constexpr (std::is_same_v<Src, Dst>) {
        if (s[0] == sizeof(Dst) && s[1] == sizeof(Src)) { std::memcpy(p[0], p[1], n * sizeof(Dst)); return; }
      }
      if (s[0] == sizeof(Dst) && s[1] == sizeof(Src)) {
        Dst* o = reinterpret_cast<Dst*>(p[0]);
        const Src* a = reinterpret_cast<const Src*>(p[1]);
        for (int64_t i = 0; i < n; ++i) o[i] = convert<Dst>(a[i]);
      } else if (s[0] == sizeof(Dst) && s[1] == 0) {
        Dst v = convert<Dst>(*reinterpret_cast<const Src*>(p[1]));
        Dst* o = reinterpret_cast<Dst*>(p[0]);
        for (int64_t i = 0; i < n; ++i) o[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i)
          *reinterpret_cast<Dst*>(p[0] + i * s[0]) = convert<Dst>(*reinterpret_cast<const Src*>(p[1] + i * s[1]));
      }
    });
  });
}

HERON_CPU_KERNELS_ALL(ops::OpId::copy_, copy_kernel);

}  // namespace
}  // namespace cpu
}  // namespace heron
