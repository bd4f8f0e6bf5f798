#include "core/graph/passes.h"

#include <cmath>
#include <cstring>
#include <set>

#include "core/ops/dispatcher.h"
#include "core/ops/generated/ops_gen.h"
#include "core/util/error.h"

namespace heron {
namespace graph {
namespace {

int attr_index(const Node& n, const char* name) {
  const OpInfo* op = find_op(n.op);
  if (!op) return -1;
  for (int k = 0; k < op->n_attrs; ++k)
    if (!std::strcmp(op->attrs[k].name, name)) return k;
  return -1;
}

// The attribute as given, or nullptr when absent / left at its default.
const AttrValue* attr(const Node& n, const char* name) {
  int k = attr_index(n, name);
  if (k < 0 || static_cast<size_t>(k) >= n.attrs.size() || n.attrs[k].kind == AttrValue::Default) return nullptr;
  return &n.attrs[k];
}

bool number(const AttrValue& a, double* out) {
  if (a.kind == AttrValue::Float) *out = a.f;
  else if (a.kind == AttrValue::Int || a.kind == AttrValue::Bool) *out = static_cast<double>(a.i);
  else return false;
  return true;
}

// Who defines and who reads each value.
struct Uses {
  std::vector<int32_t> producer;  // node index, -1 when not produced by a node
  std::vector<int32_t> count;     // reads by nodes, + 1 for being a graph output
  explicit Uses(const Graph& g) : producer(g.values.size(), -1), count(g.values.size(), 0) {
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      for (int32_t v : g.nodes[n].inputs)
        if (v >= 0) ++count[v];
      for (int32_t v : g.nodes[n].outputs)
        if (v >= 0) producer[v] = static_cast<int32_t>(n);
    }
    for (int32_t v : g.outputs) ++count[v];
  }
};

const Tensor* init(const Graph& g, int32_t v) {
  if (v < 0) return nullptr;
  auto it = g.initializers.find(v);
  return it == g.initializers.end() ? nullptr : &it->second;
}

bool host_float(const Tensor* t) {
  return t && t->defined() && device_impl(t->device()).is_host() && (t->dtype() == DType::Float32 || t->dtype() == DType::Float64);
}

double get(const Tensor& t, int64_t i) {
  return t.dtype() == DType::Float32 ? static_cast<double>(t.data<float>()[i]) : t.data<double>()[i];
}
void put(Tensor& t, int64_t i, double v) {
  if (t.dtype() == DType::Float32) t.data<float>()[i] = static_cast<float>(v);
  else t.data<double>()[i] = v;
}

void drop_removed(Graph& g, const std::vector<char>& removed) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t n = 0; n < g.nodes.size(); ++n)
    if (!removed[n]) kept.push_back(std::move(g.nodes[n]));
  g.nodes = std::move(kept);
}

bool is_conv(const Node& n) { return n.op == "conv2d" || n.op == "conv2d_fused"; }

// conv2d -> conv2d_fused (same inputs and attributes, no residual, no clamp).
void to_fused(Node& c) {
  if (c.op == "conv2d_fused") return;
  c.op = "conv2d_fused";
  c.inputs.resize(3, -1);
  c.inputs.push_back(-1);  // residual
  c.attrs.resize(5);       // stride, padding, dilation, groups, same_padding (Default when absent)
  c.attrs.push_back(AttrValue{});  // min
  c.attrs.push_back(AttrValue{});  // max
}

bool has_residual(const Node& c) { return c.op == "conv2d_fused" && c.inputs.size() > 3 && c.inputs[3] >= 0; }
bool has_clamp(const Node& c) {
  if (c.op != "conv2d_fused") return false;
  for (size_t k = 5; k < 7 && k < c.attrs.size(); ++k)
    if (c.attrs[k].kind != AttrValue::Default && c.attrs[k].kind != AttrValue::None) return true;
  return false;
}

}  // namespace

std::string PassReport::str() const {
  return str_cat(folded_batch_norms, " batch_norm folded, ", fused_residuals, " residual adds and ", fused_activations,
                 " activations fused into convolutions");
}

