#include "heron_commnet/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "net.h"

namespace heron_commnet {

using net::Clock;

// ---------------------------------------------------------------- TcpStore
namespace {
constexpr uint8_t kCmdSet = 1, kCmdGet = 2, kCmdCheck = 3;
constexpr uint32_t kMaxStoreItem = 64u << 20;

void put_u32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get_u32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }

Status read_u32(int fd, Clock::time_point dl, uint32_t* v) {
  uint8_t b[4];
  Status st = net::read_all(fd, b, 4, dl);
  if (st.ok()) *v = get_u32(b);
  return st;
}
Status read_str(int fd, Clock::time_point dl, std::string* s) {
  uint32_t n = 0;
  Status st = read_u32(fd, dl, &n);
  if (!st.ok()) return st;
  if (n > kMaxStoreItem) return Status(ErrorCode::kProtocol, "store item of " + std::to_string(n) + " bytes is too large");
  s->resize(n);
  return n ? net::read_all(fd, &(*s)[0], n, dl) : Status::OK();
}
}  // namespace

struct TcpStore::Impl {
  bool server = false;
  int listen_fd = -1;
  uint16_t port = 0;
  std::atomic<bool> stop{false};
  std::thread acceptor;
  std::mutex mu;  // data, client list
  std::condition_variable cv;
  std::map<std::string, std::string> data;
  std::vector<int> client_fds;
  std::vector<std::thread> client_threads;
  // client side
  int fd = -1;
  std::mutex client_mu;

  void serve(int cfd) {
    const auto far = [] { return Clock::now() + std::chrono::hours(24 * 365); };
    for (;;) {
      uint8_t cmd = 0;
      if (!net::read_all(cfd, &cmd, 1, far()).ok()) break;
      std::string key, value, reply;
      if (!read_str(cfd, far(), &key).ok()) break;
      if (cmd == kCmdSet) {
        if (!read_str(cfd, far(), &value).ok()) break;
        {
          std::lock_guard<std::mutex> lk(mu);
          data[key] = value;
        }
        cv.notify_all();
        reply.push_back(0);
        put_u32(&reply, 0);
      } else if (cmd == kCmdGet || cmd == kCmdCheck) {
        uint32_t timeout_ms = 0;
        if (cmd == kCmdGet && !read_u32(cfd, far(), &timeout_ms).ok()) break;
        std::unique_lock<std::mutex> lk(mu);
        cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return stop.load() || data.count(key) > 0; });
        auto it = data.find(key);
        if (it == data.end()) {
          reply.push_back(1);
          put_u32(&reply, 0);
        } else {
          reply.push_back(0);
          put_u32(&reply, static_cast<uint32_t>(it->second.size()));
          reply += it->second;
        }
      } else {
        break;  // garbage: drop the client
      }
      if (!net::write_all(cfd, reply.data(), reply.size(), Clock::now() + std::chrono::seconds(30)).ok()) break;
    }
    ::shutdown(cfd, SHUT_RDWR);
  }

  void accept_loop() {
    while (!stop.load()) {
      int cfd = -1;
      Status st = net::accept_tcp(listen_fd, Clock::now() + std::chrono::milliseconds(100), &cfd);
      if (!st.ok()) continue;
      std::lock_guard<std::mutex> lk(mu);
      if (stop.load()) {
        net::close_fd(cfd);
        break;
      }
      client_fds.push_back(cfd);
      client_threads.emplace_back([this, cfd] { serve(cfd); });
    }
  }

  Status request(const std::string& req, bool expect_value, Clock::time_point dl, bool* found, std::string* value) {
    std::lock_guard<std::mutex> lk(client_mu);
    Status st = net::write_all(fd, req.data(), req.size(), dl);
    uint8_t code = 0;
    if (st.ok()) st = net::read_all(fd, &code, 1, dl);
    std::string v;
    if (st.ok()) st = read_str(fd, dl, &v);
    if (!st.ok()) return Status(ErrorCode::kRendezvous, "TCP store request failed: " + st.message());
    *found = code == 0;
    if (expect_value && value) *value = std::move(v);
    return Status::OK();
  }
};

