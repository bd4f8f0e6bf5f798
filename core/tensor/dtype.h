// Heron dtypes: the nine element types, their sizes, names and the promotion lattice.
#pragma once
#include <cstdint>
#include <cstring>
#include <cmath>
#include <string>
#include <type_traits>
#include <climits>

namespace heron {

// Codes are part of the ABI (HERON_FLOAT32 ... in heron.h): append only.
enum class DType : int32_t {
  Float32 = 0,
  Float64 = 1,
  Float16 = 2,
  BFloat16 = 3,
  Int8 = 4,
  UInt8 = 5,
  Int32 = 6,
  Int64 = 7,
  Bool = 8,
};
constexpr int kNumDTypes = 9;

inline bool dtype_valid(int32_t code) { return code >= 0 && code < kNumDTypes; }

inline size_t itemsize(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Float16: return 2;
    case DType::BFloat16: return 2;
    case DType::Int8: return 1;
    case DType::UInt8: return 1;
    case DType::Int32: return 4;
    case DType::Int64: return 8;
    case DType::Bool: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Bool: return "bool";
  }
  return "unknown";
}

inline bool is_floating(DType t) {
  return t == DType::Float32 || t == DType::Float64 || t == DType::Float16 || t == DType::BFloat16;
}
inline bool is_integral(DType t, bool include_bool = false) {
  return t == DType::Int8 || t == DType::UInt8 || t == DType::Int32 || t == DType::Int64 ||
         (include_bool && t == DType::Bool);
}
inline bool is_signed(DType t) { return t != DType::UInt8 && t != DType::Bool; }

// numpy / PyTorch promotion of two dtypes (same table as torch.promote_types).
DType promote_types(DType a, DType b);

// ---------------------------------------------------------------- 16-bit floats
struct Half {
  uint16_t bits = 0;
  Half() = default;
  Half(float f) : bits(from_float(f)) {}
  operator float() const { return to_float(bits); }
  static uint16_t from_float(float f) {
    uint32_t x; std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mag = x & 0x7fffffffu;
    if (mag >= 0x7f800000u) {  // inf or nan
      return static_cast<uint16_t>(sign | 0x7c00u | (mag > 0x7f800000u ? 0x200u : 0u));
    }
    if (mag >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
    if (mag < 0x38800000u) {  // subnormal or zero in half
      if (mag < 0x33000000u) return static_cast<uint16_t>(sign);  // rounds to zero
      uint32_t e = mag >> 23;
      uint32_t m = (mag & 0x7fffffu) | 0x800000u;
      uint32_t shift = 126 - e;  // 113 - e + 13
      uint32_t half_m = m >> shift;
      uint32_t rem = m & ((1u << shift) - 1);
      uint32_t halfway = 1u << (shift - 1);
      if (rem > halfway || (rem == halfway && (half_m & 1))) half_m++;
      return static_cast<uint16_t>(sign | half_m);
    }
    uint32_t h = ((mag - 0x38000000u) >> 13);
    uint32_t rem = mag & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return static_cast<uint16_t>(sign | h);
  }
  static float to_float(uint16_t h) {
    uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    uint32_t x;
    if (e == 0) {
      if (m == 0) { x = sign; }
      else {  // subnormal
        float f = std::ldexp(static_cast<float>(m), -24);
        std::memcpy(&x, &f, 4);
        x |= sign;
      }
    } else if (e == 31) {
      x = sign | 0x7f800000u | (m << 13);
    } else {
      x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f; std::memcpy(&f, &x, 4);
    return f;
  }
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) : bits(from_float(f)) {}
  operator float() const { return to_float(bits); }
  static uint16_t from_float(float f) {
    uint32_t x; std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7fffu + lsb;  // round to nearest even
    return static_cast<uint16_t>(x >> 16);
  }
  static float to_float(uint16_t b) {
    uint32_t x = static_cast<uint32_t>(b) << 16;
    float f; std::memcpy(&f, &x, 4);
    return f;
  }
};

// C++ type <-> DType
template <typename T> struct CppToDType;
template <> struct CppToDType<float> { static constexpr DType value = DType::Float32; };
template <> struct CppToDType<double> { static constexpr DType value = DType::Float64; };
template <> struct CppToDType<Half> { static constexpr DType value = DType::Float16; };
template <> struct CppToDType<BFloat16> { static constexpr DType value = DType::BFloat16; };
template <> struct CppToDType<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct CppToDType<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct CppToDType<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct CppToDType<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct CppToDType<bool> { static constexpr DType value = DType::Bool; };

// The type arithmetic is done in: float for the 16-bit floats, the type itself otherwise.
template <typename T> struct OpMath { using type = T; };
template <> struct OpMath<Half> { using type = float; };
template <> struct OpMath<BFloat16> { using type = float; };
template <typename T> using opmath_t = typename OpMath<T>::type;

// Calls f(T{}) with T the C++ type of dtype t.
template <typename F>
decltype(auto) visit_dtype(DType t, F&& f) {
  switch (t) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Float16: return f(Half{});
    case DType::BFloat16: return f(BFloat16{});
    case DType::Int8: return f(int8_t{});
    case DType::UInt8: return f(uint8_t{});
    case DType::Int32: return f(int32_t{});
    case DType::Int64: return f(int64_t{});
    case DType::Bool: return f(bool{});
  }
  return f(float{});
}

// Conversion between element types with C semantics (float->int truncates; nan->int is 0, like
// many peers leave undefined; we pick 0 so that results are reproducible).
template <typename To, typename From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return static_cast<double>(static_cast<opmath_t<From>>(v)) != 0.0;
  } else if constexpr (std::is_integral_v<To> && !std::is_integral_v<From>) {
    double d = static_cast<double>(static_cast<opmath_t<From>>(v));
    if (std::isnan(d)) return To{0};
    if (d >= 9.2233720368547758e18) return static_cast<To>(static_cast<int64_t>(INT64_MAX));
    if (d <= -9.2233720368547758e18) return static_cast<To>(static_cast<int64_t>(INT64_MIN));
    return static_cast<To>(static_cast<int64_t>(d));
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(static_cast<opmath_t<From>>(v)));
  } else {
    return static_cast<To>(static_cast<opmath_t<From>>(v));
  }
}

}  // namespace heron
