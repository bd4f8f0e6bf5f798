// The shared-memory transport: the ring itself (against a byte-for-byte model), transport
// selection (shm on one host, tcp when disabled), traffic through rings much smaller than the
// messages in both directions at once, and a killed peer on shared memory.
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>

#include "../src/shm.h"
#include "test_util.h"

using namespace heron_commnet;
using commnet_test::run_ranks;
using commnet_test::temp_store_path;
using commnet_test::test_options;
using std::chrono::milliseconds;

namespace {
std::string ring_name() {
  static int n = 0;
  return "/commnet-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}
bool shm_disabled_by_env() {
  const char* e = std::getenv("HERON_COMMNET_SHM");
  return e && std::string(e) == "0";
}
std::vector<uint8_t> make(size_t n, int salt) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 131 + salt * 7 + (i >> 9)) & 0xff);
  return v;
}
}  // namespace

TEST(Shm, RingMatchesAByteQueueAcrossWrapAround) {
  if (!shm::available()) GTEST_SKIP() << "no shared memory on this platform";
  std::string name = ring_name();
  std::unique_ptr<shm::Ring> prod, cons;
  ASSERT_TRUE(shm::Ring::create(name, 1024, &prod).ok());
  ASSERT_TRUE(shm::Ring::open(name, &cons).ok());
  shm::Ring::unlink(name);
  std::deque<uint8_t> model;  // the oracle: a plain FIFO of bytes
  std::mt19937 rng(1);
  uint8_t next = 0;
  for (int step = 0; step < 4000; ++step) {
    Status err;
    if (rng() % 2) {
      uint8_t a[300], b[300];
      size_t la = rng() % 300, lb = rng() % 300;
      for (size_t i = 0; i < la; ++i) a[i] = next++;
      for (size_t i = 0; i < lb; ++i) b[i] = next++;
      iovec v[2] = {{a, la}, {b, lb}};
      size_t room = prod->free_space(&err);
      size_t w = prod->write(v, 2, &err);
      ASSERT_TRUE(err.ok());
      ASSERT_EQ(w, std::min(room, la + lb));
      for (size_t i = 0; i < w; ++i) model.push_back(i < la ? a[i] : b[i - la]);
      next = static_cast<uint8_t>(next - (la + lb - w));  // unwritten bytes are offered again
    } else {
      uint8_t out[700];
      size_t want = rng() % 700;
      ASSERT_EQ(cons->available(&err), model.size());
      size_t r = cons->read(out, want, &err);
      ASSERT_TRUE(err.ok());
      ASSERT_EQ(r, std::min(want, model.size()));
      for (size_t i = 0; i < r; ++i) {
        ASSERT_EQ(out[i], model.front()) << "step " << step;
        model.pop_front();
      }
    }
  }
  // A corrupted header (the peer's write position out of range) is an error, not a crash.
  prod->header()->head.store(prod->header()->tail.load() + 5000);
  Status err;
  uint8_t out[16];
  EXPECT_EQ(cons->read(out, 16, &err), 0u);
  EXPECT_EQ(err.code(), ErrorCode::kProtocol) << err.to_string();
}

TEST(Shm, BadSegmentsAreErrors) {
  if (!shm::available()) GTEST_SKIP() << "no shared memory on this platform";
  std::unique_ptr<shm::Ring> r;
  EXPECT_EQ(shm::Ring::create(ring_name(), 1000, &r).code(), ErrorCode::kInvalidArgument);  // not a power of two
  EXPECT_EQ(shm::Ring::open("/commnet-test-does-not-exist", &r).code(), ErrorCode::kIo);
  std::string name = ring_name();
  std::unique_ptr<shm::Ring> good;
  ASSERT_TRUE(shm::Ring::create(name, 4096, &good).ok());
  good->header()->magic = 0x12345678;
  Status st = shm::Ring::open(name, &r);
  EXPECT_EQ(st.code(), ErrorCode::kProtocol) << st.to_string();
  shm::Ring::unlink(name);
}

TEST(Shm, StaleSegmentsOfDeadProcessesAreRemoved) {
  if (!shm::available()) GTEST_SKIP() << "no shared memory on this platform";
  const pid_t dead = ::fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(dead, &status, 0), dead);
  const std::string pre = "commnet-sweep-" + std::to_string(::getpid()) + "-";
  const std::string gone = "/" + pre + std::to_string(dead) + "-a", alive = "/" + pre + std::to_string(::getpid()) + "-b",
                    odd = "/" + pre + "x-c";
  for (const std::string& n : {gone, alive, odd}) {
    int fd = ::shm_open(n.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0) << n;
    ::close(fd);
  }
  EXPECT_EQ(remove_stale_segments(pre), 1);
  auto exists = [](const std::string& n) {
    int fd = ::shm_open(n.c_str(), O_RDWR, 0600);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
  };
  EXPECT_FALSE(exists(gone));
  EXPECT_TRUE(exists(alive));  // its process (this one) is running
  EXPECT_TRUE(exists(odd));    // no pid in the name: not ours to judge
  EXPECT_EQ(remove_stale_segments(pre), 0);
  ::shm_unlink(alive.c_str());
  ::shm_unlink(odd.c_str());
}

