#include "core/runtime/session.h"

#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/autograd/autograd.h"
#include "core/device/device.h"
#include "core/runtime/memory_plan.h"
#include "core/tensor/allocation_hook.h"
#include "core/util/thread_pool.h"

namespace heron {
namespace runtime {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += s[i] < 0 ? std::string("?") : std::to_string(s[i]);
  }
  return r + "]";
}

const char* attr_kind_name(graph::AttrValue::Kind k) {
  switch (k) {
    case graph::AttrValue::Default: return "default";
    case graph::AttrValue::None: return "none";
    case graph::AttrValue::Int: return "int";
    case graph::AttrValue::Float: return "float";
    case graph::AttrValue::Bool: return "bool";
    case graph::AttrValue::String: return "string";
    case graph::AttrValue::Ints: return "ints";
    case graph::AttrValue::Floats: return "floats";
    case graph::AttrValue::Dtype: return "dtype";
  }
  return "unknown";
}

// Whether the dispatcher's unpacking accepts an attribute of kind k for type t (mirrors get_* in
// core/ops/dispatcher.cpp).
bool kind_fits(AttrType t, graph::AttrValue::Kind k) {
  using K = graph::AttrValue;
  switch (t) {
    case AttrType::Int: return k == K::Int || k == K::Bool || k == K::Float;
    case AttrType::Float: return k == K::Float || k == K::Int;
    case AttrType::Bool: return k == K::Bool || k == K::Int;
    case AttrType::Scalar: return k == K::Int || k == K::Float || k == K::Bool;
    case AttrType::String: return k == K::String;
    case AttrType::Device: return k == K::String;
    case AttrType::Ints: return k == K::Ints || k == K::Int;
    case AttrType::Floats: return k == K::Floats || k == K::Float || k == K::Ints;
    case AttrType::DType: return k == K::Dtype;
  }
  return false;
}

heron_attr to_abi(const graph::AttrValue& v) {
  heron_attr a{};
  switch (v.kind) {
    case graph::AttrValue::Default: a.kind = HERON_ATTR_DEFAULT; break;
    case graph::AttrValue::None: a.kind = HERON_ATTR_NONE; break;
    case graph::AttrValue::Int: a.kind = HERON_ATTR_INT; a.i = v.i; break;
    case graph::AttrValue::Float: a.kind = HERON_ATTR_FLOAT; a.f = v.f; break;
    case graph::AttrValue::Bool: a.kind = HERON_ATTR_BOOL; a.i = v.i != 0; break;
    case graph::AttrValue::String: a.kind = HERON_ATTR_STRING; a.i = static_cast<int64_t>(v.s.size()); a.p = v.s.data(); break;
    case graph::AttrValue::Ints: a.kind = HERON_ATTR_INTS; a.i = static_cast<int64_t>(v.ints.size()); a.p = v.ints.data(); break;
    case graph::AttrValue::Floats: a.kind = HERON_ATTR_FLOATS; a.i = static_cast<int64_t>(v.floats.size()); a.p = v.floats.data(); break;
    case graph::AttrValue::Dtype: a.kind = HERON_ATTR_DTYPE; a.i = v.i; break;
  }
  return a;
}

int64_t small_thread_id() {
  static std::atomic<int64_t> next{0};
  thread_local int64_t id = next.fetch_add(1);
  return id;
}

// Per-run accounting of the bytes held by node outputs: distinct storages, counted once each
// however many values view them; storages of model inputs and initializers are not counted. The
// tracker holds a reference to each counted storage, and a storage counts as freed only when that
// reference is the last one left (so the figure is what is really alive, not what the plan says).
class MemoryTracker {
 public:
  // `fixed`: storages that are never counted (the session's initializers), looked up instead of
  // being entered one by one into this run's map (MobileNetV2: ~110 allocations per run saved).
  explicit MemoryTracker(const std::unordered_set<const Storage*>* fixed = nullptr) : fixed_(fixed) {}
  // Storages whose memory lies in [base, base + bytes) (the run's arena) are not counted: the
  // arena is counted whole instead.
  void set_arena(const void* base, int64_t bytes) {
    arena_lo_ = static_cast<const char*>(base);
    arena_hi_ = arena_lo_ + bytes;
  }
  void external(const Tensor& t) {
    if (t.defined()) entries_[t.storage().get()].count = -1;
  }
  void add(const Tensor& t) {
    if (!t.defined()) return;
    const char* d = static_cast<const char*>(t.storage()->data());
    if (arena_lo_ && d >= arena_lo_ && d < arena_hi_) return;
    if (fixed_ && fixed_->count(t.storage().get())) return;
    Entry& e = entries_[t.storage().get()];
    if (e.count < 0) return;
    if (e.count++ == 0) {
      e.ref = t.storage();
      live_ += static_cast<int64_t>(t.storage()->nbytes());
      peak_ = std::max(peak_, live_);
    }
  }
  // Called after the run dropped its reference to a value viewing storage s.
  void drop(const Storage* s) {
    if (!s) return;
    auto it = entries_.find(s);
    if (it == entries_.end() || it->second.count < 0) return;
    if (--it->second.count == 0) {
      if (it->second.ref->refcount() == 1) live_ -= static_cast<int64_t>(s->nbytes());  // else still held elsewhere
      entries_.erase(it);
    }
  }
  int64_t peak() const { return peak_; }
 private:
  struct Entry {
    int64_t count = 0;
    Ref<Storage> ref;
  };
  const std::unordered_set<const Storage*>* fixed_;
  std::unordered_map<const Storage*, Entry> entries_;
  int64_t live_ = 0, peak_ = 0;
  const char* arena_lo_ = nullptr;
  const char* arena_hi_ = nullptr;
};

// One arena's memory. Refcounted by the run that checked it out (or the pool holding it) and by
// every storage served from it, so memory a storage still points to is never reused or freed:
// a run gives its arena back to the pool only when no storage of it is left.
struct ArenaBuffer {
  char* data = nullptr;
  int64_t bytes = 0;
  Device device;
  std::atomic<int64_t> refs{1};
  ArenaBuffer(int64_t n, Device d) : bytes(n), device(d) {
    data = static_cast<char*>(device_impl(d).allocate(static_cast<size_t>(n), d.index));
  }
  ~ArenaBuffer() { device_impl(device).deallocate(data, static_cast<size_t>(bytes), device.index); }
  static void release(void* p) {
    auto* a = static_cast<ArenaBuffer*>(p);
    if (a->refs.fetch_sub(1) == 1) delete a;
  }
};

// Ops whose output may take over the bytes of an input of the same shape and dtype that dies at
// that step: elementwise kernels that read element i before writing element i (the unary ones are
// already run in place on a fresh copy by run_unary_as; the binary ones index out and a
// same-shaped contiguous input identically). Host only.
bool inplace_op(const char* op, size_t* n_candidates) {
  static const char* const unary[] = {"relu", "clamp", "sigmoid", "tanh", "silu", "gelu", "neg", "abs", "exp", "sqrt"};
  static const char* const binary[] = {"add", "sub", "mul", "div"};
  for (const char* u : unary)
    if (!std::strcmp(op, u)) { *n_candidates = 1; return true; }
  for (const char* b : binary)
    if (!std::strcmp(op, b)) { *n_candidates = 2; return true; }
  return false;
}

bool arena_env_off() {
  const char* e = std::getenv("HERON_ARENA");
  return e && (!std::strcmp(e, "0") || !std::strcmp(e, "off") || !std::strcmp(e, "false"));
}

// Restores the thread's previous allocation hook on scope exit (also when an op throws).
struct HookGuard {
  AllocationHook* prev;
  explicit HookGuard(AllocationHook* h) : prev(set_allocation_hook(h)) {}
  ~HookGuard() { set_allocation_hook(prev); }
};

// One allocation a plan serves from the arena: the alloc_index-th allocation the calling thread
// makes during the step, if it asks for exactly nbytes on the arena's device.
struct ArenaSlot {
  int32_t alloc_index = 0;
  int64_t nbytes = 0;
  int64_t offset = 0;
};