int fold_batch_norm(Graph& g) {
  Uses u(g);
  std::vector<char> removed(g.nodes.size(), 0);
  int folded = 0;
  for (size_t bi = 0; bi < g.nodes.size(); ++bi) {
    const Node& bn = g.nodes[bi];
    if (bn.op != "batch_norm" || bn.inputs.size() != 5 || bn.outputs.size() != 3) continue;
    ops::BatchNormAttrs defaults;
    bool training = defaults.training;
    double eps = defaults.eps;
    if (const AttrValue* a = attr(bn, "training")) {
      if (a->kind != AttrValue::Bool) continue;
      training = a->i != 0;
    }
    if (const AttrValue* a = attr(bn, "eps"))
      if (!number(*a, &eps)) continue;
    if (training || !(eps >= 0)) continue;
    const int32_t x = bn.inputs[0];
    if (x < 0 || u.producer[x] < 0 || u.count[x] != 1) continue;
    if (u.count[bn.outputs[1]] != 0 || u.count[bn.outputs[2]] != 0) continue;  // saved statistics read by someone
    Node& conv = g.nodes[u.producer[x]];
    if (conv.op != "conv2d" || conv.inputs.size() < 2 || conv.outputs.size() != 1) continue;
    const Tensor* w = init(g, conv.inputs[1]);
    const Tensor* b = conv.inputs.size() > 2 ? init(g, conv.inputs[2]) : nullptr;
    const bool has_b = conv.inputs.size() > 2 && conv.inputs[2] >= 0;
    const Tensor* gamma = init(g, bn.inputs[1]);
    const Tensor* beta = init(g, bn.inputs[2]);
    const Tensor* mean = init(g, bn.inputs[3]);
    const Tensor* var = init(g, bn.inputs[4]);
    if (!host_float(w) || w->dim() != 4 || (has_b && !host_float(b)) || !host_float(mean) || !host_float(var)) continue;
    if ((bn.inputs[1] >= 0 && !host_float(gamma)) || (bn.inputs[2] >= 0 && !host_float(beta))) continue;
    const int64_t K = w->shape()[0];
    auto vec_ok = [&](const Tensor* t) { return !t || (t->dim() == 1 && t->shape()[0] == K); };
    if (!vec_ok(b) || !vec_ok(gamma) || !vec_ok(beta) || !vec_ok(mean) || !vec_ok(var)) continue;
    const Tensor wc = w->contiguous();
    const Tensor bc = b ? b->contiguous() : Tensor(), gc = gamma ? gamma->contiguous() : Tensor();
    const Tensor ec = beta ? beta->contiguous() : Tensor(), mc = mean->contiguous(), vc = var->contiguous();
    Tensor nw = Tensor::empty(wc.shape(), wc.dtype(), wc.device());
    Tensor nb = Tensor::empty(Dims{K}, wc.dtype(), wc.device());
    const int64_t per = K > 0 ? wc.numel() / K : 0;
    for (int64_t k = 0; k < K; ++k) {
      const double s = (gamma ? get(gc, k) : 1.0) / std::sqrt(get(vc, k) + eps);
      for (int64_t i = 0; i < per; ++i) put(nw, k * per + i, get(wc, k * per + i) * s);
      put(nb, k, ((b ? get(bc, k) : 0.0) - get(mc, k)) * s + (beta ? get(ec, k) : 0.0));
    }
    const std::string base = conv.name;
    const int32_t wv = g.add_value(base + ".folded_weight", nw.dtype(), nw.shape().vec());
    const int32_t bv = g.add_value(base + ".folded_bias", nb.dtype(), nb.shape().vec());
    nw.storage()->freeze();  // new, private to this graph: kernels may cache forms of it
    nb.storage()->freeze();
    g.initializers[wv] = nw;
    g.initializers[bv] = nb;
    conv.inputs.resize(3, -1);
    conv.inputs[1] = wv;
    conv.inputs[2] = bv;
    conv.outputs[0] = bn.outputs[0];
    u.producer.resize(g.values.size(), -1);
    u.count.resize(g.values.size(), 0);
    u.producer[bn.outputs[0]] = u.producer[x];
    removed[bi] = 1;
    ++folded;
  }
  drop_removed(g, removed);
  return folded;
}

