// einsum: a composite of device-generic pieces. Per operand: diagonals as strided views, size-1
// broadcast dims dropped, labels that occur nowhere else summed first. Then the planned pairwise
// contractions: each one a batched matrix product through the device's matmul kernel (operands
// permuted and reshaped, views when strides allow), or a broadcasting multiply when nothing is
// contracted (outer products: GEMM with k = 1 does not pay). Runs on any device with matmul, sum,
// mul and copy kernels. See docs/design/einsum.md.
#include "core/ops/impl/einsum.h"

#include <algorithm>
#include <numeric>

#include "core/ops/impl/common.h"
#include "core/ops/impl/linalg.h"

namespace heron {
namespace einsum {
namespace {
using namespace ops;

void append(Dims& d, const Dims& e) {
  for (int64_t v : e) d.push_back(v);
}
void append_ones(Dims& d, size_t n) {
  for (size_t i = 0; i < n; ++i) d.push_back(1);
}

struct Operand {
  Tensor t;
  std::vector<int> labels;  // one distinct label per dim
};

bool has(const std::vector<int>& v, int l) { return std::find(v.begin(), v.end(), l) != v.end(); }

// The dtype products are computed in.
DType compute_dtype(DType dt) {
  switch (dt) {
    case DType::Float16:
    case DType::BFloat16: return DType::Float32;
    case DType::Float32:
    case DType::Float64: return dt;
    default: return DType::Int64;  // integers wrap exactly as in their own width; bool = (count != 0)
  }
}

// Diagonals (repeated labels) become one strided dim; size-1 dims whose label is larger elsewhere are
// dropped (the operand is constant along them).
Operand prepare(const Tensor& x, const std::vector<int>& dims, const std::vector<int64_t>& size) {
  Operand o;
  Dims shp, str;
  for (size_t d = 0; d < dims.size(); ++d) {
    int l = dims[d];
    int64_t s = x.size(static_cast<int64_t>(d));
    if (s == 1 && size[static_cast<size_t>(l)] != 1) continue;
    auto it = std::find(o.labels.begin(), o.labels.end(), l);
    if (it != o.labels.end()) {
      str[static_cast<size_t>(it - o.labels.begin())] += x.stride(static_cast<int64_t>(d));
    } else {
      o.labels.push_back(l);
      shp.push_back(s);
      str.push_back(x.stride(static_cast<int64_t>(d)));
    }
  }
  bool same = o.labels.size() == dims.size() && shp == x.shape();
  o.t = same ? x : x.as_strided(shp, str, x.offset());
  return o;
}

// Sums the dims whose labels are not in keep.
void reduce_to(Operand& o, const std::vector<int>& keep, DType cdt) {
  Dims red;
  std::vector<int> rest;
  for (size_t d = 0; d < o.labels.size(); ++d) {
    if (has(keep, o.labels[d])) rest.push_back(o.labels[d]);
    else red.push_back(static_cast<int64_t>(d));
  }
  if (red.empty()) return;
  SumAttrs a;
  a.dim = red;
  a.dtype = cdt;
  o.t = sum(o.t, a);
  o.labels = std::move(rest);
}

// The labels of group `g`, ordered by decreasing stride in t (memory order), so that merging them
// is a view as often as possible.
std::vector<int> memory_order(const Operand& o, std::vector<int> g) {
  auto stride_of = [&](int l) {
    size_t d = static_cast<size_t>(std::find(o.labels.begin(), o.labels.end(), l) - o.labels.begin());
    return o.t.stride(static_cast<int64_t>(d));
  };
  std::stable_sort(g.begin(), g.end(), [&](int x, int y) { return stride_of(x) > stride_of(y); });
  return g;
}

Dims perm_for(const Operand& o, const std::vector<int>& order) {
  Dims p;
  for (int l : order) p.push_back(static_cast<int64_t>(std::find(o.labels.begin(), o.labels.end(), l) - o.labels.begin()));
  return p;
}

bool is_identity(const Dims& p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<int64_t>(i)) return false;
  return true;
}

Tensor permuted(const Operand& o, const std::vector<int>& order) {
  Dims p = perm_for(o, order);
  return is_identity(p) ? o.t : o.t.permute(p);
}

// One pairwise contraction; `keep` = labels needed afterwards (output and other operands).
Operand contract(Operand A, Operand B, const std::vector<int>& keep, DType cdt, Device dev) {
  std::vector<int> keep_a = keep, keep_b = keep;
  keep_a.insert(keep_a.end(), B.labels.begin(), B.labels.end());
  keep_b.insert(keep_b.end(), A.labels.begin(), A.labels.end());
  reduce_to(A, keep_a, cdt);
  reduce_to(B, keep_b, cdt);
  std::vector<int> batch, con, aonly, bonly;
  for (int l : A.labels) {
    if (has(B.labels, l)) (has(keep, l) ? batch : con).push_back(l);
    else aonly.push_back(l);
  }
  for (int l : B.labels)
    if (!has(A.labels, l)) bonly.push_back(l);
  batch = memory_order(A, batch);
  aonly = memory_order(A, aonly);
  con = memory_order(A, con);
  bonly = memory_order(B, bonly);
  auto sizes = [](const Operand& o, const std::vector<int>& g) {
    Dims s;
    for (int l : g) s.push_back(o.t.size(static_cast<int64_t>(std::find(o.labels.begin(), o.labels.end(), l) - o.labels.begin())));
    return s;
  };
  Dims bs = sizes(A, batch), as = sizes(A, aonly), cs = sizes(A, con), ns = sizes(B, bonly);
  Operand r;
  r.labels = batch;
  r.labels.insert(r.labels.end(), aonly.begin(), aonly.end());
  r.labels.insert(r.labels.end(), bonly.begin(), bonly.end());
  Dims rshape = bs;
  append(rshape, as);
  append(rshape, ns);
  if (con.empty()) {
    // Nothing contracted: a broadcasting multiply [batch, a, 1..] * [batch, 1.., b].
    std::vector<int> oa = batch, ob = batch;
    oa.insert(oa.end(), aonly.begin(), aonly.end());
    ob.insert(ob.end(), bonly.begin(), bonly.end());
    Tensor ta = permuted(A, oa), tb = permuted(B, ob);
    Dims sa = bs, sb = bs;
    append(sa, as);
    append_ones(sa, ns.size());
    append_ones(sb, as.size());
    append(sb, ns);
    r.t = mul(ta.reshape(sa), tb.reshape(sb));
    return r;
  }
  auto prod = [](const Dims& d) { return std::accumulate(d.begin(), d.end(), int64_t{1}, std::multiplies<int64_t>()); };
  const int64_t m = prod(as), k = prod(cs), n = prod(ns);
  std::vector<int> oa = batch, ob = batch;
  oa.insert(oa.end(), aonly.begin(), aonly.end());
  oa.insert(oa.end(), con.begin(), con.end());
  ob.insert(ob.end(), con.begin(), con.end());
  ob.insert(ob.end(), bonly.begin(), bonly.end());
  Dims sa = bs, sb = bs, so = bs;
  sa.push_back(m), sa.push_back(k);
  sb.push_back(k), sb.push_back(n);
  so.push_back(m), so.push_back(n);
  Tensor ta = permuted(A, oa).reshape(sa);
  Tensor tb = permuted(B, ob).reshape(sb);
  Tensor out = Tensor::empty(so, cdt, dev);
  if (out.numel() > 0) kernel<MatmulKernelFn>(OpId::matmul, dev, cdt)(ta, tb, out);
  r.t = out.view(rshape);
  return r;
}

std::vector<int> union_except(const std::vector<Operand>& ops, const std::vector<int>& out, size_t skip_a, size_t skip_b) {
  std::vector<int> keep = out;
  for (size_t i = 0; i < ops.size(); ++i)
    if (i != skip_a && i != skip_b) keep.insert(keep.end(), ops[i].labels.begin(), ops[i].labels.end());
  return keep;
}

}  // namespace

Tensor execute(const std::vector<Tensor>& ins, const std::vector<std::vector<int>>& labels, const std::vector<int>& out,
               const std::vector<int64_t>& size, const Path& path, DType result_dtype) {
  const DType cdt = compute_dtype(result_dtype);
  const Device dev = ins.front().device();
  std::vector<Operand> ops;
  ops.reserve(ins.size());
  for (size_t i = 0; i < ins.size(); ++i) ops.push_back(prepare(ins[i], labels[i], size));

  // One operand and nothing to sum: the result is a view (a permutation / diagonal), as in numpy.
  if (ops.size() == 1 && ops[0].labels.size() == out.size() && ins[0].dtype() == result_dtype) {
    return permuted(ops[0], out);
  }
  for (Operand& o : ops)
    if (o.t.dtype() != cdt) o.t = o.t.to(cdt);
  // Labels that occur in one operand only and not in the output: summed first.
  for (size_t i = 0; i < ops.size(); ++i) reduce_to(ops[i], union_except(ops, out, i, i), cdt);
  for (const StepInfo& s : path.steps) {
    size_t a = static_cast<size_t>(s.a);
    if (s.b < 0) {
      Operand o = std::move(ops[a]);
      ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(a));
      reduce_to(o, union_except(ops, out, ops.size(), ops.size()), cdt);
      ops.push_back(std::move(o));
      continue;
    }
    size_t b = static_cast<size_t>(s.b);
    std::vector<int> keep = union_except(ops, out, a, b);
    Operand r = contract(ops[a], ops[b], keep, cdt, dev);
    ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(std::max(a, b)));
    ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(std::min(a, b)));
    ops.push_back(std::move(r));
  }
  Operand& last = ops.back();
  reduce_to(last, out, cdt);
  Tensor r = permuted(last, out);
  // Back to the result dtype (integers wrap like their own width; bool is count != 0).
  if (r.dtype() != result_dtype) return r.to(result_dtype);
  // Never hand back an input's memory for a computed result.
  for (const Tensor& x : ins)
    if (r.shares_storage(x)) return r.clone();
  return r;
}

