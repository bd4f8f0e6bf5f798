// Join/split, indexing, movement and creation ops: closed forms, every dtype, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/ops/generated/ops_gen.h"
#include "core/tensor/tensor.h"

using namespace heron;
namespace o = heron::ops;

namespace {

const DType kAllDTypes[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int8,
                            DType::UInt8,   DType::Int32,   DType::Int64,   DType::Bool};

Tensor f64(const std::vector<double>& v, const Dims& shape) {
  Tensor t = Tensor::empty(shape, DType::Float64, host_device());
  for (size_t i = 0; i < v.size(); ++i) t.data<double>()[i] = v[i];
  return t;
}
Tensor tensor(const std::vector<double>& v, const Dims& shape, DType dt = DType::Float32) { return f64(v, shape).to(dt); }
Tensor i64(const std::vector<int64_t>& v, const Dims& shape) {
  Tensor t = Tensor::empty(shape, DType::Int64, host_device());
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}
Tensor i64(const std::vector<int64_t>& v) { return i64(v, Dims{static_cast<int64_t>(v.size())}); }
// 0, 1, ..., n-1 in shape (as float64 then cast).
Tensor iota(const Dims& shape, DType dt = DType::Float32) {
  std::vector<double> v(shape.numel());
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  return tensor(v, shape, dt);
}
std::vector<double> vals(const Tensor& t) {
  Tensor c = t.to(DType::Float64).contiguous();
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}
// Runs f and returns the error it throws (fails the test when it throws none).
template <typename F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected an error";
  return Error(ErrorCode::Ok, "");
}
bool contains(const Error& e, const std::string& s) { return std::string(e.what()).find(s) != std::string::npos; }

using V = std::vector<double>;

}  // namespace

// ------------------------------------------------------------------ concat / stack / split / chunk
TEST(Concat, ClosedFormAndPromotion) {
  Tensor a = iota({2, 3}), b = tensor({10, 11, 12}, {1, 3}, DType::Int32);
  Tensor c = o::concat({a, b});
  EXPECT_EQ(c.shape(), (Dims{3, 3}));
  EXPECT_EQ(c.dtype(), DType::Float32);
  EXPECT_EQ(vals(c), (V{0, 1, 2, 3, 4, 5, 10, 11, 12}));
  Tensor d = o::concat({a, a.slice(1, 0, 1, 1)}, {-1});
  EXPECT_EQ(d.shape(), (Dims{2, 4}));
  EXPECT_EQ(vals(d), (V{0, 1, 2, 0, 3, 4, 5, 3}));
  EXPECT_EQ(o::concat({tensor({1}, {1}, DType::Int8), tensor({2}, {1}, DType::UInt8)}).dtype(), DType::Int32);
  // Empty piece along the dim.
  EXPECT_EQ(vals(o::concat({a, iota({0, 3})})), vals(a));
}

