// Point-to-point CommNet vs a raw TCP socket pair, in the same run, over loopback.
//   bench_p2p [--reps R] [--quick]
// Two processes (fork). For each message size both contenders run alternately R times
// (interleaved, so machine noise hits both alike); medians are reported with their ratio.
//  - throughput: rank 0 streams N messages of S bytes to rank 1, which answers with 1 byte when
//    it has them all; raw TCP uses blocking write()/read() loops, CommNet isend/irecv.
//  - latency: 8-byte ping-pong round trips (raw: write/read; CommNet: blocking send/recv, and
//    actor handlers that answer from the I/O thread).
#include <heron_commnet/commnet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

using namespace heron_commnet;
using Clock = std::chrono::steady_clock;

namespace {

void die(const char* what) {
  std::perror(what);
  std::exit(2);
}
void check(const Status& st, const char* what) {
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, st.to_string().c_str());
    std::exit(2);
  }
}
void write_full(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::write(fd, c, n);
    if (w <= 0) die("write");
    c += w;
    n -= static_cast<size_t>(w);
  }
}
void read_full(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n) {
    ssize_t r = ::read(fd, c, n);
    if (r <= 0) die("read");
    c += r;
    n -= static_cast<size_t>(r);
  }
}

int raw_pair(int rank, Store& store) {
  int one = 1;
  if (rank == 0) {
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) || ::listen(l, 1)) die("listen");
    socklen_t len = sizeof a;
    getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    check(store.set("raw_port", std::to_string(ntohs(a.sin_port))), "store");
    int fd = ::accept(l, nullptr, nullptr);
    ::close(l);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }
  std::string port;
  check(store.get("raw_port", std::chrono::milliseconds(30000), &port), "store");
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(port.c_str())));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a)) die("connect");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

size_t count_for(size_t size) {
  size_t total = size >= (1u << 20) ? (256u << 20) : (32u << 20);
  size_t n = total / std::max<size_t>(size, 1);
  return std::max<size_t>(8, std::min<size_t>(n, 20000));
}

double raw_throughput(int rank, int fd, size_t size, std::vector<char>& buf) {
  size_t n = count_for(size);
  char ack = 0;
  auto t0 = Clock::now();
  if (rank == 0) {
    for (size_t i = 0; i < n; ++i) write_full(fd, buf.data(), size);
    read_full(fd, &ack, 1);
  } else {
    for (size_t i = 0; i < n; ++i) read_full(fd, buf.data(), size);
    write_full(fd, &ack, 1);
  }
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return static_cast<double>(n * size) / s;
}

double cn_throughput(int rank, Communicator& c, size_t size, std::vector<char>& buf) {
  size_t n = count_for(size);
  char ack = 0;
  std::vector<Request> rs;
  rs.reserve(n);
  auto t0 = Clock::now();
  if (rank == 0) {
    for (size_t i = 0; i < n; ++i) rs.push_back(c.isend(1, 1, buf.data(), size));
    for (auto& r : rs) check(r.wait(), "isend");
    check(c.recv(1, 2, &ack, 1), "ack");
  } else {
    for (size_t i = 0; i < n; ++i) rs.push_back(c.irecv(0, 1, buf.data(), size));
    for (auto& r : rs) check(r.wait(), "irecv");
    check(c.send(0, 2, &ack, 1), "ack");
  }
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return static_cast<double>(n * size) / s;
}

constexpr int kPings = 2000;

double raw_latency(int rank, int fd) {
  char b[8] = {0};
  auto t0 = Clock::now();
  for (int i = 0; i < kPings; ++i) {
    if (rank == 0) {
      write_full(fd, b, 8);
      read_full(fd, b, 8);
    } else {
      read_full(fd, b, 8);
      write_full(fd, b, 8);
    }
  }
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kPings;
}

double cn_latency(int rank, Communicator& c) {
  char b[8] = {0};
  auto t0 = Clock::now();
  for (int i = 0; i < kPings; ++i) {
    if (rank == 0) {
      check(c.send(1, 3, b, 8), "ping");
      check(c.recv(1, 3, b, 8), "pong");
    } else {
      check(c.recv(0, 3, b, 8), "ping");
      check(c.send(0, 3, b, 8), "pong");
    }
  }
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kPings;
}

