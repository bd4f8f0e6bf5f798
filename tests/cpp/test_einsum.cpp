// einsum: the equation parser (grammar, carets in errors), binding to shapes (ellipsis alignment,
// size-1 broadcasting, diagonals, implicit output) and the path optimizer (DP = brute force on
// small cases; greedy and explicit paths valid).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include "core/ops/generated/ops_gen.h"
#include "core/ops/impl/einsum_plan.h"
#include "core/tensor/tensor.h"

using namespace heron;
using namespace heron::einsum;

namespace {

int L(char c) { return c >= 'a' ? 26 + (c - 'a') : c - 'A'; }

// The column of the caret in an error message, relative to the start of the shown equation.
long caret_col(const std::string& msg) {
  size_t nl2 = msg.rfind('\n');
  size_t nl1 = msg.rfind('\n', nl2 - 1);
  std::string eqline = msg.substr(nl1 + 1, nl2 - nl1 - 1);
  std::string caretline = msg.substr(nl2 + 1);
  size_t indent = eqline.find_first_not_of(' ');
  return static_cast<long>(caretline.find('^')) - static_cast<long>(indent);
}

void expect_error_at(const std::string& eq, long col, const std::string& needle, const std::vector<Dims>& shapes = {}) {
  try {
    Equation e = parse(eq);
    if (!shapes.empty()) einsum::bind(e, shapes);
    FAIL() << "no error for '" << eq << "'";
  } catch (const Error& err) {
    std::string m = err.what();
    EXPECT_EQ(err.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(m.find(needle), std::string::npos) << m;
    EXPECT_EQ(caret_col(m), col) << m;
  }
}

}  // namespace

TEST(EinsumParse, Terms) {
  Equation e = parse(" ij , jk -> ik ");
  ASSERT_EQ(e.inputs.size(), 2u);
  EXPECT_TRUE(e.explicit_output);
  EXPECT_EQ(e.inputs[0].items.size(), 2u);
  EXPECT_EQ(e.inputs[0].items[0].label, L('i'));
  EXPECT_EQ(e.output.items[1].label, L('k'));
  Equation f = parse("...ii");
  EXPECT_FALSE(f.explicit_output);
  EXPECT_TRUE(f.inputs[0].has_ellipsis());
  Equation g = parse("");  // one empty term: a 0-d operand
  EXPECT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(parse("->").inputs.size(), 1u);
  EXPECT_EQ(parse("AZaz").inputs[0].items[3].label, 51);
}

TEST(EinsumParse, ErrorsCarryACaret) {
  expect_error_at("ij,j1->i", 4, "invalid character '1'");
  expect_error_at("ij,jk->ik->i", 9, "a second '->'");
  expect_error_at("ij-jk", 2, "'-' must be part of the arrow");
  expect_error_at("ij>k", 2, "'>' without a '-'");
  expect_error_at("i..j", 1, "'.' must be part of an ellipsis");
  expect_error_at("i...j...", 5, "more than one ellipsis");
  expect_error_at("ij->ii", 5, "appears more than once in the output");
  expect_error_at("ij->k", 4, "does not appear in any input");
  expect_error_at("ij->i,j", 5, "the output is a single term");
  expect_error_at("i\x01j", 1, "byte 0x01");
}

TEST(EinsumBind, ShapesAndOutput) {
  Bound b = einsum::bind(parse("ij,jk"), {Dims{2, 3}, Dims{3, 4}});
  EXPECT_EQ(b.out, (std::vector<int>{L('i'), L('k')}));
  EXPECT_EQ(b.size[L('j')], 3);
  // Implicit output: once-used labels sorted, upper case first.
  Bound c = einsum::bind(parse("bA,Ab"), {Dims{2, 3}, Dims{3, 2}});
  EXPECT_TRUE(c.out.empty());
  Bound d = einsum::bind(parse("ba,A"), {Dims{2, 3}, Dims{4}});
  EXPECT_EQ(d.out, (std::vector<int>{L('A'), L('a'), L('b')}));
  // Ellipsis dims align to the right and broadcast; they lead the implicit output.
  Bound e = einsum::bind(parse("...i,...i"), {Dims{5, 1, 3}, Dims{4, 3}});
  ASSERT_EQ(e.out.size(), 2u);
  EXPECT_EQ(e.size[e.out[0]], 5);
  EXPECT_EQ(e.size[e.out[1]], 4);
  // Size-1 broadcasting of a label; the broadcast dim is not an effective label.
  std::vector<Dims> sh{Dims{1, 3}, Dims{4, 3}};
  Bound f = einsum::bind(parse("ij,ij->ij"), sh);
  EXPECT_EQ(f.size[L('i')], 4);
  auto eff = effective_labels(f, sh);
  EXPECT_EQ(eff[0], (std::vector<int>{L('j')}));
  // All 52 letters.
  std::string all = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  Bound g = einsum::bind(parse(all), {Dims(52, 1)});
  EXPECT_EQ(g.out.size(), 52u);
}

TEST(EinsumBind, Errors) {
  expect_error_at("ij,jk", 3, "2 input terms but 1 operand", {Dims{2, 3}});
  expect_error_at("ij,jk->ik", 5, "2 input terms but 3 operands", {Dims{2, 3}, Dims{3, 2}, Dims{2}});
  expect_error_at("ij,jk", 3, "size 4 in operand 1", {Dims{2, 3}, Dims{4, 2}});
  expect_error_at("ii", 1, "repeated in operand 0", {Dims{2, 3}});
  expect_error_at("ij,k", 0, "operand 0 has 3 dims", {Dims{2, 3, 4}, Dims{2}});
  expect_error_at("ij...,k", 0, "operand 0 has 1 dim", {Dims{2}, Dims{2}});
  expect_error_at("...i->i", 6, "no '...' to hold them", {Dims{2, 3}});
  expect_error_at("...i,...i", 5, "cannot be broadcast", {Dims{2, 3}, Dims{4, 3}});
}

namespace {
// Brute force over every sequence of pairwise contractions: the minimal total FLOPs.
double brute(std::vector<std::vector<int>> ops, const std::vector<int>& out, const std::vector<int64_t>& size) {
  if (ops.size() <= 1) return 0;
  double best = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < ops.size(); ++i) {
    for (size_t j = i + 1; j < ops.size(); ++j) {
      auto in = [](const std::vector<int>& v, int l) { return std::find(v.begin(), v.end(), l) != v.end(); };
      auto needed_after = [&](int l) {
        bool keep = in(out, l);
        for (size_t k = 0; k < ops.size() && !keep; ++k)
          if (k != i && k != j && in(ops[k], l)) keep = true;
        return keep;
      };
      // Labels of one operand only (needed nowhere else) are summed before the product.
      std::vector<int> both;
      for (int l : ops[i])
        if (needed_after(l) || in(ops[j], l)) both.push_back(l);
      for (int l : ops[j])
        if ((needed_after(l) || in(ops[i], l)) && !in(both, l)) both.push_back(l);
      double fl = 1;
      for (int l : both) fl *= static_cast<double>(size[l]);
      std::vector<int> res;
      for (int l : both)
        if (needed_after(l)) res.push_back(l);
      std::vector<std::vector<int>> next;
      for (size_t k = 0; k < ops.size(); ++k)
        if (k != i && k != j) next.push_back(ops[k]);
      next.push_back(res);
      best = std::min(best, fl + brute(next, out, size));
    }
  }
  return best;
}
}  // namespace

