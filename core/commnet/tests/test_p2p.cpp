#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <numeric>

#include "test_util.h"

using namespace heron_commnet;
using commnet_test::run_ranks;
using std::chrono::milliseconds;

namespace {
uint8_t pattern(size_t i, int salt) { return static_cast<uint8_t>((i * 131 + salt * 7 + (i >> 9)) & 0xff); }
std::vector<uint8_t> make(size_t n, int salt) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = pattern(i, salt);
  return v;
}
}  // namespace

TEST(P2P, SizesFromZeroTo64MiB) {
  const std::vector<size_t> sizes = {0, 1, 7, 8, 47, 48, 49, 4096, 65535, 65536, 65537, (1u << 20) + 3, 64u << 20};
  run_ranks(2, [&](int rank, Communicator& c) {
    if (rank == 0) {
      for (size_t i = 0; i < sizes.size(); ++i) {
        auto data = make(sizes[i], static_cast<int>(i));
        Status st = c.send(1, i, data.data(), data.size());
        ASSERT_TRUE(st.ok()) << st.to_string();
      }
    } else {
      for (size_t i = 0; i < sizes.size(); ++i) {
        std::vector<uint8_t> buf(sizes[i] + 1, 0xEE);
        size_t got = 0;
        Status st = c.recv(0, i, buf.data(), buf.size(), &got);
        ASSERT_TRUE(st.ok()) << st.to_string();
        ASSERT_EQ(got, sizes[i]);
        buf.resize(got);
        ASSERT_TRUE(buf == make(sizes[i], static_cast<int>(i))) << "size " << sizes[i];
      }
    }
  });
}

TEST(P2P, OrderPerTagAndMatchingAcrossTags) {
  constexpr int kN = 500;
  run_ranks(2, [&](int rank, Communicator& c) {
    if (rank == 0) {
      std::vector<Request> rs;
      std::vector<std::vector<uint32_t>> bufs(kN);
      for (int i = 0; i < kN; ++i) {
        bufs[i].assign(1 + (i * 37) % 3000, static_cast<uint32_t>(i));  // sizes vary: some stay buffered
        rs.push_back(c.isend(1, i % 2 ? 11 : 22, bufs[i].data(), bufs[i].size() * 4));
      }
      for (auto& r : rs) ASSERT_TRUE(r.wait().ok());
    } else {
      // Receive all of tag 22 first, then tag 11: per-tag order must hold.
      std::vector<uint32_t> buf(4000);
      for (int tag : {22, 11}) {
        for (int i = (tag == 11 ? 1 : 0); i < kN; i += 2) {
          size_t got = 0;
          Status st = c.recv(0, tag, buf.data(), buf.size() * 4, &got);
          ASSERT_TRUE(st.ok()) << st.to_string();
          ASSERT_EQ(got, (1 + (i * 37) % 3000) * 4u);
          ASSERT_EQ(buf[0], static_cast<uint32_t>(i));
          ASSERT_EQ(buf[got / 4 - 1], static_cast<uint32_t>(i));
        }
      }
    }
  });
}

TEST(P2P, CallbacksFireOnceWithSizes) {
  run_ranks(2, [&](int rank, Communicator& c) {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<size_t> seen;
    auto cb = [&](const Status& st, size_t n) {
      EXPECT_TRUE(st.ok()) << st.to_string();
      std::lock_guard<std::mutex> lk(mu);
      seen.push_back(n);
      cv.notify_all();
    };
    std::vector<uint8_t> a(100, 1), b(200000, 2);
    std::vector<uint8_t> ra(100), rb(200000);
    if (rank == 0) {
      c.isend(1, 1, a.data(), a.size(), cb);
      c.isend(1, 2, b.data(), b.size(), cb);
    } else {
      c.irecv(0, 2, rb.data(), rb.size(), cb);
      c.irecv(0, 1, ra.data(), ra.size(), cb);
    }
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(30), [&] { return seen.size() == 2; }));
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<size_t>{100, 200000}));
    if (rank == 1) {
      EXPECT_EQ(ra, a);
      EXPECT_EQ(rb, b);
    }
  });
}

TEST(P2P, RecvMessageOfAnySizeAndTooSmallBuffer) {
  run_ranks(2, [&](int rank, Communicator& c) {
    if (rank == 0) {
      auto big = make(100000, 3);
      ASSERT_TRUE(c.send(1, 5, big.data(), big.size()).ok());
      ASSERT_TRUE(c.send(1, 6, big.data(), 1000).ok());
      ASSERT_TRUE(c.send(1, 6, "ok", 2).ok());
    } else {
      std::vector<uint8_t> m;
      ASSERT_TRUE(c.recv_message(0, 5, &m).ok());
      EXPECT_EQ(m, make(100000, 3));
      char small[10];
      Status st = c.recv(0, 6, small, sizeof small);
      EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(st.message().find("1000 bytes"), std::string::npos) << st.message();
      size_t n = 0;
      ASSERT_TRUE(c.recv(0, 6, small, sizeof small, &n).ok());  // the stream is still in sync
      EXPECT_EQ(std::string(small, n), "ok");
    }
  });
}

