#include "net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

namespace heron_commnet {
namespace net {

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;
#endif

std::string errno_string(int err) { return std::string(std::strerror(err)); }

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left < 0) return 0;
  if (left > INT_MAX) return INT_MAX;
  return static_cast<int>(left);
}

void set_nonblocking(int fd, bool on) {
  int fl = fcntl(fd, F_GETFL, 0);
  if (fl < 0) return;
  fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}
void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
void set_nosigpipe(int fd) {
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#else
  (void)fd;
#endif
}
void set_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFD, 0);
  if (fl >= 0) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}
void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

bool split_host_port(const std::string& s, std::string* host, uint16_t* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 >= s.size()) return false;
  std::string h = s.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  char* end = nullptr;
  unsigned long p = std::strtoul(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p > 65535) return false;
  *host = h;
  *port = static_cast<uint16_t>(p);
  return true;
}

namespace {
Status resolve(const std::string& host, uint16_t port, bool passive, addrinfo** out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  std::string ps = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), ps.c_str(), &hints, out);
  if (rc != 0) return Status(ErrorCode::kIo, "cannot resolve '" + host + "': " + gai_strerror(rc));
  return Status::OK();
}
}  // namespace

Status listen_tcp(const std::string& host, uint16_t port, int backlog, int* fd_out, uint16_t* port_out) {
  addrinfo* ai = nullptr;
  Status st = resolve(host, port, true, &ai);
  if (!st.ok()) return st;
  int last_err = 0;
  for (addrinfo* p = ai; p; p = p->ai_next) {
    int fd = ::socket(p->ai_family, p->ai_socktype, p->ai_protocol);
    if (fd < 0) { last_err = errno; continue; }
    set_cloexec(fd);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, p->ai_addr, p->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
      last_err = errno;
      ::close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    *fd_out = fd;
    freeaddrinfo(ai);
    return Status::OK();
  }
  freeaddrinfo(ai);
  return Status(ErrorCode::kIo, "cannot listen on " + host + ":" + std::to_string(port) + ": " + errno_string(last_err));
}

Status connect_tcp(const std::string& host, uint16_t port, Clock::time_point deadline, int* fd_out) {
  int last_err = 0;
  int delay_ms = 5;
  do {
    addrinfo* ai = nullptr;
    Status st = resolve(host, port, false, &ai);
    if (!st.ok()) return st;
    for (addrinfo* p = ai; p; p = p->ai_next) {
      int fd = ::socket(p->ai_family, p->ai_socktype, p->ai_protocol);
      if (fd < 0) { last_err = errno; continue; }
      set_cloexec(fd);
      set_nonblocking(fd, true);
      int rc = ::connect(fd, p->ai_addr, p->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS) {
        pollfd pfd{fd, POLLOUT, 0};
        int pr;
        do { pr = ::poll(&pfd, 1, ms_left(deadline)); } while (pr < 0 && errno == EINTR);
        if (pr == 1) {
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          rc = err == 0 ? 0 : -1;
          errno = err;
        } else {
          rc = -1;
          errno = ETIMEDOUT;
        }
      }
      if (rc == 0) {
        set_nonblocking(fd, false);
        set_nodelay(fd);
        set_nosigpipe(fd);
        *fd_out = fd;
        freeaddrinfo(ai);
        return Status::OK();
      }
      last_err = errno;
      ::close(fd);
    }
    freeaddrinfo(ai);
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(delay_ms, std::max(1, ms_left(deadline)))));
    delay_ms = std::min(delay_ms * 2, 100);
  } while (Clock::now() < deadline);
  return Status(ErrorCode::kTimeout, "cannot connect to " + host + ":" + std::to_string(port) + " before the deadline (" +
                                         errno_string(last_err ? last_err : ETIMEDOUT) + ")");
}

Status accept_tcp(int listen_fd, Clock::time_point deadline, int* fd_out) {
  for (;;) {
    pollfd pfd{listen_fd, POLLIN, 0};
    int pr = ::poll(&pfd, 1, ms_left(deadline));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return Status(ErrorCode::kIo, "poll on the listening socket: " + errno_string(errno));
    if (pr == 0) return Status(ErrorCode::kTimeout, "no connection arrived before the deadline");
    int fd = ::accept(listen_fd, nullptr, nullptr);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      return Status(ErrorCode::kIo, "accept: " + errno_string(errno));
    }
    set_cloexec(fd);
    set_nonblocking(fd, false);
    set_nodelay(fd);
    set_nosigpipe(fd);
    *fd_out = fd;
    return Status::OK();
  }
}

Status write_all(int fd, const void* data, size_t n, Clock::time_point deadline) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, kSendFlags | MSG_DONTWAIT);
    if (w > 0) { p += w; n -= static_cast<size_t>(w); continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd, POLLOUT, 0};
      int pr = ::poll(&pfd, 1, ms_left(deadline));
      if (pr == 0) return Status(ErrorCode::kTimeout, "write timed out");
      continue;
    }
    return Status(ErrorCode::kPeerGone, "write failed: " + errno_string(errno));
  }
  return Status::OK();
}

Status read_all(int fd, void* data, size_t n, Clock::time_point deadline) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, MSG_DONTWAIT);
    if (r > 0) { p += r; n -= static_cast<size_t>(r); continue; }
    if (r == 0) return Status(ErrorCode::kPeerGone, "connection closed by the peer");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd pfd{fd, POLLIN, 0};
      int pr = ::poll(&pfd, 1, ms_left(deadline));
      if (pr == 0) return Status(ErrorCode::kTimeout, "read timed out");
      continue;
    }
    return Status(ErrorCode::kPeerGone, "read failed: " + errno_string(errno));
  }
  return Status::OK();
}

}  // namespace net
}  // namespace heron_commnet
