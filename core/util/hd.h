// HERON_HD marks small functions that run both on the host and inside cuda kernels (the
// device-generic algorithms in core/ops/impl and their element functors).
#pragma once
#if defined(__CUDACC__)
#define HERON_HD __host__ __device__
#else
#define HERON_HD
#endif