TEST(P2P, ActorHandlersGetEveryMessageIncludingEarlyOnes) {
  run_ranks(3, [&](int rank, Communicator& c) {
    if (rank != 0) {
      for (int i = 0; i < 20; ++i) {
        uint32_t v = static_cast<uint32_t>(rank * 1000 + i);
        ASSERT_TRUE(c.send(0, 99, &v, 4).ok());
      }
      ASSERT_TRUE(c.send(0, 1, "done", 4).ok());
    } else {
      char d[4];
      ASSERT_TRUE(c.recv(1, 1, d, 4).ok());  // by now rank 1's messages have arrived (unhandled)
      std::mutex mu;
      std::condition_variable cv;
      std::vector<uint32_t> got;
      ASSERT_TRUE(c.set_handler(99, [&](int src, uint64_t tag, std::vector<uint8_t>&& p) {
        ASSERT_EQ(tag, 99u);
        ASSERT_EQ(p.size(), 4u);
        uint32_t v;
        std::memcpy(&v, p.data(), 4);
        EXPECT_EQ(static_cast<int>(v / 1000), src);
        std::lock_guard<std::mutex> lk(mu);
        got.push_back(v);
        cv.notify_all();
      }).ok());
      ASSERT_TRUE(c.recv(2, 1, d, 4).ok());
      std::unique_lock<std::mutex> lk(mu);
      ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(30), [&] { return got.size() == 40; }));
      // Per source, handler order is send order.
      std::vector<uint32_t> from1, from2;
      for (auto v : got) (v < 2000 ? from1 : from2).push_back(v);
      for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(from1[i], 1000u + i);
        EXPECT_EQ(from2[i], 2000u + i);
      }
      lk.unlock();
      c.set_handler(99, {});
    }
  });
}

TEST(P2P, OneSidedReadsOrderedStreamsAndErrors) {
  constexpr size_t kRegion = 3 << 20;
  run_ranks(2, [&](int rank, Communicator& c) {
    std::vector<uint8_t> mem = rank == 1 ? make(kRegion, 9) : std::vector<uint8_t>(kRegion, 0);
    uint64_t tok = 0;
    ASSERT_TRUE(c.register_memory(mem.data(), mem.size(), &tok).ok());
    // Exchange tokens with two-sided messages.
    uint64_t peer_tok = 0;
    ASSERT_TRUE(c.send(1 - rank, 0, &tok, 8).ok());
    ASSERT_TRUE(c.recv(1 - rank, 0, &peer_tok, 8).ok());
    if (rank == 0) {
      int stream = c.create_read_stream();
      std::mutex mu;
      std::condition_variable cv;
      std::vector<int> order;
      std::vector<Request> rs;
      // Mixed sizes so later small reads could finish before earlier big ones without ordering.
      const std::vector<std::pair<size_t, size_t>> chunks = {{0, 2 << 20}, {2 << 20, 10}, {(2 << 20) + 10, 1000},
                                                             {(2 << 20) + 1010, (1 << 20) - 1010}, {100, 0}};
      for (int i = 0; i < static_cast<int>(chunks.size()); ++i) {
        rs.push_back(c.read(1, peer_tok, chunks[i].first, tok, chunks[i].first, chunks[i].second,
                            [&, i](const Status& st, size_t n) {
                              EXPECT_TRUE(st.ok()) << st.to_string();
                              std::lock_guard<std::mutex> lk(mu);
                              order.push_back(i);
                              cv.notify_all();
                            },
                            stream));
      }
      for (auto& r : rs) ASSERT_TRUE(r.wait().ok());
      {
        std::unique_lock<std::mutex> lk(mu);
        ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(30), [&] { return order.size() == chunks.size(); }));
        EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
      }
      EXPECT_TRUE(mem == make(kRegion, 9));
      // Errors, each reported to the caller.
      EXPECT_EQ(c.read(1, peer_tok ^ 0x5555, 0, tok, 0, 8).wait().code(), ErrorCode::kUnknownToken);
      Status past = c.read(1, peer_tok, kRegion - 4, tok, 0, 8).wait();
      EXPECT_EQ(past.code(), ErrorCode::kOutOfRange);
      EXPECT_NE(past.message().find("past the end"), std::string::npos) << past.message();
      EXPECT_EQ(c.read(1, peer_tok, ~uint64_t(0), tok, 0, 8).wait().code(), ErrorCode::kOutOfRange);  // no overflow
      EXPECT_EQ(c.read(1, peer_tok, 0, tok, kRegion - 1, 8).wait().code(), ErrorCode::kOutOfRange);   // local side
      EXPECT_EQ(c.read(1, peer_tok, 0, 12345, 0, 8).wait().code(), ErrorCode::kUnknownToken);        // local token
      EXPECT_EQ(c.read(7, peer_tok, 0, tok, 0, 8).wait().code(), ErrorCode::kBadRank);
      EXPECT_EQ(c.read(0, peer_tok, 0, tok, 0, 8).wait().code(), ErrorCode::kBadRank);
      EXPECT_EQ(c.read(1, peer_tok, 0, tok, 0, 8, {}, 99).wait().code(), ErrorCode::kInvalidArgument);
      // After errors the connection still works.
      EXPECT_TRUE(c.read(1, peer_tok, 5, tok, 5, 100).wait().ok());
      ASSERT_TRUE(c.send(1, 1, "x", 1).ok());
    } else {
      char x;
      ASSERT_TRUE(c.recv(0, 1, &x, 1).ok());
    }
    ASSERT_TRUE(c.unregister_memory(tok).ok());
    EXPECT_EQ(c.unregister_memory(tok).code(), ErrorCode::kUnknownToken);
  });
}

