// The C ABI of models and sessions (heron.h, section "models and sessions"). Every entry point
// catches everything: no exception crosses.
#include <cstdlib>
#include <cstring>
#include <thread>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "c_api/include/heron.h"
#include "c_api/src/internal.h"
#include "core/graph/model_io.h"
#include "core/graph/trace.h"
#include "core/runtime/session.h"
#include "core/util/refcount.h"

using namespace heron;

using capi::LiveCount;

struct heron_model {
  static constexpr uint64_t kLiveMagic = 0x484552304d4f444cULL;  // "HER0MODL"
  uint64_t magic = kLiveMagic;
  LiveCount live;
  graph::Graph graph;
  ~heron_model() { magic = 0; }
};

struct heron_session_options {
  static constexpr uint64_t kLiveMagic = 0x484552304f505453ULL;  // "HER0OPTS"
  uint64_t magic = kLiveMagic;
  LiveCount live;
  runtime::SessionOptions opts;
  ~heron_session_options() { magic = 0; }
};

struct heron_session {
  static constexpr uint64_t kLiveMagic = 0x4845523053455353ULL;  // "HER0SESS"
  uint64_t magic = kLiveMagic;
  LiveCount live;
  std::unique_ptr<runtime::Session> session;
  ~heron_session() { magic = 0; }
};

namespace {
using capi::borrow_tensor;
using capi::give;
using capi::null_arg;

template <typename H>
H* live(const H* h, const char* fn, const char* what) {
  if (!h) null_arg(fn, what);
  if (h->magic != H::kLiveMagic) throw Error(ErrorCode::NullHandle, str_cat(fn, ": ", what, " is not a live handle (already released?)"));
  return const_cast<H*>(h);
}


heron_status value_info(const heron_model* model, size_t i, bool input, const char** name, int32_t* dtype, int32_t* ndim,
                        const int64_t** shape) {
  const char* fn = input ? "model_input_info" : "model_output_info";
  const auto* m = live(model, fn, "model");
  const auto& ids = input ? m->graph.inputs : m->graph.outputs;
  if (i >= ids.size())
    throw Error(ErrorCode::IndexError, str_cat(fn, ": index ", i, " is out of range for a model with ", ids.size(), input ? " inputs" : " outputs"));
  const graph::Value& v = m->graph.values.at(static_cast<size_t>(ids[i]));
  if (name) *name = v.name.c_str();
  if (dtype) *dtype = static_cast<int32_t>(v.dtype);
  if (ndim) *ndim = static_cast<int32_t>(v.shape.size());
  if (shape) *shape = v.shape.data();
  return HERON_OK;
}

char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

}  // namespace

