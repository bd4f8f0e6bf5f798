// Internal socket helpers (POSIX; Linux and macOS).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "heron_commnet/status.h"

namespace heron_commnet {
namespace net {

using Clock = std::chrono::steady_clock;

std::string errno_string(int err);
/// Milliseconds left until deadline (>= 0), capped at INT32_MAX.
int ms_left(Clock::time_point deadline);

/// Listens on host:port (port 0: any free port); *port_out receives the bound port.
Status listen_tcp(const std::string& host, uint16_t port, int backlog, int* fd_out, uint16_t* port_out);
/// Connects to host:port, retrying refused connections until the deadline.
Status connect_tcp(const std::string& host, uint16_t port, Clock::time_point deadline, int* fd_out);
/// Accepts one connection before the deadline (kTimeout otherwise).
Status accept_tcp(int listen_fd, Clock::time_point deadline, int* fd_out);
/// Blocking-with-deadline I/O on a socket of either mode.
Status write_all(int fd, const void* data, size_t n, Clock::time_point deadline);
Status read_all(int fd, void* data, size_t n, Clock::time_point deadline);

void set_nonblocking(int fd, bool on);
void set_nodelay(int fd);
void set_nosigpipe(int fd);
void set_cloexec(int fd);
void close_fd(int fd);

/// "host:port" -> parts. Accepts "[v6]:port".
bool split_host_port(const std::string& s, std::string* host, uint16_t* port);

}  // namespace net
}  // namespace heron_commnet
