#include <gtest/gtest.h>

#include <cstring>

#include "heron_commnet/wire.h"

using namespace heron_commnet;

TEST(Wire, RoundTripAndLittleEndianLayout) {
  FrameHeader h;
  h.type = FrameType::kReadReq;
  h.src_rank = 0x01020304;
  h.tag = 0x1112131415161718ull;
  h.offset = 5;
  h.length = 0x2122232425262728ull;
  h.id = 77;
  uint8_t b[kHeaderSize];
  encode_header(h, b);
  // Fixed byte layout whatever the host order.
  EXPECT_EQ(b[0], 'H');
  EXPECT_EQ(b[1], 'R');
  EXPECT_EQ(b[2], 'C');
  EXPECT_EQ(b[3], 'N');
  EXPECT_EQ(b[4], kWireVersion & 0xff);
  EXPECT_EQ(b[6], static_cast<uint8_t>(FrameType::kReadReq));
  EXPECT_EQ(b[8], 0x04);
  EXPECT_EQ(b[11], 0x01);
  EXPECT_EQ(b[16], 0x18);
  EXPECT_EQ(b[23], 0x11);
  EXPECT_EQ(b[32], 0x28);
  FrameHeader d;
  ASSERT_EQ(decode_header(b, ~uint64_t(0), &d), DecodeResult::kOk);
  EXPECT_EQ(d.type, h.type);
  EXPECT_EQ(d.src_rank, h.src_rank);
  EXPECT_EQ(d.tag, h.tag);
  EXPECT_EQ(d.offset, h.offset);
  EXPECT_EQ(d.length, h.length);
  EXPECT_EQ(d.id, h.id);
}

TEST(Wire, RejectsEveryKindOfDamage) {
  FrameHeader h;
  h.type = FrameType::kMessage;
  h.length = 100;
  uint8_t good[kHeaderSize], b[kHeaderSize];
  encode_header(h, good);
  FrameHeader d;

  std::memcpy(b, good, kHeaderSize);
  b[0] ^= 1;
  EXPECT_EQ(decode_header(b, 1000, &d), DecodeResult::kBadMagic);
  EXPECT_NE(describe_decode_error(DecodeResult::kBadMagic, b, 1000).find("magic"), std::string::npos);

  std::memcpy(b, good, kHeaderSize);
  b[20] ^= 0x40;  // a payload field: only the checksum notices
  EXPECT_EQ(decode_header(b, 1000, &d), DecodeResult::kBadChecksum);

  FrameHeader v = h;
  v.version = 2;
  encode_header(v, b);
  EXPECT_EQ(decode_header(b, 1000, &d), DecodeResult::kBadVersion);
  EXPECT_EQ(d.version, 2);
  EXPECT_NE(describe_decode_error(DecodeResult::kBadVersion, b, 1000).find("version 2"), std::string::npos);

  FrameHeader t = h;
  t.type = static_cast<FrameType>(42);
  encode_header(t, b);
  EXPECT_EQ(decode_header(b, 1000, &d), DecodeResult::kBadType);

  FrameHeader f = h;
  f.flags = 1;
  encode_header(f, b);
  EXPECT_EQ(decode_header(b, 1000, &d), DecodeResult::kBadFlags);

  EXPECT_EQ(decode_header(good, 99, &d), DecodeResult::kTooLong);
  EXPECT_EQ(decode_header(good, 100, &d), DecodeResult::kOk);

  // A READ_REQ's length is a request, not a payload: no limit applies.
  FrameHeader r = h;
  r.type = FrameType::kReadReq;
  r.length = ~uint64_t(0);
  encode_header(r, b);
  EXPECT_EQ(decode_header(b, 10, &d), DecodeResult::kOk);
}