TEST(Shm, TransportIsSharedMemoryOnOneHostUnlessDisabled) {
  run_ranks(3, [&](int rank, Communicator& c) {
    for (int j = 0; j < 3; ++j)
      EXPECT_STREQ(c.transport(j), j == rank ? "" : (shm::available() && !shm_disabled_by_env() ? "shm" : "tcp"));
    EXPECT_STREQ(c.transport(-1), "");
    EXPECT_STREQ(c.transport(3), "");
  });
  Options tcp = test_options();
  tcp.shared_memory = false;
  run_ranks(2, [&](int rank, Communicator& c) {
    EXPECT_STREQ(c.transport(1 - rank), "tcp");
    std::vector<uint8_t> got(5000);
    ASSERT_TRUE(c.send(1 - rank, 3, make(5000, rank).data(), 5000).ok());
    ASSERT_TRUE(c.recv(1 - rank, 3, got.data(), got.size()).ok());
    EXPECT_TRUE(got == make(5000, 1 - rank));
  }, tcp);
}

TEST(Shm, BothDirectionsAtOnceThroughSmallRings) {
  // 64 KiB rings, messages up to 1 MiB, each rank posts all its sends before receiving: the rings
  // fill up in both directions and progress depends on the free-space doorbells.
  Options opt = test_options();
  opt.shm_ring_bytes = 64 * 1024;
  run_ranks(2, [&](int rank, Communicator& c) {
    const size_t sizes[] = {0, 1, 8, 4095, 65536, 65537, 300000, 1 << 20, 17, 200000};
    std::vector<std::vector<uint8_t>> out, in;
    std::vector<Request> sends;
    for (int i = 0; i < 10; ++i) out.push_back(make(sizes[i], rank * 100 + i));
    for (int i = 0; i < 10; ++i) sends.push_back(c.isend(1 - rank, 5, out[i].data(), out[i].size()));
    for (int i = 0; i < 10; ++i) {
      std::vector<uint8_t> got(sizes[i]);
      size_t n = 0;
      Status st = c.recv(1 - rank, 5, got.data(), got.size(), &n);
      ASSERT_TRUE(st.ok()) << st.to_string();
      ASSERT_EQ(n, sizes[i]);
      EXPECT_TRUE(got == make(sizes[i], (1 - rank) * 100 + i)) << "message " << i;
    }
    for (auto& s : sends) EXPECT_TRUE(s.wait().ok());
  }, opt);
}

TEST(Shm, KilledPeerOnSharedMemoryIsAnErrorWithinTheTimeout) {
  std::string path = temp_store_path();
  Options opt = test_options();
  opt.shm_ring_bytes = 64 * 1024;
  pid_t pid = fork();
  if (pid == 0) {
    FileStore store(path);
    std::unique_ptr<Communicator> c;
    if (!Communicator::create(1, 2, &store, opt, &c).ok()) _exit(3);
    if (!c->send(0, 1, "up", 2).ok()) _exit(4);
    for (;;) pause();  // until killed
  }
  ASSERT_GT(pid, 0);
  FileStore store(path);
  std::unique_ptr<Communicator> c;
  ASSERT_TRUE(Communicator::create(0, 2, &store, opt, &c).ok());
  EXPECT_STREQ(c->transport(1), shm::available() && !shm_disabled_by_env() ? "shm" : "tcp");
  char b[4];
  ASSERT_TRUE(c->recv(1, 1, b, 4).ok());
  // A receive the peer will never answer, and a send larger than the ring that it will never read.
  Request pending = c->irecv(1, 7, b, 4, {}, milliseconds(60000));
  std::vector<uint8_t> big(1 << 20, 7);
  Request blocked = c->isend(1, 8, big.data(), big.size(), {}, milliseconds(60000));
  kill(pid, SIGKILL);
  int wst = 0;
  waitpid(pid, &wst, 0);
  Status r = pending.wait();
  EXPECT_EQ(r.code(), ErrorCode::kPeerGone) << r.to_string();
  EXPECT_NE(r.message().find("rank 1"), std::string::npos) << r.message();
  Status s = blocked.wait();  // returns (no hang) either way
  if (std::string(c->transport(1)) == "shm") {
    // 1 MiB cannot fit a 64 KiB ring that nobody reads (over TCP the kernel's buffers may take it)
    EXPECT_EQ(s.code(), ErrorCode::kPeerGone) << s.to_string();
  }
  EXPECT_FALSE(c->health().ok());
  c.reset();
  std::remove(path.c_str());
}
