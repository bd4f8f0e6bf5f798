// Heron's Node.js addon, the parts written against V8's C++ API instead of N-API (see "Per-op
// overhead" in docs/design/bindings.md): how handles are tied to the garbage collector, and the op
// call of the generated functions' common case. Everything else stays N-API (addon.c, abi_gen.c).
//
// Handles are v8::External values holding a box from addon.c's slabs (addon.c reads them through
// hn_v8_box_of: N-API's own externals hold a wrapper object, not the data pointer, so
// napi_get_value_external cannot read these). Each box holds one weak v8::Global without a
// callback: the collector empties it when the value dies, and a GC epilogue callback (after_gc)
// walks the boxes made since the last collections, releases the handles of the emptied ones and
// frees their boxes. N-API's napi_create_external allocated a wrapper and a reference object (with a
// second global handle) per value and finalized each through N-API's dispatch; a weak callback per
// value (tried first) still made V8 queue one pending-callback record per dead value, a vector
// that grew to megabytes at every scavenge and page-faulted back in. The epilogue releases the dead
// handles newest first: freeing the engine's blocks in the reverse of their allocation order left
// glibc less coalescing and bin sorting to do than allocation order. Measured (real-time priority,
// medians of 9 interleaved runs, ns per 1-element add): weak callback per value 335, epilogue
// oldest first 323, epilogue newest first 308-314 (docs/design/bindings.md).
//
// This file is compiled by node-gyp against the running Node's headers, like the rest of the addon:
// it gives up N-API's ABI stability (a build is tied to the Node major version it was built for),
// which an addon built from source at `npm install` does not use anyway.
#include <string.h>

#include <v8.h>

#include <atomic>
#include <vector>

extern "C" {
#include "addon.h"
}

namespace {

static_assert(sizeof(v8::Global<v8::External>) == sizeof(void*), "v8::Global is one pointer");

v8::Global<v8::External>* weak_of(hn_box* b) { return reinterpret_cast<v8::Global<v8::External>*>(&b->weak); }

inline v8::Local<v8::Value> local_of(napi_value v) {
  v8::Local<v8::Value> l;
  memcpy(static_cast<void*>(&l), &v, sizeof v);
  return l;
}

inline napi_value napi_of(v8::Local<v8::Value> l) { return reinterpret_cast<napi_value>(*l); }

// Every box handed to JavaScript, in the order they were made: [0, g_old_end) survived two
// collections (their values are in V8's old generation), [g_old_end, g_mid) survived one,
// [g_mid, end) are newer than the last collection. A scavenge can only have cleared the weak
// handles of the last two groups, so it looks at those alone; a full collection looks at all.
std::vector<hn_box*> g_tracked;
size_t g_old_end = 0, g_mid = 0;
std::vector<hn_box*> g_dead;

// After a collection (GC epilogue, JavaScript thread): V8 has set the weak handles of dead values
// to empty; release their handles and free their boxes, keep the others in order.
void after_gc(v8::Isolate* iso, v8::GCType type, v8::GCCallbackFlags flags, void* data) {
  (void)flags;
  (void)data;
  const bool full = type == v8::kGCTypeMarkSweepCompact;
  const size_t from = full ? 0 : g_old_end, n = g_tracked.size();
  size_t w = from, kept_old = 0, kept_mid = 0;
  int64_t ext = 0;
  for (size_t r = from; r < n; ++r) {
    hn_box* b = g_tracked[r];
    if (!weak_of(b)->IsEmpty()) {
      g_tracked[w++] = b;
      if (r < g_old_end) ++kept_old;
      else if (r < g_mid) ++kept_mid;
      continue;
    }
    g_dead.push_back(b);
  }
  g_tracked.resize(w);
  for (size_t i = g_dead.size(); i-- > 0;) {
    hn_box* b = g_dead[i];
    if (b->ptr && hn_kinds[b->kind].release) hn_kinds[b->kind].release(b->ptr);
    ext += b->ext;
    hn_box_free(b);
  }
  g_dead.clear();
  g_old_end = (full ? kept_old : g_old_end) + kept_mid;
  g_mid = w;
  if (ext) iso->AdjustAmountOfExternalAllocatedMemory(-ext);
}

inline v8::Local<v8::External> make_external(v8::Isolate* iso, hn_box* b) {
  v8::Local<v8::External> e = v8::External::New(iso, b);  // (may collect: b is not tracked yet)
  new (weak_of(b)) v8::Global<v8::External>(iso, e);
  weak_of(b)->SetWeak();  // no callback: the collector empties it, after_gc finds it empty
  g_tracked.push_back(b);
  return e;
}

// The live handle of kind `kind` in v, or NULL (v is not one of our boxes, another kind, or released).
inline void* unwrap_fast(v8::Local<v8::Value> v, int kind) {
  if (!v->IsExternal()) return nullptr;
  hn_box* b = hn_box_at(v.As<v8::External>()->Value());
  return b && b->kind == kind ? b->ptr : nullptr;
}

// Moves an exception N-API stashed in the env (N-API functions called outside an N-API callback
// keep it there) to V8, so that it propagates from this V8 callback.
void rethrow(napi_env env, v8::Isolate* iso) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) return;
  napi_value e;
  if (napi_get_and_clear_last_exception(env, &e) == napi_ok) iso->ThrowException(local_of(e));
}

