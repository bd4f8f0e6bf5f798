// An outside program built against an installed CommNet: two ranks (threads) exchange a message.
#include <heron_commnet/commnet.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <unistd.h>

using namespace heron_commnet;

int main() {
  std::string path = std::string("/tmp/commnet_consumer_store_") + std::to_string(::getpid());
  std::remove(path.c_str());
  FileStore store(path);
  Options opt;
  opt.timeout = std::chrono::milliseconds(20000);
  std::string got;
  Status s1;
  std::thread t([&] {
    std::unique_ptr<Communicator> c;
    s1 = Communicator::create(1, 2, &store, opt, &c);
    if (s1.ok()) s1 = c->send(0, 7, "hello", 5);
  });
  std::unique_ptr<Communicator> c;
  Status s0 = Communicator::create(0, 2, &store, opt, &c);
  char buf[16] = {0};
  size_t n = 0;
  if (s0.ok()) s0 = c->recv(1, 7, buf, sizeof buf, &n);
  t.join();
  std::remove(path.c_str());
  if (!s0.ok() || !s1.ok() || std::string(buf, n) != "hello") {
    std::printf("consumer failed: %s / %s\n", s0.to_string().c_str(), s1.to_string().c_str());
    return 1;
  }
  std::printf("consumer ok (CommNet %s, %s)\n", version(), c->poller_name());
  return 0;
}
