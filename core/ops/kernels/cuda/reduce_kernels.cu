// cuda reductions: sum, prod, mean, amax, amin, all, any over any set of dims. One block per
// output element (grid-stride over outputs); threads stride over the reduced elements and combine
// in shared memory.
#include <cfloat>

#include "core/device/cuda/cuda_common.h"
#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/reduce.h"
#include "core/ops/kernels/cuda/cuda_types.cuh"

namespace heron {
namespace cuda {
namespace {

using ops::OpId;

enum class R { Sum, Prod, Mean, Max, Min, All, Any };

struct ReduceGeom {
  int n_kept, n_red;
  int64_t kept_shape[kMaxDims], kept_stride[kMaxDims];  // input strides (elements) of kept dims
  int64_t red_shape[kMaxDims], red_stride[kMaxDims];    // input strides (elements) of reduced dims
  int64_t n_out, n_red_elems;
};

template <R op, typename A>
__device__ __forceinline__ A identity() {
  if constexpr (op == R::Sum || op == R::Mean || op == R::Any) return A(0);
  else if constexpr (op == R::Prod || op == R::All) return A(1);
  else if constexpr (op == R::Max) return -A(INFINITY);
  else return A(INFINITY);
}

template <R op, typename A>
__device__ __forceinline__ A combine(A a, A b) {
  if constexpr (op == R::Sum || op == R::Mean) return a + b;
  else if constexpr (op == R::Prod) return a * b;
  else if constexpr (op == R::Max) return (a != a || b != b) ? A(NAN) : (a > b ? a : b);
  else if constexpr (op == R::Min) return (a != a || b != b) ? A(NAN) : (a < b ? a : b);
  else if constexpr (op == R::All) return (a != A(0) && b != A(0)) ? A(1) : A(0);
  else return (a != A(0) || b != A(0)) ? A(1) : A(0);
}

template <R op, typename T, typename Out, typename A>
__global__ void reduce_kernel(const T* in, Out* out, ReduceGeom g) {
  __shared__ A buf[kThreads];
  for (int64_t o = blockIdx.x; o < g.n_out; o += gridDim.x) {
    int64_t base = 0, rem = o;
    for (int d = g.n_kept - 1; d >= 0; --d) {
      base += (rem % g.kept_shape[d]) * g.kept_stride[d];
      rem /= g.kept_shape[d];
    }
    A acc = identity<op, A>();
    for (int64_t r = threadIdx.x; r < g.n_red_elems; r += blockDim.x) {
      int64_t off = base, rr = r;
      for (int d = g.n_red - 1; d >= 0; --d) {
        off += (rr % g.red_shape[d]) * g.red_stride[d];
        rr /= g.red_shape[d];
      }
      acc = combine<op, A>(acc, static_cast<A>(load(in[off])));
    }
    buf[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) buf[threadIdx.x] = combine<op, A>(buf[threadIdx.x], buf[threadIdx.x + s]);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      A v = buf[0];
      if constexpr (op == R::Mean) v = g.n_red_elems ? v / A(g.n_red_elems) : A(NAN);
      out[o] = cast<Out>(v);
    }
    __syncthreads();
  }
}

template <R op, typename T>
void reduce(const ReduceArgs& args) {
  const Tensor& in = args.in;
  set_device(in.device().index);
  ReduceGeom g{};
  for (size_t d = 0; d < in.shape().size(); ++d) {
    if (g.n_kept >= kMaxDims || g.n_red >= kMaxDims)
      throw Error(ErrorCode::NotImplemented, str_cat("cuda reductions support up to ", kMaxDims, " dims"));
    if (args.mask[d]) { g.red_shape[g.n_red] = in.shape()[d]; g.red_stride[g.n_red++] = in.strides()[d]; }
    else { g.kept_shape[g.n_kept] = in.shape()[d]; g.kept_stride[g.n_kept++] = in.strides()[d]; }
  }
  g.n_out = args.out.numel();
  g.n_red_elems = 1;
  for (int d = 0; d < g.n_red; ++d) g.n_red_elems *= g.red_shape[d];
  if (g.n_out == 0) return;
  using A0 = typename Acc<T>::type;
  using A = std::conditional_t<std::is_integral_v<A0> && (op == R::Sum || op == R::Prod), int64_t,
                               std::conditional_t<std::is_same_v<A0, bool>, int, A0>>;
  unsigned grid = static_cast<unsigned>(g.n_out < 65535 ? g.n_out : 65535);
  visit(args.out.dtype(), [&](auto o) {
    using Out = decltype(o);
    reduce_kernel<op, T, Out, A><<<grid, kThreads>>>(static_cast<const T*>(in.raw_data()),
                                                     static_cast<Out*>(args.out.raw_data()), g);
  });
  check_launch("reduce");
}

#define REG_REDUCE(NAME, R_, T, DT) HERON_REGISTER_KERNEL(OpId::NAME, "cuda", DType::DT, (&reduce<R_, T>))
#define REG_REDUCE_NUM(NAME, R_)          \
  REG_REDUCE(NAME, R_, float, Float32);   \
  REG_REDUCE(NAME, R_, double, Float64);  \
  REG_REDUCE(NAME, R_, __half, Float16);  \
  REG_REDUCE(NAME, R_, __nv_bfloat16, BFloat16); \
  REG_REDUCE(NAME, R_, int32_t, Int32);   \
  REG_REDUCE(NAME, R_, int64_t, Int64)
#define REG_REDUCE_FLOAT(NAME, R_)        \
  REG_REDUCE(NAME, R_, float, Float32);   \
  REG_REDUCE(NAME, R_, double, Float64);  \
  REG_REDUCE(NAME, R_, __half, Float16);  \
  REG_REDUCE(NAME, R_, __nv_bfloat16, BFloat16)

REG_REDUCE_NUM(sum, R::Sum);
REG_REDUCE_NUM(prod, R::Prod);
REG_REDUCE_FLOAT(mean, R::Mean);
REG_REDUCE_FLOAT(amax, R::Max);
REG_REDUCE_FLOAT(amin, R::Min);
REG_REDUCE_NUM(all, R::All);
REG_REDUCE_NUM(any, R::Any);
REG_REDUCE(all, R::All, bool, Bool);
REG_REDUCE(any, R::Any, bool, Bool);

}  // namespace
}  // namespace cuda
}  // namespace heron
