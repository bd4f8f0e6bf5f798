// heron::distributed collectives: 2-4 ranks as threads (each with its own CommNet communicator),
// every collective and dtype, checked against values computed here in double precision.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/distributed/process_group.h"
#include "core/ops/dispatcher.h"
#include "core/tensor/tensor.h"

using namespace heron;
using distributed::ProcessGroup;
using distributed::ReduceOp;

namespace {

const DType kAll[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int8,
                      DType::UInt8,   DType::Int32,   DType::Int64,   DType::Bool};

void run_world(int n, const std::function<void(ProcessGroup&)>& body, int64_t timeout_ms = 30000) {
  static std::atomic<int> counter{0};
  std::string path = "/tmp/heron_dist_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::remove(path.c_str());
  std::vector<std::thread> ts;
  std::vector<std::string> errors(n);
  for (int r = 0; r < n; ++r)
    ts.emplace_back([&, r] {
      try {
        auto pg = ProcessGroup::init("file://" + path, r, n, timeout_ms);
        body(*pg);
        pg->destroy();
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ts) t.join();
  std::remove(path.c_str());
  for (int r = 0; r < n; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

Tensor from_doubles(const std::vector<double>& v, DType dt) {
  Tensor t = Tensor::empty(Dims{static_cast<int64_t>(v.size())}, DType::Float64, host_device());
  std::copy(v.begin(), v.end(), static_cast<double*>(t.raw_data()));
  return t.to(dt).contiguous();
}

std::vector<double> to_doubles(const Tensor& t) {
  Tensor d = t.to(DType::Float64).contiguous();
  const double* p = static_cast<const double*>(d.raw_data());
  return std::vector<double>(p, p + d.numel());
}

double value(int rank, size_t i, ReduceOp op, DType dt) {
  if (dt == DType::Bool) return static_cast<double>((i + rank) % 2);
  if (op == ReduceOp::Product) return 1.0 + static_cast<double>((i + rank) % 2);
  return static_cast<double>(rank + 1 + i % 3);
}

std::vector<double> inputs(int rank, size_t count, ReduceOp op, DType dt) {
  std::vector<double> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = value(rank, i, op, dt);
  return v;
}

double expected(int n, size_t i, ReduceOp op, DType dt) {
  double acc = value(0, i, op, dt);
  for (int r = 1; r < n; ++r) {
    double v = value(r, i, op, dt);
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Avg: acc += v; break;
      case ReduceOp::Product: acc *= v; break;
      case ReduceOp::Min: acc = std::min(acc, v); break;
      case ReduceOp::Max: acc = std::max(acc, v); break;
    }
  }
  if (dt == DType::Bool) {
    bool any = op == ReduceOp::Sum || op == ReduceOp::Max;
    bool r = any ? false : true;
    for (int k = 0; k < n; ++k) r = any ? (r || value(k, i, op, dt) != 0) : (r && value(k, i, op, dt) != 0);
    return r ? 1 : 0;
  }
  if (op == ReduceOp::Avg) acc /= n;
  return acc;
}

void expect_close(const std::vector<double>& got, const std::function<double(size_t)>& want, const std::string& what) {
  size_t bad = 0;
  for (size_t i = 0; i < got.size() && bad < 3; ++i) {
    double w = want(i);
    if (std::fabs(got[i] - w) > 1e-2 * std::max(1.0, std::fabs(w))) {
      ADD_FAILURE() << what << " element " << i << ": got " << got[i] << ", expected " << w;
      ++bad;
    }
  }
}

}  // namespace

TEST(Distributed, AllReduceEveryDtypeOpAndAlgorithm) {
  for (int n : {2, 3, 4}) {
    run_world(n, [&](ProcessGroup& pg) {
      for (DType dt : kAll) {
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Product, ReduceOp::Min, ReduceOp::Max, ReduceOp::Avg}) {
          if (op == ReduceOp::Avg && !is_floating(dt)) continue;
          for (size_t count : {size_t(0), size_t(1), size_t(7), size_t(70001)}) {  // 70001: the ring for every dtype
            Tensor t = from_doubles(inputs(pg.rank(), count, op, dt), dt);
            pg.all_reduce(t, op);
            expect_close(to_doubles(t), [&](size_t i) { return expected(n, i, op, dt); },
                         std::string("all_reduce ") + dtype_name(dt) + " n=" + std::to_string(n) + " op=" +
                             std::to_string(static_cast<int>(op)) + " count=" + std::to_string(count));
          }
        }
      }
    });
  }
}

TEST(Distributed, AvgOnIntegersIsATypeError) {
  run_world(2, [&](ProcessGroup& pg) {
    Tensor t = from_doubles({1, 2}, DType::Int32);
    EXPECT_THROW(pg.all_reduce(t, ReduceOp::Avg), Error);
  });
}

TEST(Distributed, BroadcastReduceGatherScatterAllToAllBarrier) {
  for (int n : {2, 3, 4}) {
    run_world(n, [&](ProcessGroup& pg) {
      const int me = pg.rank();
      for (DType dt : kAll) {
        const std::string tag = std::string(dtype_name(dt)) + " n=" + std::to_string(n);
        auto val = [&](int r, size_t i) { return dt == DType::Bool ? double((r + i) % 2) : double((r * 7 + i) % 50); };
        auto vec = [&](int r, size_t c) {
          std::vector<double> v(c);
          for (size_t i = 0; i < c; ++i) v[i] = val(r, i);
          return v;
        };
        const size_t c = 1000;
        // broadcast from the last rank
        Tensor b = from_doubles(vec(me, c), dt);
        pg.broadcast(b, n - 1);
        expect_close(to_doubles(b), [&](size_t i) { return val(n - 1, i); }, "broadcast " + tag);
        // reduce (sum) to rank 1 % n; others unchanged
        Tensor r = from_doubles(inputs(me, c, ReduceOp::Sum, dt), dt);
        pg.reduce(r, 1 % n, ReduceOp::Sum);
        if (me == 1 % n)
          expect_close(to_doubles(r), [&](size_t i) { return expected(n, i, ReduceOp::Sum, dt); }, "reduce " + tag);
        else
          expect_close(to_doubles(r), [&](size_t i) { return value(me, i, ReduceOp::Sum, dt); }, "reduce (non-root) " + tag);
        // all_gather
        std::vector<Tensor> outs;
        for (int k = 0; k < n; ++k) outs.push_back(from_doubles(std::vector<double>(c, 0), dt));
        pg.all_gather(outs, from_doubles(vec(me, c), dt));
        for (int k = 0; k < n; ++k) expect_close(to_doubles(outs[k]), [&](size_t i) { return val(k, i); }, "all_gather " + tag);
        // reduce_scatter (sum): input k of rank r is inputs(r + k)
        std::vector<Tensor> ins;
        for (int k = 0; k < n; ++k) ins.push_back(from_doubles(inputs(me + k, c, ReduceOp::Sum, dt), dt));
        Tensor rs = from_doubles(std::vector<double>(c, 0), dt);
        pg.reduce_scatter(rs, ins, ReduceOp::Sum);
        expect_close(to_doubles(rs),
                     [&](size_t i) {
                       if (dt == DType::Bool) {
                         bool any = false;
                         for (int k = 0; k < n; ++k) any = any || value(k + me, i, ReduceOp::Sum, dt) != 0;
                         return any ? 1.0 : 0.0;
                       }
                       double s = 0;
                       for (int k = 0; k < n; ++k) s += value(k + me, i, ReduceOp::Sum, dt);
                       return s;
                     },
                     "reduce_scatter " + tag);
        // all_to_all: rank r sends val(r * n + k) to rank k
        std::vector<Tensor> a_in, a_out;
        for (int k = 0; k < n; ++k) {
          a_in.push_back(from_doubles(vec(me * n + k, c), dt));
          a_out.push_back(from_doubles(std::vector<double>(c, 0), dt));
        }
        pg.all_to_all(a_out, a_in);
        for (int k = 0; k < n; ++k) expect_close(to_doubles(a_out[k]), [&](size_t i) { return val(k * n + me, i); }, "all_to_all " + tag);
        pg.barrier();
      }
      // send / recv around a ring
      auto val = [](int r, size_t i) { return double((r * 7 + i) % 50); };
      std::vector<double> mine(10);
      for (size_t i = 0; i < 10; ++i) mine[i] = val(me, i);
      Tensor s = from_doubles(mine, DType::Float32);
      Tensor rcv = from_doubles(std::vector<double>(10, -1), DType::Float32);
      if (me % 2 == 0) {
        pg.send(s, (me + 1) % n, 5);
        pg.recv(rcv, (me - 1 + n) % n, 5);
      } else {
        pg.recv(rcv, (me - 1 + n) % n, 5);
        pg.send(s, (me + 1) % n, 5);
      }
      expect_close(to_doubles(rcv), [&](size_t i) { return val((me - 1 + n) % n, i); }, "send/recv");
    });
  }
}

TEST(Distributed, SubgroupsUseTheirOwnRanks) {
  run_world(4, [&](ProcessGroup& pg) {
    auto odd = pg.new_group({1, 3});
    auto all = pg.new_group({0, 1, 2, 3});
    Tensor t = from_doubles({double(pg.rank())}, DType::Float32);
    if (odd->is_member()) {
      EXPECT_EQ(odd->size(), 2);
      EXPECT_EQ(odd->rank(), pg.rank() / 2);
      odd->all_reduce(t, ReduceOp::Sum);
      EXPECT_EQ(to_doubles(t)[0], 4.0);
    } else {
      EXPECT_EQ(odd->rank(), -1);
      EXPECT_THROW(odd->all_reduce(t, ReduceOp::Sum), Error);
    }
    Tensor u = from_doubles({1.0}, DType::Int64);
    all->all_reduce(u, ReduceOp::Sum);
    EXPECT_EQ(to_doubles(u)[0], 4.0);
    EXPECT_THROW(pg.new_group({3, 1}), Error);
    EXPECT_THROW(pg.new_group({0, 9}), Error);
  });
}

TEST(Distributed, SizesThatDifferAcrossRanksAreErrorsNotHangs) {
  run_world(2, [&](ProcessGroup& pg) {
    Tensor t = from_doubles(std::vector<double>(pg.rank() == 0 ? 10 : 20, 1.0), DType::Float32);
    EXPECT_THROW(pg.all_reduce(t, ReduceOp::Sum), Error);
  });
}

TEST(Distributed, BadArguments) {
  run_world(2, [&](ProcessGroup& pg) {
    Tensor t = from_doubles({1, 2, 3, 4}, DType::Float32);
    EXPECT_THROW(pg.broadcast(t, 2), Error);
    EXPECT_THROW(pg.reduce(t, -1, ReduceOp::Sum), Error);
    EXPECT_THROW(pg.send(t, pg.rank(), 0), Error);
    std::vector<Tensor> one = {t};
    EXPECT_THROW(pg.all_gather(one, t), Error);  // needs 2 outputs
    Tensor strided = t.as_strided(Dims{2}, Dims{2}, 0);
    EXPECT_THROW(pg.all_reduce(strided, ReduceOp::Sum), Error);  // outputs must be contiguous
    pg.barrier();
  });
  EXPECT_THROW(ProcessGroup::init("bogus://x", 0, 1, 1000), Error);
  EXPECT_THROW(ProcessGroup::init("file:///tmp/x", 2, 2, 1000), Error);
}

TEST(Distributed, DestroyedGroupRaises) {
  run_world(1, [&](ProcessGroup& pg) {
    Tensor t = from_doubles({1}, DType::Float32);
    pg.all_reduce(t, ReduceOp::Sum);  // a world of one: nothing to do
    pg.destroy();
    EXPECT_THROW(pg.all_reduce(t, ReduceOp::Sum), distributed::CommError);
  });
}

// ---- the same-host arena (all-reduces above 64 KiB when every rank is on this host)

TEST(Distributed, ArenaAllReduceOddSizesWindowsAndRepeatedCalls) {
  for (int n : {2, 3, 4}) {
    run_world(n, [&](ProcessGroup& pg) {
      const int me = pg.rank();
      // float32: just above 64 KiB, ~1 MiB (not divisible by 3 or 4), 12 MiB (many copy-mode
      // windows), just above 16 MiB (direct mode: reading the peers' tensors)
      for (size_t count : {size_t(16385), size_t(262147), size_t(3 * 1048576 + 5), size_t(4 * 1048576 + 3)}) {
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Min, ReduceOp::Avg}) {
          Tensor t = from_doubles(inputs(me, count, op, DType::Float32), DType::Float32);
          pg.all_reduce(t, op);
          expect_close(to_doubles(t), [&](size_t i) { return expected(n, i, op, DType::Float32); },
                       "arena float32 n=" + std::to_string(n) + " count=" + std::to_string(count));
        }
      }
      EXPECT_TRUE(pg.uses_arena());
      // 16-bit, 8-bit and 64-bit types over several windows, odd sizes
      for (DType dt : {DType::BFloat16, DType::Int8, DType::Bool, DType::Int64}) {
        const size_t count = (dt == DType::Int64 ? 2 * 1048576 : 2 * 1048576 + 4096) + 3;  // int64: direct mode
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Product, ReduceOp::Max}) {
          Tensor t = from_doubles(inputs(me, count, op, dt), dt);
          pg.all_reduce(t, op);
          expect_close(to_doubles(t), [&](size_t i) { return expected(n, i, op, dt); },
                       std::string("arena ") + dtype_name(dt) + " n=" + std::to_string(n));
        }
      }
      // many calls in a row (both halves of every slot reused), exact integers
      for (int k = 0; k < 40; ++k) {
        Tensor t = from_doubles(std::vector<double>(75001 + k, double(k + me)), DType::Int32);
        pg.all_reduce(t, ReduceOp::Sum);
        const double want = double(k) * n + n * (n - 1) / 2.0;
        expect_close(to_doubles(t), [&](size_t) { return want; }, "arena repeated call " + std::to_string(k));
      }
      // every rank ends with the same bits (each share is reduced by one rank and copied)
      std::vector<double> v(300007);
      for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * double(i % 17) + 0.37 * me + 1e-3 * double(i % 5);
      Tensor t = from_doubles(v, DType::Float32);
      pg.all_reduce(t, ReduceOp::Sum);
      Tensor ref = t.contiguous().clone();
      pg.broadcast(ref, 0);
      EXPECT_EQ(std::memcmp(ref.raw_data(), t.raw_data(), t.nbytes()), 0) << "rank " << me << " differs from rank 0";
    });
  }
}

