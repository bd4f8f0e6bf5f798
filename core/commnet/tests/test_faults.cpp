// Faults: timeouts, a killed rank, a peer sending garbage, a rendezvous missing a rank, a version
// mismatch, a peer that closes. Every case must end in an error reported to the caller.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "../src/net.h"
#include "test_util.h"

using namespace heron_commnet;
using commnet_test::run_ranks;
using commnet_test::temp_store_path;
using commnet_test::test_options;
using std::chrono::milliseconds;

TEST(Faults, OperationsTimeOutWithCallbacks) {
  run_ranks(2, [&](int rank, Communicator& c) {
    if (rank == 0) {
      char b[8];
      Status st = c.recv(1, 42, b, 8, nullptr, milliseconds(100));
      EXPECT_EQ(st.code(), ErrorCode::kTimeout);
      EXPECT_NE(st.message().find("timed out after 100 ms"), std::string::npos) << st.message();
      std::mutex mu;
      std::condition_variable cv;
      int calls = 0;
      ErrorCode code = ErrorCode::kOk;
      c.irecv(1, 43, b, 8, [&](const Status& s, size_t) {
        std::lock_guard<std::mutex> lk(mu);
        ++calls;
        code = s.code();
        cv.notify_all();
      }, milliseconds(50));
      std::unique_lock<std::mutex> lk(mu);
      ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(30), [&] { return calls > 0; }));
      EXPECT_EQ(code, ErrorCode::kTimeout);
      lk.unlock();
      // A message that arrives after its receive timed out is kept for the next receive.
      ASSERT_TRUE(c.send(1, 1, "go", 2).ok());
      size_t n = 0;
      ASSERT_TRUE(c.recv(1, 43, b, 8, &n).ok());
      EXPECT_EQ(std::string(b, n), "late");
      EXPECT_TRUE(c.health().ok());
    } else {
      char g[2];
      ASSERT_TRUE(c.recv(0, 1, g, 2).ok());
      ASSERT_TRUE(c.send(0, 43, "late", 4).ok());
    }
  });
}

namespace {
// Forks a child that runs `child(store_path)` and exits with its return value.
pid_t fork_rank(const std::function<int()>& child) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int rc = child();
    _exit(rc);
  }
  return pid;
}
}  // namespace

TEST(Faults, KilledRankFailsEveryOtherRanksPendingOperations) {
  std::string path = temp_store_path();
  // Rank 2 lives in a child process, created before this process starts any thread.
  pid_t pid = fork_rank([&] {
    FileStore store(path);
    std::unique_ptr<Communicator> c;
    if (!Communicator::create(2, 3, &store, test_options(), &c).ok()) return 3;
    if (!c->send(0, 1, "up", 2).ok()) return 4;
    for (;;) pause();  // until killed
  });
  ASSERT_GT(pid, 0);
  FileStore store(path);
  Status results[2];
  std::thread t1([&] {
    std::unique_ptr<Communicator> c;
    Status st = Communicator::create(1, 3, &store, test_options(), &c);
    ASSERT_TRUE(st.ok()) << st.to_string();
    char b[4];
    // Waits on rank 0, which never sends: only error propagation can end this before the timeout.
    results[1] = c->recv(0, 7, b, 4, nullptr, milliseconds(60000));
  });
  std::unique_ptr<Communicator> c;
  Status st = Communicator::create(0, 3, &store, test_options(), &c);
  ASSERT_TRUE(st.ok()) << st.to_string();
  char b[4];
  ASSERT_TRUE(c->recv(2, 1, b, 4).ok());
  Request pending = c->irecv(2, 7, b, 4, {}, milliseconds(60000));
  kill(pid, SIGKILL);
  int wst = 0;
  waitpid(pid, &wst, 0);
  results[0] = pending.wait();
  t1.join();
  EXPECT_EQ(results[0].code(), ErrorCode::kPeerGone) << results[0].to_string();
  EXPECT_NE(results[0].message().find("rank 2"), std::string::npos) << results[0].message();
  EXPECT_EQ(results[1].code(), ErrorCode::kPeerGone) << results[1].to_string();
  // The communicator is aborted: new operations fail at once.
  EXPECT_FALSE(c->health().ok());
  EXPECT_EQ(c->send(1, 0, "x", 1).code(), ErrorCode::kPeerGone);
  std::remove(path.c_str());
}