extern "C" {

heron_status heron_model_load_file(const char* path, heron_model** out) {
  HERON_CAPI_TRY
  if (!path) null_arg("model_load_file", "path");
  if (!out) null_arg("model_load_file", "out");
  auto m = std::make_unique<heron_model>();
  m->graph = graph::load_model_file(path);
  *out = m.release();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_model_load_buffer(const void* data, size_t len, heron_model** out) {
  HERON_CAPI_TRY
  if (!data) null_arg("model_load_buffer", "data");
  if (!out) null_arg("model_load_buffer", "out");
  auto m = std::make_unique<heron_model>();
  m->graph = graph::load_model(static_cast<const uint8_t*>(data), len);
  *out = m.release();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_model_save_file(const heron_model* model, const char* path) {
  HERON_CAPI_TRY
  const auto* m = live(model, "model_save_file", "model");
  if (!path) null_arg("model_save_file", "path");
  graph::save_model_file(m->graph, path);
  return HERON_OK;
  HERON_CAPI_CATCH
}

void heron_model_release(heron_model* model) {
  if (!model || model->magic != heron_model::kLiveMagic) return;
  delete model;
}

heron_status heron_model_num_inputs(const heron_model* model, size_t* out) {
  HERON_CAPI_TRY
  const auto* m = live(model, "model_num_inputs", "model");
  if (!out) null_arg("model_num_inputs", "out");
  *out = m->graph.inputs.size();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_model_num_outputs(const heron_model* model, size_t* out) {
  HERON_CAPI_TRY
  const auto* m = live(model, "model_num_outputs", "model");
  if (!out) null_arg("model_num_outputs", "out");
  *out = m->graph.outputs.size();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_model_input_info(const heron_model* model, size_t i, const char** name, int32_t* dtype, int32_t* ndim,
                                    const int64_t** shape) {
  HERON_CAPI_TRY
  return value_info(model, i, true, name, dtype, ndim, shape);
  HERON_CAPI_CATCH
}

heron_status heron_model_output_info(const heron_model* model, size_t i, const char** name, int32_t* dtype, int32_t* ndim,
                                     const int64_t** shape) {
  HERON_CAPI_TRY
  return value_info(model, i, false, name, dtype, ndim, shape);
  HERON_CAPI_CATCH
}

heron_status heron_session_options_create(heron_session_options** out) {
  HERON_CAPI_TRY
  if (!out) null_arg("session_options_create", "out");
  *out = new heron_session_options();
  return HERON_OK;
  HERON_CAPI_CATCH
}

void heron_session_options_release(heron_session_options* options) {
  if (!options || options->magic != heron_session_options::kLiveMagic) return;
  delete options;
}

heron_status heron_session_options_set_device(heron_session_options* options, const char* device) {
  HERON_CAPI_TRY
  auto* o = live(options, "session_options_set_device", "options");
  if (!device) null_arg("session_options_set_device", "device");
  o->opts.device = device;
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_options_set_threads(heron_session_options* options, int32_t threads) {
  HERON_CAPI_TRY
  auto* o = live(options, "session_options_set_threads", "options");
  if (threads < 0)
    throw Error(ErrorCode::InvalidArgument, str_cat("session_options_set_threads: threads must be >= 0 (0 = keep the current pool), got ", threads));
  o->opts.threads = threads;
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_options_set_profiling(heron_session_options* options, int32_t enable) {
  HERON_CAPI_TRY
  auto* o = live(options, "session_options_set_profiling", "options");
  o->opts.profile = enable != 0;
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_options_set_optimization(heron_session_options* options, int32_t level) {
  HERON_CAPI_TRY
  auto* o = live(options, "session_options_set_optimization", "options");
  if (level != 0 && level != 1)
    throw Error(ErrorCode::InvalidArgument, str_cat("session_options_set_optimization: level must be 0 (off) or 1 (on), got ", level));
  o->opts.optimize = level != 0;
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_options_set_arena(heron_session_options* options, int32_t enable) {
  HERON_CAPI_TRY
  auto* o = live(options, "session_options_set_arena", "options");
  o->opts.arena = enable != 0;
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_options_set_microbatch(heron_session_options* options, int32_t enable) {
  HERON_CAPI_TRY
  auto* o = live(options, "session_options_set_microbatch", "options");
  o->opts.microbatch = enable != 0;
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_create(const heron_model* model, const heron_session_options* options, heron_session** out) {
  HERON_CAPI_TRY
  const auto* m = live(model, "session_create", "model");
  runtime::SessionOptions opts;
  if (options) opts = live(options, "session_create", "options")->opts;
  if (!out) null_arg("session_create", "out");
  auto s = std::make_unique<heron_session>();
  s->session = std::make_unique<runtime::Session>(m->graph, opts);
  *out = s.release();
  return HERON_OK;
  HERON_CAPI_CATCH
}

void heron_session_release(heron_session* session) {
  if (!session || session->magic != heron_session::kLiveMagic) return;
  delete session;
}

heron_status heron_session_run(heron_session* session, const char* const* input_names, heron_tensor* const* inputs, size_t n_inputs,
                               const char* const* output_names, size_t n_outputs, heron_tensor** outputs) {
  HERON_CAPI_TRY
  const auto* s = live(session, "session_run", "session");
  if (n_inputs > 0 && !input_names) null_arg("session_run", "input_names");
  if (n_inputs > 0 && !inputs) null_arg("session_run", "inputs");
  if (n_outputs > 0 && !outputs) null_arg("session_run", "outputs");
  if (n_inputs > (size_t{1} << 20)) throw Error(ErrorCode::InvalidArgument, str_cat("session_run: too many inputs (", n_inputs, ")"));
  std::vector<std::string> names;
  std::vector<Tensor> ins;
  names.reserve(n_inputs);
  ins.reserve(n_inputs);
  for (size_t i = 0; i < n_inputs; ++i) {
    if (!input_names[i]) throw Error(ErrorCode::NullHandle, str_cat("session_run: input name ", i, " is NULL"));
    names.emplace_back(input_names[i]);
    ins.push_back(borrow_tensor(inputs[i], "session_run", str_cat("input '", input_names[i], "'")));
  }
  std::vector<std::string> wanted;
  const size_t model_outputs = s->session->num_outputs();
  if (output_names) {
    for (size_t i = 0; i < n_outputs; ++i) {
      if (!output_names[i]) throw Error(ErrorCode::NullHandle, str_cat("session_run: output name ", i, " is NULL"));
      wanted.emplace_back(output_names[i]);
    }
  } else if (n_outputs != model_outputs) {
    throw Error(ErrorCode::InvalidArgument,
                str_cat("session_run: output_names is NULL, so n_outputs must be the model's output count ", model_outputs, ", got ", n_outputs));
  }
  if (n_outputs == 0) return HERON_OK;  // nothing asked for: nothing to run
  std::vector<Tensor> res = s->session->run(names, ins, wanted);
  for (size_t i = 0; i < res.size(); ++i) outputs[i] = give(res[i]);
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_peak_memory(const heron_session* session, int64_t* last, int64_t* max) {
  HERON_CAPI_TRY
  const auto* s = live(session, "session_peak_memory", "session");
  if (last) *last = s->session->last_peak_bytes();
  if (max) *max = s->session->max_peak_bytes();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_arena_bytes(const heron_session* session, int64_t* out) {
  HERON_CAPI_TRY
  const auto* s = live(session, "session_arena_bytes", "session");
  if (!out) null_arg("session_arena_bytes", "out");
  *out = s->session->last_arena().arena_bytes;
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_profile_json(const heron_session* session, char** out) {
  HERON_CAPI_TRY
  const auto* s = live(session, "session_profile_json", "session");
  if (!out) null_arg("session_profile_json", "out");
  *out = dup_string(s->session->profile_json());
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_chrome_trace(const heron_session* session, char** out) {
  HERON_CAPI_TRY
  const auto* s = live(session, "session_chrome_trace", "session");
  if (!out) null_arg("session_chrome_trace", "out");
  *out = dup_string(s->session->chrome_trace_json());
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_session_clear_profile(heron_session* session) {
  HERON_CAPI_TRY
  live(session, "session_clear_profile", "session")->session->clear_profile();
  return HERON_OK;
  HERON_CAPI_CATCH
}

void heron_free_string(char* s) { std::free(s); }

}  // extern "C"

// ------------------------------------------------------------------ tracing
struct heron_tracer {
  static constexpr uint64_t kLiveMagic = 0x4845523054524345ULL;  // "HER0TRCE"
  uint64_t magic = kLiveMagic;
  LiveCount live;
  std::unique_ptr<graph::Tracer> tracer = std::make_unique<graph::Tracer>();
  std::thread::id thread = std::this_thread::get_id();
  ~heron_tracer() { magic = 0; }
};

namespace {
heron_tracer* tracer_of(heron_tracer* t, const char* fn) {
  if (!t) throw Error(ErrorCode::NullHandle, str_cat(fn, ": tracer is NULL"));
  if (t->magic != heron_tracer::kLiveMagic)
    throw Error(ErrorCode::NullHandle, str_cat(fn, ": not a live tracer handle (already released?)"));
  if (!t->tracer) throw Error(ErrorCode::InvalidArgument, str_cat(fn, ": the trace is already finished"));
  if (t->thread != std::this_thread::get_id())
    throw Error(ErrorCode::InvalidArgument, str_cat(fn, ": a tracer must be used on the thread that began it"));
  return t;
}
}  // namespace

extern "C" {

heron_status heron_tracer_begin(heron_tracer** out) {
  HERON_CAPI_TRY
  if (!out) null_arg("tracer_begin", "out");
  *out = new heron_tracer();
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_tracer_add_input(heron_tracer* tracer, heron_tensor* t, const char* name) {
  HERON_CAPI_TRY
  heron_tracer* tr = tracer_of(tracer, "tracer_add_input");
  if (!name) null_arg("tracer_add_input", "name");
  tr->tracer->add_input(borrow_tensor(t, "tracer_add_input", "t"), name);
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_tracer_name_constant(heron_tracer* tracer, heron_tensor* t, const char* name) {
  HERON_CAPI_TRY
  heron_tracer* tr = tracer_of(tracer, "tracer_name_constant");
  if (!name) null_arg("tracer_name_constant", "name");
  tr->tracer->name_constant(borrow_tensor(t, "tracer_name_constant", "t"), name);
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_tracer_finish(heron_tracer* tracer, heron_tensor* const* outputs, const char* const* names, size_t n,
                                 int32_t dynamic_batch, heron_model** out) {
  HERON_CAPI_TRY
  heron_tracer* tr = tracer_of(tracer, "tracer_finish");
  if (!out) null_arg("tracer_finish", "out");
  if (n > 0 && (!outputs || !names)) null_arg("tracer_finish", !outputs ? "outputs" : "names");
  std::vector<Tensor> outs;
  std::vector<std::string> ns;
  for (size_t i = 0; i < n; ++i) {
    outs.push_back(borrow_tensor(outputs[i], "tracer_finish", "outputs[i]"));
    if (!names[i]) null_arg("tracer_finish", "names[i]");
    ns.push_back(names[i]);
  }
  // Stop recording before the shape inference runs the graph.
  std::unique_ptr<graph::Tracer> t = std::move(tr->tracer);
  graph::Graph g;
  {
    graph::Tracer* raw = t.get();
    g = raw->finish(outs, ns, dynamic_batch != 0);
  }
  auto m = std::make_unique<heron_model>();
  m->graph = std::move(g);
  *out = m.release();
  return HERON_OK;
  HERON_CAPI_CATCH
}

void heron_tracer_release(heron_tracer* tracer) {
  if (!tracer || tracer->magic != heron_tracer::kLiveMagic) return;
  if (tracer->thread != std::this_thread::get_id()) return;  // documented: release on the tracing thread
  delete tracer;
}

heron_status heron_session_graph_text(const heron_session* session, char** out) {
  HERON_CAPI_TRY
  const auto* s = live(session, "session_graph_text", "session");
  if (!out) null_arg("session_graph_text", "out");
  *out = dup_string(s->session->graph().to_text());
  return HERON_OK;
  HERON_CAPI_CATCH
}

heron_status heron_model_text(const heron_model* model, char** out) {
  HERON_CAPI_TRY
  if (!out) null_arg("model_text", "out");
  *out = dup_string(live(model, "model_text", "model")->graph.to_text());
  return HERON_OK;
  HERON_CAPI_CATCH
}

}  // extern "C"
