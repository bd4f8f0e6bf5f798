// heron-run: loads a .heron model, runs it and reports latency and peak memory (like MegEngine's
// load_and_run). It uses only the C API (heron.h): it is what a C/C++ deployment looks like.
//
//   heron-run MODEL [--input NAME=FILE.npy ...] [--random-input] [--iter N] [--warmup N] [--threads N]
//             [--device cpu|cuda] [--profile OUT.json] [--chrome-trace OUT.json] [--dump-outputs DIR]
//             [--no-optimize] [--no-microbatch] [--print-graph]
#include <algorithm>
#include <chrono>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "heron.h"

namespace {

const char* kUsage =
    "usage: heron-run MODEL [--input NAME=FILE.npy ...] [--random-input] [--iter N] [--warmup N] [--threads N]\n"
    "                 [--device cpu|cuda] [--profile OUT.json] [--chrome-trace OUT.json] [--dump-outputs DIR]\n"
    "                 [--no-optimize] [--no-microbatch] [--print-graph]\n"
    "  --input NAME=FILE.npy  feed model input NAME from a .npy file (repeatable)\n"
    "  --random-input         fill inputs not given with random values (symbolic dims become 1)\n"
    "  --iter N               timed iterations (default 10)\n"
    "  --warmup N             untimed iterations first (default 1)\n"
    "  --threads N            intra-op threads (default: the library's default)\n"
    "  --device D             cpu (default), cuda, cuda:1, ...\n"
    "  --profile OUT.json     write the per-node profile of the timed iterations (heron-profile v1)\n"
    "  --chrome-trace OUT.json  write the timed iterations as a Chrome trace\n"
    "  --dump-outputs DIR     write each output of the last iteration to DIR/NAME.npy\n"
    "  --no-optimize          run the graph as saved (no batch_norm folding or convolution fusion)\n"
    "  --no-microbatch        run every node on the whole batch (no row-by-row start of the graph)\n"
    "  --print-graph          print the graph the session runs (after optimisation)\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string heron_error() { return heron_last_error_message(); }

void check(heron_status s, const std::string& what) {
  if (s != HERON_OK) throw Failure(what + ": " + heron_error());
}

// Owns a tensor handle.
struct TensorHandle {
  heron_tensor* t = nullptr;
  TensorHandle() = default;
  explicit TensorHandle(heron_tensor* p) : t(p) {}
  TensorHandle(const TensorHandle&) = delete;
  TensorHandle& operator=(const TensorHandle&) = delete;
  TensorHandle(TensorHandle&& o) noexcept : t(o.t) { o.t = nullptr; }
  TensorHandle& operator=(TensorHandle&& o) noexcept {
    std::swap(t, o.t);
    return *this;
  }
  ~TensorHandle() { heron_tensor_release(t); }
};

// ------------------------------------------------------------------ .npy (untrusted input: every field is checked)

struct NpyType {
  const char* descr;
  int32_t dtype;
};
const NpyType kNpyTypes[] = {{"<f4", HERON_FLOAT32}, {"<f8", HERON_FLOAT64}, {"<f2", HERON_FLOAT16}, {"|i1", HERON_INT8},
                             {"|u1", HERON_UINT8},   {"<i4", HERON_INT32},   {"<i8", HERON_INT64},   {"|b1", HERON_BOOL}};

const char* npy_descr(int32_t dtype) {
  for (const auto& t : kNpyTypes)
    if (t.dtype == dtype) return t.descr;
  return nullptr;
}

std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Failure("cannot open '" + path + "': " + std::strerror(errno));
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  bool err = std::ferror(f);
  std::fclose(f);
  if (err) throw Failure("cannot read '" + path + "'");
  return data;
}

void write_file(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Failure("cannot open '" + path + "' for writing: " + std::strerror(errno));
  size_t w = std::fwrite(data.data(), 1, data.size(), f);
  bool ok = std::fclose(f) == 0 && w == data.size();
  if (!ok) throw Failure("writing '" + path + "' failed");
}

