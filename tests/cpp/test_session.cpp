// The runtime session: results equal the ops called directly, input checks, graph checks,
// concurrent runs, liveness (intermediates freed, peak memory) and the profile.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/runtime/session.h"
#include "core/util/thread_pool.h"

using namespace heron;
namespace O = heron::ops;
using graph::AttrValue;
using graph::Graph;
using runtime::Session;
using runtime::SessionOptions;

namespace {

Tensor randn(const Dims& shape, DType dt, uint32_t seed) {
  Tensor t = Tensor::empty(shape, dt, host_device());
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  visit_dtype(dt, [&](auto z) {
    using T = decltype(z);
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = convert<T>(u(g));
  });
  return t;
}

bool same(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

AttrValue ints(std::vector<int64_t> v) {
  AttrValue a;
  a.kind = AttrValue::Ints;
  a.ints = std::move(v);
  return a;
}
AttrValue flt(double f) {
  AttrValue a;
  a.kind = AttrValue::Float;
  a.f = f;
  return a;
}

// x[?, 8] -> linear(w1, b1) -> relu -> h ; h -> linear(w2, no bias) -> y ; y + 0.5 * h[:, :4] ... kept simple:
// outputs "y" (?, 4) and "h" (?, 16).
struct Mlp {
  Graph g;
  Tensor w1, b1, w2;
  Mlp(DType dt = DType::Float32) {
    w1 = randn({16, 8}, dt, 1);
    b1 = randn({16}, dt, 2);
    w2 = randn({4, 16}, dt, 3);
    int x = g.add_value("x", dt, {-1, 8});
    int vw1 = g.add_value("w1", dt, {16, 8});
    int vb1 = g.add_value("b1", dt, {16});
    int vw2 = g.add_value("w2", dt, {4, 16});
    int l1 = g.add_value("l1", dt, {-1, 16});
    int h = g.add_value("h", dt, {-1, 16});
    int y = g.add_value("y", dt, {-1, 4});
    g.inputs = {x};
    g.initializers[vw1] = w1;
    g.initializers[vb1] = b1;
    g.initializers[vw2] = w2;
    g.nodes.push_back({"linear_0", "linear", {x, vw1, vb1}, {l1}, {}});
    g.nodes.push_back({"relu_1", "relu", {l1}, {h}, {}});
    g.nodes.push_back({"linear_2", "linear", {h, vw2, -1}, {y}, {}});
    g.outputs = {y, h};
  }
  std::vector<Tensor> direct(const Tensor& x) const {
    Tensor h = O::relu(O::linear(x, w1, b1));
    return {O::linear(h, w2, Tensor()), h};
  }
};

template <typename Fn>
void expect_error(Fn fn, ErrorCode code, std::vector<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(code)) << e.what();
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << "'" << f << "' not in: " << e.what();
  }
}

}  // namespace

TEST(Session, ResultsEqualTheOpsCalledDirectly) {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Mlp m(dt);
    Session s(m.g);
    for (int64_t batch : {1, 3, 7}) {  // the symbolic batch dim takes any size
      Tensor x = randn({batch, 8}, dt, 10 + static_cast<uint32_t>(batch));
      auto got = s.run({"x"}, {x});
      auto want = m.direct(x);
      ASSERT_EQ(got.size(), 2u);
      EXPECT_TRUE(same(got[0], want[0]));
      EXPECT_TRUE(same(got[1], want[1]));
      auto only_h = s.run({"x"}, {x}, {"h"});
      ASSERT_EQ(only_h.size(), 1u);
      EXPECT_TRUE(same(only_h[0], want[1]));
    }
  }
}