std::vector<Tensor> backward(const Tensor& grad, const std::vector<Tensor>& operands, const std::string& equation,
                             const std::function<bool(size_t)>& needs) {
  std::vector<Dims> shapes;
  for (const Tensor& t : operands) shapes.push_back(t.shape());
  std::shared_ptr<const Plan> plan = get_plan(equation, shapes, "auto", std::nullopt, std::nullopt);
  const Bound& b = plan->bound;
  std::vector<Tensor> res(operands.size());
  for (size_t i = 0; i < operands.size(); ++i) {
    if (!needs(i)) continue;
    const DType dt = operands[i].dtype();
    if (!is_floating(dt)) continue;
    // Unique labels of operand i (first occurrence order) and the size of each in this operand.
    std::vector<int> uniq;
    Dims ushape;
    for (size_t d = 0; d < b.labels[i].size(); ++d) {
      int l = b.labels[i][d];
      if (!has(uniq, l)) uniq.push_back(l), ushape.push_back(shapes[i][d]);
    }
    // The labels the adjoint einsum produces: those known outside operand i and not broadcast in it.
    std::vector<std::vector<int>> lab{b.out};
    std::vector<Tensor> ins{grad};
    std::vector<std::vector<int>> eff{b.out};  // grad's dims: the output labels at full size
    for (size_t j = 0; j < operands.size(); ++j) {
      if (j == i) continue;
      ins.push_back(operands[j]);
      lab.push_back(b.labels[j]);
      eff.push_back(plan->eff[j]);
    }
    std::vector<int> want;
    for (size_t u = 0; u < uniq.size(); ++u) {
      int l = uniq[u];
      bool broadcast = ushape[u] == 1 && b.size[static_cast<size_t>(l)] != 1;
      bool known = has(b.out, l);
      for (size_t j = 0; j < operands.size() && !known; ++j)
        if (j != i && has(plan->eff[j], l)) known = true;
      if (known && !broadcast) want.push_back(l);
    }
    Path p = plan_path(eff, want, b.size, Strategy::Auto, std::nullopt, std::nullopt, equation);
    DType rdt = promote_types(grad.dtype(), dt);
    for (const Tensor& x : ins) rdt = promote_types(rdt, x.dtype());
    Tensor g = execute(ins, lab, want, b.size, p, rdt);
    // Back to operand i's unique labels: size 1 where not produced, then expanded to its sizes.
    Dims vshape;
    for (size_t u = 0; u < uniq.size(); ++u) vshape.push_back(has(want, uniq[u]) ? ushape[u] : 1);
    g = g.reshape(vshape).expand(ushape);
    bool repeats = uniq.size() != b.labels[i].size();
    if (!repeats) {
      res[i] = g.contiguous();
      continue;
    }
    // Diagonals: zeros with the gradient written onto the diagonal view.
    ZerosAttrs za;
    za.size = shapes[i];
    za.dtype = g.dtype();
    za.device = device_str(g.device());
    Tensor z = zeros(za);
    Dims str(uniq.size(), 0);
    for (size_t d = 0; d < b.labels[i].size(); ++d) {
      size_t u = static_cast<size_t>(std::find(uniq.begin(), uniq.end(), b.labels[i][d]) - uniq.begin());
      str[u] += z.stride(static_cast<int64_t>(d));
    }
    z.as_strided(ushape, str, z.offset()).copy_from(g);
    res[i] = z;
  }
  return res;
}

}  // namespace einsum

