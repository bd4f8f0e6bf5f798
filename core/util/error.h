// heron::Error: the one exception type of the core. Its code maps 1:1 onto heron_status in the ABI.
#pragma once
#include <stdexcept>
#include <string>
#include <sstream>

namespace heron {

// Values are part of the ABI (HERON_ERR_* in heron.h): append only.
enum class ErrorCode : int {
  Ok = 0,
  InvalidArgument = 1,   // a value is wrong (shape, axis, attribute value)  -> ValueError
  TypeError = 2,         // a dtype or an argument's kind is wrong            -> TypeError
  IndexError = 3,        // an index or axis out of range                     -> IndexError
  NullHandle = 4,        // a NULL handle where one is required              -> ValueError
  NotFound = 5,          // unknown op, device, attribute name                -> ValueError/KeyError
  NotImplemented = 6,    // no kernel for this device/dtype                   -> NotImplementedError
  OutOfMemory = 7,       // allocation failed                                 -> MemoryError
  BufferTooSmall = 8,    // caller-provided array too small                   -> ValueError
  Runtime = 9,           // anything else                                     -> RuntimeError
  AbiMismatch = 10,      // header/library version mismatch                   -> ImportError
  DeviceError = 11,      // device runtime error                              -> RuntimeError
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string msg, std::string op = {})
      : std::runtime_error(std::move(msg)), code_(code), op_(std::move(op)) {}
  ErrorCode code() const { return code_; }
  const std::string& op() const { return op_; }
  void set_op_if_empty(const std::string& op) { if (op_.empty()) op_ = op; }
 private:
  ErrorCode code_;
  std::string op_;
};

namespace detail {
inline void stream_all(std::ostringstream&) {}
template <typename T, typename... R>
void stream_all(std::ostringstream& os, const T& v, const R&... rest) { os << v; stream_all(os, rest...); }
}  // namespace detail

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  detail::stream_all(os, args...);
  return os.str();
}

}  // namespace heron

#define HERON_CHECK(cond, code, ...)                                                   \
  do {                                                                                  \
    if (!(cond)) throw ::heron::Error(::heron::ErrorCode::code, ::heron::str_cat(__VA_ARGS__)); \
  } while (0)
#define HERON_CHECK_ARG(cond, ...) HERON_CHECK(cond, InvalidArgument, __VA_ARGS__)
#define HERON_CHECK_TYPE(cond, ...) HERON_CHECK(cond, TypeError, __VA_ARGS__)
#define HERON_CHECK_INDEX(cond, ...) HERON_CHECK(cond, IndexError, __VA_ARGS__)