TEST(EinsumPath, OptimalMatchesBruteForce) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    int n = 2 + static_cast<int>(rng() % 4);
    int nl = 3 + static_cast<int>(rng() % 5);
    std::vector<int64_t> size(nl);
    for (auto& s : size) s = 1 + static_cast<int64_t>(rng() % 9);
    std::vector<std::vector<int>> ops(n);
    for (auto& o : ops)
      for (int l = 0; l < nl; ++l)
        if (rng() % 2) o.push_back(l);
    std::vector<int> out;
    for (int l = 0; l < nl; ++l)
      if (rng() % 4 == 0) out.push_back(l);
    Path p = plan_path(ops, out, size, Strategy::Optimal, std::nullopt, std::nullopt, "test");
    EXPECT_DOUBLE_EQ(p.flops, brute(ops, out, size)) << "trial " << trial;
    EXPECT_EQ(p.steps.size(), static_cast<size_t>(n - 1));
    Path g = plan_path(ops, out, size, Strategy::Greedy, std::nullopt, std::nullopt, "test");
    EXPECT_GE(g.flops, p.flops);
  }
}

TEST(EinsumPath, ExplicitAndMemoryLimit) {
  std::vector<std::vector<int>> ops{{0, 1}, {1, 2}, {2, 3}};
  std::vector<int64_t> size{10, 20, 30, 40};
  Path p = plan_path(ops, {0, 3}, size, Strategy::Auto, std::nullopt, Dims{2, 1, 2, 2, 0, 1}, "x");
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.steps[0].a, 1);
  EXPECT_EQ(p.steps[0].b, 2);
  // A three-operand step becomes two pairwise ones.
  Path q = plan_path(ops, {0, 3}, size, Strategy::Auto, std::nullopt, Dims{3, 0, 1, 2}, "x");
  EXPECT_EQ(q.steps.size(), 2u);
  EXPECT_THROW(plan_path(ops, {0, 3}, size, Strategy::Auto, std::nullopt, Dims{2, 0, 5}, "x"), Error);
  EXPECT_THROW(plan_path(ops, {0, 3}, size, Strategy::Auto, std::nullopt, Dims{2, 0, 1}, "x"), Error);
  EXPECT_THROW(plan_path(ops, {0, 3}, size, Strategy::Auto, std::nullopt, Dims{7, 0}, "x"), Error);
  // With a tiny memory limit no intermediate fits.
  EXPECT_THROW(plan_path(ops, {0, 3}, size, Strategy::Optimal, int64_t{5}, std::nullopt, "x"), Error);
  EXPECT_THROW(plan_path(ops, {0, 3}, size, Strategy::Greedy, int64_t{5}, std::nullopt, "x"), Error);
  Path r = plan_path(ops, {0, 3}, size, Strategy::Optimal, int64_t{10000}, std::nullopt, "x");
  EXPECT_LE(r.largest, 10000);
}

