// Helpers shared by the CommNet tests: N ranks as threads of this process over a FileStore.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "heron_commnet/commnet.h"

namespace commnet_test {

inline std::string temp_store_path() {
  static std::atomic<int> n{0};
  std::string p = "/tmp/commnet_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
  std::remove(p.c_str());
  return p;
}

inline heron_commnet::Options test_options(int timeout_ms = 20000) {
  heron_commnet::Options o;
  o.timeout = std::chrono::milliseconds(timeout_ms);
  return o;
}

/// Runs body(rank, comm) on `world` threads, each with its own communicator; returns after all
/// threads end. Creation failures fail the test.
inline void run_ranks(int world, const std::function<void(int, heron_commnet::Communicator&)>& body,
                      heron_commnet::Options opt = test_options()) {
  std::string path = temp_store_path();
  heron_commnet::FileStore store(path);
  std::vector<std::thread> ts;
  for (int r = 0; r < world; ++r) {
    ts.emplace_back([&, r] {
      std::unique_ptr<heron_commnet::Communicator> c;
      heron_commnet::Status st = heron_commnet::Communicator::create(r, world, &store, opt, &c);
      ASSERT_TRUE(st.ok()) << "rank " << r << ": " << st.to_string();
      body(r, *c);
    });
  }
  for (auto& t : ts) t.join();
  std::remove(path.c_str());
}

}  // namespace commnet_test