TEST(Concat, Errors) {
  Tensor a = iota({2, 3});
  EXPECT_EQ(error_of([&] { o::concat({a, iota({2, 4})}); }).code(), ErrorCode::InvalidArgument);
  Error e = error_of([&] { o::concat({a, iota({6})}); });
  EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
  EXPECT_TRUE(contains(e, "[6]")) << e.what();
  EXPECT_EQ(error_of([&] { o::concat({iota({}), iota({})}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::concat({}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::concat({a, a}, {2}); }).code(), ErrorCode::IndexError);
}

TEST(Stack, ClosedForm) {
  Tensor a = iota({2}), b = tensor({5, 6}, {2});
  EXPECT_EQ(vals(o::stack({a, b})), (V{0, 1, 5, 6}));
  Tensor s = o::stack({a, b}, {1});
  EXPECT_EQ(s.shape(), (Dims{2, 2}));
  EXPECT_EQ(vals(s), (V{0, 5, 1, 6}));
  EXPECT_EQ(o::stack({a, b}, {-1}).shape(), (Dims{2, 2}));
  EXPECT_EQ(o::stack({iota({}), iota({})}).shape(), (Dims{2}));
  EXPECT_EQ(error_of([&] { o::stack({a, iota({3})}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::stack({a, b}, {3}); }).code(), ErrorCode::IndexError);
}

TEST(Split, SizesAndViews) {
  Tensor x = iota({5, 2});
  o::SplitAttrs a;
  a.split_size = 2;
  auto parts = o::split(x, a);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].shape(), (Dims{2, 2}));
  EXPECT_EQ(parts[2].shape(), (Dims{1, 2}));
  EXPECT_EQ(vals(parts[2]), (V{8, 9}));
  EXPECT_TRUE(parts[1].shares_storage(x));
  o::SplitAttrs b;
  b.sizes = Dims{1, 1};
  b.dim = 1;
  auto cols = o::split(x, b);
  ASSERT_EQ(cols.size(), 2u);
  EXPECT_EQ(vals(cols[1]), (V{1, 3, 5, 7, 9}));
  b.sizes = Dims{1, 2};
  EXPECT_EQ(error_of([&] { o::split(x, b); }).code(), ErrorCode::InvalidArgument);
  o::SplitAttrs both;
  both.split_size = 1;
  both.sizes = Dims{5};
  EXPECT_EQ(error_of([&] { o::split(x, both); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::split(x, {}); }).code(), ErrorCode::InvalidArgument);
}

TEST(Chunk, TorchSemantics) {
  auto sizes = [](int64_t n, int64_t chunks) {
    std::vector<int64_t> s;
    for (auto& t : o::chunk(iota({n}), {chunks, 0})) s.push_back(t.size(0));
    return s;
  };
  EXPECT_EQ(sizes(5, 3), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(sizes(6, 4), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(sizes(2, 5), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(sizes(0, 3), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(error_of([&] { o::chunk(iota({3}), {0, 0}); }).code(), ErrorCode::InvalidArgument);
}

// ------------------------------------------------------------------ gather / scatter / index_select / take_along_dim
TEST(Gather, ClosedFormAllDTypes) {
  for (DType dt : kAllDTypes) {
    Tensor x = iota({2, 3}, dt);
    Tensor idx = i64({2, 0, 1, 1}, {2, 2});
    Tensor g = o::gather(x, idx, {1});
    EXPECT_EQ(g.dtype(), dt);
    V want = dt == DType::Bool ? V{1, 0, 1, 1} : V{2, 0, 4, 4};
    EXPECT_EQ(vals(g), want) << dtype_name(dt);
    Tensor g0 = o::gather(x, i64({1, 0, 1}, {1, 3}), {0});
    V want0 = dt == DType::Bool ? V{1, 1, 1} : V{3, 1, 5};
    EXPECT_EQ(vals(g0), want0) << dtype_name(dt);
  }
  // int32 indices and a non-contiguous input.
  Tensor xt = iota({3, 2}).transpose(0, 1);  // [[0,2,4],[1,3,5]]
  EXPECT_EQ(vals(o::gather(xt, i64({2, 0}, {2, 1}).to(DType::Int32), {1})), (V{4, 1}));
}

TEST(Gather, Errors) {
  Tensor x = iota({2, 3});
  Error e = error_of([&] { o::gather(x, i64({3, 0}, {2, 1}), {1}); });
  EXPECT_EQ(e.code(), ErrorCode::IndexError);
  EXPECT_TRUE(contains(e, "gather") && contains(e, "index 3") && contains(e, "dimension 1") && contains(e, "size 3")) << e.what();
  EXPECT_EQ(error_of([&] { o::gather(x, i64({-1, 0}, {2, 1}), {1}); }).code(), ErrorCode::IndexError);
  EXPECT_EQ(error_of([&] { o::gather(x, iota({2, 1}), {1}); }).code(), ErrorCode::TypeError);
  EXPECT_EQ(error_of([&] { o::gather(x, i64({0, 0}), {1}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::gather(x, i64({0, 0, 0, 0, 0, 0, 0, 0}, {4, 2}), {1}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::gather(x, i64({0, 0}, {2, 1}), {2}); }).code(), ErrorCode::IndexError);
}

TEST(Scatter, ModesAndInputUntouched) {
  Tensor x = tensor({1, 1, 1, 1, 1, 1}, {2, 3});
  Tensor idx = i64({0, 2, 0, 1}, {2, 2});
  Tensor src = tensor({5, 6, 7, 8}, {2, 2});
  EXPECT_EQ(vals(o::scatter(x, idx, src, {1, std::nullopt})), (V{5, 1, 6, 7, 8, 1}));
  EXPECT_EQ(vals(o::scatter(x, idx, src, {1, std::string("add")})), (V{6, 1, 7, 8, 9, 1}));
  EXPECT_EQ(vals(o::scatter(x, idx, src, {1, std::string("multiply")})), (V{5, 1, 6, 7, 8, 1}));
  EXPECT_EQ(vals(x), (V{1, 1, 1, 1, 1, 1}));
  // scatter_add accumulates repeated indices.
  Tensor z = tensor({0, 0, 0}, {3}, DType::Int32);
  EXPECT_EQ(vals(o::scatter_add(z, i64({0, 2, 0, 0}), tensor({1, 2, 3, 4}, {4}, DType::Int32), {0})), (V{8, 0, 2}));
  // A 0-d source broadcasts.
  EXPECT_EQ(vals(o::scatter(x, idx, tensor({9}, {}), {1, std::nullopt})), (V{9, 1, 9, 9, 9, 1}));
  for (DType dt : kAllDTypes) {
    Tensor r = o::scatter(iota({4}, dt), i64({3, 0}), iota({2}, dt), {0, std::nullopt});
    V want = dt == DType::Bool ? V{1, 1, 1, 0} : V{1, 1, 2, 0};
    EXPECT_EQ(vals(r), want) << dtype_name(dt);
  }
  Error e = error_of([&] { o::scatter(x, i64({0, 3}, {1, 2}), tensor({1, 2}, {1, 2}), {1, std::nullopt}); });
  EXPECT_EQ(e.code(), ErrorCode::IndexError);
  EXPECT_TRUE(contains(e, "index 3")) << e.what();
  EXPECT_EQ(vals(x), (V{1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(error_of([&] { o::scatter(x, idx, tensor({1}, {1, 1}), {1, std::nullopt}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::scatter(x, idx, src, {1, std::string("max")}); }).code(), ErrorCode::InvalidArgument);
}

TEST(IndexSelect, ClosedForm) {
  Tensor x = iota({3, 2});
  EXPECT_EQ(vals(o::index_select(x, i64({2, 0, 2}), {0})), (V{4, 5, 0, 1, 4, 5}));
  Tensor c = o::index_select(x, i64({1}), {1});
  EXPECT_EQ(c.shape(), (Dims{3, 1}));
  EXPECT_EQ(vals(c), (V{1, 3, 5}));
  EXPECT_EQ(o::index_select(x, i64({}), {0}).shape(), (Dims{0, 2}));
  Error e = error_of([&] { o::index_select(x, i64({3}), {0}); });
  EXPECT_EQ(e.code(), ErrorCode::IndexError);
  EXPECT_TRUE(contains(e, "index_select")) << e.what();
  EXPECT_EQ(error_of([&] { o::index_select(x, i64({0, 0}, {1, 2}), {0}); }).code(), ErrorCode::InvalidArgument);
}

TEST(TakeAlongDim, BroadcastAndWrap) {
  Tensor x = iota({2, 3});
  // indices [1, 2] broadcast along dim 0; negative wraps.
  Tensor r = o::take_along_dim(x, i64({-1, 0}, {1, 2}), {1});
  EXPECT_EQ(r.shape(), (Dims{2, 2}));
  EXPECT_EQ(vals(r), (V{2, 0, 5, 3}));
  Tensor f = o::take_along_dim(x, i64({5, 0, -2}), {});
  EXPECT_EQ(vals(f), (V{5, 0, 4}));
  EXPECT_EQ(error_of([&] { o::take_along_dim(x, i64({6}), {}); }).code(), ErrorCode::IndexError);
  EXPECT_EQ(error_of([&] { o::take_along_dim(x, i64({0, 0, 0, 0, 0, 0}, {3, 2}), {1}); }).code(), ErrorCode::InvalidArgument);
}

// ------------------------------------------------------------------ index / index_put_ / nonzero
TEST(Index, NumpyRules) {
  Tensor x = iota({3, 4, 5});
  // x[[2, 0]] -> (2, 4, 5)
  Tensor a = o::index(x, {i64({2, 0})});
  EXPECT_EQ(a.shape(), (Dims{2, 4, 5}));
  EXPECT_EQ(vals(a)[0], 40);
  EXPECT_EQ(vals(a)[20], 0);
  // x[:, [1, -1]] -> (3, 2, 5): the broadcast dims stay in place (adjacent, at position 1).
  Tensor b = o::index(x, {Tensor(), i64({1, -1})});
  EXPECT_EQ(b.shape(), (Dims{3, 2, 5}));
  EXPECT_EQ(vals(b)[5], 15);       // x[0, 3, 0]
  EXPECT_EQ(vals(b)[10 + 5], 35);  // x[1, 3, 0]
  // x[[0, 2], :, [1, 3]] -> (2, 4): separated by a slice, broadcast dims go first.
  Tensor c = o::index(x, {i64({0, 2}), Tensor(), i64({1, 3})});
  EXPECT_EQ(c.shape(), (Dims{2, 4}));
  EXPECT_EQ(vals(c), (V{1, 6, 11, 16, 43, 48, 53, 58}));
  // Index tensors broadcast: rows (2,1) x cols (3) -> (2, 3, 5).
  Tensor d = o::index(x, {i64({0, 1}, {2, 1}), i64({0, 1, 2})});
  EXPECT_EQ(d.shape(), (Dims{2, 3, 5}));
  EXPECT_EQ(vals(d)[1 * 15 + 2 * 5], 20 + 10);  // x[1, 2, 0]
  // Adjacent pair after a slice: x[:, [0, 1], [4, 4]] -> (3, 2).
  Tensor e = o::index(x, {Tensor(), i64({0, 1}), i64({4, 4})});
  EXPECT_EQ(e.shape(), (Dims{3, 2}));
  EXPECT_EQ(vals(e), (V{4, 9, 24, 29, 44, 49}));
  // 0-d index: x[1] -> (4, 5).
  EXPECT_EQ(o::index(x, {i64({1}, {})}).shape(), (Dims{4, 5}));
  // No index tensors: a copy.
  Tensor f = o::index(x, {});
  EXPECT_EQ(vals(f), vals(x));
  EXPECT_FALSE(f.shares_storage(x));
  // Negative-stride input.
  Tensor rev = iota({4}).slice(0, INT64_MAX, INT64_MIN, -1);  // 3 2 1 0
  EXPECT_EQ(vals(o::index(rev, {i64({0, 3, -1})})), (V{3, 0, 0}));
  for (DType dt : kAllDTypes) {
    Tensor r = o::index(iota({2, 3}, dt), {Tensor(), i64({2, 0})});
    V want = dt == DType::Bool ? V{1, 0, 1, 1} : V{2, 0, 5, 3};
    EXPECT_EQ(vals(r), want) << dtype_name(dt);
  }
}

TEST(Index, Errors) {
  Tensor x = iota({3, 4});
  Error e = error_of([&] { o::index(x, {Tensor(), i64({1, 4})}); });
  EXPECT_EQ(e.code(), ErrorCode::IndexError);
  EXPECT_TRUE(contains(e, "index 4") && contains(e, "dimension 1") && contains(e, "size 4")) << e.what();
  EXPECT_EQ(error_of([&] { o::index(x, {i64({-4})}); }).code(), ErrorCode::IndexError);
  EXPECT_EQ(error_of([&] { o::index(x, {iota({2})}); }).code(), ErrorCode::TypeError);
  EXPECT_EQ(error_of([&] { o::index(x, {tensor({1, 0}, {2}, DType::Bool)}); }).code(), ErrorCode::TypeError);
  EXPECT_EQ(error_of([&] { o::index(x, {i64({0}), i64({0}), i64({0})}); }).code(), ErrorCode::IndexError);
  EXPECT_EQ(error_of([&] { o::index(x, {i64({0, 1}), i64({0, 1, 2})}); }).code(), ErrorCode::InvalidArgument);
}

TEST(IndexPut, AssignAccumulateBroadcast) {
  Tensor x = tensor({0, 0, 0, 0, 0, 0}, {2, 3});
  Tensor r = o::index_put_(x, tensor({7}, {}), {Tensor(), i64({2, 0})});
  EXPECT_TRUE(r.shares_storage(x));
  EXPECT_EQ(vals(x), (V{7, 0, 7, 7, 0, 7}));
  // accumulate with repeated indices.
  Tensor y = tensor({0, 0, 0}, {3});
  o::index_put_(y, tensor({1, 2, 3, 4}, {4}), {i64({0, 2, 0, 0})}, {true});
  EXPECT_EQ(vals(y), (V{8, 0, 2}));
  // values broadcast over the trailing slice: x[[1]] = [1, 2, 3]
  o::index_put_(x, tensor({1, 2, 3}, {3}), {i64({1})});
  EXPECT_EQ(vals(x), (V{7, 0, 7, 1, 2, 3}));
  // Non-adjacent layout: x3[[0,1], :, [1,0]] = values of shape (2, 2).
  Tensor x3 = tensor(V(8, 0), {2, 2, 2});
  o::index_put_(x3, tensor({1, 2, 3, 4}, {2, 2}), {i64({0, 1}), Tensor(), i64({1, 0})});
  EXPECT_EQ(vals(x3), (V{0, 1, 0, 2, 3, 0, 4, 0}));
  for (DType dt : kAllDTypes) {
    Tensor t = iota({4}, dt);
    o::index_put_(t, tensor({1}, {}, dt), {i64({0, 0})}, {true});
    V want = dt == DType::Bool ? V{1, 1, 1, 1} : V{2, 1, 2, 3};
    EXPECT_EQ(vals(t), want) << dtype_name(dt);
  }
}

TEST(IndexPut, FailureWritesNothing) {
  Tensor x = iota({2, 3});
  V before = vals(x);
  Error e = error_of([&] { o::index_put_(x, tensor({9, 9}, {2}), {i64({0, 1}), i64({0, 3})}); });
  EXPECT_EQ(e.code(), ErrorCode::IndexError);
  EXPECT_EQ(vals(x), before);
  EXPECT_EQ(error_of([&] { o::index_put_(x, tensor({9, 9}, {2}), {i64({0, 1})}, {true}); }).code(),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(vals(x), before);
}

TEST(Nonzero, RowMajor) {
  Tensor x = tensor({0, 1, 0, 2, 3, 0}, {2, 3});
  Tensor n = o::nonzero(x);
  EXPECT_EQ(n.dtype(), DType::Int64);
  EXPECT_EQ(n.shape(), (Dims{3, 2}));
  EXPECT_EQ(vals(n), (V{0, 1, 1, 0, 1, 1}));
  EXPECT_EQ(o::nonzero(tensor({0, 0}, {2})).shape(), (Dims{0, 1}));
  EXPECT_EQ(o::nonzero(tensor({5}, {})).shape(), (Dims{1, 0}));
  Tensor nanv = tensor({NAN, 0}, {2});
  EXPECT_EQ(o::nonzero(nanv).shape(), (Dims{1, 1}));
  for (DType dt : kAllDTypes) EXPECT_EQ(vals(o::nonzero(x.to(dt))), (V{0, 1, 1, 0, 1, 1})) << dtype_name(dt);
  // Strided input.
  EXPECT_EQ(vals(o::nonzero(x.transpose(0, 1))), (V{0, 1, 1, 0, 1, 1}));
}

// ------------------------------------------------------------------ movement
TEST(Flip, Dims) {
  Tensor x = iota({2, 3});
  EXPECT_EQ(vals(o::flip(x, {Dims{0}})), (V{3, 4, 5, 0, 1, 2}));
  EXPECT_EQ(vals(o::flip(x, {Dims{-1}})), (V{2, 1, 0, 5, 4, 3}));
  EXPECT_EQ(vals(o::flip(x, {Dims{0, 1}})), (V{5, 4, 3, 2, 1, 0}));
  EXPECT_FALSE(o::flip(x, {Dims{0}}).shares_storage(x));
  EXPECT_EQ(error_of([&] { o::flip(x, {Dims{0, 0}}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::flip(x, {Dims{2}}); }).code(), ErrorCode::IndexError);
  for (DType dt : kAllDTypes) EXPECT_EQ(vals(o::flip(iota({3}, dt), {Dims{0}})).back(), 0) << dtype_name(dt);
}

TEST(Roll, FlatAndDims) {
  Tensor x = iota({2, 3});
  EXPECT_EQ(vals(o::roll(x, {Dims{1}, std::nullopt})), (V{5, 0, 1, 2, 3, 4}));
  EXPECT_EQ(vals(o::roll(x, {Dims{-1}, std::nullopt})), (V{1, 2, 3, 4, 5, 0}));
  EXPECT_EQ(vals(o::roll(x, {Dims{1}, Dims{1}})), (V{2, 0, 1, 5, 3, 4}));
  EXPECT_EQ(vals(o::roll(x, {Dims{1, 4}, Dims{0, 1}})), (V{5, 3, 4, 2, 0, 1}));
  EXPECT_EQ(error_of([&] { o::roll(x, {Dims{1, 2}, Dims{0}}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::roll(x, {Dims{1, 2}, std::nullopt}); }).code(), ErrorCode::InvalidArgument);
}

TEST(Tri, LowerUpper) {
  Tensor x = tensor(V(9, 1), {3, 3});
  EXPECT_EQ(vals(o::tril(x)), (V{1, 0, 0, 1, 1, 0, 1, 1, 1}));
  EXPECT_EQ(vals(o::triu(x)), (V{1, 1, 1, 0, 1, 1, 0, 0, 1}));
  EXPECT_EQ(vals(o::tril(x, {-1})), (V{0, 0, 0, 1, 0, 0, 1, 1, 0}));
  EXPECT_EQ(vals(o::triu(x, {1})), (V{0, 1, 1, 0, 0, 1, 0, 0, 0}));
  Tensor b = o::triu(iota({2, 2, 3}));
  EXPECT_EQ(vals(b), (V{0, 1, 2, 0, 4, 5, 6, 7, 8, 0, 10, 11}));
  EXPECT_EQ(vals(o::tril(iota({2, 3}).transpose(0, 1))), (V{0, 0, 1, 4, 2, 5}));
  EXPECT_EQ(error_of([&] { o::tril(iota({3})); }).code(), ErrorCode::InvalidArgument);
  for (DType dt : kAllDTypes) EXPECT_EQ(vals(o::tril(tensor(V(4, 1), {2, 2}, dt))), (V{1, 0, 1, 1})) << dtype_name(dt);
}

TEST(Pad, Modes) {
  Tensor x = iota({2, 3});
  o::PadAttrs c{Dims{1, 2}, "constant", 9.0};
  EXPECT_EQ(vals(o::pad(x, c)), (V{9, 0, 1, 2, 9, 9, 9, 3, 4, 5, 9, 9}));
  o::PadAttrs c2{Dims{0, 0, 1, 0}, "constant", -1.0};
  EXPECT_EQ(vals(o::pad(x, c2)), (V{-1, -1, -1, 0, 1, 2, 3, 4, 5}));
  o::PadAttrs crop{Dims{-1, 1}, "constant", 0.0};
  EXPECT_EQ(vals(o::pad(x, crop)), (V{1, 2, 0, 4, 5, 0}));
  o::PadAttrs refl{Dims{2, 2}, "reflect", 0.0};
  EXPECT_EQ(vals(o::pad(x, refl)), (V{2, 1, 0, 1, 2, 1, 0, 5, 4, 3, 4, 5, 4, 3}));
  o::PadAttrs rep{Dims{1, 2, 1, 0}, "replicate", 0.0};
  Tensor r = o::pad(x, rep);
  EXPECT_EQ(r.shape(), (Dims{3, 6}));
  EXPECT_EQ(vals(r), (V{0, 0, 1, 2, 2, 2, 0, 0, 1, 2, 2, 2, 3, 3, 4, 5, 5, 5}));
  o::PadAttrs refl2{Dims{1, 1, 1, 1}, "reflect", 0.0};
  EXPECT_EQ(vals(o::pad(x, refl2)), (V{4, 3, 4, 5, 4, 1, 0, 1, 2, 1, 4, 3, 4, 5, 4, 1, 0, 1, 2, 1}));
  Error e = error_of([&] { o::pad(x, {Dims{3, 0}, "reflect", 0.0}); });
  EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
  EXPECT_TRUE(contains(e, "reflect")) << e.what();
  EXPECT_EQ(error_of([&] { o::pad(x, {Dims{1}, "constant", 0.0}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::pad(x, {Dims{1, 1, 1, 1, 1, 1}, "constant", 0.0}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_of([&] { o::pad(x, {Dims{-2, -2}, "constant", 0.0}); }).code(), ErrorCode::InvalidArgument);
  for (DType dt : kAllDTypes)
    EXPECT_EQ(vals(o::pad(tensor({1, 0}, {2}, dt), {Dims{1, 1}, "replicate", 0.0})), (V{1, 1, 0, 0})) << dtype_name(dt);
}

// ------------------------------------------------------------------ creation
TEST(Creation, FillOps) {
  for (DType dt : kAllDTypes) {
    Tensor z = o::zeros({Dims{2, 3}, dt, std::nullopt});
    EXPECT_EQ(z.dtype(), dt);
    EXPECT_EQ(vals(z), V(6, 0));
    EXPECT_EQ(vals(o::ones({Dims{4}, dt, std::nullopt})), V(4, 1));
    EXPECT_EQ(vals(o::full({Dims{2}, Scalar(int64_t{1}), dt, std::nullopt})), V(2, 1));
    EXPECT_EQ(vals(o::zeros_like(iota({3}), {dt})), V(3, 0));
    EXPECT_EQ(o::empty({Dims{2, 0}, dt, std::nullopt}).shape(), (Dims{2, 0}));
  }
  EXPECT_EQ(o::full({Dims{1}, Scalar(2.5), std::nullopt, std::nullopt}).dtype(), DType::Float32);
  EXPECT_EQ(o::full({Dims{1}, Scalar(int64_t{2}), std::nullopt, std::nullopt}).dtype(), DType::Int64);
  EXPECT_EQ(o::full({Dims{1}, Scalar::from_bool(true), std::nullopt, std::nullopt}).dtype(), DType::Bool);
  EXPECT_EQ(vals(o::full({Dims{2}, Scalar(2.5), std::nullopt, std::nullopt})), (V{2.5, 2.5}));
  Tensor like = o::full_like(iota({2}, DType::Int32), {Scalar(7.9), std::nullopt});
  EXPECT_EQ(like.dtype(), DType::Int32);
  EXPECT_EQ(vals(like), (V{7, 7}));
  EXPECT_EQ(vals(o::ones_like(iota({2}))), (V{1, 1}));
  EXPECT_EQ(o::empty_like(iota({2, 2}, DType::Int8)).dtype(), DType::Int8);
  EXPECT_EQ(error_of([&] { o::zeros({Dims{-1}, DType::Float32, std::nullopt}); }).code(), ErrorCode::InvalidArgument);
}

TEST(Creation, Arange) {
  o::ArangeAttrs a;
  a.end = Scalar(int64_t{5});
  Tensor r = o::arange(a);
  EXPECT_EQ(r.dtype(), DType::Int64);
  EXPECT_EQ(vals(r), (V{0, 1, 2, 3, 4}));
  a.start = Scalar(int64_t{10});
  a.end = Scalar(int64_t{0});
  a.step = Scalar(int64_t{-3});
  EXPECT_EQ(vals(o::arange(a)), (V{10, 7, 4, 1}));
  a.start = Scalar(0.0);
  a.end = Scalar(1.0);
  a.step = Scalar(0.25);
  Tensor f = o::arange(a);
  EXPECT_EQ(f.dtype(), DType::Float32);
  EXPECT_EQ(vals(f), (V{0, 0.25, 0.5, 0.75}));
  a.start = Scalar(int64_t{0});
  a.end = Scalar(int64_t{10});
  a.step = Scalar(int64_t{3});
  a.dtype = DType::Float64;
  EXPECT_EQ(vals(o::arange(a)), (V{0, 3, 6, 9}));
  a.end = Scalar(int64_t{0});
  EXPECT_EQ(o::arange(a).numel(), 0);
  a.end = Scalar(int64_t{10});
  a.step = Scalar(int64_t{0});
  EXPECT_EQ(error_of([&] { o::arange(a); }).code(), ErrorCode::InvalidArgument);
  a.step = Scalar(int64_t{-1});
  EXPECT_EQ(error_of([&] { o::arange(a); }).code(), ErrorCode::InvalidArgument);
  // Extreme int64 bounds: exact count and values.
  a.start = Scalar(INT64_MIN);
  a.end = Scalar(INT64_MAX);
  a.step = Scalar(int64_t{1} << 62);
  a.dtype = std::nullopt;
  Tensor big = o::arange(a);
  ASSERT_EQ(big.numel(), 4);
  EXPECT_EQ(big.data<int64_t>()[3], int64_t{1} << 62);  // -2**63 + 3 * 2**62
  a.step = Scalar(int64_t{1});
  EXPECT_EQ(error_of([&] { o::arange(a); }).code(), ErrorCode::InvalidArgument);  // 2**64 - 1 values
}

TEST(Creation, LinspaceEye) {
  Tensor l = o::linspace({0.0, 1.0, 5, DType::Float64, std::nullopt});
  EXPECT_EQ(vals(l), (V{0, 0.25, 0.5, 0.75, 1.0}));
  EXPECT_EQ(vals(o::linspace({3.0, 9.0, 1, DType::Float32, std::nullopt})), (V{3}));
  EXPECT_EQ(o::linspace({3.0, 9.0, 0, DType::Float32, std::nullopt}).numel(), 0);
  EXPECT_EQ(vals(o::linspace({0.0, 10.0, 4, DType::Int64, std::nullopt})), (V{0, 3, 6, 10}));
  EXPECT_EQ(error_of([&] { o::linspace({0.0, 1.0, -1, DType::Float32, std::nullopt}); }).code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(vals(o::eye({2, std::nullopt, DType::Float32, std::nullopt})), (V{1, 0, 0, 1}));
  Tensor e = o::eye({2, 3, DType::Int32, std::nullopt});
  EXPECT_EQ(e.shape(), (Dims{2, 3}));
  EXPECT_EQ(vals(e), (V{1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(vals(o::eye({3, 1, DType::Bool, std::nullopt})), (V{1, 0, 0}));
  EXPECT_EQ(o::eye({0, std::nullopt, DType::Float32, std::nullopt}).shape(), (Dims{0, 0}));
}
