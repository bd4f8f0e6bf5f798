// heron_commnet/status.h -- error codes and the Status value every CommNet operation reports.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace heron_commnet {

/// Error codes. Every failure reaches the caller (a waiter or a completion callback) as one of these,
/// never as an abort or a hang.
enum class ErrorCode : int32_t {
  kOk = 0,
  kTimeout = 1,          ///< the operation's deadline passed
  kPeerGone = 2,         ///< the peer closed its connection, died, or another rank reported it gone
  kProtocol = 3,         ///< a malformed frame, a bad magic number or checksum, an unexpected frame
  kVersionMismatch = 4,  ///< the peer speaks another wire-protocol version
  kUnknownToken = 5,     ///< a read named a memory-region token that is not registered
  kOutOfRange = 6,       ///< a read past the end of a registered region
  kBadRank = 7,          ///< a rank outside [0, world_size) or the caller's own rank where not allowed
  kInvalidArgument = 8,  ///< a null buffer, a receive buffer too small for the message, ...
  kRendezvous = 9,       ///< the rendezvous (store) failed or timed out
  kIo = 10,              ///< a socket or file error
  kClosed = 11,          ///< the communicator was closed or aborted
  kCancelled = 12,       ///< cancelled by the caller
};

/// A readable name of an ErrorCode ("timeout", "peer_gone", ...).
const char* error_code_name(ErrorCode code);

/// The outcome of an operation: a code and, on failure, a readable message that names the ranks,
/// the operation and the reason.
class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status OK() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "timeout: recv from rank 1 tag 7 timed out after 100 ms" (or "ok").
  std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

}  // namespace heron_commnet