// The hook of a planned run: serves one step's slots from the run's arena.
struct ArenaServer final : AllocationHook {
  const std::vector<ArenaSlot>* slots = nullptr;
  int32_t count = 0;
  ArenaBuffer* arena = nullptr;
  void* allocate(const Storage*, size_t nbytes, Device d, void (**deleter)(void*), void** ctx) override {
    const int32_t i = count++;
    if (!(d == arena->device)) return nullptr;
    for (const ArenaSlot& sl : *slots) {
      if (sl.alloc_index != i) continue;
      if (sl.nbytes != static_cast<int64_t>(nbytes)) return nullptr;  // not what was planned: the device allocator serves it
      arena->refs.fetch_add(1);
      *deleter = &ArenaBuffer::release;
      *ctx = arena;
      return arena->data + sl.offset;
    }
    return nullptr;
  }
};

}  // namespace

// The plan of one input-shape signature.
struct Session::ArenaPlan {
  std::vector<int64_t> signature;
  std::vector<std::vector<ArenaSlot>> steps;  // per position of the run's schedule (see Session::run)
  std::vector<std::vector<std::vector<ArenaSlot>>> lane_steps;  // per micro-batching lane, per position in it
  std::vector<int64_t> value_offset;          // per value id: offset of its buffer in the arena, or -1
  ArenaInfo info;
};

// The session's arenas not in use, shared by all its plans: a run takes the smallest one that is
// large enough for its plan; when none is, it frees the largest (smaller) one and allocates its
// own. So the session holds at most as many arenas as runs ever ran at once, each at most the
// largest plan, whatever the number of input shapes.
struct Session::ArenaPool {
  std::mutex mu;
  std::vector<ArenaBuffer*> free;
  ~ArenaPool() {
    for (ArenaBuffer* a : free) ArenaBuffer::release(a);
  }
  ArenaBuffer* checkout(int64_t bytes, Device device) {
    ArenaBuffer* smaller = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu);
      size_t best = free.size(), largest = free.size();
      for (size_t i = 0; i < free.size(); ++i) {
        if (free[i]->bytes >= bytes && (best == free.size() || free[i]->bytes < free[best]->bytes)) best = i;
        if (largest == free.size() || free[i]->bytes > free[largest]->bytes) largest = i;
      }
      if (best < free.size()) {
        ArenaBuffer* a = free[best];
        free.erase(free.begin() + static_cast<std::ptrdiff_t>(best));
        return a;
      }
      if (largest < free.size()) {
        smaller = free[largest];
        free.erase(free.begin() + static_cast<std::ptrdiff_t>(largest));
      }
    }
    if (smaller) ArenaBuffer::release(smaller);
    return new ArenaBuffer(bytes, device);
  }
  // The run is done with `a`: back to the pool when no storage uses it any more (only the run's
  // reference is left, and nothing can take a new one), else the last storage frees it.
  void give_back(ArenaBuffer* a) {
    if (a->refs.load() == 1) {
      std::lock_guard<std::mutex> lock(mu);
      free.push_back(a);
    } else {
      ArenaBuffer::release(a);
    }
  }
};

// The hook of a run that has no plan for its signature yet: it serves nothing and records the
// allocations of each step; the run tells it which became outputs, which values view which
// buffer and when each buffer's last view is dropped; finish() plans and checks the arena.
struct Session::ArenaPlanner final : AllocationHook {
  struct Buf {
    int64_t size = 0;
    int32_t first = 0, last = -1;
    int32_t alloc_index = 0;
    int32_t inplace_of = -1;
    bool escapes = false;
    bool scratch = false;
    int64_t views = 0;  // live values viewing it
    Ref<Storage> ref;   // held while views > 0, so the storage's address identifies it
  };
  struct Alloc {
    const Storage* storage;
    int64_t nbytes;
    bool destroyed;  // on this thread, during the step
  };
  std::vector<Alloc> step_allocs;
  std::vector<Buf> bufs;
  std::unordered_map<const Storage*, int32_t> live;
  std::vector<int32_t> val_buf;  // per value id: its buffer while alive, or -1
  std::vector<int32_t> made_in;  // per value id: its buffer, or -1 (kept after the value dies)

  void* allocate(const Storage* st, size_t nbytes, Device, void (**)(void*), void**) override {
    step_allocs.push_back({st, static_cast<int64_t>(nbytes), false});
    return nullptr;
  }
  void destroyed(const Storage* st) override {
    for (size_t i = step_allocs.size(); i-- > 0;)
      if (step_allocs[i].storage == st && !step_allocs[i].destroyed) {
        step_allocs[i].destroyed = true;
        return;
      }
  }

  // Registers the buffers of the tensors `outs` (value ids out_ids; escaping ones are model
  // outputs) that position n allocated. Separate from after_outputs so that the run can register
  // a tensor it allocated itself (a micro-batched prefix's whole-batch result).
  int32_t adopt(int32_t n, int32_t id, const Tensor& t, bool escapes, int32_t* n_made) {
    if (!t.defined()) return -1;
    const Storage* st = t.storage().get();
    int32_t b = -1, made = -1;
    auto it = live.find(st);
    if (it != live.end()) {
      b = it->second;
    } else {
      int32_t idx = -1;
      for (size_t i = step_allocs.size(); i-- > 0;)
        if (step_allocs[i].storage == st && !step_allocs[i].destroyed) { idx = static_cast<int32_t>(i); break; }
      if (idx < 0 || step_allocs[static_cast<size_t>(idx)].nbytes != static_cast<int64_t>(st->nbytes()) || st->external()) return -1;
      b = static_cast<int32_t>(bufs.size());
      Buf nb;
      nb.size = static_cast<int64_t>(st->nbytes());
      nb.first = n;
      nb.alloc_index = idx;
      nb.ref = t.storage();
      bufs.push_back(std::move(nb));
      live.emplace(st, b);
      made = b;
      ++*n_made;
    }
    bufs[static_cast<size_t>(b)].views++;
    val_buf[static_cast<size_t>(id)] = b;
    made_in[static_cast<size_t>(id)] = b;
    if (escapes) bufs[static_cast<size_t>(b)].escapes = true;
    return made;
  }

  // After position n ran op `op` on inputs `ins` (value ids in_ids, -1 for those the planner does
  // not track) and made `outs` (value ids out_ids).
  void after_outputs(int32_t n, const OpInfo* op, const std::vector<int32_t>& in_ids, const std::vector<Tensor>& ins,
                     const std::vector<int32_t>& out_ids, const std::vector<Tensor>& outs, bool host, const std::vector<char>& escapes) {
    int32_t made = -1, n_made = 0;
    for (size_t k = 0; k < out_ids.size(); ++k) {
      const int32_t b = adopt(n, out_ids[k], outs[k], escapes[k] != 0, &n_made);
      if (b >= 0) made = b;
    }
    // Kernel scratch: allocated and destroyed on this thread within the step. It gets bytes of the
    // arena for this step only (scratch destroyed elsewhere, or kept, stays with the allocator).
    for (size_t i = 0; i < step_allocs.size(); ++i) {
      if (!step_allocs[i].destroyed) continue;
      Buf sb;
      sb.size = step_allocs[i].nbytes;
      sb.first = sb.last = n;
      sb.alloc_index = static_cast<int32_t>(i);
      sb.scratch = true;
      bufs.push_back(std::move(sb));
    }
    // In place: one allocation in the step, and it is the single output's buffer.
    size_t n_cand = 0;
    if (!host || made < 0 || n_made != 1 || out_ids.size() != 1 || step_allocs.size() != 1 || !inplace_op(op->name, &n_cand)) return;
    const Tensor& o = outs[0];
    Buf& ob = bufs[static_cast<size_t>(made)];
    if (!o.is_contiguous() || o.offset() != 0 || static_cast<int64_t>(o.nbytes()) != ob.size) return;
    for (size_t k = 0; k < n_cand && k < ins.size(); ++k) {
      const Tensor& x = ins[k];
      const int32_t u = in_ids[k];
      if (!x.defined() || u < 0) continue;
      const int32_t a = val_buf[static_cast<size_t>(u)];
      if (a < 0) continue;
      const Buf& ab = bufs[static_cast<size_t>(a)];
      if (ab.escapes || ab.size != ob.size || x.dtype() != o.dtype() || x.shape() != o.shape() || !x.is_contiguous() || x.offset() != 0) continue;
      bool shared = false;  // another input reading the same bytes (say add(x, x.t())) rules it out
      for (size_t j = 0; j < ins.size(); ++j)
        if (j != k && ins[j].defined() && ins[j].storage().get() == x.storage().get()) shared = true;
      if (shared) continue;
      ob.inplace_of = a;  // the planner honours it only if `a` dies at this step
      break;
    }
  }

