// Fused optimizer ops (sgd_step_, adam_step_, rmsprop_step_, adagrad_step_, clip_grad_norm_).
// Device-generic: the list layout and shape/dtype/device checks here; the per-element update is the
// device's kernel (impl/optim.h). Non-contiguous params or states are updated through contiguous
// working copies that are written back.
#include "core/ops/impl/optim.h"

#include <cmath>
#include <limits>
#include <map>

namespace heron {
namespace {
using namespace ops;

// Marks that `t`'s storage was written in place. Every in-place write of this file goes through
// this one helper (params and optimizer states; clip_grad_norm_'s grads).
// TODO(autograd): this branch predates Storage::version. The autograd dispatcher (run_impl) bumps
// the version of every input of a variadic in-place op after the impl returns, which covers these
// ops; if per-tensor bumping is wanted instead, make this `t.storage()->bump_version()` and drop
// the dispatcher's blanket bump for these ops (it also bumps the read-only grads).
void bump_version(const Tensor& t) { (void)t; }

Error arg_error(const char* op, const std::string& msg) { return Error(ErrorCode::InvalidArgument, str_cat(op, ": ", msg), op); }

// Checks the list of `slots.size()` groups of n tensors, each group matching the params in shape,
// dtype and device. `slots` names each group (for errors); `written[s]` says whether group s is
// updated in place. Runs `run(dtype, group)` once per param dtype with contiguous data, then copies
// working copies back and bumps versions.
template <typename Run>
void run_grouped(OpCtx& ctx, const char* op, const std::vector<const char*>& slots, const std::vector<bool>& written,
                 const std::string& why, Run run) {
  const size_t total = ctx.num_inputs();
  const size_t k = slots.size();
  if (total % k != 0) {
    std::string names;
    for (size_t s = 0; s < k; ++s) names += (s ? ", " : "") + std::string(slots[s]);
    throw arg_error(op, str_cat("expected ", k, " groups of n tensors (", names, ")", why, ", got ", total,
                                " tensors, which is not a multiple of ", k));
  }
  const size_t n = total / k;
  if (n == 0) return;
  for (size_t i = 0; i < total; ++i)
    if (!ctx.in(i).defined()) throw arg_error(op, str_cat("tensor ", i, " of the list is undefined"));
  common_device(op, ctx.inputs(), total);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& p = ctx.in(i);
    if (!is_floating(p.dtype()))
      throw Error(ErrorCode::TypeError, str_cat(op, ": params must be floating point, but param ", i, " is ", dtype_name(p.dtype())), op);
    for (size_t s = 1; s < k; ++s) {
      const Tensor& t = ctx.in(s * n + i);
      if (t.shape() != p.shape())
        throw arg_error(op, str_cat(slots[s], "[", i, "] has shape ", t.shape().str(), " but param ", i, " has shape ", p.shape().str()));
      if (t.dtype() != p.dtype())
        throw Error(ErrorCode::TypeError, str_cat(op, ": ", slots[s], "[", i, "] has dtype ", dtype_name(t.dtype()), " but param ", i,
                                                  " has dtype ", dtype_name(p.dtype())), op);
    }
  }
  // Group params by dtype; make contiguous working copies where needed.
  std::map<int, OptimGroup> groups;
  std::vector<std::pair<Tensor, Tensor>> writeback;  // (original, working copy)
  std::vector<Tensor> keep;                          // contiguous inputs kept alive
  for (size_t i = 0; i < n; ++i) {
    const Tensor& p = ctx.in(i);
    if (p.numel() == 0) continue;
    OptimGroup& g = groups[static_cast<int>(p.dtype())];
    if (g.ptr.empty()) g.ptr.resize(k);
    g.numel.push_back(p.numel());
    for (size_t s = 0; s < k; ++s) {
      const Tensor& t = ctx.in(s * n + i);
      Tensor w = t;
      if (!t.is_contiguous()) {
        w = t.contiguous();
        if (written[s]) writeback.emplace_back(t, w);
        else keep.push_back(w);
      }
      keep.push_back(w);
      g.ptr[s].push_back(w.raw_data());
    }
  }
  for (auto& [dt, g] : groups) run(static_cast<DType>(dt), g);
  for (auto& [orig, work] : writeback) orig.copy_from(work);
  for (size_t s = 0; s < k; ++s)
    if (written[s])
      for (size_t i = 0; i < n; ++i) bump_version(ctx.in(s * n + i));
}

void set_params(OpCtx& ctx, size_t n_total, size_t k) {
  size_t n = n_total / k;
  for (size_t i = 0; i < n; ++i) ctx.set(ctx.in(i));
}

void check_nonneg(const char* op, const char* name, double v) {
  if (!(v >= 0.0)) throw arg_error(op, str_cat(name, " must be >= 0, got ", v));
}

HERON_IMPL(sgd_step_, SgdStep_Attrs) {
  const char* op = "sgd_step_";
  check_nonneg(op, "lr", attrs.lr);
  check_nonneg(op, "momentum", attrs.momentum);
  check_nonneg(op, "weight_decay", attrs.weight_decay);
  if (attrs.nesterov && (attrs.momentum <= 0.0 || attrs.dampening != 0.0))
    throw arg_error(op, str_cat("nesterov momentum requires a momentum > 0 and zero dampening, got momentum ", attrs.momentum,
                                " and dampening ", attrs.dampening));
  const bool mom = attrs.momentum != 0.0;
  std::vector<const char*> slots = {"params", "grads"};
  std::vector<bool> written = {true, false};
  if (mom) slots.push_back("momentum_buffers"), written.push_back(true);
  Device dev = ctx.num_inputs() ? ctx.in(0).device() : host_device();
  run_grouped(ctx, op, slots, written, mom ? " since momentum != 0" : " since momentum == 0",
              [&](DType dt, const OptimGroup& g) { kernel<SgdStepKernelFn>(OpId::sgd_step_, dev, dt)(g, attrs); });
  set_params(ctx, ctx.num_inputs(), slots.size());
}

HERON_IMPL(adam_step_, AdamStep_Attrs) {
  const char* op = "adam_step_";
  check_nonneg(op, "lr", attrs.lr);
  check_nonneg(op, "eps", attrs.eps);
  check_nonneg(op, "weight_decay", attrs.weight_decay);
  if (!(attrs.beta1 >= 0.0 && attrs.beta1 < 1.0)) throw arg_error(op, str_cat("beta1 must be in [0, 1), got ", attrs.beta1));
  if (!(attrs.beta2 >= 0.0 && attrs.beta2 < 1.0)) throw arg_error(op, str_cat("beta2 must be in [0, 1), got ", attrs.beta2));
  if (attrs.step < 1) throw arg_error(op, str_cat("step must be >= 1 (the step count after incrementing), got ", attrs.step));
  std::vector<const char*> slots = {"params", "grads", "exp_avgs", "exp_avg_sqs"};
  std::vector<bool> written = {true, false, true, true};
  if (attrs.amsgrad) slots.push_back("max_exp_avg_sqs"), written.push_back(true);
  Device dev = ctx.num_inputs() ? ctx.in(0).device() : host_device();
  run_grouped(ctx, op, slots, written, attrs.amsgrad ? " since amsgrad is true" : "",
              [&](DType dt, const OptimGroup& g) { kernel<AdamStepKernelFn>(OpId::adam_step_, dev, dt)(g, attrs); });
  set_params(ctx, ctx.num_inputs(), slots.size());
}

HERON_IMPL(rmsprop_step_, RmspropStep_Attrs) {
  const char* op = "rmsprop_step_";
  check_nonneg(op, "lr", attrs.lr);
  check_nonneg(op, "eps", attrs.eps);
  check_nonneg(op, "momentum", attrs.momentum);
  check_nonneg(op, "weight_decay", attrs.weight_decay);
  check_nonneg(op, "alpha", attrs.alpha);
  std::vector<const char*> slots = {"params", "grads", "square_avgs"};
  std::vector<bool> written = {true, false, true};
  if (attrs.momentum > 0.0) slots.push_back("momentum_buffers"), written.push_back(true);
  if (attrs.centered) slots.push_back("grad_avgs"), written.push_back(true);
  std::string why = attrs.momentum > 0.0 ? (attrs.centered ? " since momentum > 0 and centered" : " since momentum > 0")
                                         : (attrs.centered ? " since centered" : "");
  Device dev = ctx.num_inputs() ? ctx.in(0).device() : host_device();
  run_grouped(ctx, op, slots, written, why, [&](DType dt, const OptimGroup& g0) {
    // The kernel sees fixed slots: 3 = momentum buffers, 4 = grad averages (empty when unused).
    OptimGroup g;
    g.numel = g0.numel;
    g.ptr.resize(5);
    for (size_t s = 0; s < 3; ++s) g.ptr[s] = g0.ptr[s];
    size_t next = 3;
    if (attrs.momentum > 0.0) g.ptr[3] = g0.ptr[next++];
    if (attrs.centered) g.ptr[4] = g0.ptr[next++];
    kernel<RmspropStepKernelFn>(OpId::rmsprop_step_, dev, dt)(g, attrs);
  });
  set_params(ctx, ctx.num_inputs(), slots.size());
}

HERON_IMPL(adagrad_step_, AdagradStep_Attrs) {
  const char* op = "adagrad_step_";
  check_nonneg(op, "lr", attrs.lr);
  check_nonneg(op, "lr_decay", attrs.lr_decay);
  check_nonneg(op, "eps", attrs.eps);
  check_nonneg(op, "weight_decay", attrs.weight_decay);
  if (attrs.step < 1) throw arg_error(op, str_cat("step must be >= 1 (the step count after incrementing), got ", attrs.step));
  std::vector<const char*> slots = {"params", "grads", "state_sums"};
  std::vector<bool> written = {true, false, true};
  Device dev = ctx.num_inputs() ? ctx.in(0).device() : host_device();
  run_grouped(ctx, op, slots, written, "",
              [&](DType dt, const OptimGroup& g) { kernel<AdagradStepKernelFn>(OpId::adagrad_step_, dev, dt)(g, attrs); });
  set_params(ctx, ctx.num_inputs(), slots.size());
}

HERON_IMPL(clip_grad_norm_, ClipGradNorm_Attrs) {
  const char* op = "clip_grad_norm_";
  const size_t n = ctx.num_inputs();
  const double p = attrs.norm_type;
  if (std::isnan(p)) throw arg_error(op, "norm_type must not be nan");
  for (size_t i = 0; i < n; ++i)
    if (!ctx.in(i).defined()) throw arg_error(op, str_cat("grad ", i, " of the list is undefined"));
  Device dev = n ? common_device(op, ctx.inputs(), n) : host_device();
  DType out_dt = n ? ctx.in(0).dtype() : kDefaultFloat;
  for (size_t i = 0; i < n; ++i) {
    const Tensor& g = ctx.in(i);
    if (!is_floating(g.dtype()))
      throw Error(ErrorCode::TypeError, str_cat(op, ": grads must be floating point, but grad ", i, " is ", dtype_name(g.dtype())), op);
    out_dt = promote_types(out_dt, g.dtype());
  }
  // Per-tensor norms, then the norm of the norms (as torch does).
  const double inf = std::numeric_limits<double>::infinity();
  double total = p == inf ? 0.0 : p == -inf ? inf : 0.0;
  std::vector<Tensor> contig(n);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& g = ctx.in(i);
    contig[i] = g.contiguous();
    auto* k = kernel<ClipGradNormKernels*>(OpId::clip_grad_norm_, dev, g.dtype());
    double ni = k->norm(contig[i].raw_data(), g.numel(), p);
    if (p == inf) total = std::max(total, ni);  // norms are >= 0; nan handled below
    else if (p == -inf) total = std::min(total, ni);
    else if (p == 0.0) total += ni != 0.0 ? 1.0 : 0.0;
    else if (p == 1.0) total += ni;
    else if (p == 2.0) total += ni * ni;
    else total += std::pow(ni, p);
    if (std::isnan(ni)) total = std::numeric_limits<double>::quiet_NaN();
  }
  if (n > 0 && p != inf && p != -inf && p != 0.0 && p != 1.0) total = p == 2.0 ? std::sqrt(total) : std::pow(total, 1.0 / p);
  if (n == 0) total = 0.0;
  // The norm as the output dtype sees it (the coefficient is computed from the rounded value, like torch).
  Tensor host = Tensor::empty(Dims{}, DType::Float64, host_device());
  *host.data<double>() = total;
  Tensor out = host.to(out_dt);
  double rounded = *out.to(DType::Float64).data<double>();
  if (attrs.error_if_nonfinite && !std::isfinite(rounded))
    throw Error(ErrorCode::Runtime,
                str_cat(op, ": the total norm of order ", p, " for gradients is ", rounded,
                        ", so clipping them is not possible (pass error_if_nonfinite=false to clip anyway)"),
                op);
  const double coef = attrs.max_norm / (rounded + 1e-6);
  if (coef < 1.0 || std::isnan(coef)) {
    for (size_t i = 0; i < n; ++i) {
      const Tensor& g = ctx.in(i);
      if (g.numel() == 0) continue;
      auto* k = kernel<ClipGradNormKernels*>(OpId::clip_grad_norm_, dev, g.dtype());
      Tensor w = contig[i];
      if (w.shares_storage(g) && g.is_contiguous()) {
        k->scale(g.raw_data(), g.numel(), coef);
      } else {
        k->scale(w.raw_data(), w.numel(), coef);
        Tensor dst = g;
        dst.copy_from(w);
      }
      bump_version(g);
    }
  }
  ctx.set(out.to(dev));
}

}  // namespace
}  // namespace heron