// The value of key 'key' in the header dict, as raw text up to the next top-level ',' or '}'.
std::string dict_value(const std::string& h, const std::string& key, const std::string& file) {
  std::string pat = "'" + key + "'";
  size_t p = h.find(pat);
  if (p == std::string::npos) throw Failure(file + ": .npy header has no '" + key + "' key");
  p = h.find(':', p + pat.size());
  if (p == std::string::npos) throw Failure(file + ": malformed .npy header near '" + key + "'");
  ++p;
  while (p < h.size() && h[p] == ' ') ++p;
  size_t e = p;
  if (p < h.size() && h[p] == '(') {
    e = h.find(')', p);
    if (e == std::string::npos) throw Failure(file + ": malformed .npy header: unclosed shape tuple");
    return h.substr(p, e - p + 1);
  }
  while (e < h.size() && h[e] != ',' && h[e] != '}') ++e;
  std::string v = h.substr(p, e - p);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

TensorHandle load_npy(const std::string& path) {
  std::string d = read_file(path);
  if (d.size() < 10 || std::memcmp(d.data(), "\x93NUMPY", 6) != 0) throw Failure(path + ": not a .npy file (bad magic)");
  uint8_t major = static_cast<uint8_t>(d[6]);
  size_t header_len, start;
  if (major == 1) {
    header_len = static_cast<uint8_t>(d[8]) | (static_cast<size_t>(static_cast<uint8_t>(d[9])) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (d.size() < 12) throw Failure(path + ": truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<uint8_t>(d[8 + i])) << (8 * i);
    start = 12;
  } else {
    throw Failure(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (header_len > d.size() - start) throw Failure(path + ": truncated .npy header (" + std::to_string(header_len) + " bytes announced)");
  std::string h = d.substr(start, header_len);
  std::string descr = dict_value(h, "descr", path);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"')) throw Failure(path + ": bad .npy descr " + descr);
  descr = descr.substr(1, descr.size() - 2);
  int32_t dtype = -1;
  for (const auto& t : kNpyTypes)
    if (descr == t.descr) dtype = t.dtype;
  if (descr == "<u1" || descr == "<i1") dtype = descr == "<u1" ? HERON_UINT8 : HERON_INT8;  // numpy accepts both spellings
  if (dtype < 0) throw Failure(path + ": unsupported .npy dtype '" + descr + "' (little-endian f2/f4/f8/i1/u1/i4/i8/b1 only)");
  std::string fo = dict_value(h, "fortran_order", path);
  if (fo == "True") throw Failure(path + ": Fortran-ordered .npy arrays are not supported (save with np.ascontiguousarray)");
  if (fo != "False") throw Failure(path + ": bad fortran_order '" + fo + "'");
  std::string sh = dict_value(h, "shape", path);
  if (sh.size() < 2 || sh.front() != '(' || sh.back() != ')') throw Failure(path + ": bad .npy shape " + sh);
  std::vector<int64_t> shape;
  uint64_t numel = 1;
  const uint64_t limit = uint64_t{1} << 48;
  size_t i = 1;
  while (i < sh.size() - 1) {
    while (i < sh.size() - 1 && (sh[i] == ' ' || sh[i] == ',')) ++i;
    if (i >= sh.size() - 1) break;
    if (!std::isdigit(static_cast<unsigned char>(sh[i]))) throw Failure(path + ": bad .npy shape " + sh);
    uint64_t v = 0;
    while (i < sh.size() - 1 && std::isdigit(static_cast<unsigned char>(sh[i]))) {
      v = v * 10 + static_cast<uint64_t>(sh[i] - '0');
      if (v > limit) throw Failure(path + ": .npy shape " + sh + " is too large");
      ++i;
    }
    shape.push_back(static_cast<int64_t>(v));
    if (shape.size() > 64) throw Failure(path + ": .npy array has too many dimensions");
    numel = v == 0 ? 0 : numel * v;
    if (numel > limit) throw Failure(path + ": .npy shape " + sh + " is too large");
    while (i < sh.size() - 1 && sh[i] == ' ') ++i;
    if (i < sh.size() - 1 && sh[i] != ',') throw Failure(path + ": bad .npy shape " + sh);
  }
  size_t nbytes = static_cast<size_t>(numel) * heron_dtype_size(dtype);
  size_t data_start = start + header_len;
  if (d.size() - data_start != nbytes)
    throw Failure(path + ": .npy data is " + std::to_string(d.size() - data_start) + " bytes, but " + descr + " " + sh + " needs " +
                  std::to_string(nbytes));
  heron_tensor* t = nullptr;
  check(heron_tensor_from_host(nbytes ? d.data() + data_start : nullptr, nbytes, dtype, shape.data(), static_cast<int32_t>(shape.size()),
                               nullptr, &t),
        path);
  return TensorHandle(t);
}

void save_npy(const std::string& path, heron_tensor* t) {
  int32_t dtype = 0, ndim = 0;
  check(heron_tensor_dtype(t, &dtype), "output dtype");
  check(heron_tensor_ndim(t, &ndim), "output ndim");
  std::vector<int64_t> shape(static_cast<size_t>(ndim) + 1);
  check(heron_tensor_shape(t, shape.data(), ndim), "output shape");
  shape.resize(static_cast<size_t>(ndim));
  int64_t numel = 0;
  check(heron_tensor_numel(t, &numel), "output numel");
  const char* descr = npy_descr(dtype);
  if (!descr) throw Failure(path + ": dtype " + heron_dtype_name(dtype) + " has no .npy equivalent");
  std::string sh = "(";
  for (size_t i = 0; i < shape.size(); ++i) sh += std::to_string(shape[i]) + (shape.size() == 1 ? "," : i + 1 < shape.size() ? ", " : "");
  sh += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + sh + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  size_t nbytes = static_cast<size_t>(numel) * heron_dtype_size(dtype);
  size_t at = out.size();
  out.resize(at + nbytes);
  check(heron_tensor_to_host(t, nbytes ? &out[at] : nullptr, nbytes), "copying an output to the host");
  write_file(path, out);
}

// A file name from a model output name (untrusted): letters, digits, '.', '_', '-' kept, the rest '_'.
std::string safe_file_name(const std::string& name) {
  std::string r;
  for (char c : name) r += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  if (r.empty() || r == "." || r == "..") r = "_" + r;
  if (r.size() > 200) r.resize(200);
  return r;
}

TensorHandle random_tensor(int32_t dtype, const std::vector<int64_t>& shape, std::mt19937_64& rng) {
  size_t numel = 1;
  for (int64_t s : shape) numel *= static_cast<size_t>(s);
  std::vector<uint8_t> buf(numel * heron_dtype_size(dtype));
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> k(0, 9);
  for (size_t i = 0; i < numel; ++i) {
    switch (dtype) {
      case HERON_FLOAT32: reinterpret_cast<float*>(buf.data())[i] = static_cast<float>(u(rng)); break;
      case HERON_FLOAT64: reinterpret_cast<double*>(buf.data())[i] = u(rng); break;
      case HERON_INT8: reinterpret_cast<int8_t*>(buf.data())[i] = static_cast<int8_t>(k(rng)); break;
      case HERON_UINT8: buf[i] = static_cast<uint8_t>(k(rng)); break;
      case HERON_INT32: reinterpret_cast<int32_t*>(buf.data())[i] = k(rng); break;
      case HERON_INT64: reinterpret_cast<int64_t*>(buf.data())[i] = k(rng); break;
      case HERON_BOOL: buf[i] = static_cast<uint8_t>(k(rng) & 1); break;
      default: throw Failure(std::string("--random-input: dtype ") + heron_dtype_name(dtype) + " is not supported");
    }
  }
  heron_tensor* t = nullptr;
  check(heron_tensor_from_host(buf.empty() ? nullptr : buf.data(), buf.size(), dtype, shape.data(), static_cast<int32_t>(shape.size()),
                               nullptr, &t),
        "random input");
  return TensorHandle(t);
}

int64_t parse_int(const std::string& flag, const char* v, int64_t lo) {
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v, &end, 10);
  if (errno || !*v || *end || x < lo) throw UsageError(flag + " needs an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return x;
}

std::string shape_str(const int64_t* s, int32_t n) {
  std::string r = "[";
  for (int32_t i = 0; i < n; ++i) r += (i ? ", " : "") + (s[i] < 0 ? std::string("?") : std::to_string(s[i]));
  return r + "]";
}

int run_main(int argc, char** argv) {
  std::string model_path, device = "cpu", profile_out, trace_out, dump_dir;
  std::vector<std::pair<std::string, std::string>> input_files;
  bool random_input = false;
  bool optimize = true, print_graph = false, microbatch = true;
  int64_t iters = 10, warmup = 1, threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw UsageError(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--input") {
      std::string v = value();
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) throw UsageError("--input needs NAME=FILE.npy, got '" + v + "'");
      input_files.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (a == "--random-input") {
      random_input = true;
    } else if (a == "--no-optimize") {
      optimize = false;
    } else if (a == "--no-microbatch") {
      microbatch = false;
    } else if (a == "--print-graph") {
      print_graph = true;
    } else if (a == "--iter") {
      iters = parse_int(a, value(), 1);
    } else if (a == "--warmup") {
      warmup = parse_int(a, value(), 0);
    } else if (a == "--threads") {
      threads = parse_int(a, value(), 1);
    } else if (a == "--device") {
      device = value();
    } else if (a == "--profile") {
      profile_out = value();
    } else if (a == "--chrome-trace") {
      trace_out = value();
    } else if (a == "--dump-outputs") {
      dump_dir = value();
    } else if (a.size() > 1 && a[0] == '-') {
      throw UsageError("unknown option '" + a + "'");
    } else if (model_path.empty()) {
      model_path = a;
    } else {
      throw UsageError("more than one model given ('" + model_path + "' and '" + a + "')");
    }
  }
  if (model_path.empty()) throw UsageError("no model given");
  check(heron_abi_check(HERON_ABI_VERSION), "libheron");

  heron_model* model = nullptr;
  check(heron_model_load_file(model_path.c_str(), &model), "loading '" + model_path + "'");
  struct ModelGuard { heron_model* m; ~ModelGuard() { heron_model_release(m); } } model_guard{model};

  // Inputs: from files, then random ones for the rest.
  size_t n_in = 0, n_out = 0;
  check(heron_model_num_inputs(model, &n_in), "model inputs");
  check(heron_model_num_outputs(model, &n_out), "model outputs");
  std::map<std::string, TensorHandle> feeds;
  for (const auto& [name, file] : input_files) {
    if (feeds.count(name)) throw UsageError("--input " + name + " is given twice");
    feeds.emplace(name, load_npy(file));
  }
  std::mt19937_64 rng(0x5eed);
  std::string missing;
  for (size_t i = 0; i < n_in; ++i) {
    const char* name = nullptr;
    int32_t dtype = 0, ndim = 0;
    const int64_t* shape = nullptr;
    check(heron_model_input_info(model, i, &name, &dtype, &ndim, &shape), "model input");
    if (feeds.count(name)) continue;
    if (!random_input) {
      missing += std::string(missing.empty() ? "" : ", ") + name + " (" + heron_dtype_name(dtype) + shape_str(shape, ndim) + ")";
      continue;
    }
    std::vector<int64_t> s(shape, shape + ndim);
    for (auto& d : s) d = d < 0 ? 1 : d;
    feeds.emplace(name, random_tensor(dtype, s, rng));
  }
  if (!missing.empty()) throw UsageError("no data for model input(s) " + missing + ": pass --input NAME=FILE.npy or --random-input");

  heron_session_options* opts = nullptr;
  check(heron_session_options_create(&opts), "session options");
  struct OptsGuard { heron_session_options* o; ~OptsGuard() { heron_session_options_release(o); } } opts_guard{opts};
  check(heron_session_options_set_device(opts, device.c_str()), "--device");
  check(heron_session_options_set_threads(opts, static_cast<int32_t>(threads)), "--threads");
  check(heron_session_options_set_optimization(opts, optimize ? 1 : 0), "--no-optimize");
  check(heron_session_options_set_microbatch(opts, microbatch ? 1 : 0), "--no-microbatch");
  check(heron_session_options_set_profiling(opts, !profile_out.empty() || !trace_out.empty()), "profiling");
  heron_session* session = nullptr;
  check(heron_session_create(model, opts, &session), "creating the session");
  struct SessionGuard { heron_session* s; ~SessionGuard() { heron_session_release(s); } } session_guard{session};
  if (print_graph) {
    char* text = nullptr;
    check(heron_session_graph_text(session, &text), "--print-graph");
    std::printf("%s\n", text);
    heron_free_string(text);
  }

  std::vector<const char*> names;
  std::vector<heron_tensor*> ins;
  for (auto& [name, t] : feeds) {
    names.push_back(name.c_str());
    ins.push_back(t.t);
  }
  std::vector<heron_tensor*> outs(n_out, nullptr);
  auto run_once = [&]() {
    for (auto& o : outs) { heron_tensor_release(o); o = nullptr; }
    check(heron_session_run(session, names.data(), ins.data(), ins.size(), nullptr, n_out, outs.data()), "run");
    // The outputs are complete (host copies synchronize devices) before the clock stops.
    if (device != "cpu") check(heron_device_synchronize(device.c_str()), "synchronize");
  };
  struct OutsGuard { std::vector<heron_tensor*>& o; ~OutsGuard() { for (auto* t : o) heron_tensor_release(t); } } outs_guard{outs};

  std::printf("model %s: %zu input(s), %zu output(s); device %s, %d thread(s)\n", model_path.c_str(), n_in, n_out, device.c_str(),
              heron_get_num_threads());
  for (int64_t i = 0; i < warmup; ++i) run_once();
  check(heron_session_clear_profile(session), "profile");
  std::vector<double> ms;
  for (int64_t i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    run_once();
    double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ms.push_back(dt);
    std::printf("iter %lld: %.3f ms\n", static_cast<long long>(i + 1), dt);
  }
  double mean = 0, var = 0;
  for (double x : ms) mean += x;
  mean /= static_cast<double>(ms.size());
  for (double x : ms) var += (x - mean) * (x - mean);
  double stdev = ms.size() > 1 ? std::sqrt(var / static_cast<double>(ms.size() - 1)) : 0.0;
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
  };
  std::printf("latency (ms) over %zu iterations: mean %.3f stdev %.3f min %.3f p50 %.3f p90 %.3f p99 %.3f max %.3f\n", ms.size(), mean,
              stdev, sorted.front(), pct(50), pct(90), pct(99), sorted.back());
  int64_t peak_last = 0, peak_max = 0;
  check(heron_session_peak_memory(session, &peak_last, &peak_max), "peak memory");
  int64_t arena = 0;
  check(heron_session_arena_bytes(session, &arena), "arena size");
  std::printf("peak memory (intermediates): %.3f MiB (%lld bytes); arena: %.3f MiB (%lld bytes)\n",
              static_cast<double>(peak_max) / (1024.0 * 1024.0), static_cast<long long>(peak_max),
              static_cast<double>(arena) / (1024.0 * 1024.0), static_cast<long long>(arena));

  auto write_string = [&](heron_status (*fn)(const heron_session*, char**), const std::string& path, const char* what) {
    char* s = nullptr;
    check(fn(session, &s), what);
    std::string text(s);
    heron_free_string(s);
    write_file(path, text);
    std::printf("%s written to %s\n", what, path.c_str());
  };
  if (!profile_out.empty()) write_string(heron_session_profile_json, profile_out, "profile");
  if (!trace_out.empty()) write_string(heron_session_chrome_trace, trace_out, "chrome trace");
  if (!dump_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dump_dir, ec);  // like mkdir -p; a failure shows when writing
    for (size_t i = 0; i < n_out; ++i) {
      const char* name = nullptr;
      check(heron_model_output_info(model, i, &name, nullptr, nullptr, nullptr), "model output");
      std::string path = dump_dir + "/" + safe_file_name(name) + ".npy";
      save_npy(path, outs[i]);
      std::printf("output %s written to %s\n", name, path.c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_main(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "heron-run: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "heron-run: error: %s\n", e.what());
    return 1;
  }
}