  void after_free(int32_t n, int32_t v) {
    const int32_t b = val_buf[static_cast<size_t>(v)];
    if (b < 0) return;
    val_buf[static_cast<size_t>(v)] = -1;
    Buf& buf = bufs[static_cast<size_t>(b)];
    if (--buf.views == 0) {
      buf.last = n;
      live.erase(buf.ref.get());
      buf.ref = Ref<Storage>();
    }
  }

  // Plans the recorded buffers: fills `steps` (n_steps positions) with their slots at `base` + their
  // offset, and plan.value_offset (sized already) for the values they made; returns the bytes the
  // buffers need from `base` on.
  // With extra > 0, one more block of that many bytes alive at position extra_pos is placed among
  // them (the micro-batching lanes' part), its offset stored in *extra_offset.
  int64_t finish_into(ArenaPlan& plan, std::vector<std::vector<ArenaSlot>>& steps, size_t n_steps, int64_t base,
                      int64_t extra = 0, int32_t extra_pos = 0, int64_t* extra_offset = nullptr) {
    steps.assign(n_steps, {});
    std::vector<int32_t> index(bufs.size(), -1);
    std::vector<PlanBuffer> pb;
    for (size_t b = 0; b < bufs.size(); ++b) {
      Buf& buf = bufs[b];
      if (buf.views > 0 || buf.last < 0) buf.escapes = true;  // still alive: returned to the caller
      buf.ref = Ref<Storage>();
      if (buf.escapes) { plan.info.unplanned++; continue; }
      index[b] = static_cast<int32_t>(pb.size());
      PlanBuffer p;
      p.size = buf.size;
      p.first = buf.first;
      p.last = buf.last;
      pb.push_back(p);
    }
    for (size_t b = 0; b < bufs.size(); ++b)
      if (index[b] >= 0 && bufs[b].inplace_of >= 0) pb[static_cast<size_t>(index[b])].inplace_of = index[static_cast<size_t>(bufs[b].inplace_of)];
    live.clear();
    if (extra > 0) {
      PlanBuffer p;
      p.size = extra;
      p.first = p.last = extra_pos;
      pb.push_back(p);
    }
    MemoryPlan mp = plan_memory(pb);
    const std::string bad = check_plan(pb, mp);
    if (!bad.empty()) throw Error(ErrorCode::Runtime, str_cat("session: internal error: the memory plan is invalid: ", bad));
    if (extra > 0) *extra_offset = base + mp.offsets.back();
    for (size_t b = 0; b < bufs.size(); ++b) {
      if (index[b] < 0) continue;
      const size_t i = static_cast<size_t>(index[b]);
      steps[static_cast<size_t>(bufs[b].first)].push_back({bufs[b].alloc_index, bufs[b].size, base + mp.offsets[i]});
      plan.info.buffers++;
      plan.info.buffer_bytes += bufs[b].size;
      if (bufs[b].scratch) plan.info.scratch++;
      if (mp.inplace[i]) plan.info.inplace++;
    }
    for (size_t v = 0; v < made_in.size(); ++v)
      if (made_in[v] >= 0 && index[static_cast<size_t>(made_in[v])] >= 0)
        plan.value_offset[v] = base + mp.offsets[static_cast<size_t>(index[static_cast<size_t>(made_in[v])])];
    return mp.arena_bytes;
  }
};

std::shared_ptr<Session::ArenaPlan> Session::find_plan(const std::vector<int64_t>& signature) const {
  std::lock_guard<std::mutex> lock(plans_mu_);
  for (const auto& p : plans_)
    if (p->signature == signature) {
      last_plan_ = p;
      return p;
    }
  return nullptr;
}

void Session::add_plan(std::shared_ptr<ArenaPlan> plan) const {
  constexpr size_t kMaxPlans = 8;  // input-shape signatures remembered; the oldest goes first
  std::lock_guard<std::mutex> lock(plans_mu_);
  for (const auto& p : plans_)
    if (p->signature == plan->signature) return;  // another thread planned it meanwhile
  if (plans_.size() >= kMaxPlans) plans_.erase(plans_.begin());
  plans_.push_back(std::move(plan));
}

ArenaInfo Session::last_arena() const {
  std::lock_guard<std::mutex> lock(plans_mu_);
  return last_plan_ ? last_plan_->info : ArenaInfo{};
}

Session::~Session() = default;

int64_t estimate_flops(const char* op, const Tensor* in, size_t n_in, const Tensor* out, size_t n_out) {
  if (n_out == 0 || !out[0].defined()) return 0;
  const int64_t on = out[0].numel();
  auto has = [&](size_t i, int64_t dims) { return n_in > i && in[i].defined() && in[i].dim() == dims; };
  if (!std::strcmp(op, "matmul") && n_in >= 2 && in[0].defined() && in[0].dim() >= 1) {
    return 2 * on * in[0].size(-1);
  }
  if (!std::strcmp(op, "linear") && has(1, 2)) {
    int64_t f = 2 * on * in[1].size(1);
    if (n_in > 2 && in[2].defined()) f += on;
    return f;
  }
  if ((!std::strcmp(op, "conv2d") || !std::strcmp(op, "conv2d_fused")) && has(1, 4)) {
    int64_t f = 2 * on * in[1].size(1) * in[1].size(2) * in[1].size(3);
    if (n_in > 2 && in[2].defined()) f += on;
    return f;
  }
  if (!std::strcmp(op, "conv1d") && has(1, 3)) {
    int64_t f = 2 * on * in[1].size(1) * in[1].size(2);
    if (n_in > 2 && in[2].defined()) f += on;
    return f;
  }
  if (!std::strcmp(op, "conv_transpose2d") && has(0, 4) && has(1, 4)) {
    // Every input element meets C_out/groups x kh x kw weights.
    int64_t f = 2 * in[0].numel() * in[1].size(1) * in[1].size(2) * in[1].size(3);
    if (n_in > 2 && in[2].defined()) f += on;
    return f;
  }
  return 0;
}

Session::Session(graph::Graph g, SessionOptions opts) : g_(std::move(g)), opts_(std::move(opts)) {
  created_ns_ = now_ns();
  device_ = DeviceRegistry::get().parse(opts_.device);
  if (opts_.threads < 0)
    throw Error(ErrorCode::InvalidArgument, str_cat("session: threads must be >= 0 (0 = keep the current pool), got ", opts_.threads));
  check_and_plan();  // checks the graph as given (the passes assume a well-formed one)
  if (opts_.optimize && device_impl(device_).is_host() && !std::getenv("HERON_NO_GRAPH_OPT")) {
    report_ = graph::optimize(g_);
    check_and_plan();
  }
  freeze_weights();
  for (const Tensor& t : init_values_)
    if (t.defined()) init_storages_.insert(t.storage().get());
  if (opts_.threads > 0 && opts_.threads != get_num_threads()) set_num_threads(opts_.threads);
}