TEST(Session, AttributesAreUnpackedLikeOpCall) {
  Graph g;
  int a = g.add_value("a", DType::Float32, {2, 6});
  int b = g.add_value("b", DType::Float32, {2, 6});
  int sum = g.add_value("sum", DType::Float32, {2, 6});
  int r = g.add_value("r", DType::Float32, {3, 4});
  g.inputs = {a, b};
  g.nodes.push_back({"add_0", "add", {a, b}, {sum}, {flt(0.5)}});
  g.nodes.push_back({"reshape_1", "reshape", {sum}, {r}, {ints({3, 4})}});
  g.outputs = {r};
  Session s(g);
  Tensor ta = randn({2, 6}, DType::Float32, 5), tb = randn({2, 6}, DType::Float32, 6);
  auto out = s.run({"b", "a"}, {tb, ta});  // any order of names
  O::AddAttrs aa;
  aa.alpha = Scalar(0.5);
  O::ReshapeAttrs ra;
  ra.shape = Dims{3, 4};
  Tensor want = O::reshape(O::add(ta, tb, aa), ra);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(out[0], want));
}

TEST(Session, WrongInputsAreClearErrors) {
  Mlp m;
  Session s(m.g);
  Tensor x = randn({2, 8}, DType::Float32, 1);
  expect_error([&] { s.run({"input"}, {x}); }, ErrorCode::NotFound, {"no input named 'input'", "'x': float32[?, 8]"});
  expect_error([&] { s.run({"x"}, {x.to(DType::Float64)}); }, ErrorCode::TypeError, {"'x'", "float32[?, 8]", "float64[2, 8]"});
  expect_error([&] { s.run({"x"}, {randn({2, 9}, DType::Float32, 1)}); }, ErrorCode::InvalidArgument, {"'x'", "[?, 8]", "[2, 9]"});
  expect_error([&] { s.run({"x"}, {randn({8}, DType::Float32, 1)}); }, ErrorCode::InvalidArgument, {"[?, 8]", "[8]"});
  expect_error([&] { s.run({}, {}); }, ErrorCode::InvalidArgument, {"missing input 'x'"});
  expect_error([&] { s.run({"x", "x"}, {x, x}); }, ErrorCode::InvalidArgument, {"given twice"});
  expect_error([&] { s.run({"x"}, {x}, {"z"}); }, ErrorCode::NotFound, {"no output named 'z'", "'y', 'h'"});
  expect_error([&] { s.run({"x"}, {Tensor()}); }, ErrorCode::NullHandle, {"'x'"});
}

TEST(Session, BadGraphsAreRejectedAtCreation) {
  {
    Mlp m;
    m.g.nodes[1].op = "no_such_op";
    expect_error([&] { Session s(m.g); }, ErrorCode::NotFound, {"relu_1", "no_such_op"});
  }
  {
    Mlp m;
    m.g.nodes[0].inputs[0] = 99;
    expect_error([&] { Session s(m.g); }, ErrorCode::InvalidArgument, {"linear_0", "99"});
  }
  {
    Mlp m;
    std::swap(m.g.nodes[0], m.g.nodes[1]);  // relu before the linear that makes its input
    expect_error([&] { Session s(m.g); }, ErrorCode::InvalidArgument, {"relu_1", "before it is defined"});
  }
  {
    Mlp m;
    m.g.nodes[1].inputs.push_back(0);
    expect_error([&] { Session s(m.g); }, ErrorCode::InvalidArgument, {"relu_1", "expected 1 inputs"});
  }
  {
    Mlp m;
    m.g.nodes[0].inputs[1] = -1;  // weight is not optional
    expect_error([&] { Session s(m.g); }, ErrorCode::InvalidArgument, {"linear_0", "required"});
  }
  {
    Mlp m;
    m.g.nodes[1].outputs = {4};  // h redefines the initializer b1... value 4 is l1's: defined twice
    expect_error([&] { Session s(m.g); }, ErrorCode::InvalidArgument, {"defined twice"});
  }
  {
    Graph g;
    int a = g.add_value("a", DType::Float32, {2, 6});
    int r = g.add_value("r", DType::Float32, {3, 4});
    g.inputs = {a};
    AttrValue bad;
    bad.kind = AttrValue::String;
    bad.s = "nope";
    g.nodes.push_back({"reshape_0", "reshape", {a}, {r}, {bad}});
    g.outputs = {r};
    expect_error([&] { Session s(g); }, ErrorCode::TypeError, {"reshape_0", "'shape'", "string"});
  }
  {
    Mlp m;
    m.g.initializers[1] = randn({16, 9}, DType::Float32, 1);
    expect_error([&] { Session s(m.g); }, ErrorCode::InvalidArgument, {"initializer 'w1'", "[16, 9]"});
  }
  {
    Mlp m;
    SessionOptions o;
    o.device = "nodevice";
    expect_error([&] { Session s(m.g, o); }, ErrorCode::NotFound, {});
  }
}