TEST(Distributed, ArenaOffFallsBackToRecursiveDoublingAndTheRing) {
  ::setenv("HERON_DIST_ARENA", "0", 1);
  for (int n : {2, 3, 4}) {
    run_world(n, [&](ProcessGroup& pg) {
      for (DType dt : {DType::Float32, DType::BFloat16, DType::Int64, DType::Bool}) {
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Product, ReduceOp::Min}) {
          for (size_t count : {size_t(1), size_t(7), size_t(1000), size_t(262147)}) {  // recursive doubling, ring
            Tensor t = from_doubles(inputs(pg.rank(), count, op, dt), dt);
            pg.all_reduce(t, op);
            expect_close(to_doubles(t), [&](size_t i) { return expected(n, i, op, dt); },
                         std::string("arena off ") + dtype_name(dt) + " n=" + std::to_string(n) + " count=" + std::to_string(count));
          }
        }
      }
      EXPECT_FALSE(pg.uses_arena());
    });
  }
  ::unsetenv("HERON_DIST_ARENA");
}

TEST(Distributed, ArenaSizesThatDifferAreErrorsAndLaterCallsTakeTheMessagePath) {
  // the same mode on both ranks (copy), and copy mode against direct mode
  for (size_t other : {size_t(200000), size_t(5000000)}) run_world(2, [&](ProcessGroup& pg) {
    Tensor ok = from_doubles(std::vector<double>(100000, 1.0), DType::Float32);
    pg.all_reduce(ok, ReduceOp::Sum);
    ASSERT_TRUE(pg.uses_arena());
    Tensor t = from_doubles(std::vector<double>(pg.rank() == 0 ? 100000 : other, 1.0), DType::Float32);
    try {
      pg.all_reduce(t, ReduceOp::Sum);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
    }
    // the arena stays failed; later calls take the message path (ring, recursive doubling)
    pg.all_reduce(ok, ReduceOp::Sum);
    expect_close(to_doubles(ok), [](size_t) { return 4.0; }, "after a mismatch");
    Tensor small = from_doubles({1.0, 2.0}, DType::Float32);
    pg.all_reduce(small, ReduceOp::Sum);
    EXPECT_EQ(to_doubles(small)[1], 4.0);
  });
}