// Actor style: rank 1's handler answers each ping from the I/O thread; rank 0's handler sends the
// next ping. Rank 0 waits for the last pong.
double cn_actor_latency(int rank, Communicator& c, int round) {
  const uint64_t tag = 1000 + static_cast<uint64_t>(round);
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  static char b[8];
  if (rank == 1) {
    c.set_handler(tag, [&c](int, uint64_t t, std::vector<uint8_t>&&) { c.isend(0, t, b, 8); });
    char go;
    check(c.recv(0, 4, &go, 1), "go");  // rank 0 is done
    c.set_handler(tag, {});
    return 0;
  }
  c.set_handler(tag, [&](int, uint64_t t, std::vector<uint8_t>&&) {
    std::lock_guard<std::mutex> lk(mu);
    if (++count < kPings) c.isend(1, t, b, 8);
    else cv.notify_all();
  });
  auto t0 = Clock::now();
  c.isend(1, tag, b, 8);
  {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return count >= kPings; });
  }
  double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kPings;
  c.set_handler(tag, {});
  check(c.send(1, 4, "g", 1), "go");
  return us;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string human(size_t n) {
  char b[32];
  if (n >= (1u << 20)) std::snprintf(b, sizeof b, "%zu MiB", n >> 20);
  else if (n >= 1024) std::snprintf(b, sizeof b, "%zu KiB", n >> 10);
  else std::snprintf(b, sizeof b, "%zu B", n);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    if (a == "--quick") quick = true;
  }
  if (quick) reps = std::min(reps, 3);
  std::vector<size_t> sizes = {8, 64, 1024, 16 << 10, 256 << 10, 1 << 20, 8 << 20, 64 << 20};
  if (quick) sizes = {8, 1024, 64 << 10, 1 << 20, 8 << 20};
  std::string path = "/tmp/commnet_bench_" + std::to_string(::getpid());
  std::remove(path.c_str());
  fflush(nullptr);
  pid_t child = fork();
  int rank = child == 0 ? 1 : 0;
  FileStore store(path);
  int fd = raw_pair(rank, store);
  Options opt;
  opt.timeout = std::chrono::milliseconds(120000);
  std::unique_ptr<Communicator> comm;
  check(Communicator::create(rank, 2, &store, opt, &comm), "create");
  std::vector<char> buf(64 << 20, 1);
  if (rank == 0)
    std::printf("CommNet %s (%s) vs raw TCP, loopback, 2 processes, %d interleaved repetitions, medians\n\n", version(),
                comm->poller_name(), reps);
  if (rank == 0) std::printf("%-9s %14s %14s %8s\n", "size", "raw TCP GB/s", "CommNet GB/s", "ratio");
  for (size_t s : sizes) {
    std::vector<double> raw, cn;
    raw_throughput(rank, fd, s, buf);  // warm-up
    cn_throughput(rank, *comm, s, buf);
    for (int r = 0; r < reps; ++r) {
      raw.push_back(raw_throughput(rank, fd, s, buf));
      cn.push_back(cn_throughput(rank, *comm, s, buf));
    }
    if (rank == 0)
      std::printf("%-9s %14.3f %14.3f %7.2fx\n", human(s).c_str(), median(raw) / 1e9, median(cn) / 1e9, median(cn) / median(raw));
    std::fflush(stdout);
  }
  std::vector<double> rl, cl, al;
  raw_latency(rank, fd);
  cn_latency(rank, *comm);
  for (int r = 0; r < reps; ++r) {
    rl.push_back(raw_latency(rank, fd));
    cl.push_back(cn_latency(rank, *comm));
    al.push_back(cn_actor_latency(rank, *comm, r));
  }
  if (rank == 0) {
    std::printf("\n8-byte ping-pong round trip (median of %d x %d):\n", reps, kPings);
    std::printf("  raw TCP                   %8.1f us\n", median(rl));
    std::printf("  CommNet send/recv         %8.1f us  (%.2fx raw)\n", median(cl), median(cl) / median(rl));
    std::printf("  CommNet actor handlers    %8.1f us  (%.2fx raw)\n", median(al), median(al) / median(rl));
  }
  comm.reset();
  ::close(fd);
  if (rank == 1) _exit(0);
  int st = 0;
  waitpid(child, &st, 0);
  std::remove(path.c_str());
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