TEST(Session, ErrorsInsideANodeNameTheNode) {
  Graph g;
  int a = g.add_value("a", DType::Float32, {-1, 6});
  int r = g.add_value("r", DType::Float32, {3, 4});
  g.inputs = {a};
  g.nodes.push_back({"reshape_0", "reshape", {a}, {r}, {ints({3, 4})}});
  g.outputs = {r};
  Session s(g);
  expect_error([&] { s.run({"a"}, {randn({3, 6}, DType::Float32, 1)}); }, ErrorCode::InvalidArgument, {"node 'reshape_0' (reshape)"});
}

TEST(Session, EightThreadsOnOneSessionGetIdenticalResults) {
  Mlp m;
  Session s(m.g);
  const int kThreads = 8, kRuns = 25;
  std::vector<Tensor> xs, want;
  for (int i = 0; i < kThreads; ++i) {
    xs.push_back(randn({4 + i, 8}, DType::Float32, 100 + static_cast<uint32_t>(i)));
    want.push_back(s.run({"x"}, {xs.back()})[0]);
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t)
    pool.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        int k = (t + r) % kThreads;
        auto out = s.run({"x"}, {xs[k]});
        if (!same(out[0], want[k])) ++mismatches[t];
      }
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  EXPECT_EQ(s.num_runs(), kThreads + kThreads * kRuns);
}

TEST(Session, IntermediatesAreFreedAfterTheirLastUse) {
  // x -> relu -> relu -> ... (6 nodes) -> y: at most two intermediates are alive at once.
  Graph g;
  int prev = g.add_value("x", DType::Float32, {256, 256});
  g.inputs = {prev};
  for (int i = 0; i < 6; ++i) {
    int v = g.add_value("v" + std::to_string(i), DType::Float32, {256, 256});
    g.nodes.push_back({"relu_" + std::to_string(i), "relu", {prev}, {v}, {}});
    prev = v;
  }
  g.outputs = {prev};
  Session s(g);
  Tensor x = randn({256, 256}, DType::Float32, 1);
  const int64_t baseline = live_handle_counter().load();
  runtime::RunStats stats;
  {
    auto out = s.run({"x"}, {x}, {}, &stats);
    EXPECT_EQ(out[0].storage()->refcount(), 1);  // the run kept no reference
  }
  EXPECT_EQ(live_handle_counter().load(), baseline);
  const int64_t one = 256 * 256 * 4;
  EXPECT_EQ(stats.peak_bytes, 2 * one);
  EXPECT_EQ(s.last_peak_bytes(), 2 * one);
  EXPECT_EQ(s.max_peak_bytes(), 2 * one);
}

TEST(Session, ViewsOfInputsAndSharedStoragesAreNotCounted) {
  Graph g;
  int a = g.add_value("a", DType::Float32, {4, 6});
  int r = g.add_value("r", DType::Float32, {6, 4});
  int e = g.add_value("e", DType::Float32, {6, 4});
  g.inputs = {a};
  g.nodes.push_back({"reshape_0", "reshape", {a}, {r}, {ints({6, 4})}});  // a view of the input
  g.nodes.push_back({"relu_1", "relu", {r}, {e}, {}});
  g.outputs = {e};
  Session s(g);
  runtime::RunStats st;
  s.run({"a"}, {randn({4, 6}, DType::Float32, 2)}, {}, &st);
  EXPECT_EQ(st.peak_bytes, 6 * 4 * 4);
}