TEST(EinsumPlan, CacheAndOp) {
  clear_plan_cache();
  auto a = get_plan("ij,jk->ik", {Dims{2, 3}, Dims{3, 4}}, "auto", std::nullopt, std::nullopt);
  auto b = get_plan("ij,jk->ik", {Dims{2, 3}, Dims{3, 4}}, "auto", std::nullopt, std::nullopt);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(plan_cache_size(), 1u);
  auto c = get_plan("ij,jk->ik", {Dims{2, 3}, Dims{3, 5}}, "auto", std::nullopt, std::nullopt);
  EXPECT_NE(a.get(), c.get());
  // Through the typed op API.
  Tensor x = Tensor::empty(Dims{2, 3}, DType::Float32, host_device());
  Tensor y = Tensor::empty(Dims{3, 4}, DType::Float32, host_device());
  for (int i = 0; i < 6; ++i) x.data<float>()[i] = static_cast<float>(i);
  for (int i = 0; i < 12; ++i) y.data<float>()[i] = static_cast<float>(i % 5);
  ops::EinsumAttrs at;
  at.equation = "ij,jk->ik";
  Tensor z = ops::einsum({x, y}, at);
  ASSERT_EQ(z.shape(), (Dims{2, 4}));
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) {
      float ref = 0;
      for (int j = 0; j < 3; ++j) ref += x.data<float>()[i * 3 + j] * y.data<float>()[j * 4 + k];
      EXPECT_FLOAT_EQ(z.contiguous().data<float>()[i * 4 + k], ref);
    }
}

// ------------------------------------------------------------------ execution against a naive oracle
#include "core/ops/impl/einsum.h"