// op_call_fast(op, input0, input1, ...) -> the op's only output: the generated functions' common
// case (every input a Tensor or null for an absent optional one, no attributes, one output). Errors
// (wrong handles, engine failures) are raised by addon.c's N-API helpers, exactly as op_call_n
// raises them.
void op_call_fast(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* iso = info.GetIsolate();
  napi_env env = static_cast<napi_env>(info.Data().As<v8::External>()->Value());
  const int argc = info.Length();
  if (argc < 1 || argc > 22) {
    hn_type_error(env, "opCall", "expected (op, ...inputs) with at most 21 inputs");
    return rethrow(env, iso);
  }
  const heron_op* op = static_cast<const heron_op*>(unwrap_fast(info[0], hn_op_kind));
  if (!op) {
    int ok = 1;
    hn_unwrap(env, napi_of(info[0]), hn_op_kind, 0, &ok);
    return rethrow(env, iso);
  }
  heron_tensor* ins[21];
  const int nin = argc - 1;
  for (int i = 0; i < nin; ++i) {
    v8::Local<v8::Value> v = info[1 + i];
    ins[i] = static_cast<heron_tensor*>(unwrap_fast(v, hn_tensor_kind));
    if (!ins[i]) {  // null/undefined (an absent optional input), or an error raised by hn_unwrap
      int ok = 1;
      ins[i] = static_cast<heron_tensor*>(hn_unwrap(env, napi_of(v), hn_tensor_kind, 1, &ok));
      if (!ok) return rethrow(env, iso);
    }
  }
  heron_tensor* outs[8];
  size_t nout = 0;
  const heron_status st = heron_op_call(op, ins, (size_t)nin, nullptr, 0, outs, 8, &nout);
  if (st != HERON_OK) {
    hn_check(env, st);
    return rethrow(env, iso);
  }
  if (nout != 1) {  // the generated code takes this path for single-output ops only
    for (size_t i = 0; i < nout; ++i) heron_tensor_release(outs[i]);
    hn_type_error(env, "opCall", "op_call_fast: the op did not return exactly one output");
    return rethrow(env, iso);
  }
  napi_value r = hn_wrap(env, outs[0], hn_tensor_kind);
  if (!r) return rethrow(env, iso);
  info.GetReturnValue().Set(local_of(r));
}

}  // namespace

extern "C" napi_value hn_v8_external(napi_env env, hn_box* b) {
  (void)env;
  return napi_of(make_external(v8::Isolate::GetCurrent(), b));
}

extern "C" hn_box* hn_v8_box_of(napi_value v) {
  v8::Local<v8::Value> l = local_of(v);
  return l->IsExternal() ? hn_box_at(l.As<v8::External>()->Value()) : nullptr;
}

extern "C" int hn_v8_register(napi_env env, napi_value exports) {
  v8::Isolate* iso = v8::Isolate::GetCurrent();
  // The boxes and g_tracked belong to one JavaScript thread; a second one (a worker thread loading
  // the addon) gets an error instead of racing on them.
  static std::atomic<v8::Isolate*> owner{nullptr};
  v8::Isolate* expected = nullptr;
  const bool first = owner.compare_exchange_strong(expected, iso);
  if (!first && expected != iso) {
    napi_throw_error(env, "HERON_ERR_RUNTIME",
                     "heron: the Node.js addon runs on one JavaScript thread (the one that loaded it first); "
                     "worker threads cannot load it");
    return 0;
  }
  if (first)
    iso->AddGCEpilogueCallback(after_gc, nullptr,
                               static_cast<v8::GCType>(v8::kGCTypeScavenge | v8::kGCTypeMinorMarkCompact | v8::kGCTypeMarkSweepCompact));
  v8::Local<v8::Context> ctx = iso->GetCurrentContext();
  v8::Local<v8::FunctionTemplate> t = v8::FunctionTemplate::New(iso, op_call_fast, v8::External::New(iso, env));
  v8::Local<v8::Function> f;
  if (!t->GetFunction(ctx).ToLocal(&f)) return 0;
  v8::Local<v8::String> name = v8::String::NewFromUtf8Literal(iso, "op_call_fast");
  f->SetName(name);
  return local_of(exports).As<v8::Object>()->Set(ctx, name, f).FromMaybe(false) ? 1 : 0;
}