TEST(Session, ProfileRecordsEveryNode) {
  Mlp m;
  SessionOptions o;
  o.profile = true;
  o.arena = false;  // peak figures without the arena (the arena's are tested below)
  Session s(m.g, o);
  Tensor x = randn({5, 8}, DType::Float32, 1);
  s.run({"x"}, {x});
  s.run({"x"}, {x});
  auto j = nlohmann::json::parse(s.profile_json());
  EXPECT_EQ(j["format"], "heron-profile");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["session"]["nodes"], 3);
  EXPECT_EQ(j["session"]["peak_bytes"], 5 * 16 * 4 * 2);
  ASSERT_EQ(j["runs"].size(), 2u);
  const auto& nodes = j["runs"][1]["nodes"];
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0]["name"], "linear_0");
  EXPECT_EQ(nodes[0]["op"], "linear");
  EXPECT_EQ(nodes[0]["input_shapes"], nlohmann::json::parse("[[5, 8], [16, 8], [16]]"));
  EXPECT_EQ(nodes[0]["output_shapes"], nlohmann::json::parse("[[5, 16]]"));
  EXPECT_EQ(nodes[0]["flops"], 2 * 5 * 8 * 16 + 5 * 16);
  EXPECT_EQ(nodes[0]["bytes"], (5 * 8 + 16 * 8 + 16 + 5 * 16) * 4);
  EXPECT_EQ(nodes[1]["flops"], 0);
  EXPECT_EQ(nodes[2]["input_shapes"][2], nlohmann::json::array());  // the absent bias
  EXPECT_EQ(nodes[2]["flops"], 2 * 5 * 16 * 4);
  int64_t prev_end = 0;
  for (const auto& n : nodes) {
    EXPECT_LE(prev_end, n["start_ns"].get<int64_t>());
    EXPECT_LE(n["start_ns"].get<int64_t>(), n["end_ns"].get<int64_t>());
    prev_end = n["end_ns"];
  }
  EXPECT_LE(prev_end, j["runs"][1]["duration_ns"].get<int64_t>());
  auto t = nlohmann::json::parse(s.chrome_trace_json());
  ASSERT_EQ(t["traceEvents"].size(), 2u * 4u);  // a run event + 3 node events, per run
  for (const auto& ev : t["traceEvents"]) {
    EXPECT_EQ(ev["ph"], "X");
    EXPECT_GE(ev["dur"].get<double>(), 0.0);
  }
  s.clear_profile();
  EXPECT_EQ(nlohmann::json::parse(s.profile_json())["runs"].size(), 0u);
}

TEST(Session, FlopEstimates) {
  Tensor x = randn({2, 3, 10, 10}, DType::Float32, 1), w = randn({4, 3, 3, 3}, DType::Float32, 2);
  Tensor y = O::conv2d(x, w, Tensor());
  EXPECT_EQ(runtime::estimate_flops("conv2d", std::vector<Tensor>{x, w, Tensor()}.data(), 3, &y, 1), 2 * y.numel() * 27);
  Tensor a = randn({3, 5}, DType::Float32, 1), b = randn({5, 2}, DType::Float32, 2);
  Tensor c = O::matmul(a, b);
  EXPECT_EQ(runtime::estimate_flops("matmul", std::vector<Tensor>{a, b}.data(), 2, &c, 1), 2 * 3 * 5 * 2);
  EXPECT_EQ(runtime::estimate_flops("relu", &a, 1, &a, 1), 0);
}

TEST(Session, ThreadsOptionSetsThePool) {
  const int before = get_num_threads();
  Mlp m;
  SessionOptions o;
  o.threads = 1;
  Session s(m.g, o);
  EXPECT_EQ(get_num_threads(), 1);
  set_num_threads(before);
  o.threads = -1;
  expect_error([&] { Session s2(m.g, o); }, ErrorCode::InvalidArgument, {"threads"});
}

// ---------------------------------------------------------------- the memory plan (arena)