TEST(Distributed, ArenaWaitsEndAtTheTimeoutAndTheOthersFailPromptly) {
  run_world(2, [&](ProcessGroup& pg) {
    Tensor t = from_doubles(std::vector<double>(100000, 1.0), DType::Float32);
    pg.all_reduce(t, ReduceOp::Sum);
    ASSERT_TRUE(pg.uses_arena());
    if (pg.rank() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1600));  // rank 0 times out meanwhile
    try {
      pg.all_reduce(t, ReduceOp::Sum);
      ADD_FAILURE() << "no error on rank " << pg.rank();
    } catch (const distributed::CommError& e) {
      EXPECT_TRUE(e.timeout()) << e.what();
      if (pg.rank() == 1) EXPECT_NE(std::string(e.what()).find("gave up"), std::string::npos) << e.what();
    }
  }, 1000);
}

TEST(Distributed, ArenaInASubgroupAndARankThatLeaves) {
  run_world(4, [&](ProcessGroup& pg) {
    // a subgroup gets its own arena; the world's keeps working next to it
    auto odd = pg.new_group({1, 3});
    Tensor t = from_doubles(std::vector<double>(300001, double(pg.rank())), DType::Float32);
    if (odd->is_member()) {
      odd->all_reduce(t, ReduceOp::Sum);
      EXPECT_TRUE(odd->uses_arena());
      expect_close(to_doubles(t), [](size_t) { return 4.0; }, "subgroup arena");
    }
    Tensor u = from_doubles(std::vector<double>(300001, 1.0), DType::Float32);
    pg.all_reduce(u, ReduceOp::Sum);
    expect_close(to_doubles(u), [](size_t) { return 4.0; }, "world arena");
    // rank 3 destroys its group while the others are inside an all-reduce: they fail at once
    // (the timeout is 30 s), not at their timeout
    if (pg.rank() == 3) {
      pg.destroy();
      return;
    }
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(pg.all_reduce(u, ReduceOp::Sum), distributed::CommError);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  });
}