namespace {
using namespace ops;

std::optional<Dims> explicit_path(const std::optional<Dims>& p) { return p && !p->empty() ? p : std::nullopt; }

std::shared_ptr<const einsum::Plan> plan_for(OpCtx& ctx, const std::string& equation, const std::string& optimize,
                                             std::optional<int64_t> memory_limit, const std::optional<Dims>& path) {
  const size_t n = ctx.num_inputs();
  if (n == 0) throw Error(ErrorCode::InvalidArgument, "einsum: at least one operand is required", "einsum");
  std::vector<Dims> shapes;
  shapes.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.in(i).defined()) throw Error(ErrorCode::InvalidArgument, str_cat("einsum: operand ", i, " is undefined"), "einsum");
    shapes.push_back(ctx.in(i).shape());
  }
  return einsum::get_plan(equation, shapes, optimize, memory_limit, explicit_path(path));
}

HERON_IMPL(einsum, EinsumAttrs) {
  const size_t n = ctx.num_inputs();
  auto plan = plan_for(ctx, attrs.equation, attrs.optimize, attrs.memory_limit, attrs.path);
  (void)common_device("einsum", ctx.inputs(), n);
  std::vector<const Tensor*> ptrs;
  for (size_t i = 0; i < n; ++i) ptrs.push_back(&ctx.in(i));
  DType dt = result_type(ptrs.data(), n);
  std::vector<Tensor> ins(ctx.inputs(), ctx.inputs() + n);
  ctx.set(einsum::execute(ins, plan->bound.labels, plan->bound.out, plan->bound.size, plan->path, dt));
}