namespace {

// x[?, 64] -> relu a -> reshape r (a view of a) ; x -> neg c ; add(r', c) -> ... a longer chain
// with views, in-place candidates and an unused output, ending in two model outputs.
Graph arena_graph() {
  Graph g;
  auto f = DType::Float32;
  int x = g.add_value("x", f, {-1, 64});
  int a = g.add_value("a", f, {-1, 64});
  int r = g.add_value("r", f, {-1, 8, 8});
  int c = g.add_value("c", f, {-1, 64});
  int cr = g.add_value("cr", f, {-1, 8, 8});
  int d = g.add_value("d", f, {-1, 8, 8});
  int e = g.add_value("e", f, {-1, 8, 8});
  int u = g.add_value("u", f, {-1, 64});
  int t = g.add_value("t", f, {-1, 8, 8});
  int y = g.add_value("y", f, {-1, 8, 8});
  int z = g.add_value("z", f, {-1, 8, 8});
  g.inputs = {x};
  g.nodes.push_back({"relu_0", "relu", {x}, {a}, {}});
  g.nodes.push_back({"reshape_1", "reshape", {a}, {r}, {ints({-1, 8, 8})}});  // a dies here, its view r lives on
  g.nodes.push_back({"neg_2", "neg", {x}, {c}, {}});                           // must not take a's bytes
  g.nodes.push_back({"exp_3", "exp", {x}, {u}, {}});                           // unused output
  g.nodes.push_back({"reshape_4", "reshape", {c}, {cr}, {ints({-1, 8, 8})}});
  g.nodes.push_back({"add_5", "add", {r, cr}, {d}, {}});                       // in place candidate
  g.nodes.push_back({"relu_6", "relu", {d}, {e}, {}});                         // in place
  g.nodes.push_back({"sigmoid_7", "sigmoid", {e}, {t}, {}});
  g.nodes.push_back({"mul_8", "mul", {t, e}, {y}, {}});
  g.nodes.push_back({"transpose_9", "transpose", {y}, {z}, {AttrValue{AttrValue::Int, 1}, AttrValue{AttrValue::Int, 2}}});
  g.outputs = {z, t};
  return g;
}

}  // namespace

TEST(Session, ArenaRunsEqualRunsWithoutIt) {
  Graph g = arena_graph();
  SessionOptions on, off;
  off.arena = false;
  Session s_on(g, on), s_off(g, off);
  EXPECT_TRUE(s_on.arena_enabled());
  EXPECT_FALSE(s_off.arena_enabled());
  for (int64_t batch : {1, 5, 33, 5, 1}) {
    Tensor x = randn({batch, 64}, DType::Float32, 7 + static_cast<uint32_t>(batch));
    auto want = s_off.run({"x"}, {x});
    for (int rep = 0; rep < 3; ++rep) {  // the first run of a shape plans, the next ones use the arena
      runtime::RunStats st;
      auto got = s_on.run({"x"}, {x}, {}, &st);
      ASSERT_EQ(got.size(), 2u);
      EXPECT_TRUE(same(got[0], want[0])) << "batch " << batch << " run " << rep;
      EXPECT_TRUE(same(got[1], want[1])) << "batch " << batch << " run " << rep;
      if (rep > 0) {
        EXPECT_GT(st.arena_bytes, 0);
        EXPECT_GE(st.peak_bytes, st.arena_bytes);
      }
    }
    runtime::ArenaInfo info = s_on.last_arena();
    // Intermediates placed: a (with its view r), c (with cr), u, d, e, and y? no: y is viewed by the
    // output z, so it escapes; t is an output.
    EXPECT_EQ(info.buffers, 5);
    EXPECT_EQ(info.unplanned, 2);
    const int64_t one = batch * 64 * 4;
    EXPECT_EQ(info.buffer_bytes, 5 * one);
    EXPECT_LT(info.arena_bytes, info.buffer_bytes);
    EXPECT_GE(info.inplace, 1);  // e = relu(d) takes d's bytes
    EXPECT_EQ(s_off.last_arena().arena_bytes, 0);
  }
  // The returned tensors never point into an arena: they survive later runs unchanged.
  Tensor x = randn({4, 64}, DType::Float32, 1);
  auto keep = s_on.run({"x"}, {x});
  auto keep_copy = std::vector<Tensor>{keep[0].clone(), keep[1].clone()};
  for (int i = 0; i < 3; ++i) s_on.run({"x"}, {randn({4, 64}, DType::Float32, 50 + static_cast<uint32_t>(i))});
  EXPECT_TRUE(same(keep[0], keep_copy[0]));
  EXPECT_TRUE(same(keep[1], keep_copy[1]));
}

