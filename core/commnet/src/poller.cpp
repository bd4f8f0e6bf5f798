#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "heron_commnet/transport.h"
#include "net.h"

#if defined(__linux__) && !defined(COMMNET_NO_EPOLL)
#define COMMNET_WITH_EPOLL 1
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

namespace heron_commnet {

bool have_epoll() {
#ifdef COMMNET_WITH_EPOLL
  return true;
#else
  return false;
#endif
}

namespace {

#ifdef COMMNET_WITH_EPOLL
class EpollPoller : public Poller {
 public:
  EpollPoller() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ >= 0 && wake_ >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = nullptr;
      epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &ev);
    }
  }
  ~EpollPoller() override {
    net::close_fd(ep_);
    net::close_fd(wake_);
  }
  bool ok() const { return ep_ >= 0 && wake_ >= 0; }
  const char* name() const override { return "epoll"; }
  Status ctl(int op, int fd, void* ctx, bool r, bool w) {
    epoll_event ev{};
    ev.events = (r ? EPOLLIN : 0u) | (w ? EPOLLOUT : 0u) | EPOLLRDHUP;
    ev.data.ptr = ctx;
    if (epoll_ctl(ep_, op, fd, &ev) != 0) return Status(ErrorCode::kIo, "epoll_ctl: " + net::errno_string(errno));
    return Status::OK();
  }
  Status add(int fd, void* ctx, bool r, bool w) override { return ctl(EPOLL_CTL_ADD, fd, ctx, r, w); }
  Status modify(int fd, void* ctx, bool r, bool w) override { return ctl(EPOLL_CTL_MOD, fd, ctx, r, w); }
  Status remove(int fd) override {
    epoll_event ev{};
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, &ev);
    return Status::OK();
  }
  int wait(Event* events, int max_events, int timeout_ms) override {
    epoll_event evs[64];
    int n = epoll_wait(ep_, evs, std::min(64, max_events), timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    int out = 0;
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {
        uint64_t v;
        while (::read(wake_, &v, sizeof v) > 0) {
        }
        continue;
      }
      Event& e = events[out++];
      e.ctx = evs[i].data.ptr;
      e.readable = (evs[i].events & (EPOLLIN | EPOLLRDHUP)) != 0;
      e.writable = (evs[i].events & EPOLLOUT) != 0;
      e.error = (evs[i].events & (EPOLLERR | EPOLLHUP)) != 0;
    }
    return out;
  }
  void wakeup() override {
    uint64_t one = 1;
    ssize_t r = ::write(wake_, &one, sizeof one);
    (void)r;
  }

 private:
  int ep_ = -1;
  int wake_ = -1;
};
#endif

class PollPoller : public Poller {
 public:
  PollPoller() {
    if (::pipe(pipe_) == 0) {
      for (int fd : pipe_) {
        net::set_nonblocking(fd, true);
        net::set_cloexec(fd);
      }
    } else {
      pipe_[0] = pipe_[1] = -1;
    }
  }
  ~PollPoller() override {
    net::close_fd(pipe_[0]);
    net::close_fd(pipe_[1]);
  }
  bool ok() const { return pipe_[0] >= 0; }
  const char* name() const override { return "poll"; }
  Status add(int fd, void* ctx, bool r, bool w) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      fds_[fd] = Entry{ctx, r, w};
    }
    wakeup();
    return Status::OK();
  }
  Status modify(int fd, void* ctx, bool r, bool w) override { return add(fd, ctx, r, w); }
  Status remove(int fd) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      fds_.erase(fd);
    }
    wakeup();
    return Status::OK();
  }
  int wait(Event* events, int max_events, int timeout_ms) override {
    std::vector<pollfd> pfds;
    std::vector<void*> ctxs;
    {
      std::lock_guard<std::mutex> lk(mu_);
      pfds.push_back(pollfd{pipe_[0], POLLIN, 0});
      ctxs.push_back(nullptr);
      for (auto& kv : fds_) {
        short ev = static_cast<short>((kv.second.r ? POLLIN : 0) | (kv.second.w ? POLLOUT : 0));
        pfds.push_back(pollfd{kv.first, ev, 0});
        ctxs.push_back(kv.second.ctx);
      }
    }
    int n = ::poll(pfds.data(), static_cast<nfds_t>(pfds.size()), timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    int out = 0;
    if (pfds[0].revents) {
      char buf[256];
      while (::read(pipe_[0], buf, sizeof buf) > 0) {
      }
    }
    for (size_t i = 1; i < pfds.size() && out < max_events; ++i) {
      if (!pfds[i].revents) continue;
      Event& e = events[out++];
      e.ctx = ctxs[i];
      e.readable = (pfds[i].revents & POLLIN) != 0;
      e.writable = (pfds[i].revents & POLLOUT) != 0;
      e.error = (pfds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
    }
    return out;
  }
  void wakeup() override {
    char c = 1;
    ssize_t r = ::write(pipe_[1], &c, 1);
    (void)r;
  }

 private:
  struct Entry {
    void* ctx;
    bool r, w;
  };
  std::mutex mu_;
  std::unordered_map<int, Entry> fds_;
  int pipe_[2] = {-1, -1};
};

}  // namespace

std::unique_ptr<Poller> make_poller(const std::string& name, Status* status) {
  *status = Status::OK();
  std::string n = name;
  if (n.empty()) n = have_epoll() ? "epoll" : "poll";
  if (n == "epoll") {
#ifdef COMMNET_WITH_EPOLL
    auto p = std::make_unique<EpollPoller>();
    if (!p->ok()) {
      *status = Status(ErrorCode::kIo, "cannot create an epoll instance: " + net::errno_string(errno));
      return nullptr;
    }
    return p;
#else
    *status = Status(ErrorCode::kInvalidArgument, "this build of CommNet has no epoll backend (use \"poll\")");
    return nullptr;
#endif
  }
  if (n == "poll") {
    auto p = std::make_unique<PollPoller>();
    if (!p->ok()) {
      *status = Status(ErrorCode::kIo, "cannot create the wakeup pipe: " + net::errno_string(errno));
      return nullptr;
    }
    return p;
  }
  *status = Status(ErrorCode::kInvalidArgument, "unknown poller '" + name + "' (expected \"epoll\" or \"poll\")");
  return nullptr;
}

}  // namespace heron_commnet