void Session::freeze_weights() {
  // Convolution weights on the host become the session's own frozen copies (kept packed for the
  // micro-kernel after the first run); weights the passes made are frozen already.
  if (device_impl(device_).is_host()) {
    auto freeze_input = [&](const graph::Node& node, size_t i) {
      if (i >= node.inputs.size() || node.inputs[i] < 0) return;
      if (static_cast<size_t>(node.inputs[i]) >= init_values_.size()) return;
      Tensor& w = init_values_[static_cast<size_t>(node.inputs[i])];
      if (!w.defined() || w.storage()->frozen()) return;  // not a weight, or frozen already
      Tensor copy = w.clone();
      copy.storage()->freeze();
      w = copy;
      g_.initializers[node.inputs[i]] = copy;
    };
    for (const graph::Node& node : g_.nodes) {
      if (node.op == "conv2d" || node.op == "conv2d_fused") freeze_input(node, 1);
      // Recurrent layers: every parameter (the kernels keep them permuted and packed).
      const size_t first = node.op == "lstm" ? 4 : (node.op == "rnn" || node.op == "gru") ? 3 : node.op == "lstm_cell" ? 3
                           : (node.op == "rnn_cell" || node.op == "gru_cell") ? 2 : SIZE_MAX;
      for (size_t i = first; i < node.inputs.size(); ++i) freeze_input(node, i);
    }
    // When the passes folded weights, the session owns nearly all of them: it copies the few
    // that still live in the model's memory-mapped file too, so that releasing the model releases
    // the mapping (whose pages folding read) instead of the session pinning it for a classifier.
    if (report_.folded_batch_norms > 0) {
      for (auto& [v, t0] : g_.initializers) {
        Tensor& t = init_values_[v];
        if (!t.defined() || !t.storage()->external() || t.storage()->frozen()) continue;
        if (g_.values[v].wrapped_number) continue;
        Tensor copy = t.clone();
        copy.storage()->freeze();
        t = copy;
        t0 = copy;  // the session's graph no longer refers to the mapping either
      }
    }
  }
}

void Session::check_and_plan() {
  steps_.clear();
  input_index_.clear();
  output_index_.clear();
  // The arena: host devices only for now. On CUDA, reusing an arena across runs relies on every
  // run's kernels being ordered on one stream, which is true of the legacy default stream Heron
  // uses but has not been exercised on a GPU yet (docs/design/runtime.md).
  arena_on_ = opts_.arena && !arena_env_off() && device_impl(device_).is_host();
  if (arena_on_ && !pool_) pool_ = std::make_unique<ArenaPool>();
  const int32_t nv = static_cast<int32_t>(g_.values.size());
  auto check_id = [&](int32_t id, const std::string& where) {
    if (id < 0 || id >= nv)
      throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, " refers to value ", id, ", out of range [0, ", nv, ")"));
  };
  std::vector<int32_t> producer(static_cast<size_t>(nv), -2);  // -2 undefined, -1 input/initializer, else node
  for (size_t i = 0; i < g_.inputs.size(); ++i) {
    int32_t v = g_.inputs[i];
    check_id(v, str_cat("model input ", i));
    if (producer[v] != -2) throw Error(ErrorCode::InvalidArgument, str_cat("session: value '", g_.values[v].name, "' is a model input twice"));
    producer[v] = -1;
    const std::string& name = g_.values[v].name;
    if (!input_index_.emplace(name, i).second)
      throw Error(ErrorCode::InvalidArgument, str_cat("session: two model inputs are named '", name, "'"));
  }
  init_values_.assign(static_cast<size_t>(nv), Tensor());
  for (const auto& [v, t] : g_.initializers) {
    check_id(v, "an initializer");
    if (producer[v] != -2)
      throw Error(ErrorCode::InvalidArgument, str_cat("session: initializer '", g_.values[v].name, "' is also a model input"));
    if (!t.defined()) throw Error(ErrorCode::InvalidArgument, str_cat("session: initializer '", g_.values[v].name, "' has no tensor"));
    const auto& val = g_.values[v];
    if (t.dtype() != val.dtype || t.shape().vec() != val.shape)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("session: initializer '", val.name, "' is ", dtype_name(t.dtype()), t.shape().str(), " but its value is declared ",
                          dtype_name(val.dtype), shape_str(val.shape)));
    producer[v] = -1;
    init_values_[v] = t.device() == device_ ? t : t.to(device_);
    if (val.wrapped_number) {  // a captured host number: its own handle, flagged, so promotion matches eager
      Tensor w = Tensor::make(init_values_[v].storage(), init_values_[v].dtype(), init_values_[v].shape(),
                              init_values_[v].strides(), init_values_[v].offset());
      w.set_wrapped_number(true);
      init_values_[v] = w;
    }
  }
  std::vector<int32_t> last_use(static_cast<size_t>(nv), -1);
  std::unordered_map<std::string, size_t> node_names;
  steps_.resize(g_.nodes.size());
  for (size_t n = 0; n < g_.nodes.size(); ++n) {
    const graph::Node& node = g_.nodes[n];
    const std::string where = str_cat("node '", node.name, "' (", node.op, ")");
    if (!node_names.emplace(node.name, n).second) throw Error(ErrorCode::InvalidArgument, str_cat("session: two nodes are named '", node.name, "'"));
    const OpInfo* op = find_op(node.op);
    if (!op) throw Error(ErrorCode::NotFound, str_cat("session: ", where, ": unknown op '", node.op, "'"));
    if (!get_impl(op->id)) throw Error(ErrorCode::NotImplemented, str_cat("session: ", where, ": op not implemented in this build"), op->name);
    size_t fixed = static_cast<size_t>(op->n_inputs);
    if (op->variadic_input ? node.inputs.size() < fixed : node.inputs.size() != fixed)
      throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": expected ", op->variadic_input ? "at least " : "", fixed,
                                                      " inputs, the node has ", node.inputs.size()));
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      int32_t v = node.inputs[k];
      if (v == -1) {
        if (!op->input_optional[k < fixed ? k : fixed])
          throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": input ", k, " is required but absent"));
        continue;
      }
      check_id(v, str_cat(where, " input ", k));
      if (producer[v] == -2)
        throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": input ", k, " '", g_.values[v].name,
                                                        "' is used before it is defined (nodes must be in topological order)"));
      last_use[v] = static_cast<int32_t>(n);
    }
    if (!op->variadic_output && node.outputs.size() != static_cast<size_t>(op->n_outputs))
      throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": the op has ", op->n_outputs, " outputs, the node lists ", node.outputs.size()));
    for (int32_t v : node.outputs) {
      check_id(v, str_cat(where, " output"));
      if (producer[v] != -2) throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": value '", g_.values[v].name, "' is defined twice"));
      producer[v] = static_cast<int32_t>(n);
      last_use[v] = static_cast<int32_t>(n);  // an unused output dies right after its node
    }
    if (node.attrs.size() > static_cast<size_t>(op->n_attrs))
      throw Error(ErrorCode::InvalidArgument, str_cat("session: ", where, ": ", node.attrs.size(), " attributes, the op has ", op->n_attrs));
    Step& s = steps_[n];
    s.op = op;
    s.inputs = node.inputs;
    s.outputs = node.outputs;
    for (size_t k = 0; k < node.attrs.size(); ++k) {
      const AttrInfo& ai = op->attrs[k];
      auto kind = node.attrs[k].kind;
      bool ok = kind == graph::AttrValue::Default ? (ai.has_default || ai.optional)
                : kind == graph::AttrValue::None  ? ai.optional
                                                  : kind_fits(ai.type, kind);
      if (!ok)
        throw Error(ErrorCode::TypeError, str_cat("session: ", where, ": attribute '", ai.name, "' cannot be ", attr_kind_name(kind)), op->name);
      s.attrs.push_back(to_abi(node.attrs[k]));
    }
  }
  is_output_.assign(static_cast<size_t>(nv), 0);
  for (size_t i = 0; i < g_.outputs.size(); ++i) {
    int32_t v = g_.outputs[i];
    check_id(v, str_cat("model output ", i));
    if (producer[v] == -2) throw Error(ErrorCode::InvalidArgument, str_cat("session: model output '", g_.values[v].name, "' is never computed"));
    is_output_[v] = 1;
    output_index_.emplace(g_.values[v].name, i);
  }
  for (int32_t v = 0; v < nv; ++v)
    if (last_use[v] >= 0 && !is_output_[v] && producer[v] >= 0) steps_[last_use[v]].free_after.push_back(v);
  // Outputs nobody reads (max_pool2d's indices at inference): the op may skip them (OpCtx).
  for (auto& st : steps_) {
    st.unused_outputs = 0;
    for (size_t k = 0; k < st.outputs.size() && k < 32; ++k) {
      const int32_t v = st.outputs[k];
      if (v >= 0 && !is_output_[v] && producer[v] >= 0 && last_use[v] == producer[v]) st.unused_outputs |= 1u << k;
    }
  }
  // Inputs and initializers: the run drops its own reference after the last use too (the caller's
  // and the session's references keep them alive).
  for (int32_t v = 0; v < nv; ++v)
    if (last_use[v] >= 0 && !is_output_[v] && producer[v] == -1) steps_[last_use[v]].free_after.push_back(v);
  plan_microbatch(producer, last_use);
}