TEST(Session, InPlaceChainUsesOneBuffer) {
  Graph g;
  int prev = g.add_value("x", DType::Float32, {256, 256});
  g.inputs = {prev};
  for (int i = 0; i < 6; ++i) {
    int v = g.add_value("v" + std::to_string(i), DType::Float32, {256, 256});
    g.nodes.push_back({"relu_" + std::to_string(i), i % 2 ? "relu" : "sigmoid", {prev}, {v}, {}});
    prev = v;
  }
  g.outputs = {prev};
  Session s(g), s_off(g, [] { SessionOptions o; o.arena = false; return o; }());
  Tensor x = randn({256, 256}, DType::Float32, 3);
  auto want = s_off.run({"x"}, {x});
  s.run({"x"}, {x});
  runtime::RunStats st;
  auto got = s.run({"x"}, {x}, {}, &st);
  EXPECT_TRUE(same(got[0], want[0]));
  const int64_t one = 256 * 256 * 4;
  runtime::ArenaInfo info = s.last_arena();
  EXPECT_EQ(info.buffers, 5);   // v0..v4; v5 is the output
  EXPECT_EQ(info.inplace, 4);   // v1..v4 each take the bytes of the one before
  EXPECT_EQ(info.arena_bytes, one);
  EXPECT_EQ(st.arena_bytes, one);
  EXPECT_EQ(st.peak_bytes, 2 * one);  // the arena + the output
}

TEST(Session, EightThreadsWithTheArenaGetIdenticalResults) {
  Graph g = arena_graph();
  Session s(g), s_off(g, [] { SessionOptions o; o.arena = false; return o; }());
  const int kThreads = 8, kRuns = 30;
  std::vector<Tensor> xs;
  std::vector<std::vector<Tensor>> want;
  for (int i = 0; i < 3; ++i) {
    xs.push_back(randn({16 + i, 64}, DType::Float32, 200 + static_cast<uint32_t>(i)));
    want.push_back(s_off.run({"x"}, {xs.back()}));
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t)
    pool.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        size_t k = static_cast<size_t>(t + r) % xs.size();
        auto out = s.run({"x"}, {xs[k]});
        if (!same(out[0], want[k][0]) || !same(out[1], want[k][1])) ++mismatches[t];
      }
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  EXPECT_GT(s.last_arena().arena_bytes, 0);
}

TEST(Session, ArenaEnvironmentVariableTurnsItOff) {
  Graph g = arena_graph();
  setenv("HERON_ARENA", "0", 1);
  Session s(g);
  unsetenv("HERON_ARENA");
  EXPECT_FALSE(s.arena_enabled());
  Tensor x = randn({2, 64}, DType::Float32, 1);
  s.run({"x"}, {x});
  runtime::RunStats st;
  s.run({"x"}, {x}, {}, &st);
  EXPECT_EQ(st.arena_bytes, 0);
  Session s2(g);
  EXPECT_TRUE(s2.arena_enabled());
}

TEST(Session, ProfileReportsTheArena) {
  Mlp m;
  SessionOptions o;
  o.profile = true;
  Session s(m.g, o);
  Tensor x = randn({5, 8}, DType::Float32, 1);
  s.run({"x"}, {x});
  s.run({"x"}, {x});
  auto j = nlohmann::json::parse(s.profile_json());
  // One intermediate, l1 (5 x 16 float32 = 320 bytes, a multiple of 64); h and y are outputs.
  EXPECT_EQ(j["session"]["arena_bytes"], 320);
  EXPECT_EQ(j["session"]["arena"]["buffers"], 1);
  EXPECT_EQ(j["session"]["arena"]["enabled"], true);
  EXPECT_EQ(j["runs"][0]["arena_bytes"], 0);  // the planning run
  EXPECT_EQ(j["runs"][1]["arena_bytes"], 320);
  // The second run holds the arena (320) + h (320) + y (80) at its peak.
  EXPECT_EQ(j["runs"][1]["peak_bytes"], 320 + 320 + 80);
}

