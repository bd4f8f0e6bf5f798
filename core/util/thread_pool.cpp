#include "core/util/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/util/cpu_relax.h"
#include "core/util/error.h"

namespace heron {
namespace {

thread_local bool t_in_pool_task = false;

// Idle workers (and a caller waiting for the last chunk) spin this long before blocking on a
// condition variable: ops follow each other within microseconds in a session, and waking a
// sleeping thread costs tens of microseconds, a large share of a 100 us op. HERON_POOL_SPIN_US
// sets it (0: block at once).
int64_t spin_ns() {
  static const int64_t ns = [] {
    const char* e = std::getenv("HERON_POOL_SPIN_US");
    long us = e ? std::strtol(e, nullptr, 10) : 100;
    return static_cast<int64_t>(std::max(0L, std::min(us, 100000L))) * 1000;
  }();
  return ns;
}

// Spins until pred() holds or the spin time is over; returns pred().
template <typename Pred>
bool spin_until(Pred pred) {
  const int64_t limit = spin_ns();
  if (limit <= 0) return pred();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (pred()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count() > limit)
      return pred();
  }
}

class ThreadPool {
 public:
  explicit ThreadPool(int n) : n_threads_(n) {
    for (int i = 0; i < n - 1; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return n_threads_; }

  // Returns false when the pool is busy (caller then runs inline).
  bool run(int64_t begin, int64_t end, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock<std::mutex> submit(submit_mu_, std::try_to_lock);
    if (!submit.owns_lock()) return false;
    int64_t n_chunks = (end - begin + chunk - 1) / chunk;
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      begin_ = begin;
      end_ = end;
      chunk_ = chunk;
      n_chunks_ = n_chunks;
      next_.store(0);
      done_.store(0);
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work();
    spin_until([&] { return done_.load() == n_chunks_ && active_.load() == 0; });
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return done_.load() == n_chunks_ && active_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  void work() {
    bool prev = t_in_pool_task;
    t_in_pool_task = true;
    for (;;) {
      int64_t c = next_.fetch_add(1);
      if (c >= n_chunks_) break;
      int64_t b = begin_ + c * chunk_;
      int64_t e = std::min(end_, b + chunk_);
      try {
        (*fn_)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
      if (done_.fetch_add(1) + 1 == n_chunks_) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_all();
      }
    }
    t_in_pool_task = prev;
  }
  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load() != seen; });
        seen = generation_.load();
        if (stop_) return;
        if (!fn_) continue;
        ++active_;
      }
      work();
      {
        std::lock_guard<std::mutex> lk(mu_);
        --active_;
      }
      done_cv_.notify_all();
    }
  }

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex submit_mu_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};  // written under mu_; read by spinning workers without it
  bool stop_ = false;
  std::atomic<int> active_{0};  // written under mu_
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0, chunk_ = 1, n_chunks_ = 0;
  std::atomic<int64_t> next_{0}, done_{0};
  std::exception_ptr error_;
};

int default_threads() {
  if (const char* env = std::getenv("HERON_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

std::mutex g_pool_mu;
std::shared_ptr<ThreadPool> g_pool;
std::atomic<int> g_num_threads{0};
std::vector<void (*)(int)>& listeners() {
  static std::vector<void (*)(int)> v;
  return v;
}

std::shared_ptr<ThreadPool> pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (!g_pool) {
    int n = g_num_threads.load() ? g_num_threads.load() : default_threads();
    g_num_threads = n;
    g_pool = std::make_shared<ThreadPool>(n);
  }
  return g_pool;
}

}  // namespace

int get_num_threads() {
  int n = g_num_threads.load();
  return n ? n : pool()->size();
}

void set_num_threads(int n) {
  if (n < 1) throw Error(ErrorCode::InvalidArgument, str_cat("set_num_threads: need at least 1 thread, got ", n));
  if (n > 1024) throw Error(ErrorCode::InvalidArgument, str_cat("set_num_threads: ", n, " threads is more than the limit of 1024"));
  std::shared_ptr<ThreadPool> old;
  {
    std::lock_guard<std::mutex> lk(g_pool_mu);
    old = std::move(g_pool);
    g_num_threads = n;
  }
  old.reset();  // joins its workers once no job holds it
  for (auto fn : listeners()) fn(n);
}

void add_num_threads_listener(void (*fn)(int)) { listeners().push_back(fn); }

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  int64_t n = end - begin;
  grain = std::max<int64_t>(grain, 1);
  if (t_in_pool_task || n <= grain) { fn(begin, end); return; }
  auto p = pool();
  int threads = p->size();
  if (threads <= 1) { fn(begin, end); return; }
  int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
  int64_t chunk = (n + chunks - 1) / chunks;
  if (!p->run(begin, end, chunk, fn)) fn(begin, end);
}

}  // namespace heron