namespace {
// A micro-batched step is worth it while its largest per-sample operand is at least this big: below
// that a sample's values fit in the core's L2 anyway and the whole batch gives the kernels more
// work per dispatch (measured on MobileNetV2 and ResNet-18, docs/design/runtime.md).
constexpr int64_t kMicrobatchMinBytes = int64_t(512) << 10;

bool microbatch_env_off() {
  const char* e = std::getenv("HERON_MICROBATCH");
  return e && (!std::strcmp(e, "0") || !std::strcmp(e, "off") || !std::strcmp(e, "false"));
}

// Bytes of one batch row of a value (dims after the first), or -1 when unknown or not batched.
int64_t sample_bytes(const graph::Value& v) {
  if (v.shape.empty()) return -1;
  int64_t n = 1;
  for (size_t d = 1; d < v.shape.size(); ++d) {
    if (v.shape[d] < 0) return -1;
    n *= v.shape[d];
  }
  return n * static_cast<int64_t>(itemsize(v.dtype));
}
}  // namespace

// Finds the prefix of steps that may run one batch row at a time: ops that treat batch rows
// independently (convolutions, pooling, elementwise), whose batched operands all descend from the
// model inputs' first dim, while the work is large per sample. See run() for how it executes.
void Session::plan_microbatch(const std::vector<int32_t>& producer, const std::vector<int32_t>& last_use) {
  prefix_ = 0;
  prefix_in_kind_.clear();
  prefix_free_.clear();
  prefix_outer_free_.clear();
  prefix_sliced_inputs_.clear();
  exit_.assign(g_.values.size(), 0);
  if (!opts_.microbatch || microbatch_env_off() || !device_impl(device_).is_host()) return;
  const size_t nv = g_.values.size();
  std::vector<char> local(nv, 0), is_input(nv, 0);
  for (int32_t v : g_.inputs) is_input[static_cast<size_t>(v)] = 1;
  std::vector<std::vector<int8_t>> kinds;
  size_t k = 0;
  for (; k < steps_.size(); ++k) {
    const graph::Node& node = g_.nodes[k];
    const std::string& op = node.op;
    const bool conv = op == "conv2d" || op == "conv2d_fused";
    const bool pool = op == "max_pool2d" || op == "avg_pool2d";
    const bool unary = op == "relu" || op == "clamp" || op == "sigmoid" || op == "tanh" || op == "silu" || op == "gelu";
    const bool binary = op == "add" || op == "sub" || op == "mul" || op == "div";
    if (!conv && !pool && !unary && !binary) break;
    std::vector<int8_t> kind(node.inputs.size(), kWhole);
    int64_t batched_rank = -1, biggest = 0;
    bool ok = true;
    for (size_t i = 0; i < node.inputs.size() && ok; ++i) {
      const int32_t v = node.inputs[i];
      if (v < 0) continue;
      const graph::Value& val = g_.values[static_cast<size_t>(v)];
      const bool batched = local[static_cast<size_t>(v)] || is_input[static_cast<size_t>(v)];
      // Which inputs must be batched, and which must not.
      const bool must_batch = (conv && (i == 0 || i == 3)) || ((pool || unary) && i == 0);
      const bool may_batch = must_batch || binary;
      if (!batched) {
        if (must_batch || producer[static_cast<size_t>(v)] != -1) { ok = false; break; }
        continue;
      }
      if (!may_batch) { ok = false; break; }
      const int64_t rank = static_cast<int64_t>(val.shape.size());
      if (rank < 1 || ((conv || pool) && rank != 4) || (batched_rank >= 0 && rank != batched_rank)) { ok = false; break; }
      const int64_t sb = sample_bytes(val);
      if (sb < 0) { ok = false; break; }
      batched_rank = rank;
      biggest = std::max(biggest, sb);
      kind[i] = local[static_cast<size_t>(v)] ? kLocal : kSliced;
    }
    if (!ok || batched_rank < 0) break;
    if (binary) {  // the other operand broadcasts without touching the batch dim
      for (size_t i = 0; i < node.inputs.size() && ok; ++i) {
        const int32_t v = node.inputs[i];
        if (v < 0 || kind[i] != kWhole) continue;
        const auto& sh = g_.values[static_cast<size_t>(v)].shape;
        ok = static_cast<int64_t>(sh.size()) < batched_rank || (static_cast<int64_t>(sh.size()) == batched_rank && sh[0] == 1);
      }
      if (!ok) break;
    }
    for (int32_t v : node.outputs) {
      const graph::Value& val = g_.values[static_cast<size_t>(v)];
      const int64_t sb = sample_bytes(val);
      if (sb < 0 || static_cast<int64_t>(val.shape.size()) != batched_rank) { ok = false; break; }
      biggest = std::max(biggest, sb);
    }
    if (!ok || biggest < kMicrobatchMinBytes) break;
    for (int32_t v : node.outputs) local[static_cast<size_t>(v)] = 1;
    kinds.push_back(std::move(kind));
  }
  if (k == 0) return;
  prefix_ = static_cast<int32_t>(k);
  prefix_in_kind_ = std::move(kinds);
  prefix_free_.assign(k, {});
  // A sample's value is dropped after its last read inside the prefix (values read after the
  // prefix, or model outputs, are copied into their whole-batch tensor right after they are made).
  std::vector<int32_t> local_last(nv, -1);
  std::vector<char> sliced(nv, 0);
  for (size_t n = 0; n < k; ++n) {
    for (size_t i = 0; i < steps_[n].inputs.size(); ++i) {
      const int32_t v = steps_[n].inputs[i];
      if (v < 0) continue;
      if (prefix_in_kind_[n][i] == kLocal) local_last[static_cast<size_t>(v)] = static_cast<int32_t>(n);
      if (prefix_in_kind_[n][i] == kSliced && !sliced[static_cast<size_t>(v)]) {
        sliced[static_cast<size_t>(v)] = 1;
        prefix_sliced_inputs_.push_back(v);
      }
    }
    for (int32_t v : steps_[n].outputs) local_last[static_cast<size_t>(v)] = std::max(local_last[static_cast<size_t>(v)], static_cast<int32_t>(n));
  }
  for (size_t v = 0; v < nv; ++v) {
    if (!local[v]) continue;
    if (last_use[v] >= prefix_ || is_output_[v]) exit_[v] = 1;
    prefix_free_[static_cast<size_t>(local_last[v])].push_back(static_cast<int32_t>(v));
  }
  for (size_t v = 0; v < nv; ++v)
    if (producer[v] == -1 && last_use[v] >= 0 && last_use[v] < prefix_ && !is_output_[v]) prefix_outer_free_.push_back(static_cast<int32_t>(v));
}

std::string Session::describe_inputs() const {
  std::string r;
  for (size_t i = 0; i < g_.inputs.size(); ++i) {
    const auto& v = g_.values[g_.inputs[i]];
    if (i) r += ", ";
    r += str_cat("'", v.name, "': ", dtype_name(v.dtype), shape_str(v.shape));
  }
  return r.empty() ? "no inputs" : r;
}

