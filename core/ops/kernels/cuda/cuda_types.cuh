// Device-side element types and conversions for the cuda kernels.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "core/tensor/dtype.h"

namespace heron {
namespace cuda {

// Arithmetic type of a storage type: float for the 16-bit floats.
template <typename T> struct Acc { using type = T; };
template <> struct Acc<__half> { using type = float; };
template <> struct Acc<__nv_bfloat16> { using type = float; };
template <> struct Acc<bool> { using type = bool; };

template <typename T> __device__ __forceinline__ typename Acc<T>::type load(T v) { return v; }
template <> __device__ __forceinline__ float load<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float load<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename To, typename From>
__device__ __forceinline__ To cast(From v) {
  if constexpr (std::is_same_v<To, __half>) {
    return __float2half(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, __nv_bfloat16>) {
    return __float2bfloat16(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    return v != v ? To(0) : static_cast<To>(static_cast<long long>(v));
  } else {
    return static_cast<To>(v);
  }
}

// Calls f(T{}) with T the device storage type of dtype t.
template <typename F>
void visit(DType t, F&& f) {
  switch (t) {
    case DType::Float32: f(float{}); break;
    case DType::Float64: f(double{}); break;
    case DType::Float16: f(__half{}); break;
    case DType::BFloat16: f(__nv_bfloat16{}); break;
    case DType::Int8: f(int8_t{}); break;
    case DType::UInt8: f(uint8_t{}); break;
    case DType::Int32: f(int32_t{}); break;
    case DType::Int64: f(int64_t{}); break;
    case DType::Bool: f(bool{}); break;
  }
}

}  // namespace cuda
}  // namespace heron