TcpStore::TcpStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Status TcpStore::create(const std::string& host, uint16_t port, bool is_server, std::chrono::milliseconds timeout,
                        std::unique_ptr<TcpStore>* out) {
  auto impl = std::make_unique<Impl>();
  Clock::time_point dl = Clock::now() + timeout;
  if (is_server) {
    // Bind to the wildcard address unless the host is a loopback name.
    std::string bind_host = (host == "127.0.0.1" || host == "localhost" || host == "::1") ? host : "";
    Status st = net::listen_tcp(bind_host, port, 128, &impl->listen_fd, &impl->port);
    if (!st.ok()) return Status(ErrorCode::kRendezvous, "TCP store server: " + st.message());
    impl->server = true;
    Impl* raw = impl.get();
    impl->acceptor = std::thread([raw] { raw->accept_loop(); });
  } else {
    impl->port = port;
  }
  uint16_t p = impl->port;
  Status st = net::connect_tcp(host, p, dl, &impl->fd);
  if (!st.ok()) {
    std::unique_ptr<TcpStore> tmp(new TcpStore(std::move(impl)));  // stops the server
    return Status(ErrorCode::kRendezvous, "TCP store at " + host + ":" + std::to_string(p) + " unreachable within " +
                                              std::to_string(timeout.count()) + " ms: " + st.message());
  }
  out->reset(new TcpStore(std::move(impl)));
  return Status::OK();
}

TcpStore::~TcpStore() {
  if (impl_->fd >= 0) {
    ::shutdown(impl_->fd, SHUT_RDWR);
    net::close_fd(impl_->fd);
  }
  if (impl_->server) {
    impl_->stop = true;
    impl_->cv.notify_all();
    if (impl_->acceptor.joinable()) impl_->acceptor.join();
    {
      std::lock_guard<std::mutex> lk(impl_->mu);
      for (int cfd : impl_->client_fds) ::shutdown(cfd, SHUT_RDWR);
    }
    impl_->cv.notify_all();
    for (auto& t : impl_->client_threads) t.join();
    for (int cfd : impl_->client_fds) net::close_fd(cfd);
    net::close_fd(impl_->listen_fd);
  }
}

uint16_t TcpStore::port() const { return impl_->port; }

Status TcpStore::set(const std::string& key, const std::string& value) {
  if (key.size() > kMaxStoreItem || value.size() > kMaxStoreItem)
    return Status(ErrorCode::kInvalidArgument, "store key or value too large");
  std::string req(1, static_cast<char>(kCmdSet));
  put_u32(&req, static_cast<uint32_t>(key.size()));
  req += key;
  put_u32(&req, static_cast<uint32_t>(value.size()));
  req += value;
  bool found = false;
  return impl_->request(req, false, Clock::now() + std::chrono::seconds(60), &found, nullptr);
}

Status TcpStore::get(const std::string& key, std::chrono::milliseconds timeout, std::string* value) {
  std::string req(1, static_cast<char>(kCmdGet));
  put_u32(&req, static_cast<uint32_t>(key.size()));
  req += key;
  uint32_t ms = static_cast<uint32_t>(std::max<int64_t>(0, std::min<int64_t>(timeout.count(), UINT32_MAX)));
  put_u32(&req, ms);
  bool found = false;
  Status st = impl_->request(req, true, Clock::now() + timeout + std::chrono::seconds(10), &found, value);
  if (!st.ok()) return st;
  if (!found)
    return Status(ErrorCode::kRendezvous,
                  "key '" + key + "' did not appear in the TCP store within " + std::to_string(timeout.count()) + " ms");
  return Status::OK();
}

Status TcpStore::check(const std::string& key, bool* exists) {
  std::string req(1, static_cast<char>(kCmdCheck));
  put_u32(&req, static_cast<uint32_t>(key.size()));
  req += key;
  std::string v;
  return impl_->request(req, true, Clock::now() + std::chrono::seconds(60), exists, &v);
}

// ---------------------------------------------------------------- FileStore
// Records: "<hex key>\t<hex value>\n", appended under an exclusive flock.
namespace {
std::string to_hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string r;
  r.reserve(s.size() * 2);
  for (unsigned char c : s) {
    r.push_back(d[c >> 4]);
    r.push_back(d[c & 15]);
  }
  return r;
}
bool from_hex(const std::string& s, std::string* out) {
  if (s.size() % 2) return false;
  out->clear();
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); i += 2) {
    int a = v(s[i]), b = v(s[i + 1]);
    if (a < 0 || b < 0) return false;
    out->push_back(static_cast<char>(a * 16 + b));
  }
  return true;
}
}  // namespace

FileStore::FileStore(std::string path) : path_(std::move(path)) {}