namespace {

Tensor filled(const Dims& shape, std::mt19937& rng) {
  Tensor t = Tensor::empty(shape, DType::Float64, host_device());
  std::uniform_real_distribution<double> u(-1, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = u(rng);
  return t;
}

// Sum of products over every assignment of the labels in use (float64, contiguous inputs).
std::vector<double> naive(const std::string& eq, const std::vector<Tensor>& ins, Dims& out_shape) {
  std::vector<Dims> shapes;
  for (const Tensor& t : ins) shapes.push_back(t.shape());
  Bound b = einsum::bind(parse(eq), shapes);
  std::vector<int> used;
  for (const auto& ls : b.labels)
    for (int l : ls)
      if (std::find(used.begin(), used.end(), l) == used.end()) used.push_back(l);
  out_shape = Dims();
  for (int l : b.out) out_shape.push_back(b.size[l]);
  int64_t n_out = 1;
  for (int64_t s : out_shape) n_out *= s;
  std::vector<double> out(static_cast<size_t>(n_out), 0.0);
  std::vector<int64_t> idx(static_cast<size_t>(b.n_labels), 0);
  for (int l : used)
    if (b.size[l] == 0) return out;
  while (true) {
    double p = 1;
    for (size_t k = 0; k < ins.size(); ++k) {
      int64_t off = 0;
      for (size_t d = 0; d < b.labels[k].size(); ++d) {
        int64_t i = shapes[k][d] == 1 ? 0 : idx[b.labels[k][d]];
        off = off * shapes[k][d] + i;
      }
      p *= ins[k].data<double>()[off];
    }
    int64_t o = 0;
    for (size_t d = 0; d < b.out.size(); ++d) o = o * out_shape[d] + idx[b.out[d]];
    out[static_cast<size_t>(o)] += p;
    size_t u = 0;
    for (; u < used.size(); ++u) {
      if (++idx[used[u]] < b.size[used[u]]) break;
      idx[used[u]] = 0;
    }
    if (u == used.size()) break;
  }
  return out;
}

}  // namespace

TEST(EinsumExecute, AgainstNaiveOracleAndBackward) {
  struct Case { const char* eq; std::vector<Dims> shapes; };
  std::vector<Case> cases = {
      {"ij,jk->ik", {{3, 4}, {4, 5}}},          {"ii->i", {{4, 4}}},
      {"ii", {{3, 3}}},                          {"iij->j", {{2, 2, 3}}},
      {"...ij,...jk->...ik", {{2, 3, 4}, {4, 2}}}, {"i...i->...", {{3, 2, 3}}},
      {"ij,ij->ij", {{1, 3}, {4, 3}}},           {"i,j->ij", {{3}, {2}}},
      {",i->i", {{}, {3}}},                       {"ij,jk->ik", {{2, 0}, {0, 3}}},
      {"ab,b->a", {{0, 1}, {5}}},                 {"ea,fb,abcd,gc,hd->efgh", {{2, 3}, {2, 3}, {3, 3, 2, 3}, {2, 2}, {2, 3}}},
      {"bn,anm,bm->ba", {{4, 3}, {2, 3, 3}, {4, 3}}}, {"ijk,jil->kl", {{2, 3, 2}, {3, 2, 4}}},
      {"ab,bc,cd->ad", {{2, 1}, {3, 4}, {1, 5}}},  {"iji,jj->", {{2, 3, 2}, {3, 3}}},
  };
  std::mt19937 rng(3);
  for (const Case& c : cases) {
    std::vector<Tensor> ins;
    for (const Dims& s : c.shapes) ins.push_back(filled(s, rng));
    Dims want_shape;
    std::vector<double> want = naive(c.eq, ins, want_shape);
    for (const char* opt : {"auto", "greedy", "optimal", "none"}) {
      ops::EinsumAttrs at;
      at.equation = c.eq;
      at.optimize = opt;
      Tensor got = ops::einsum(ins, at).contiguous();
      ASSERT_EQ(got.shape(), want_shape) << c.eq;
      for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.data<double>()[i], want[i], 1e-12) << c.eq << " " << opt;
    }
    // The adjoint: one gradient per operand, shaped like it.
    Tensor g = Tensor::empty(want_shape, DType::Float64, host_device());
    for (int64_t i = 0; i < g.numel(); ++i) g.data<double>()[i] = 1.0;
    auto grads = einsum::backward(g, ins, c.eq, [](size_t) { return true; });
    ASSERT_EQ(grads.size(), ins.size());
    for (size_t k = 0; k < ins.size(); ++k) {
      // Broadcast size-1 dims come back at full size; the autograd engine sums them.
      ASSERT_EQ(grads[k].dim(), ins[k].dim()) << c.eq;
    }
  }
}
