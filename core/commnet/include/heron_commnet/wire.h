// heron_commnet/wire.h -- the wire format: a fixed 48-byte frame header, little-endian on the wire
// whatever the host's byte order, with a magic number, a protocol version and a header checksum.
//
//   offset size field
//   0      4    magic      0x4E435248 ("HRCN" read as bytes 'H','R','C','N')
//   4      2    version    kWireVersion
//   6      1    type       FrameType
//   7      1    flags      reserved, must be 0
//   8      4    src_rank   the sender's rank
//   12     4    checksum   FNV-1a (32 bit) over the 48 header bytes with this field zeroed
//   16     8    tag        the message tag; the region token of a READ_REQ; the error code of READ_ERR/ABORT
//   24     8    offset     the region offset of a READ_REQ; otherwise 0
//   32     8    length     the payload length (READ_REQ: the requested length; it carries no payload)
//   40     8    id         the request id of READ_REQ/READ_RESP/READ_ERR; the world size in HELLO
//
// The payload (`length` bytes, except for READ_REQ) follows the header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace heron_commnet {

constexpr uint32_t kWireMagic = 0x4E435248u;
constexpr uint16_t kWireVersion = 1;
constexpr size_t kHeaderSize = 48;

enum class FrameType : uint8_t {
  kHello = 1,     ///< connection handshake: src_rank, id = world size, tag = session hash
  kMessage = 2,   ///< two-sided tagged message: tag, length, payload
  kReadReq = 3,   ///< one-sided read request: tag = region token, offset, length, id
  kReadResp = 4,  ///< the data of a read: id, length, payload
  kReadErr = 5,   ///< a read that failed at the owner: id, tag = ErrorCode, payload = message
  kAbort = 6,     ///< the sender gives up the whole job: tag = ErrorCode, payload = message
  kBye = 7,       ///< the sender closes its end in an orderly way
};

struct FrameHeader {
  uint16_t version = kWireVersion;
  FrameType type = FrameType::kMessage;
  uint8_t flags = 0;
  uint32_t src_rank = 0;
  uint64_t tag = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t id = 0;
};

/// Whether a frame of this type carries `length` payload bytes after its header.
bool frame_has_payload(FrameType type);

/// Writes the 48 header bytes (checksum included) into out.
void encode_header(const FrameHeader& h, uint8_t out[kHeaderSize]);

enum class DecodeResult {
  kOk,
  kBadMagic,
  kBadChecksum,
  kBadVersion,  ///< a well-formed header of another protocol version (h->version holds it)
  kBadType,
  kBadFlags,
  kTooLong,     ///< the payload length exceeds max_payload
};

/// Parses 48 header bytes. Never reads more than kHeaderSize bytes; never throws. On kBadVersion
/// the version field of *h is filled in so the caller can name it.
DecodeResult decode_header(const uint8_t in[kHeaderSize], uint64_t max_payload, FrameHeader* h);

/// "bad magic number 0x12345678 (expected 0x4E435248)" and so on.
std::string describe_decode_error(DecodeResult r, const uint8_t in[kHeaderSize], uint64_t max_payload);

/// FNV-1a, 32 bit (the header checksum).
uint32_t fnv1a32(const uint8_t* data, size_t n);

const char* frame_type_name(FrameType t);

}  // namespace heron_commnet