TEST(Session, KernelScratchOnTheCallingThreadIsPlanned) {
  // leaky_relu of a transposed view makes a contiguous copy (scratch, destroyed within the step)
  // before it writes its output.
  Graph g;
  auto f = DType::Float32;
  int x = g.add_value("x", f, {64, 32});
  int t = g.add_value("t", f, {32, 64});
  int l = g.add_value("l", f, {32, 64});
  int y = g.add_value("y", f, {32, 64});
  g.inputs = {x};
  g.nodes.push_back({"transpose_0", "transpose", {x}, {t}, {AttrValue{AttrValue::Int, 0}, AttrValue{AttrValue::Int, 1}}});
  g.nodes.push_back({"leaky_relu_1", "leaky_relu", {t}, {l}, {flt(0.1)}});
  g.nodes.push_back({"relu_2", "relu", {l}, {y}, {}});
  g.outputs = {y};
  Session s(g), s_off(g, [] { SessionOptions o; o.arena = false; return o; }());
  Tensor in = randn({64, 32}, f, 5);
  auto want = s_off.run({"x"}, {in});
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(same(s.run({"x"}, {in})[0], want[0]));
  runtime::ArenaInfo info = s.last_arena();
  const int64_t one = 64 * 32 * 4;
  EXPECT_EQ(info.scratch, 1);
  EXPECT_EQ(info.buffers, 2);                // l and the scratch copy
  EXPECT_EQ(info.arena_bytes, 2 * one);      // alive together at step 1
}

TEST(Session, ArenasAreSharedAcrossShapes) {
  Graph g = arena_graph();
  Session s(g), s_off(g, [] { SessionOptions o; o.arena = false; return o; }());
  Tensor big = randn({33, 64}, DType::Float32, 1), small = randn({5, 64}, DType::Float32, 2);
  runtime::RunStats st;
  s.run({"x"}, {big});
  s.run({"x"}, {big}, {}, &st);
  const int64_t big_arena = st.arena_bytes;
  EXPECT_EQ(big_arena, s.last_arena().arena_bytes);
  s.run({"x"}, {small});  // plans batch 5
  auto got = s.run({"x"}, {small}, {}, &st);
  EXPECT_LT(s.last_arena().arena_bytes, big_arena);  // the plan of batch 5
  EXPECT_EQ(st.arena_bytes, big_arena);              // but the free batch-33 arena served it
  auto want = s_off.run({"x"}, {small});
  EXPECT_TRUE(same(got[0], want[0]));
  EXPECT_TRUE(same(got[1], want[1]));
}

namespace {
// x[?, 4, 128, 256] (512 KiB per row) -> conv 3x3 -> relu (a model output too) -> + c[1, 4, 1, 1]
// -> conv 3x3 + residual (the relu) -> mean over dims 1..3 (ends the micro-batched prefix).
Graph microbatch_graph() {
  Graph g;
  const DType f = DType::Float32;
  int x = g.add_value("x", f, {-1, 4, 128, 256});
  int w1 = g.add_value("w1", f, {4, 4, 3, 3}), w2 = g.add_value("w2", f, {4, 4, 3, 3}), c = g.add_value("c", f, {1, 4, 1, 1});
  int a = g.add_value("a", f, {-1, 4, 128, 256}), r = g.add_value("r", f, {-1, 4, 128, 256});
  int s = g.add_value("s", f, {-1, 4, 128, 256}), b = g.add_value("b", f, {-1, 4, 128, 256});
  int t = g.add_value("t", f, {-1, 4, 128, 256}), m = g.add_value("m", f, {-1});
  g.inputs = {x};
  g.initializers[w1] = randn({4, 4, 3, 3}, f, 11);
  g.initializers[w2] = randn({4, 4, 3, 3}, f, 12);
  g.initializers[c] = randn({1, 4, 1, 1}, f, 13);
  g.nodes.push_back({"conv_a", "conv2d", {x, w1, -1}, {a}, {ints({1, 1}), ints({1, 1})}});
  g.nodes.push_back({"relu_r", "relu", {a}, {r}, {}});
  g.nodes.push_back({"add_s", "add", {r, c}, {s}, {}});
  g.nodes.push_back({"conv_b", "conv2d", {s, w2, -1}, {b}, {ints({1, 1}), ints({1, 1})}});
  g.nodes.push_back({"add_t", "add", {b, r}, {t}, {}});
  g.nodes.push_back({"mean_m", "mean", {t}, {m}, {ints({1, 2, 3})}});
  g.outputs = {m, r};
  return g;
}
}  // namespace