TEST(Faults, PeerSendingGarbageIsDroppedWithAnError) {
  std::string path = temp_store_path();
  FileStore store(path);
  // A fake rank 1: a raw socket that does the handshake right, then sends garbage.
  int fake = -1;
  std::thread t([&] {
    std::string addr;
    ASSERT_TRUE(store.get("commnet/addr/0", milliseconds(20000), &addr).ok());
    std::string host;
    uint16_t port = 0;
    ASSERT_TRUE(net::split_host_port(addr, &host, &port));
    auto dl = net::Clock::now() + std::chrono::seconds(20);
    ASSERT_TRUE(net::connect_tcp(host, port, dl, &fake).ok());
    FrameHeader h;
    h.type = FrameType::kHello;
    h.src_rank = 1;
    h.id = 2;
    h.tag = fnv1a32(reinterpret_cast<const uint8_t*>("commnet"), 7);
    uint8_t b[kHeaderSize];
    encode_header(h, b);
    ASSERT_TRUE(net::write_all(fake, b, kHeaderSize, dl).ok());
    ASSERT_TRUE(net::read_all(fake, b, kHeaderSize, dl).ok());
  });
  std::unique_ptr<Communicator> c;
  Status st = Communicator::create(0, 2, &store, test_options(), &c);
  t.join();
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_GE(fake, 0);
  char b[16];
  Request r = c->irecv(1, 1, b, sizeof b, {}, milliseconds(60000));
  const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n......................";
  ASSERT_TRUE(net::write_all(fake, garbage, sizeof garbage, net::Clock::now() + std::chrono::seconds(5)).ok());
  Status rs = r.wait();
  EXPECT_EQ(rs.code(), ErrorCode::kProtocol) << rs.to_string();
  EXPECT_NE(rs.message().find("bad magic"), std::string::npos) << rs.message();
  // The connection is dropped: the fake peer reads EOF (or a reset).
  char x;
  Status rd = net::read_all(fake, &x, 1, net::Clock::now() + std::chrono::seconds(20));
  EXPECT_EQ(rd.code(), ErrorCode::kPeerGone) << rd.to_string();
  EXPECT_FALSE(c->health().ok());
  net::close_fd(fake);
  c.reset();
  std::remove(path.c_str());
}

TEST(Faults, OversizedFrameIsAProtocolError) {
  Options opt = test_options();
  opt.max_message_bytes = 1000;
  run_ranks(2, [&](int rank, Communicator& c) {
    std::vector<uint8_t> big(5000, 1);
    if (rank == 0) {
      c.send(1, 3, big.data(), big.size());
    } else {
      Status st = c.recv(0, 3, big.data(), big.size());
      EXPECT_EQ(st.code(), ErrorCode::kProtocol) << st.to_string();
      EXPECT_NE(st.message().find("exceeds the limit"), std::string::npos) << st.message();
    }
  }, opt);
}

TEST(Faults, RendezvousMissingARankTimesOutClearly) {
  std::string path = temp_store_path();
  FileStore store(path);
  Options opt = test_options(300);
  Status st[2];
  std::thread t([&] {
    std::unique_ptr<Communicator> c;
    st[1] = Communicator::create(1, 3, &store, opt, &c);
  });
  std::unique_ptr<Communicator> c;
  st[0] = Communicator::create(0, 3, &store, opt, &c);
  t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(st[r].code(), ErrorCode::kRendezvous) << st[r].to_string();
    EXPECT_NE(st[r].message().find("timed out after 300 ms"), std::string::npos) << st[r].message();
    EXPECT_NE(st[r].message().find("rank(s) 2"), std::string::npos) << st[r].message();
  }
  // A missing lower rank: rank 1 of 2 alone waits for rank 0's address.
  std::string path2 = temp_store_path();
  FileStore store2(path2);
  Status s = Communicator::create(1, 2, &store2, opt, &c);
  EXPECT_EQ(s.code(), ErrorCode::kRendezvous);
  EXPECT_NE(s.message().find("rank 0 never published its address"), std::string::npos) << s.message();
  std::remove(path.c_str());
  std::remove(path2.c_str());
}