std::vector<Tensor> Session::run(const std::vector<std::string>& input_names, const std::vector<Tensor>& inputs,
                                 const std::vector<std::string>& output_names, RunStats* stats) const {
  if (input_names.size() != inputs.size())
    throw Error(ErrorCode::InvalidArgument, str_cat("run: ", input_names.size(), " input names for ", inputs.size(), " tensors"));
  const int64_t t0 = now_ns();
  // Pool threads that fell asleep since the last run (they block after ~100 us idle) wake while
  // the inputs are checked, instead of during the first node (measured: MobileNetV2's stem ran
  // on one thread for tens of microseconds when a run came after a pause).
  wake_thread_pool();
  std::vector<Tensor> vals(init_values_);
  MemoryTracker mem(&init_storages_);
  std::vector<char> bound(g_.inputs.size(), 0);
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto it = input_index_.find(input_names[i]);
    if (it == input_index_.end())
      throw Error(ErrorCode::NotFound, str_cat("run: the model has no input named '", input_names[i], "'; it expects ", describe_inputs()));
    if (bound[it->second]) throw Error(ErrorCode::InvalidArgument, str_cat("run: input '", input_names[i], "' is given twice"));
    bound[it->second] = 1;
    const graph::Value& want = g_.values[g_.inputs[it->second]];
    const Tensor& t = inputs[i];
    if (!t.defined()) throw Error(ErrorCode::NullHandle, str_cat("run: input '", want.name, "' is NULL"));
    if (t.dtype() != want.dtype)
      throw Error(ErrorCode::TypeError, str_cat("run: input '", want.name, "' must be ", dtype_name(want.dtype), shape_str(want.shape), ", got ",
                                                dtype_name(t.dtype()), t.shape().str(), "; the model expects ", describe_inputs()));
    bool shape_ok = static_cast<size_t>(t.dim()) == want.shape.size();
    for (size_t d = 0; shape_ok && d < want.shape.size(); ++d) shape_ok = want.shape[d] < 0 || want.shape[d] == t.shape()[d];
    if (!shape_ok)
      throw Error(ErrorCode::InvalidArgument, str_cat("run: input '", want.name, "' must have shape ", shape_str(want.shape), " (? = any size), got ",
                                                      t.shape().str(), "; the model expects ", describe_inputs()));
    vals[g_.inputs[it->second]] = t.device() == device_ ? t : t.to(device_);
    mem.external(vals[g_.inputs[it->second]]);
  }
  for (size_t i = 0; i < bound.size(); ++i)
    if (!bound[i]) throw Error(ErrorCode::InvalidArgument, str_cat("run: missing input '", g_.values[g_.inputs[i]].name, "'; the model expects ", describe_inputs()));
  std::vector<size_t> out_pos;
  if (output_names.empty()) {
    for (size_t i = 0; i < g_.outputs.size(); ++i) out_pos.push_back(i);
  } else {
    for (const auto& name : output_names) {
      auto it = output_index_.find(name);
      if (it == output_index_.end()) {
        std::string list;
        for (size_t i = 0; i < g_.outputs.size(); ++i) list += str_cat(i ? ", '" : "'", g_.values[g_.outputs[i]].name, "'");
        throw Error(ErrorCode::NotFound, str_cat("run: the model has no output named '", name, "'; its outputs are ", list));
      }
      out_pos.push_back(it->second);
    }
  }

  // Micro-batching: with a batch of B > 1 rows, the prefix steps (plan_microbatch) run once per row,
  // so that a row's intermediates stay in cache from one step to the next (in the prefix they are
  // large; a whole batch of them is not). With T > 1 threads, rows run in T lanes at once, each on
  // one thread (kernels run inline inside a pool task): full rounds of T rows, then the rows left
  // over one at a time on all threads. Row i's value v has id (i + 1) * nv + v; values read after
  // the prefix get their whole-batch tensor (id v) first, and each row is copied into it as soon
  // as it is made. Each lane records and serves its own part of the arena, after the main part.
  const int32_t nv = static_cast<int32_t>(g_.values.size());
  int64_t batch = 0;
  for (int32_t v : prefix_sliced_inputs_) {
    const Tensor& t = vals[static_cast<size_t>(v)];
    const int64_t b = t.dim() >= 1 ? t.shape()[0] : 0;
    batch = (batch == 0 || batch == b) ? b : -1;
  }
  const bool micro = prefix_ > 0 && batch > 1;
  const int64_t n_lanes = micro ? std::min<int64_t>(get_num_threads(), batch) : 0;
  const int64_t laned_rows = n_lanes >= 2 ? batch / n_lanes * n_lanes : 0;  // rows run by the lanes
  const int64_t lane_positions = n_lanes >= 2 ? batch / n_lanes * prefix_ : 0;
  const int64_t n_ids = micro ? static_cast<int64_t>(nv) * (batch + 1) : nv;
  // Main positions: [0] the whole-batch tensors of the prefix's results (micro-batched runs), then
  // the prefix of each row not run by a lane, then the rest of the steps on the whole batch.
  const size_t first_row_pos = micro ? 1 : 0;
  const size_t first_whole_pos = first_row_pos + (micro ? static_cast<size_t>(batch - laned_rows) * static_cast<size_t>(prefix_) : 0);
  const size_t n_positions = first_whole_pos + steps_.size() - (micro ? static_cast<size_t>(prefix_) : 0);
  if (micro) vals.resize(static_cast<size_t>(n_ids));

  // The memory plan of this input-shape signature (and the thread count, which kernels' scratch
  // allocations may depend on): serve from an arena, or record to make the plan.
  std::shared_ptr<ArenaPlan> plan;
  std::unique_ptr<ArenaPlanner> planner;
  std::vector<std::unique_ptr<ArenaPlanner>> lane_planners;
  std::vector<int64_t> signature;
  if (arena_on_) {
    signature.push_back(get_num_threads());
    for (int32_t v : g_.inputs) {
      const Tensor& t = vals[static_cast<size_t>(v)];
      signature.push_back(t.dim());
      for (int64_t d = 0; d < t.dim(); ++d) signature.push_back(t.shape()[d]);
    }
    plan = find_plan(signature);
    if (!plan) {
      planner = std::make_unique<ArenaPlanner>();
      planner->val_buf.assign(static_cast<size_t>(n_ids), -1);
      planner->made_in.assign(static_cast<size_t>(n_ids), -1);
      for (int64_t j = 0; j < (laned_rows ? n_lanes : 0); ++j) {
        lane_planners.push_back(std::make_unique<ArenaPlanner>());
        lane_planners.back()->val_buf.assign(static_cast<size_t>(n_ids), -1);
        lane_planners.back()->made_in.assign(static_cast<size_t>(n_ids), -1);
      }
    }
  }
  struct ArenaLease {  // gives the arena back however the run ends
    ArenaPool* pool = nullptr;
    ArenaBuffer* arena = nullptr;
    ~ArenaLease() {
      if (arena) pool->give_back(arena);
    }
  } lease;
  if (plan && plan->info.arena_bytes > 0) {
    lease.pool = pool_.get();
    lease.arena = pool_->checkout(plan->info.arena_bytes, device_);
    mem.set_arena(lease.arena->data, lease.arena->bytes);
  }

  const bool profile = opts_.profile;
  const bool host = device_impl(device_).is_host();
  RunProfile prof;
  if (profile) prof.nodes.reserve(n_positions);
  autograd::NoGradGuard no_grad;

  // Where one sequence of executions keeps its state: the main one, or a lane's.
  struct Exec {
    ArenaPlanner* planner = nullptr;                       // the planning run's recorder
    const std::vector<std::vector<ArenaSlot>>* slots = nullptr;  // a planned run's slots, per position
    ArenaServer server;
    MemoryTracker* mem = nullptr;
    std::vector<NodeProfile>* prof = nullptr;
    std::vector<Tensor> ins, outs;
    std::vector<int32_t> in_ids, out_ids;
    std::vector<char> escapes;
  };
  auto drop = [&](Exec& e, size_t pos, size_t id) {
    const Storage* st = vals[id].defined() ? vals[id].storage().get() : nullptr;
    vals[id] = Tensor();
    if (e.planner) e.planner->after_free(static_cast<int32_t>(pos), static_cast<int32_t>(id));  // before drop: it may hold the last other reference
    e.mem->drop(st);
  };
  // The allocation hook of position pos of `e`: its planned slots (a served run), the recorder (the
  // planning run), or none.
  auto hook_at = [&](Exec& e, size_t pos) -> AllocationHook* {
    if (e.slots && !(*e.slots)[pos].empty()) {
      e.server.slots = &(*e.slots)[pos];
      e.server.count = 0;
      e.server.arena = lease.arena;
      return &e.server;
    }
    if (e.planner) {
      e.planner->step_allocs.clear();
      return e.planner;
    }
    return nullptr;
  };
  // Places `t`, value id, where the plan says, if it is in the arena at all: anywhere else (an op
  // that allocated in another order than when it was planned) the bytes are reserved for another
  // lifetime, so it moves out to memory of its own.
  auto placed = [&](Tensor t, size_t id) {
    if (lease.arena && t.defined()) {
      const char* d = static_cast<const char*>(t.storage()->data());
      const char* a = lease.arena->data;
      if (d >= a && d < a + lease.arena->bytes && d - a != plan->value_offset[id]) t = t.clone();
    }
    return t;
  };
  // Runs step n at position pos of `e`: on the whole batch (sample < 0) or on one batch row.
  auto exec = [&](Exec& e, size_t pos, size_t n, int64_t sample) {
    const Step& s = steps_[n];
    const size_t base = sample < 0 ? 0 : static_cast<size_t>(sample + 1) * static_cast<size_t>(nv);
    e.ins.clear();
    e.in_ids.clear();
    for (size_t k = 0; k < s.inputs.size(); ++k) {
      const int32_t v = s.inputs[k];
      if (v < 0) {
        e.ins.emplace_back();
        e.in_ids.push_back(-1);
      } else if (sample < 0 || prefix_in_kind_[n][k] == kWhole) {
        e.ins.push_back(vals[static_cast<size_t>(v)]);
        e.in_ids.push_back(v);
      } else if (prefix_in_kind_[n][k] == kLocal) {
        e.ins.push_back(vals[base + static_cast<size_t>(v)]);
        e.in_ids.push_back(static_cast<int32_t>(base + static_cast<size_t>(v)));
      } else {  // kSliced: row `sample` of a model input, a view
        e.ins.push_back(vals[static_cast<size_t>(v)].slice(0, sample, sample + 1, 1));
        e.in_ids.push_back(-1);
      }
    }
    OpCtx ctx(s.op, e.ins.data(), e.ins.size());
    ctx.unused_outputs = s.unused_outputs;
    const int64_t start = profile ? now_ns() - t0 : 0;
    try {
      {
        HookGuard guard(hook_at(e, pos));
        s.op->invoke(ctx, s.attrs.data(), s.attrs.size());
      }
      if (ctx.outputs.size() != s.outputs.size())
        throw Error(ErrorCode::Runtime, str_cat("the op produced ", ctx.outputs.size(), " outputs, the node lists ", s.outputs.size()));
      if (profile && !host) device_impl(device_).synchronize(device_.index);
      e.outs.clear();
      e.out_ids.clear();
      e.escapes.clear();
      for (size_t k = 0; k < s.outputs.size(); ++k) {
        const size_t id = base + static_cast<size_t>(s.outputs[k]);
        vals[id] = placed(std::move(ctx.outputs[k]), id);
        e.mem->add(vals[id]);
        if (e.planner) {
          e.outs.push_back(vals[id]);
          e.out_ids.push_back(static_cast<int32_t>(id));
          e.escapes.push_back(sample < 0 && is_output_[static_cast<size_t>(s.outputs[k])]);
        }
      }
      if (e.planner) e.planner->after_outputs(static_cast<int32_t>(pos), s.op, e.in_ids, e.ins, e.out_ids, e.outs, host, e.escapes);
      if (sample >= 0) {  // the row's results read after the prefix go into their whole-batch tensors
        for (size_t k = 0; k < s.outputs.size(); ++k) {
          const int32_t v = s.outputs[k];
          if (!exit_[static_cast<size_t>(v)]) continue;
          const Tensor& whole = vals[static_cast<size_t>(v)];
          const Tensor& part = vals[base + static_cast<size_t>(v)];
          if (!part.defined() || part.dtype() != whole.dtype() || part.dim() != whole.dim() || part.shape()[0] != 1 ||
              !std::equal(part.shape().begin() + 1, part.shape().end(), whole.shape().begin() + 1))
            throw Error(ErrorCode::Runtime, str_cat("micro-batching: row ", sample, "'s result ", part.defined() ? part.shape().str() : "(none)",
                                                    " does not fit the declared ", dtype_name(whole.dtype()), whole.shape().str()));
          whole.slice(0, sample, sample + 1, 1).copy_from(part);
        }
      }
    } catch (const Error& err) {
      const auto& node = g_.nodes[n];
      throw Error(err.code(), str_cat("run: node '", node.name, "' (", node.op, "): ", err.what()), s.op->name);
    }
    if (profile) {
      NodeProfile np;
      np.node = static_cast<int32_t>(n);
      np.sample = static_cast<int32_t>(sample);
      np.start_ns = start;
      np.end_ns = now_ns() - t0;
      for (const Tensor& t : e.ins) {
        np.input_shapes.push_back(t.defined() ? t.shape().vec() : std::vector<int64_t>{});
        if (t.defined()) np.bytes += static_cast<int64_t>(t.nbytes());
      }
      std::vector<Tensor> produced;
      for (size_t k = 0; k < s.outputs.size(); ++k) {
        const Tensor& t = vals[base + static_cast<size_t>(s.outputs[k])];
        np.output_shapes.push_back(t.defined() ? t.shape().vec() : std::vector<int64_t>{});
        if (t.defined()) np.bytes += static_cast<int64_t>(t.nbytes());
        produced.push_back(t);
      }
      np.flops = estimate_flops(s.op->name, e.ins.data(), e.ins.size(), produced.data(), produced.size());
      e.prof->push_back(std::move(np));
    }
    e.ins.clear();
    e.outs.clear();
    if (sample < 0) {
      for (int32_t v : s.free_after) drop(e, pos, static_cast<size_t>(v));
    } else {
      for (int32_t v : prefix_free_[n]) drop(e, pos, base + static_cast<size_t>(v));
    }
  };

  Exec main_exec;
  main_exec.planner = planner.get();
  main_exec.slots = lease.arena ? &plan->steps : nullptr;
  main_exec.mem = &mem;
  main_exec.prof = &prof.nodes;
  int64_t lane_peaks = 0;
  if (micro) {
    // Position 0: the whole-batch tensors of the values read after the prefix, from their declared
    // shapes (plan_microbatch checked they are known), under the hook so the plan places them.
    {
      HookGuard guard(hook_at(main_exec, 0));
      for (size_t v = 0; v < static_cast<size_t>(nv); ++v) {
        if (!exit_[v]) continue;
        Dims shape(g_.values[v].shape);
        shape[0] = batch;
        vals[v] = Tensor::empty(shape, g_.values[v].dtype, device_);
      }
    }
    for (size_t v = 0; v < static_cast<size_t>(nv); ++v) {
      if (!exit_[v]) continue;
      vals[v] = placed(vals[v], v);
      mem.add(vals[v]);
      int32_t n_made = 0;
      if (planner) planner->adopt(0, static_cast<int32_t>(v), vals[v], is_output_[v] != 0, &n_made);
    }
    if (laned_rows) {
      std::vector<Exec> lanes(static_cast<size_t>(n_lanes));
      std::vector<MemoryTracker> lane_mem(static_cast<size_t>(n_lanes), MemoryTracker(&init_storages_));
      std::vector<std::vector<NodeProfile>> lane_prof(static_cast<size_t>(n_lanes));
      for (size_t j = 0; j < lanes.size(); ++j) {
        lanes[j].planner = planner ? lane_planners[j].get() : nullptr;
        lanes[j].slots = lease.arena ? &plan->lane_steps[j] : nullptr;
        lane_mem[j].set_arena(lease.arena ? lease.arena->data : nullptr, lease.arena ? lease.arena->bytes : 0);
        lanes[j].mem = &lane_mem[j];
        lanes[j].prof = &lane_prof[j];
      }
      parallel_for(0, n_lanes, 1, [&](int64_t j0, int64_t j1) {
        autograd::NoGradGuard lane_no_grad;  // thread-local: the lane's thread too
        for (int64_t j = j0; j < j1; ++j) {
          size_t pos = 0;
          for (int64_t row = j; row < laned_rows; row += n_lanes)
            for (size_t n = 0; n < static_cast<size_t>(prefix_); ++n) exec(lanes[static_cast<size_t>(j)], pos++, n, row);
        }
      });
      for (size_t j = 0; j < lanes.size(); ++j) {
        lane_peaks += lane_mem[j].peak();
        for (NodeProfile& np : lane_prof[j]) prof.nodes.push_back(std::move(np));
      }
      if (profile)
        std::stable_sort(prof.nodes.begin(), prof.nodes.end(), [](const NodeProfile& x, const NodeProfile& y) { return x.start_ns < y.start_ns; });
    }
    size_t pos = first_row_pos;
    for (int64_t row = laned_rows; row < batch; ++row)
      for (size_t n = 0; n < static_cast<size_t>(prefix_); ++n) exec(main_exec, pos++, n, row);
    for (int32_t v : prefix_outer_free_) drop(main_exec, first_whole_pos == 0 ? 0 : first_whole_pos - 1, static_cast<size_t>(v));
  }
  {
    size_t pos = first_whole_pos;
    for (size_t n = micro ? static_cast<size_t>(prefix_) : 0; n < steps_.size(); ++n) exec(main_exec, pos++, n, -1);
  }
  std::vector<Tensor> result;
  result.reserve(out_pos.size());
  for (size_t p : out_pos) {
    Tensor t = vals[g_.outputs[p]];
    // Model outputs are never planned into the arena; should one still point into it (an op that
    // behaved differently from the planning run), the caller gets a copy, never arena memory.
    if (lease.arena && t.defined()) {
      const char* d = static_cast<const char*>(t.storage()->data());
      if (d >= lease.arena->data && d < lease.arena->data + lease.arena->bytes) t = t.clone();
    }
    result.push_back(std::move(t));
  }
  vals.clear();
  if (planner) {
    auto p = std::make_shared<ArenaPlan>();
    p->signature = std::move(signature);
    p->value_offset.assign(static_cast<size_t>(n_ids), -1);
    // The lanes' parts, one after the other (they run at once), as one block of the main plan
    // alive at position 0, when the lanes run: later buffers reuse its bytes.
    ArenaPlan lanes_plan;
    lanes_plan.value_offset.assign(static_cast<size_t>(n_ids), -1);
    p->lane_steps.resize(lane_planners.size());
    int64_t lane_bytes = 0;
    for (size_t j = 0; j < lane_planners.size(); ++j) {
      const int64_t base = (lane_bytes + 63) / 64 * 64;
      lane_bytes = base + lane_planners[j]->finish_into(lanes_plan, p->lane_steps[j], static_cast<size_t>(lane_positions), base);
    }
    lane_bytes = (lane_bytes + 63) / 64 * 64;
    int64_t lanes_at = 0;
    const int64_t bytes = planner->finish_into(*p, p->steps, n_positions, 0, lane_bytes, 0, &lanes_at);
    for (auto& lane : p->lane_steps)
      for (auto& slots : lane)
        for (ArenaSlot& sl : slots) sl.offset += lanes_at;
    for (size_t id = 0; id < lanes_plan.value_offset.size(); ++id)
      if (lanes_plan.value_offset[id] >= 0) p->value_offset[id] = lanes_plan.value_offset[id] + lanes_at;
    p->info.buffers += lanes_plan.info.buffers;
    p->info.buffer_bytes += lanes_plan.info.buffer_bytes;
    p->info.scratch += lanes_plan.info.scratch;
    p->info.inplace += lanes_plan.info.inplace;
    p->info.unplanned += lanes_plan.info.unplanned;
    p->info.arena_bytes = bytes;
    add_plan(std::move(p));
#if defined(__GLIBC__)
    // The planning run's intermediates came from malloc and are free now; hand those pages back so
    // that the arena the next run allocates does not come on top of them (once per signature).
    if (host) malloc_trim(0);
#endif
  }

  const int64_t arena_bytes = lease.arena ? lease.arena->bytes : 0;
  const int64_t peak = mem.peak() + lane_peaks + arena_bytes;
  last_peak_.store(peak);
  int64_t m = max_peak_.load();
  while (peak > m && !max_peak_.compare_exchange_weak(m, peak)) {}
  int64_t index = runs_.fetch_add(1);
  if (stats) {
    stats->peak_bytes = peak;
    stats->arena_bytes = arena_bytes;
  }
  if (profile) {
    prof.index = index;
    prof.thread = small_thread_id();
    prof.start_ns = t0 - created_ns_;
    prof.duration_ns = now_ns() - t0;
    prof.peak_bytes = peak;
    prof.arena_bytes = arena_bytes;
    std::lock_guard<std::mutex> lock(profile_mu_);
    profiles_.push_back(std::move(prof));
  }
  return result;
}