// Micro-batching (the prefix run one row at a time, rows in lanes on 2 threads, the rows left
// over on all threads) gives the bits of the whole-batch run, with and without the arena, for
// changing batches and from 8 threads at once; the profile shows the rows.
TEST(Session, MicroBatchedRunsEqualWholeBatchRuns) {
  const int saved = get_num_threads();
  set_num_threads(2);
  Graph g = microbatch_graph();
  SessionOptions plain, no_arena;
  plain.microbatch = false;
  plain.optimize = false;
  no_arena.arena = false;
  no_arena.optimize = false;
  SessionOptions prof = no_arena;
  prof.arena = true;
  prof.profile = true;
  Session s_off(g, plain), s_on(g, prof), s_noarena(g, no_arena);
  for (int64_t batch : {3, 1, 4, 2, 3}) {
    Tensor x = randn({batch, 4, 128, 256}, DType::Float32, 100 + static_cast<uint32_t>(batch));
    auto want = s_off.run({"x"}, {x});
    for (int rep = 0; rep < 2; ++rep) {
      runtime::RunStats st;
      auto got = s_on.run({"x"}, {x}, {}, &st);
      auto got2 = s_noarena.run({"x"}, {x});
      // A run served from the arena holds nothing else but the two outputs (r's whole-batch tensor
      // and the means): the rows' values sat where the plan put them, none was moved out.
      if (rep > 0) EXPECT_EQ(st.peak_bytes, st.arena_bytes + batch * 4 * 128 * 256 * 4 + batch * 4) << "batch " << batch;
      for (size_t k = 0; k < 2; ++k) {
        EXPECT_TRUE(same(got[k], want[k])) << "batch " << batch << " output " << k;
        EXPECT_TRUE(same(got2[k], want[k])) << "batch " << batch << " output " << k;
      }
    }
  }
  auto prof_json = nlohmann::json::parse(s_on.profile_json());
  const auto& last = prof_json["runs"].back()["nodes"];  // batch 3: rows 0 and 1 in lanes, row 2 after
  int rows = 0;
  for (const auto& n : last) rows += n.contains("sample") ? 1 : 0;
  EXPECT_EQ(rows, 3 * 5);
  EXPECT_EQ(last.back()["name"], "mean_m");
  EXPECT_FALSE(last.back().contains("sample"));
  // Eight threads on one session.
  std::vector<Tensor> xs;
  std::vector<std::vector<Tensor>> want;
  for (int i = 0; i < 3; ++i) {
    xs.push_back(randn({2 + i, 4, 128, 256}, DType::Float32, 300 + static_cast<uint32_t>(i)));
    want.push_back(s_off.run({"x"}, {xs.back()}));
  }
  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < 8; ++t)
    pool.emplace_back([&, t] {
      for (int r = 0; r < 4; ++r) {
        size_t k = static_cast<size_t>(t + r) % xs.size();
        auto out = s_on.run({"x"}, {xs[k]});
        if (!same(out[0], want[k][0]) || !same(out[1], want[k][1])) ++mismatches[t];
      }
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  set_num_threads(saved);
}