HERON_IMPL(einsum_path, EinsumPathAttrs) {
  auto plan = plan_for(ctx, attrs.equation, attrs.optimize, attrs.memory_limit, std::nullopt);
  const auto& steps = plan->path.steps;
  const int64_t ns = static_cast<int64_t>(steps.size());
  Tensor path = Tensor::empty(Dims{ns, 2}, DType::Int64, host_device());
  Tensor stats = Tensor::empty(Dims{ns + 1, 4}, DType::Float64, host_device());
  int64_t* p = path.data<int64_t>();
  double* s = stats.data<double>();
  s[0] = plan->path.naive_flops, s[1] = plan->path.flops, s[2] = plan->path.largest;
  s[3] = plan->path.naive_scaling;
  for (int64_t i = 0; i < ns; ++i) {
    const auto& st = steps[static_cast<size_t>(i)];
    p[2 * i] = st.a, p[2 * i + 1] = st.b;
    double* r = s + 4 * (i + 1);
    r[0] = st.flops, r[1] = st.size, r[2] = static_cast<double>(st.labels.size()), r[3] = st.scaling;
  }
  // Label rows: each operand as contracted (effective labels), each step's result, the output.
  std::vector<const std::vector<int>*> rows;
  for (const auto& e : plan->eff) rows.push_back(&e);
  for (const auto& st : steps) rows.push_back(&st.labels);
  rows.push_back(&plan->bound.out);
  size_t width = 1;
  for (const auto* r : rows) width = std::max(width, r->size());
  Tensor terms = Tensor::empty(Dims{static_cast<int64_t>(rows.size()), static_cast<int64_t>(width)}, DType::Int64, host_device());
  int64_t* t = terms.data<int64_t>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < width; ++j) t[i * width + j] = j < rows[i]->size() ? (*rows[i])[j] : -1;
  ctx.set(path);
  ctx.set(stats);
  ctx.set(terms);
}

}  // namespace
}  // namespace heron