int fuse_conv_epilogue(Graph& g, PassReport& r) {
  Uses u(g);
  std::vector<char> removed(g.nodes.size(), 0);
  int fused = 0;
  auto shape_of = [&](int32_t v) -> const std::vector<int64_t>& { return g.values[v].shape; };
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    if (n.op == "add" && n.inputs.size() == 2 && n.outputs.size() == 1) {
      if (const AttrValue* a = attr(n, "alpha")) {
        double alpha;
        if (!number(*a, &alpha) || alpha != 1.0) continue;
      }
      const int32_t out = n.outputs[0];
      int best = -1;
      for (int s = 0; s < 2; ++s) {
        const int32_t v = n.inputs[s], other = n.inputs[1 - s];
        if (v < 0 || other < 0 || v == other || u.count[v] != 1) continue;
        const int32_t p = u.producer[v];
        if (p < 0 || removed[p] || !is_conv(g.nodes[p]) || has_residual(g.nodes[p]) || has_clamp(g.nodes[p])) continue;
        // The residual must exist when the convolution runs, and match the output exactly.
        if (u.producer[other] >= p) continue;
        if (g.values[other].dtype != g.values[v].dtype || g.values[out].dtype != g.values[v].dtype) continue;
        if (shape_of(other) != shape_of(out) || shape_of(v) != shape_of(out)) continue;
        if (best < 0 || p > u.producer[n.inputs[best]]) best = s;
      }
      if (best < 0) continue;
      const int32_t v = n.inputs[best], other = n.inputs[1 - best];
      const int32_t p = u.producer[v];
      Node& c = g.nodes[p];
      to_fused(c);
      c.inputs[3] = other;
      c.outputs[0] = out;
      u.producer[out] = p;
      removed[ni] = 1;
      ++fused;
      ++r.fused_residuals;
      continue;
    }
    const bool relu = n.op == "relu", clamp = n.op == "clamp";
    if ((relu || clamp) && n.inputs.size() == 1 && n.outputs.size() == 1) {
      const int32_t v = n.inputs[0];
      if (v < 0 || u.count[v] != 1) continue;
      const int32_t p = u.producer[v];
      if (p < 0 || removed[p] || !is_conv(g.nodes[p]) || has_clamp(g.nodes[p])) continue;
      if (g.values[n.outputs[0]].dtype != g.values[v].dtype) continue;
      AttrValue lo, hi;  // Default = none
      if (relu) {
        lo.kind = AttrValue::Float;
        lo.f = 0.0;
      } else {
        const AttrValue* a = attr(n, "min");
        const AttrValue* b = attr(n, "max");
        double t;
        if (a && a->kind != AttrValue::None && !number(*a, &t)) continue;
        if (b && b->kind != AttrValue::None && !number(*b, &t)) continue;
        if (a && a->kind != AttrValue::None) lo = *a;
        if (b && b->kind != AttrValue::None) hi = *b;
        if (lo.kind == AttrValue::Default && hi.kind == AttrValue::Default) continue;
        double l = -INFINITY, h = INFINITY;
        if (lo.kind != AttrValue::Default) number(lo, &l);
        if (hi.kind != AttrValue::Default) number(hi, &h);
        if (std::isnan(l) || std::isnan(h) || l > h) continue;  // clamp's own rule (max wins) differs
      }
      Node& c = g.nodes[p];
      to_fused(c);
      c.attrs[5] = lo;
      c.attrs[6] = hi;
      c.outputs[0] = n.outputs[0];
      u.producer[n.outputs[0]] = p;
      removed[ni] = 1;
      ++fused;
      ++r.fused_activations;
    }
  }
  drop_removed(g, removed);
  return fused;
}

PassReport optimize(Graph& g) {
  PassReport r;
  r.folded_batch_norms = fold_batch_norm(g);
  fuse_conv_epilogue(g, r);
  // Drop initializers nothing reads any more (the unfolded weights), then renumber.
  std::set<int32_t> used(g.outputs.begin(), g.outputs.end());
  for (const Node& n : g.nodes)
    for (int32_t v : n.inputs)
      if (v >= 0) used.insert(v);
  for (auto it = g.initializers.begin(); it != g.initializers.end();)
    it = used.count(it->first) ? std::next(it) : g.initializers.erase(it);
  g.compact();
  return r;
}

}  // namespace graph
}  // namespace heron