TEST(P2P, BadArgumentsAreErrors) {
  run_ranks(2, [&](int rank, Communicator& c) {
    char b[4] = {0, 0, 0, 0};
    EXPECT_EQ(c.send(2, 0, b, 4).code(), ErrorCode::kBadRank);
    EXPECT_EQ(c.send(-1, 0, b, 4).code(), ErrorCode::kBadRank);
    EXPECT_EQ(c.send(rank, 0, b, 4).code(), ErrorCode::kBadRank);
    EXPECT_EQ(c.recv(5, 0, b, 4).code(), ErrorCode::kBadRank);
    EXPECT_EQ(c.send(1 - rank, 0, nullptr, 4).code(), ErrorCode::kInvalidArgument);
    uint64_t tok;
    EXPECT_EQ(c.register_memory(nullptr, 4, &tok).code(), ErrorCode::kInvalidArgument);
  });
  std::unique_ptr<Communicator> c;
  EXPECT_EQ(Communicator::create(3, 2, nullptr, commnet_test::test_options(), &c).code(), ErrorCode::kBadRank);
  EXPECT_EQ(Communicator::create(0, 0, nullptr, commnet_test::test_options(), &c).code(), ErrorCode::kInvalidArgument);
}

TEST(P2P, WorldOfOne) {
  std::unique_ptr<Communicator> c;
  ASSERT_TRUE(Communicator::create(0, 1, nullptr, commnet_test::test_options(), &c).ok());
  EXPECT_EQ(c->world_size(), 1);
  EXPECT_EQ(c->send(0, 0, "x", 1).code(), ErrorCode::kBadRank);
}

TEST(P2P, SameHostDirectReads) {
  run_ranks(2, [&](int rank, Communicator& c) {
    // Ranks in one process are on one host: the probe must succeed.
    ASSERT_TRUE(c.can_read_direct(1 - rank));
    EXPECT_FALSE(c.can_read_direct(rank));
    EXPECT_FALSE(c.can_read_direct(7));
    std::vector<uint8_t> mine = make(3 << 20, rank);
    uint64_t addr = reinterpret_cast<uintptr_t>(mine.data()), peer_addr = 0;
    ASSERT_TRUE(c.send(1 - rank, 1, &addr, 8).ok());
    ASSERT_TRUE(c.recv(1 - rank, 1, &peer_addr, 8).ok());
    std::vector<uint8_t> got(3 << 20);
    ASSERT_TRUE(c.read_direct(1 - rank, peer_addr, got.data(), got.size()).ok());
    EXPECT_TRUE(got == make(3 << 20, 1 - rank));
    // An unmapped address is an error, not a crash.
    Status st = c.read_direct(1 - rank, 8, got.data(), 16);
    EXPECT_EQ(st.code(), ErrorCode::kIo) << st.to_string();
    EXPECT_EQ(c.read_direct(rank, peer_addr, got.data(), 1).code(), ErrorCode::kInvalidArgument);
    ASSERT_TRUE(c.send(1 - rank, 2, "x", 1).ok());  // the peer keeps its buffer until we are done
    char x;
    ASSERT_TRUE(c.recv(1 - rank, 2, &x, 1).ok());
  });
}
