#include "heron_commnet/wire.h"

#include <cstdio>
#include <cstring>

#include "heron_commnet/status.h"

namespace heron_commnet {
namespace {
void put16(uint8_t* p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
void put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = (v >> (8 * i)) & 0xff; }
void put64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = (v >> (8 * i)) & 0xff; }
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint32_t header_checksum(const uint8_t in[kHeaderSize]) {
  uint8_t tmp[kHeaderSize];
  std::memcpy(tmp, in, kHeaderSize);
  std::memset(tmp + 12, 0, 4);
  return fnv1a32(tmp, kHeaderSize);
}
}  // namespace

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kPeerGone: return "peer_gone";
    case ErrorCode::kProtocol: return "protocol_error";
    case ErrorCode::kVersionMismatch: return "version_mismatch";
    case ErrorCode::kUnknownToken: return "unknown_token";
    case ErrorCode::kOutOfRange: return "out_of_range";
    case ErrorCode::kBadRank: return "bad_rank";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kRendezvous: return "rendezvous";
    case ErrorCode::kIo: return "io_error";
    case ErrorCode::kClosed: return "closed";
    case ErrorCode::kCancelled: return "cancelled";
  }
  return "unknown_error";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(error_code_name(code_)) + ": " + message_;
}

uint32_t fnv1a32(const uint8_t* data, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= 16777619u;
  }
  return h;
}

bool frame_has_payload(FrameType type) { return type != FrameType::kReadReq; }

const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::kHello: return "HELLO";
    case FrameType::kMessage: return "MESSAGE";
    case FrameType::kReadReq: return "READ_REQ";
    case FrameType::kReadResp: return "READ_RESP";
    case FrameType::kReadErr: return "READ_ERR";
    case FrameType::kAbort: return "ABORT";
    case FrameType::kBye: return "BYE";
  }
  return "?";
}

void encode_header(const FrameHeader& h, uint8_t out[kHeaderSize]) {
  put32(out + 0, kWireMagic);
  put16(out + 4, h.version);
  out[6] = static_cast<uint8_t>(h.type);
  out[7] = h.flags;
  put32(out + 8, h.src_rank);
  put32(out + 12, 0);
  put64(out + 16, h.tag);
  put64(out + 24, h.offset);
  put64(out + 32, h.length);
  put64(out + 40, h.id);
  put32(out + 12, header_checksum(out));
}

DecodeResult decode_header(const uint8_t in[kHeaderSize], uint64_t max_payload, FrameHeader* h) {
  if (get32(in) != kWireMagic) return DecodeResult::kBadMagic;
  if (get32(in + 12) != header_checksum(in)) return DecodeResult::kBadChecksum;
  FrameHeader r;
  r.version = get16(in + 4);
  if (r.version != kWireVersion) {
    h->version = r.version;
    return DecodeResult::kBadVersion;
  }
  uint8_t type = in[6];
  if (type < static_cast<uint8_t>(FrameType::kHello) || type > static_cast<uint8_t>(FrameType::kBye))
    return DecodeResult::kBadType;
  r.type = static_cast<FrameType>(type);
  r.flags = in[7];
  if (r.flags != 0) return DecodeResult::kBadFlags;
  r.src_rank = get32(in + 8);
  r.tag = get64(in + 16);
  r.offset = get64(in + 24);
  r.length = get64(in + 32);
  r.id = get64(in + 40);
  if (frame_has_payload(r.type) && r.length > max_payload) return DecodeResult::kTooLong;
  *h = r;
  return DecodeResult::kOk;
}

std::string describe_decode_error(DecodeResult r, const uint8_t in[kHeaderSize], uint64_t max_payload) {
  char buf[200];
  switch (r) {
    case DecodeResult::kOk: return "ok";
    case DecodeResult::kBadMagic:
      std::snprintf(buf, sizeof buf, "bad magic number 0x%08X (expected 0x%08X): not a CommNet peer or a corrupted stream",
                    static_cast<unsigned>(get32(in)), static_cast<unsigned>(kWireMagic));
      return buf;
    case DecodeResult::kBadChecksum:
      std::snprintf(buf, sizeof buf, "header checksum mismatch (got 0x%08X, computed 0x%08X)",
                    static_cast<unsigned>(get32(in + 12)), static_cast<unsigned>(header_checksum(in)));
      return buf;
    case DecodeResult::kBadVersion:
      std::snprintf(buf, sizeof buf, "wire protocol version %u, this library speaks version %u",
                    static_cast<unsigned>(get16(in + 4)), static_cast<unsigned>(kWireVersion));
      return buf;
    case DecodeResult::kBadType:
      std::snprintf(buf, sizeof buf, "unknown frame type %u", static_cast<unsigned>(in[6]));
      return buf;
    case DecodeResult::kBadFlags:
      std::snprintf(buf, sizeof buf, "reserved flags 0x%02X set", static_cast<unsigned>(in[7]));
      return buf;
    case DecodeResult::kTooLong:
      std::snprintf(buf, sizeof buf, "payload length %llu exceeds the limit of %llu bytes",
                    static_cast<unsigned long long>(get64(in + 32)), static_cast<unsigned long long>(max_payload));
      return buf;
  }
  return "?";
}

}  // namespace heron_commnet