void Session::clear_profile() {
  std::lock_guard<std::mutex> lock(profile_mu_);
  profiles_.clear();
}

std::string Session::profile_json() const {
  using json = nlohmann::ordered_json;
  json j;
  j["format"] = "heron-profile";
  j["version"] = 1;
  json sess;
  sess["device"] = DeviceRegistry::get().to_string(device_);
  sess["threads"] = get_num_threads();
  sess["nodes"] = g_.nodes.size();
  sess["values"] = g_.values.size();
  int64_t init_bytes = 0;
  for (const Tensor& t : init_values_)
    if (t.defined()) init_bytes += static_cast<int64_t>(t.nbytes());
  sess["initializer_bytes"] = init_bytes;
  const ArenaInfo arena = last_arena();
  sess["arena_bytes"] = arena.arena_bytes;  // of the last run's plan; 0 with the arena off
  sess["peak_bytes"] = max_peak_.load();
  sess["runs"] = runs_.load();
  sess["arena"] = {{"enabled", arena_on_}, {"arena_bytes", arena.arena_bytes}, {"buffer_bytes", arena.buffer_bytes},
                   {"buffers", arena.buffers}, {"inplace", arena.inplace}, {"scratch", arena.scratch}, {"unplanned", arena.unplanned}};
  j["session"] = sess;
  json runs = json::array();
  {
    std::lock_guard<std::mutex> lock(profile_mu_);
    for (const RunProfile& r : profiles_) {
      json jr;
      jr["index"] = r.index;
      jr["thread"] = r.thread;
      jr["start_ns"] = r.start_ns;
      jr["duration_ns"] = r.duration_ns;
      jr["peak_bytes"] = r.peak_bytes;
      jr["arena_bytes"] = r.arena_bytes;
      json nodes = json::array();
      for (const NodeProfile& np : r.nodes) {
        const auto& node = g_.nodes[static_cast<size_t>(np.node)];
        json jn = {{"name", node.name}, {"op", node.op}, {"input_shapes", np.input_shapes}, {"output_shapes", np.output_shapes},
                   {"start_ns", np.start_ns}, {"end_ns", np.end_ns}, {"flops", np.flops}, {"bytes", np.bytes}};
        if (np.sample >= 0) jn["sample"] = np.sample;  // micro-batched: one entry per batch row
        nodes.push_back(std::move(jn));
      }
      jr["nodes"] = std::move(nodes);
      runs.push_back(std::move(jr));
    }
  }
  j["runs"] = std::move(runs);
  return j.dump();
}

