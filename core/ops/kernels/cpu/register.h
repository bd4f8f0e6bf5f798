// Registering a kernel template FN<T> for a group of dtypes on the cpu device, in one line.
#pragma once
#include "core/ops/dispatcher.h"

#define HERON_CPU_KERNELS_FLOAT(OP, FN)                                \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float32, &FN<float>);   \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float64, &FN<double>);  \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Float16, &FN<::heron::Half>); \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::BFloat16, &FN<::heron::BFloat16>)
#define HERON_CPU_KERNELS_INT(OP, FN)                                  \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Int8, &FN<int8_t>);     \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::UInt8, &FN<uint8_t>);   \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Int32, &FN<int32_t>);   \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Int64, &FN<int64_t>)
#define HERON_CPU_KERNELS_NUMERIC(OP, FN) \
  HERON_CPU_KERNELS_FLOAT(OP, FN);        \
  HERON_CPU_KERNELS_INT(OP, FN)
#define HERON_CPU_KERNELS_ALL(OP, FN) \
  HERON_CPU_KERNELS_NUMERIC(OP, FN);  \
  HERON_REGISTER_KERNEL(OP, "cpu", ::heron::DType::Bool, &FN<bool>)
