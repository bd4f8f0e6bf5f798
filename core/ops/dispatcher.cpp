#include "core/ops/dispatcher.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "c_api/include/heron.h"
#include "core/autograd/autograd.h"
#include "core/graph/trace.h"
#include "core/ops/attrs.h"
#include "core/ops/generated/ops_gen.h"

namespace heron {

std::string Scalar::str() const {
  if (kind == Bool) return i ? "true" : "false";
  if (kind == Int) return std::to_string(i);
  return str_cat(f);
}

const char* OpCtx::name() const { return op_->name; }

const OpInfo* find_op(const std::string& name) {
  static const std::unordered_map<std::string, const OpInfo*> table = [] {
    std::unordered_map<std::string, const OpInfo*> t;
    for (int i = 0; i < num_ops(); ++i) t[op_by_id(i)->name] = op_by_id(i);
    return t;
  }();
  auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

// ------------------------------------------------------------------ impls
namespace {
ImplFn* impl_table() {
  static ImplFn table[ops::OpId::kCount] = {};
  return table;
}
}  // namespace

void register_impl(int op_id, ImplFn fn) {
  if (op_id >= 0 && op_id < ops::OpId::kCount) impl_table()[op_id] = fn;
}
ImplFn get_impl(int op_id) { return op_id >= 0 && op_id < ops::OpId::kCount ? impl_table()[op_id] : nullptr; }

// ------------------------------------------------------------------ kernels
namespace {
constexpr int kMaxDevices = 8;
struct PendingKernel { int op; std::string device; DType dtype; KernelFn fn; };
std::vector<PendingKernel>& pending() { static std::vector<PendingKernel> v; return v; }
struct KernelTable {
  KernelFn fns[ops::OpId::kCount][kMaxDevices][kNumDTypes] = {};
};
KernelTable& ktable() {
  static KernelTable* t = [] {
    auto* kt = new KernelTable();
    auto& reg = DeviceRegistry::get();
    for (auto& p : pending()) {
      int16_t d = reg.find(p.device);
      if (d < 0 || d >= kMaxDevices) continue;  // kernels for a device not compiled in
      kt->fns[p.op][d][static_cast<int>(p.dtype)] = p.fn;
    }
    return kt;
  }();
  return *t;
}
}  // namespace

void register_kernel(int op_id, const char* device, DType dtype, KernelFn fn) {
  pending().push_back({op_id, device, dtype, fn});
}

KernelFn find_kernel(int op_id, Device device, DType dtype) {
  if (op_id < 0 || op_id >= ops::OpId::kCount || device.type < 0 || device.type >= kMaxDevices) return nullptr;
  return ktable().fns[op_id][device.type][static_cast<int>(dtype)];
}

KernelFn get_kernel(int op_id, Device device, DType dtype) {
  KernelFn f = find_kernel(op_id, device, dtype);
  if (!f) {
    const OpInfo* op = op_by_id(op_id);
    throw Error(ErrorCode::NotImplemented,
                str_cat(op ? op->name : "?", ": no kernel for dtype ", dtype_name(dtype), " on device ", device_str(device)),
                op ? op->name : "");
  }
  return f;
}

Device host_device() {
  static Device h = DeviceRegistry::get().host();
  return h;
}

Device common_device(const char* op, const Tensor* ts, size_t n) {
  Device d = host_device();
  bool found = false;
  for (size_t i = 0; i < n; ++i) {
    if (!ts[i].defined()) continue;
    // Wrapped numbers (Python scalars) live on the host and may join tensors on any device.
    if (ts[i].is_wrapped_number()) continue;
    Device di = ts[i].device();
    if (!found) { d = di; found = true; }
    else if (di != d)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(op, ": expected all tensors on one device, but found ", device_str(d), " and ", device_str(di)));
  }
  return d;
}

// ------------------------------------------------------------------ attribute unpacking
namespace ops {
namespace detail {

namespace {
const char* kind_name(int32_t k) {
  switch (k) {
    case HERON_ATTR_DEFAULT: return "default";
    case HERON_ATTR_NONE: return "none";
    case HERON_ATTR_INT: return "int";
    case HERON_ATTR_FLOAT: return "float";
    case HERON_ATTR_BOOL: return "bool";
    case HERON_ATTR_STRING: return "string";
    case HERON_ATTR_INTS: return "ints";
    case HERON_ATTR_FLOATS: return "floats";
    case HERON_ATTR_DTYPE: return "dtype";
  }
  return "unknown kind";
}
[[noreturn]] void bad_kind(const heron_attr& a, const char* op, const char* name, const char* want) {
  if (a.kind == HERON_ATTR_NONE)
    throw Error(ErrorCode::TypeError, str_cat(op, ": attribute '", name, "' cannot be none (expected ", want, ")"), op);
  throw Error(ErrorCode::TypeError,
              str_cat(op, ": attribute '", name, "' expects ", want, ", got ", kind_name(a.kind), " (kind ", a.kind, ")"), op);
}
void check_list(const heron_attr& a, const char* op, const char* name) {
  if (a.i < 0 || a.i > (int64_t{1} << 24))
    throw Error(ErrorCode::InvalidArgument, str_cat(op, ": attribute '", name, "' has invalid length ", a.i), op);
  if (a.i > 0 && !a.p)
    throw Error(ErrorCode::NullHandle, str_cat(op, ": attribute '", name, "' has length ", a.i, " but a NULL pointer"), op);
}
}  // namespace

// In-place ops write input 0, or every input when the schema says `writes: all` (the fused
// optimizer ops). index_put_'s values and index tensors are only read: bumping them would make a
// later backward through another op that saved them fail.
static void bump_inplace_versions(OpCtx& ctx) {
  if (ctx.op().writes_all_inputs) {
    for (size_t i = 0; i < ctx.num_inputs(); ++i) autograd::bump_version(ctx.in(i));
  } else if (ctx.num_inputs() > 0) {
    autograd::bump_version(ctx.in(0));
  }
}

void check_attr_count(const char* op, size_t given, size_t expected) {
  if (given > expected)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(op, ": got ", given, " attributes, but the op has ", expected), op);
}

void missing_attr(const char* op, const char* attr) {
  throw Error(ErrorCode::InvalidArgument, str_cat(op, ": missing required attribute '", attr, "'"), op);
}

void check_enum(const char* op, const char* attr, const std::string& v, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return;
    if (!list.empty()) list += ", ";
    list += str_cat("'", a, "'");
  }
  throw Error(ErrorCode::InvalidArgument, str_cat(op, ": attribute '", attr, "' must be one of ", list, ", got '", v, "'"), op);
}

static void run_impl_untraced(int id, OpCtx& ctx, const void* attrs);

void run_impl(int id, OpCtx& ctx, const void* attrs) {
  graph::Tracer* tracer = graph::active_tracer();
  if (!tracer || tracer->busy) return run_impl_untraced(id, ctx, attrs);
  tracer->busy = true;
  try {
    run_impl_untraced(id, ctx, attrs);
  } catch (...) {
    tracer->busy = false;
    throw;
  }
  tracer->busy = false;
  tracer->record(id, ctx, attrs);
}

namespace {
thread_local bool t_impl_recording = false;
struct RecordingFlag {
  bool prev;
  explicit RecordingFlag(bool v) : prev(t_impl_recording) { t_impl_recording = v; }
  ~RecordingFlag() { t_impl_recording = prev; }
};
}  // namespace
bool impl_is_recording() { return t_impl_recording; }

static void run_impl_untraced(int id, OpCtx& ctx, const void* attrs) {
  ImplFn fn = get_impl(id);
  if (!fn) throw Error(ErrorCode::NotImplemented, str_cat(ctx.name(), ": not implemented in this build"), ctx.name());
  const OpInfo& op = ctx.op();
  if (!autograd::grad_mode() || !autograd::any_requires_grad(ctx.inputs(), ctx.num_inputs())) {
    {
      RecordingFlag flag(false);
      fn(ctx, attrs);
    }
    if (op.inplace) bump_inplace_versions(ctx);
    return;
  }
  // Recording: the impl's own inner op calls must not be recorded.
  if (op.inplace) autograd::check_inplace(id, ctx);
  {
    autograd::NoGradGuard no_grad;
    RecordingFlag flag(true);
    fn(ctx, attrs);
  }
  if (autograd::anomaly_mode()) autograd::check_anomaly_forward(id, ctx);
  autograd::record(id, ctx, attrs);
}

int64_t get_int(const heron_attr& a, const char* op, const char* name) {
  if (a.kind == HERON_ATTR_INT) return a.i;
  if (a.kind == HERON_ATTR_BOOL) return a.i != 0;
  if (a.kind == HERON_ATTR_FLOAT && std::isfinite(a.f) && a.f == std::floor(a.f) && std::fabs(a.f) < 9.007199254740992e15)
    return static_cast<int64_t>(a.f);
  bad_kind(a, op, name, "int");
}
double get_float(const heron_attr& a, const char* op, const char* name) {
  if (a.kind == HERON_ATTR_FLOAT) return a.f;
  if (a.kind == HERON_ATTR_INT) return static_cast<double>(a.i);
  bad_kind(a, op, name, "float");
}
bool get_bool(const heron_attr& a, const char* op, const char* name) {
  if (a.kind == HERON_ATTR_BOOL || (a.kind == HERON_ATTR_INT && (a.i == 0 || a.i == 1))) return a.i != 0;
  bad_kind(a, op, name, "bool");
}
Scalar get_scalar(const heron_attr& a, const char* op, const char* name) {
  if (a.kind == HERON_ATTR_INT) return Scalar(a.i);
  if (a.kind == HERON_ATTR_FLOAT) return Scalar(a.f);
  if (a.kind == HERON_ATTR_BOOL) return Scalar::from_bool(a.i != 0);
  bad_kind(a, op, name, "a number (int, float or bool)");
}
std::string get_string(const heron_attr& a, const char* op, const char* name) {
  if (a.kind != HERON_ATTR_STRING) bad_kind(a, op, name, "string");
  if (!a.p) throw Error(ErrorCode::NullHandle, str_cat(op, ": attribute '", name, "' is a NULL string"), op);
  const char* s = static_cast<const char*>(a.p);
  if (a.i < 0) return std::string(s, strnlen(s, 1 << 16));
  if (a.i > (1 << 16)) throw Error(ErrorCode::InvalidArgument, str_cat(op, ": attribute '", name, "' is too long"), op);
  return std::string(s, static_cast<size_t>(a.i));
}
Dims get_ints(const heron_attr& a, const char* op, const char* name) {
  if (a.kind == HERON_ATTR_INT) return Dims{a.i};
  if (a.kind != HERON_ATTR_INTS) bad_kind(a, op, name, "a list of ints");
  check_list(a, op, name);
  return Dims(static_cast<const int64_t*>(a.p), static_cast<size_t>(a.i));
}
std::vector<double> get_floats(const heron_attr& a, const char* op, const char* name) {
  if (a.kind == HERON_ATTR_FLOAT) return {a.f};
  if (a.kind == HERON_ATTR_INTS) {
    check_list(a, op, name);
    auto* p = static_cast<const int64_t*>(a.p);
    return std::vector<double>(p, p + a.i);
  }
  if (a.kind != HERON_ATTR_FLOATS) bad_kind(a, op, name, "a list of floats");
  check_list(a, op, name);
  auto* p = static_cast<const double*>(a.p);
  return std::vector<double>(p, p + a.i);
}
DType get_dtype(const heron_attr& a, const char* op, const char* name) {
  if (a.kind != HERON_ATTR_DTYPE) bad_kind(a, op, name, "dtype");
  if (a.i < 0 || a.i >= kNumDTypes)
    throw Error(ErrorCode::TypeError, str_cat(op, ": attribute '", name, "' has unknown dtype code ", a.i), op);
  return static_cast<DType>(a.i);
}
std::string get_device(const heron_attr& a, const char* op, const char* name) {
  if (a.kind != HERON_ATTR_STRING) bad_kind(a, op, name, "a device string such as 'cpu'");
  return get_string(a, op, name);
}

}  // namespace detail
}  // namespace ops
}  // namespace heron
