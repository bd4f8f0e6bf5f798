// CPU sort / topk kernels: each line along `dim` is gathered as (value, index) pairs and ordered
// by value with the index as tie-break — a total order, so the result is that of a stable sort
// and topk is deterministic. nan is the largest value (last ascending, first descending).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/sort.h"
#include "core/ops/kernels/cpu/loops.h"

namespace heron {
namespace cpu {
namespace {

template <typename T>
inline bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

template <typename Acc, bool Desc>
struct Before {
  bool operator()(const std::pair<Acc, int64_t>& a, const std::pair<Acc, int64_t>& b) const {
    if constexpr (std::is_floating_point_v<Acc>) {
      bool na = is_nan(a.first), nb = is_nan(b.first);
      if (na || nb) {
        if (na && nb) return a.second < b.second;
        return Desc ? na : nb;  // nan is the largest
      }
    }
    if (a.first != b.first) return Desc ? a.first > b.first : a.first < b.first;
    return a.second < b.second;
  }
};

template <typename T, bool Desc>
void sort_lines(const Tensor& in, const Tensor& values, const Tensor& indices, int64_t dim, int64_t k) {
  using Acc = opmath_t<T>;
  using Pair = std::pair<Acc, int64_t>;
  const int64_t L = in.shape()[dim];
  const int64_t nd = in.dim();
  Dims shape = in.shape();
  shape[dim] = 1;
  std::array<Dims, 3> st{Dims(nd), Dims(nd), Dims(nd)};
  for (int64_t d = 0; d < nd; ++d) {
    st[0][d] = values.strides()[d] * static_cast<int64_t>(sizeof(T));
    st[1][d] = indices.strides()[d] * static_cast<int64_t>(sizeof(int64_t));
    st[2][d] = in.strides()[d] * static_cast<int64_t>(sizeof(T));
  }
  const int64_t vs = st[0][dim], xs = st[1][dim], is = st[2][dim];
  StridedIter<3> it(shape, {static_cast<char*>(values.raw_data()), static_cast<char*>(indices.raw_data()),
                            static_cast<char*>(in.raw_data())}, st);
  int64_t cost = std::max<int64_t>(1, L * 8);
  it.run(
      [&](char** p, const int64_t* s, int64_t n) {
        std::vector<Pair> buf(static_cast<size_t>(L));
        Before<Acc, Desc> before;
        for (int64_t i = 0; i < n; ++i) {
          const char* x = p[2] + i * s[2];
          for (int64_t l = 0; l < L; ++l) buf[l] = Pair(static_cast<Acc>(*reinterpret_cast<const T*>(x + l * is)), l);
          if (k < L) {
            if (k > 0) {
              std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.end(), before);
              std::sort(buf.begin(), buf.begin() + k, before);
            }
          } else {
            std::sort(buf.begin(), buf.end(), before);
          }
          char* v = p[0] + i * s[0];
          char* ix = p[1] + i * s[1];
          for (int64_t l = 0; l < k; ++l) {
            *reinterpret_cast<T*>(v + l * vs) = T(buf[l].first);
            *reinterpret_cast<int64_t*>(ix + l * xs) = buf[l].second;
          }
        }
      },
      std::max<int64_t>(1, kGrain / cost));
}

template <typename T>
void sort_kernel(const Tensor& in, const Tensor& values, const Tensor& indices, int64_t dim, int64_t k, bool descending) {
  if (descending) sort_lines<T, true>(in, values, indices, dim, k);
  else sort_lines<T, false>(in, values, indices, dim, k);
}

#define HERON_REG_SORT(OP)                                                                \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float32, &sort_kernel<float>);       \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float64, &sort_kernel<double>);      \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Float16, &sort_kernel<Half>);        \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::BFloat16, &sort_kernel<BFloat16>);   \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Int8, &sort_kernel<int8_t>);         \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::UInt8, &sort_kernel<uint8_t>);       \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Int32, &sort_kernel<int32_t>);       \
  HERON_REGISTER_KERNEL(ops::OpId::OP, "cpu", DType::Int64, &sort_kernel<int64_t>)

HERON_REG_SORT(sort);
HERON_REG_SORT(topk);

}  // namespace
}  // namespace cpu
}  // namespace heron