Status FileStore::set(const std::string& key, const std::string& value) {
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return Status(ErrorCode::kRendezvous, "file store '" + path_ + "': " + net::errno_string(errno));
  ::flock(fd, LOCK_EX);
  std::string line = to_hex(key) + "\t" + to_hex(value) + "\n";
  ssize_t w = ::write(fd, line.data(), line.size());
  int err = errno;
  ::flock(fd, LOCK_UN);
  ::close(fd);
  if (w != static_cast<ssize_t>(line.size()))
    return Status(ErrorCode::kRendezvous, "file store '" + path_ + "': write failed: " + net::errno_string(err));
  return Status::OK();
}

Status FileStore::load(std::vector<std::pair<std::string, std::string>>* records) {
  records->clear();
  int fd = ::open(path_.c_str(), O_RDONLY);
  if (fd < 0) return Status::OK();  // not created yet: empty
  ::flock(fd, LOCK_SH);
  std::string content;
  char buf[65536];
  ssize_t r;
  while ((r = ::read(fd, buf, sizeof buf)) > 0) content.append(buf, static_cast<size_t>(r));
  ::flock(fd, LOCK_UN);
  ::close(fd);
  std::istringstream in(content);
  std::string line;
  while (std::getline(in, line)) {
    size_t tab = line.find('\t');
    std::string k, v;
    if (tab == std::string::npos || !from_hex(line.substr(0, tab), &k) || !from_hex(line.substr(tab + 1), &v)) continue;
    records->emplace_back(std::move(k), std::move(v));
  }
  return Status::OK();
}

Status FileStore::get(const std::string& key, std::chrono::milliseconds timeout, std::string* value) {
  Clock::time_point dl = Clock::now() + timeout;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> recs;
    Status st = load(&recs);
    if (!st.ok()) return st;
    for (auto it = recs.rbegin(); it != recs.rend(); ++it)
      if (it->first == key) {
        *value = it->second;
        return Status::OK();
      }
    if (Clock::now() >= dl)
      return Status(ErrorCode::kRendezvous, "key '" + key + "' did not appear in the file store '" + path_ + "' within " +
                                                std::to_string(timeout.count()) + " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(10, std::max(1, net::ms_left(dl)))));
  }
}

Status FileStore::check(const std::string& key, bool* exists) {
  std::vector<std::pair<std::string, std::string>> recs;
  Status st = load(&recs);
  *exists = false;
  for (auto& r : recs)
    if (r.first == key) *exists = true;
  return st;
}

// ---------------------------------------------------------------- environment
namespace {
const char* env_first(std::initializer_list<const char*> names) {
  for (const char* n : names) {
    const char* v = std::getenv(n);
    if (v && *v) return v;
  }
  return nullptr;
}
bool parse_int(const char* s, long lo, long hi, long* out) {
  if (!s) return false;
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}
}  // namespace

Status store_from_env(std::chrono::milliseconds timeout, EnvRendezvous* out) {
  const char* rank_s = env_first({"RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"});
  const char* world_s = env_first({"WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"});
  const char* addr_s = env_first({"MASTER_ADDR"});
  const char* port_s = env_first({"MASTER_PORT"});
  long rank = 0, world = 0, port = 0;
  if (!parse_int(world_s, 1, 1 << 20, &world))
    return Status(ErrorCode::kRendezvous, std::string("WORLD_SIZE is ") + (world_s ? "'" + std::string(world_s) + "', not a positive integer" : "unset"));
  if (!parse_int(rank_s, 0, world - 1, &rank))
    return Status(ErrorCode::kRendezvous, std::string("RANK is ") + (rank_s ? "'" + std::string(rank_s) + "'" : "unset") +
                                              ": expected an integer in [0, " + std::to_string(world) + ")");
  if (!parse_int(port_s, 1, 65535, &port))
    return Status(ErrorCode::kRendezvous, std::string("MASTER_PORT is ") + (port_s ? "'" + std::string(port_s) + "'" : "unset") +
                                              ": expected a port number");
  out->rank = static_cast<int>(rank);
  out->world_size = static_cast<int>(world);
  out->master_addr = addr_s ? addr_s : "127.0.0.1";
  out->master_port = static_cast<uint16_t>(port);
  std::unique_ptr<TcpStore> store;
  Status st = TcpStore::create(out->master_addr, out->master_port, rank == 0, timeout, &store);
  if (!st.ok()) return st;
  out->store = std::move(store);
  return Status::OK();
}

}  // namespace heron_commnet