TEST(Faults, VersionMismatchIsReportedOnBothSides) {
  std::string path = temp_store_path();
  FileStore store(path);
  Options good = test_options(5000), bad = test_options(5000);
  bad.wire_version = kWireVersion + 1;
  Status st[2];
  std::thread t([&] {
    std::unique_ptr<Communicator> c;
    st[1] = Communicator::create(1, 2, &store, bad, &c);
  });
  std::unique_ptr<Communicator> c;
  st[0] = Communicator::create(0, 2, &store, good, &c);
  t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(st[r].code(), ErrorCode::kVersionMismatch) << r << ": " << st[r].to_string();
    EXPECT_NE(st[r].message().find("version"), std::string::npos) << st[r].message();
  }
  std::remove(path.c_str());
}

TEST(Faults, ClosedPeerFailsPendingReceivesWithoutAborting) {
  Options opt = test_options();
  run_ranks(3, [&](int rank, Communicator& c) {
    if (rank == 2) {
      ASSERT_TRUE(c.send(0, 1, "bye", 3).ok());
      c.close();
      EXPECT_EQ(c.send(0, 1, "x", 1).code(), ErrorCode::kClosed);
      return;
    }
    if (rank == 0) {
      char b[4];
      ASSERT_TRUE(c.recv(2, 1, b, 3).ok());
      Status st = c.recv(2, 9, b, 4, nullptr, milliseconds(30000));
      EXPECT_EQ(st.code(), ErrorCode::kPeerGone) << st.to_string();
      EXPECT_NE(st.message().find("closed its communicator"), std::string::npos) << st.message();
    }
    // Ranks 0 and 1 still talk.
    char v = 0;
    if (rank == 0) {
      ASSERT_TRUE(c.send(1, 5, "k", 1).ok());
    }
    if (rank == 1) {
      ASSERT_TRUE(c.recv(0, 5, &v, 1).ok());
      EXPECT_EQ(v, 'k');
    }
    EXPECT_TRUE(c.health().ok()) << c.health().to_string();
  }, opt);
}

TEST(Faults, EnvironmentRendezvous) {
  // MASTER_PORT: a port that was free a moment ago.
  int lfd = -1;
  uint16_t port = 0;
  ASSERT_TRUE(net::listen_tcp("127.0.0.1", 0, 1, &lfd, &port).ok());
  net::close_fd(lfd);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  setenv("WORLD_SIZE", "2", 1);
  pid_t pid = fork_rank([&] {
    setenv("RANK", "1", 1);
    std::unique_ptr<Communicator> c;
    if (!Communicator::create_from_env(test_options(), &c).ok()) return 3;
    return c->send(0, 4, "env", 3).ok() ? 0 : 4;
  });
  setenv("RANK", "0", 1);
  std::unique_ptr<Communicator> c;
  Status st = Communicator::create_from_env(test_options(), &c);
  ASSERT_TRUE(st.ok()) << st.to_string();
  char b[3];
  ASSERT_TRUE(c->recv(1, 4, b, 3).ok());
  EXPECT_EQ(std::string(b, 3), "env");
  int wst = 0;
  waitpid(pid, &wst, 0);
  EXPECT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
  c.reset();
  setenv("RANK", "x", 1);
  EXPECT_EQ(Communicator::create_from_env(test_options(), &c).code(), ErrorCode::kRendezvous);
  for (const char* k : {"MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"}) {
    unsetenv(k);
  }
}