std::string Session::chrome_trace_json() const {
  using json = nlohmann::ordered_json;
  json events = json::array();
  {
    std::lock_guard<std::mutex> lock(profile_mu_);
    for (const RunProfile& r : profiles_) {
      const double base_us = static_cast<double>(r.start_ns) / 1000.0;
      events.push_back({{"name", str_cat("run ", r.index)}, {"cat", "run"}, {"ph", "X"}, {"ts", base_us},
                        {"dur", static_cast<double>(r.duration_ns) / 1000.0}, {"pid", 1}, {"tid", r.thread},
                        {"args", {{"peak_bytes", r.peak_bytes}}}});
      for (const NodeProfile& np : r.nodes) {
        const auto& node = g_.nodes[static_cast<size_t>(np.node)];
        events.push_back({{"name", node.name}, {"cat", node.op}, {"ph", "X"}, {"ts", base_us + static_cast<double>(np.start_ns) / 1000.0},
                          {"dur", static_cast<double>(np.end_ns - np.start_ns) / 1000.0}, {"pid", 1}, {"tid", r.thread},
                          {"args", {{"op", node.op}, {"input_shapes", np.input_shapes}, {"output_shapes", np.output_shapes},
                                    {"flops", np.flops}, {"bytes", np.bytes}, {"sample", np.sample}}}});
      }
    }
  }
  json j;
  j["traceEvents"] = std::move(events);
  j["displayTimeUnit"] = "ms";
  j["otherData"] = {{"format", "heron-chrome-trace"}, {"version", 1}};
  return j.dump();
}

}  // namespace runtime
}  // namespace heron
