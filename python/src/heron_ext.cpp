// heron._C: the Python extension. Compiled against heron.h only (no core header): everything goes
// through the C ABI. Tensor operators live here so that an eager op costs well under a microsecond.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "heron.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// ------------------------------------------------------------------ errors
PyObject* g_invalid_argument = nullptr;  // heron.InvalidArgumentError(ValueError, RuntimeError)

[[noreturn]] void raise_status(heron_status s) {
  const char* msg = heron_last_error_message();
  PyObject* type;
  switch (s) {
    case HERON_ERR_INVALID_ARGUMENT: type = g_invalid_argument; break;
    case HERON_ERR_TYPE: type = PyExc_TypeError; break;
    case HERON_ERR_INDEX: type = PyExc_IndexError; break;
    case HERON_ERR_NULL_HANDLE: type = PyExc_TypeError; break;  // from Python: None where a tensor is required
    case HERON_ERR_NOT_FOUND: type = PyExc_ValueError; break;
    case HERON_ERR_NOT_IMPLEMENTED: type = PyExc_NotImplementedError; break;
    case HERON_ERR_OUT_OF_MEMORY: type = PyExc_MemoryError; break;
    case HERON_ERR_BUFFER_TOO_SMALL: type = PyExc_ValueError; break;
    case HERON_ERR_ABI_MISMATCH: type = PyExc_ImportError; break;
    default: type = PyExc_RuntimeError; break;
  }
  PyErr_SetString(type, msg && *msg ? msg : "heron: unknown error");
  throw nb::python_error();
}
inline void check(heron_status s) {
  if (s != HERON_OK) raise_status(s);
}

// ------------------------------------------------------------------ dtype and device objects
struct DTypeObj {
  int32_t code;
};
nb::handle g_dtypes[HERON_NUM_DTYPES];  // owned by the module's attributes
nb::handle g_dtype_type;

struct DeviceObj {
  std::string type;
  int32_t index;
  std::string str() const { return (type == "cpu") ? type : type + ":" + std::to_string(index); }
};

// ------------------------------------------------------------------ tensors
struct PyTensor {
  heron_tensor* h = nullptr;
  PyTensor() = default;
  explicit PyTensor(heron_tensor* t) : h(t) {}
  PyTensor(const PyTensor&) = delete;
  PyTensor(PyTensor&& o) noexcept : h(o.h) { o.h = nullptr; }
  PyTensor& operator=(PyTensor&& o) noexcept {
    if (this != &o) { heron_tensor_release(h); h = o.h; o.h = nullptr; }
    return *this;
  }
  ~PyTensor() { heron_tensor_release(h); }
};
nb::handle g_tensor_type;

inline nb::object wrap(heron_tensor* t) { return nb::cast(PyTensor(t), nb::rv_policy::move); }

struct OpObj {
  const heron_op* op;
  std::string name;
};

// Owns temporary handles made for Python scalars during one call.
struct Temps {
  heron_tensor* items[8];
  int n = 0;
  std::vector<heron_tensor*> more;
  ~Temps() {
    for (int i = 0; i < n; ++i) heron_tensor_release(items[i]);
    for (auto* t : more) heron_tensor_release(t);
  }
  heron_tensor* keep(heron_tensor* t) {
    if (n < 8) items[n++] = t; else more.push_back(t);
    return t;
  }
};

// A Python scalar as a wrapped-number tensor; nullptr when `o` is not a scalar.
heron_tensor* scalar_handle(nb::handle o, Temps& temps) {
  heron_attr a{};
  PyObject* p = o.ptr();
  if (PyBool_Check(p)) {
    a.kind = HERON_ATTR_BOOL;
    a.i = (p == Py_True);
  } else if (PyLong_Check(p)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(p, &overflow);
    if (overflow) {
      PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to a heron int64 scalar");
      throw nb::python_error();
    }
    a.kind = HERON_ATTR_INT;
    a.i = v;
  } else if (PyFloat_Check(p)) {
    a.kind = HERON_ATTR_FLOAT;
    a.f = PyFloat_AS_DOUBLE(p);
  } else {
    return nullptr;
  }
  heron_tensor* t = nullptr;
  check(heron_tensor_from_scalar(&a, -1, &t));
  return temps.keep(t);
}

inline PyTensor* as_tensor(nb::handle o) {
  if (Py_TYPE(o.ptr()) == (PyTypeObject*)g_tensor_type.ptr() || nb::isinstance<PyTensor>(o)) return nb::inst_ptr<PyTensor>(o);
  return nullptr;
}

heron_tensor* input_handle(nb::handle o, Temps& temps, const char* op, size_t i) {
  if (PyTensor* t = as_tensor(o)) return t->h;
  if (o.is_none()) return nullptr;
  if (heron_tensor* s = scalar_handle(o, temps)) return s;
  PyErr_Format(PyExc_TypeError, "%s(): argument %zu must be a heron.Tensor or a number, not %s", op, i,
               Py_TYPE(o.ptr())->tp_name);
  throw nb::python_error();
}

// Long calls release the GIL; tiny ones don't pay for it.
bool worth_releasing(heron_tensor* const* ins, size_t n) {
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!ins[i]) continue;
    int64_t k = 0;
    if (heron_tensor_numel(ins[i], &k) == HERON_OK) total += k;
  }
  return total >= (1 << 16);
}

struct AttrStore {
  std::vector<heron_attr> attrs;
  std::vector<std::vector<int64_t>> ints;
  std::vector<std::vector<double>> floats;
  std::vector<std::string> strings;
};

void convert_attr(nb::handle v, AttrStore& st, heron_attr& a, const char* op, size_t k) {
  PyObject* p = v.ptr();
  a = heron_attr{};
  if (v.is_none()) { a.kind = HERON_ATTR_NONE; return; }
  if (PyBool_Check(p)) { a.kind = HERON_ATTR_BOOL; a.i = (p == Py_True); return; }
  if (PyLong_Check(p)) {
    int overflow = 0;
    a.i = PyLong_AsLongLongAndOverflow(p, &overflow);
    if (overflow) { PyErr_Format(PyExc_OverflowError, "%s(): attribute %zu does not fit in int64", op, k); throw nb::python_error(); }
    a.kind = HERON_ATTR_INT;
    return;
  }
  if (PyFloat_Check(p)) { a.kind = HERON_ATTR_FLOAT; a.f = PyFloat_AS_DOUBLE(p); return; }
  if (PyUnicode_Check(p)) {
    st.strings.emplace_back(nb::cast<std::string>(v));
    a.kind = HERON_ATTR_STRING;
    a.i = static_cast<int64_t>(st.strings.back().size());
    a.p = nullptr;  // fixed up after all strings are stored (vector may reallocate)
    return;
  }
  if (nb::isinstance<DTypeObj>(v)) { a.kind = HERON_ATTR_DTYPE; a.i = nb::cast<DTypeObj&>(v).code; return; }
  if (nb::isinstance<DeviceObj>(v)) {
    st.strings.emplace_back(nb::cast<DeviceObj&>(v).str());
    a.kind = HERON_ATTR_STRING;
    a.i = static_cast<int64_t>(st.strings.back().size());
    return;
  }
  if (PyTuple_Check(p) || PyList_Check(p)) {
    nb::sequence seq = nb::borrow<nb::sequence>(v);
    size_t n = nb::len(seq);
    bool all_int = true;
    for (size_t i = 0; i < n; ++i) {
      PyObject* e = seq[i].ptr();
      if (PyLong_Check(e)) continue;
      if (PyFloat_Check(e) || !PyIndex_Check(e)) { all_int = false; break; }
    }
    if (all_int) {
      std::vector<int64_t> vals(n);
      for (size_t i = 0; i < n; ++i) {
        PyObject* e = seq[i].ptr();
        int overflow = 0;
        if (PyLong_Check(e)) {
          vals[i] = PyLong_AsLongLongAndOverflow(e, &overflow);
        } else {
          nb::object idx = nb::steal(PyNumber_Index(e));
          if (!idx.is_valid()) throw nb::python_error();
          vals[i] = PyLong_AsLongLongAndOverflow(idx.ptr(), &overflow);
        }
        if (overflow) { PyErr_Format(PyExc_OverflowError, "%s(): attribute %zu has an int that does not fit in int64", op, k); throw nb::python_error(); }
      }
      st.ints.push_back(std::move(vals));
      a.kind = HERON_ATTR_INTS;
      a.i = static_cast<int64_t>(n);
      return;
    }
    std::vector<double> vals(n);
    for (size_t i = 0; i < n; ++i) {
      PyObject* e = seq[i].ptr();
      double d = PyFloat_AsDouble(e);  // floats, ints, __float__, __index__
      if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s(): attribute %zu has an element of unsupported type %s", op, k,
                     Py_TYPE(e)->tp_name);
        throw nb::python_error();
      }
      vals[i] = d;
    }
    st.floats.push_back(std::move(vals));
    a.kind = HERON_ATTR_FLOATS;
    a.i = static_cast<int64_t>(n);
    return;
  }
  if (PyIndex_Check(p)) {
    nb::object idx = nb::steal(PyNumber_Index(p));
    if (!idx.is_valid()) throw nb::python_error();
    a.kind = HERON_ATTR_INT;
    a.i = nb::cast<int64_t>(idx);
    return;
  }
  if (PyObject_HasAttrString(p, "__float__")) {
    a.kind = HERON_ATTR_FLOAT;
    a.f = PyFloat_AsDouble(p);
    return;
  }
  PyErr_Format(PyExc_TypeError, "%s(): attribute %zu has unsupported type %s", op, k, Py_TYPE(p)->tp_name);
  throw nb::python_error();
}

void build_attrs(nb::handle attrs, AttrStore& st, const char* op) {
  if (attrs.is_none()) return;
  PyObject* t = attrs.ptr();
  if (!PyTuple_Check(t)) { PyErr_SetString(PyExc_TypeError, "attrs must be a tuple"); throw nb::python_error(); }
  Py_ssize_t n = PyTuple_GET_SIZE(t);
  st.attrs.resize(n);
  st.strings.reserve(n);
  for (Py_ssize_t k = 0; k < n; ++k) convert_attr(PyTuple_GET_ITEM(t, k), st, st.attrs[k], op, k);
  // Fix up list/string pointers now that the stores no longer move.
  size_t si = 0, ii = 0, fi = 0;
  for (auto& a : st.attrs) {
    if (a.kind == HERON_ATTR_STRING) a.p = st.strings[si++].c_str();
    else if (a.kind == HERON_ATTR_INTS) a.p = st.ints[ii++].data();
    else if (a.kind == HERON_ATTR_FLOATS) a.p = st.floats[fi++].data();
  }
}

// Runs op; returns the outputs as new handles.
size_t run_op(const OpObj& op, nb::handle inputs, nb::handle attrs, heron_tensor** outs, size_t cap, std::vector<heron_tensor*>& heap_outs) {
  Temps temps;
  PyObject* t = inputs.ptr();
  if (!PyTuple_Check(t)) { PyErr_SetString(PyExc_TypeError, "inputs must be a tuple"); throw nb::python_error(); }
  Py_ssize_t n = PyTuple_GET_SIZE(t);
  heron_tensor* stack_ins[8];
  std::vector<heron_tensor*> heap_ins;
  heron_tensor** ins = stack_ins;
  if (n > 8) { heap_ins.resize(n); ins = heap_ins.data(); }
  for (Py_ssize_t i = 0; i < n; ++i) ins[i] = input_handle(PyTuple_GET_ITEM(t, i), temps, op.name.c_str(), i);
  AttrStore st;
  build_attrs(attrs, st, op.name.c_str());
  size_t n_out = 0;
  heron_status s;
  const heron_attr* ap = st.attrs.empty() ? nullptr : st.attrs.data();
  if (worth_releasing(ins, n)) {
    nb::gil_scoped_release nogil;
    s = heron_op_call(op.op, ins, n, ap, st.attrs.size(), outs, cap, &n_out);
  } else {
    s = heron_op_call(op.op, ins, n, ap, st.attrs.size(), outs, cap, &n_out);
  }
  if (s == HERON_ERR_BUFFER_TOO_SMALL && n_out > cap) {
    heap_outs.resize(n_out);
    size_t again = 0;
    s = heron_op_call(op.op, ins, n, ap, st.attrs.size(), heap_outs.data(), heap_outs.size(), &again);
    n_out = again;
  }
  check(s);
  return n_out;
}

nb::object call1(const OpObj& op, nb::handle inputs, nb::handle attrs) {
  heron_tensor* outs[4] = {};
  std::vector<heron_tensor*> heap;
  size_t n = run_op(op, inputs, attrs, outs, 4, heap);
  heron_tensor** o = heap.empty() ? outs : heap.data();
  for (size_t i = 1; i < n; ++i) heron_tensor_release(o[i]);
  return wrap(o[0]);
}

nb::object calln(const OpObj& op, nb::handle inputs, nb::handle attrs) {
  heron_tensor* outs[64] = {};
  std::vector<heron_tensor*> heap;
  size_t n = run_op(op, inputs, attrs, outs, 64, heap);
  heron_tensor** o = heap.empty() ? outs : heap.data();
  // Wrap every handle first (so none leaks if a wrap fails), then build the tuple.
  std::vector<nb::object> objs;
  objs.reserve(n);
  for (size_t i = 0; i < n; ++i) objs.push_back(wrap(o[i]));
  nb::object tup = nb::steal(PyTuple_New(static_cast<Py_ssize_t>(n)));
  for (size_t i = 0; i < n; ++i) PyTuple_SET_ITEM(tup.ptr(), i, objs[i].release().ptr());
  return tup;
}

// ------------------------------------------------------------------ fast operator path
const heron_op* find(const char* name) {
  const heron_op* op = nullptr;
  check(heron_op_find(name, &op));
  return op;
}

struct FastOps {
  const heron_op *add, *sub, *mul, *div, *floor_divide, *remainder, *pow, *matmul, *neg, *abs, *bitwise_not,
      *bitwise_and, *bitwise_or, *bitwise_xor, *lshift, *rshift, *eq, *ne, *lt, *le, *gt, *ge, *copy_, *logical_not;
} F;

// self (op) other; reflected swaps. Returns NotImplemented for foreign operands.
nb::object binop(const heron_op* op, nb::handle self, nb::handle other, bool reflected) {
  PyTensor* a = as_tensor(self);
  Temps temps;
  heron_tensor* b = nullptr;
  if (PyTensor* t = as_tensor(other)) b = t->h;
  else b = scalar_handle(other, temps);
  if (!b) return nb::borrow(Py_NotImplemented);
  heron_tensor* ins[2] = {reflected ? b : a->h, reflected ? a->h : b};
  heron_tensor* out = nullptr;
  size_t n_out = 0;
  heron_status s;
  if (worth_releasing(ins, 2)) {
    nb::gil_scoped_release nogil;
    s = heron_op_call(op, ins, 2, nullptr, 0, &out, 1, &n_out);
  } else {
    s = heron_op_call(op, ins, 2, nullptr, 0, &out, 1, &n_out);
  }
  check(s);
  return wrap(out);
}

// torch.can_cast: no floating -> integral/bool, no non-bool -> bool.
bool can_cast(int32_t from, int32_t to) {
  bool from_float = from <= HERON_BFLOAT16, to_float = to <= HERON_BFLOAT16;
  if (from_float && !to_float) return false;
  if (from != HERON_BOOL && to == HERON_BOOL) return false;
  return true;
}

// In place: self = self (op) other, written into self's memory (self keeps its dtype).
nb::object ibinop(const heron_op* op, nb::handle self, nb::handle other) {
  nb::object r = binop(op, self, other, false);
  if (r.ptr() == Py_NotImplemented) return r;
  // Like PyTorch, an in-place op may not narrow the result's category into self's dtype
  // (int_tensor += 2.5, int_tensor /= 2, bool_tensor += 1); self is left unchanged.
  int32_t self_dt = 0, res_dt = 0;
  check(heron_tensor_dtype(as_tensor(self)->h, &self_dt));
  check(heron_tensor_dtype(as_tensor(r)->h, &res_dt));
  if (!can_cast(res_dt, self_dt)) {
    const char* name = "?";
    heron_op_name(op, &name);
    PyErr_Format(PyExc_TypeError, "%s_: result type %s can't be cast to the desired output type %s", name,
                 heron_dtype_name(res_dt), heron_dtype_name(self_dt));
    throw nb::python_error();
  }
  heron_tensor* ins[2] = {as_tensor(self)->h, as_tensor(r)->h};
  heron_tensor* out = nullptr;
  size_t n_out = 0;
  check(heron_op_call(F.copy_, ins, 2, nullptr, 0, &out, 1, &n_out));
  heron_tensor_release(out);
  return nb::borrow(self);
}

nb::object unop(const heron_op* op, nb::handle self) {
  heron_tensor* in = as_tensor(self)->h;
  heron_tensor* out = nullptr;
  size_t n_out = 0;
  check(heron_op_call(op, &in, 1, nullptr, 0, &out, 1, &n_out));
  return wrap(out);
}

std::vector<int64_t> shape_of(heron_tensor* h) {
  int32_t nd = 0;
  check(heron_tensor_ndim(h, &nd));
  std::vector<int64_t> s(nd);
  check(heron_tensor_shape(h, s.data(), nd));
  return s;
}
nb::tuple to_tuple(const std::vector<int64_t>& v) {
  nb::object t = nb::steal(PyTuple_New(static_cast<Py_ssize_t>(v.size())));
  for (size_t i = 0; i < v.size(); ++i) PyTuple_SET_ITEM(t.ptr(), i, PyLong_FromLongLong(v[i]));
  return nb::borrow<nb::tuple>(t);
}

// ------------------------------------------------------------------ DLPack
const char* kVersioned = "dltensor_versioned";
const char* kLegacy = "dltensor";

void capsule_destructor_versioned(PyObject* cap) {
  if (PyCapsule_IsValid(cap, kVersioned)) {
    auto* m = static_cast<heron_DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, kVersioned));
    if (m && m->deleter) m->deleter(m);
  }
}
void capsule_destructor_legacy(PyObject* cap) {
  if (PyCapsule_IsValid(cap, kLegacy)) {
    auto* m = static_cast<heron_DLManagedTensor*>(PyCapsule_GetPointer(cap, kLegacy));
    if (m && m->deleter) m->deleter(m);
  }
}

nb::object to_dlpack(PyTensor& t, bool versioned) {
  if (versioned) {
    heron_DLManagedTensorVersioned* m = nullptr;
    check(heron_tensor_to_dlpack(t.h, &m));
    PyObject* cap = PyCapsule_New(m, kVersioned, capsule_destructor_versioned);
    if (!cap) { m->deleter(m); throw nb::python_error(); }
    return nb::steal(cap);
  }
  heron_DLManagedTensor* m = nullptr;
  check(heron_tensor_to_dlpack_legacy(t.h, &m));
  PyObject* cap = PyCapsule_New(m, kLegacy, capsule_destructor_legacy);
  if (!cap) { m->deleter(m); throw nb::python_error(); }
  return nb::steal(cap);
}

nb::object from_capsule(nb::handle cap) {
  PyObject* c = cap.ptr();
  heron_tensor* out = nullptr;
  if (PyCapsule_IsValid(c, kVersioned)) {
    auto* m = static_cast<heron_DLManagedTensorVersioned*>(PyCapsule_GetPointer(c, kVersioned));
    check(heron_tensor_from_dlpack(m, &out));
    PyCapsule_SetName(c, "used_dltensor_versioned");
    PyCapsule_SetDestructor(c, nullptr);
  } else if (PyCapsule_IsValid(c, kLegacy)) {
    auto* m = static_cast<heron_DLManagedTensor*>(PyCapsule_GetPointer(c, kLegacy));
    check(heron_tensor_from_dlpack_legacy(m, &out));
    PyCapsule_SetName(c, "used_dltensor");
    PyCapsule_SetDestructor(c, nullptr);
  } else {
    PyErr_SetString(PyExc_ValueError, "from_dlpack: expected an unused DLPack capsule ('dltensor' or 'dltensor_versioned')");
    throw nb::python_error();
  }
  return wrap(out);
}

// Host bytes (any object with the buffer protocol, C-contiguous) -> new tensor (copy).
nb::object from_buffer(nb::handle obj, nb::handle dtype_obj, std::vector<int64_t> shape, nb::handle device) {
  int32_t dtype = nb::isinstance<DTypeObj>(dtype_obj) ? nb::cast<DTypeObj&>(dtype_obj).code : nb::cast<int32_t>(dtype_obj);
  Py_buffer view;
  if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_C_CONTIGUOUS) != 0) throw nb::python_error();
  std::string dev;
  const char* devp = nullptr;
  if (!device.is_none()) {
    dev = nb::isinstance<DeviceObj>(device) ? nb::cast<DeviceObj&>(device).str() : nb::cast<std::string>(device);
    devp = dev.c_str();
  }
  heron_tensor* out = nullptr;
  heron_status s = heron_tensor_from_host(view.buf, static_cast<size_t>(view.len), dtype, shape.data(),
                                          static_cast<int32_t>(shape.size()), devp, &out);
  PyBuffer_Release(&view);
  check(s);
  return wrap(out);
}

// Tensor -> bytes in row-major order (any device, any strides).
nb::bytes to_bytes(PyTensor& t) {
  int64_t numel = 0;
  int32_t dt = 0;
  check(heron_tensor_numel(t.h, &numel));
  check(heron_tensor_dtype(t.h, &dt));
  size_t n = static_cast<size_t>(numel) * heron_dtype_size(dt);
  PyObject* b = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n));
  if (!b) throw nb::python_error();
  heron_status s = heron_tensor_to_host(t.h, PyBytes_AS_STRING(b), n);
  if (s != HERON_OK) { Py_DECREF(b); raise_status(s); }
  return nb::steal<nb::bytes>(b);
}

// ==================================================================== BEGIN safetensors (area optim)
// Named tensor maps and safetensors over heron.h's "named tensor maps and safetensors" section.
// Used by heron/safetensors.py; the Python-level API (heron.save/load, heron.safetensors) is there.
struct MapGuard {
  heron_tensor_map* m = nullptr;
  ~MapGuard() { heron_tensor_map_release(m); }
};

// A loaded map -> (list of (name, Tensor) in name order, metadata JSON).
nb::tuple st_unpack(heron_tensor_map* m) {
  size_t n = 0;
  check(heron_tensor_map_size(m, &n));
  nb::list items;
  for (size_t i = 0; i < n; ++i) {
    const char* key = nullptr;
    heron_tensor* t = nullptr;
    check(heron_tensor_map_key(m, i, &key));
    check(heron_tensor_map_tensor(m, i, &t));
    nb::object tobj = wrap(t);
    items.append(nb::make_tuple(nb::str(key), tobj));
  }
  const char* md = nullptr;
  check(heron_tensor_map_metadata_json(m, &md));
  return nb::make_tuple(items, nb::str(md));
}

// (name, Tensor) pairs -> a new map (owned by the guard).
void st_pack(nb::handle items, MapGuard& g) {
  check(heron_tensor_map_create(&g.m));
  for (nb::handle it : items) {
    PyObject* pr = it.ptr();
    if (!PyTuple_Check(pr) || PyTuple_GET_SIZE(pr) != 2) {
      PyErr_SetString(PyExc_TypeError, "safetensors: expected (name, tensor) pairs");
      throw nb::python_error();
    }
    nb::handle k(PyTuple_GET_ITEM(pr, 0)), v(PyTuple_GET_ITEM(pr, 1));
    if (!PyUnicode_Check(k.ptr())) {
      PyErr_Format(PyExc_TypeError, "safetensors: tensor names must be str, not %s", Py_TYPE(k.ptr())->tp_name);
      throw nb::python_error();
    }
    std::string name = nb::cast<std::string>(k);
    PyTensor* t = as_tensor(v);
    if (!t) {
      PyErr_Format(PyExc_TypeError, "safetensors: the value of '%s' must be a heron.Tensor, not %s", name.c_str(),
                   Py_TYPE(v.ptr())->tp_name);
      throw nb::python_error();
    }
    check(heron_tensor_map_set(g.m, name.c_str(), t->h));
  }
}

void register_safetensors(nb::module_& m) {
  m.def("_st_load_file", [](const std::string& path) {
    MapGuard g;
    heron_status s;
    {
      nb::gil_scoped_release rel;
      s = heron_safetensors_load_file(path.c_str(), &g.m);
    }
    check(s);
    return st_unpack(g.m);
  }, "path"_a);
  m.def("_st_load_bytes", [](nb::bytes data) {
    MapGuard g;
    check(heron_safetensors_load_buffer(data.c_str(), data.size(), &g.m));
    return st_unpack(g.m);
  }, "data"_a);
  m.def("_st_save_file", [](nb::handle items, const std::string& path, nb::handle metadata_json) {
    MapGuard g;
    st_pack(items, g);
    std::string md = metadata_json.is_none() ? std::string() : nb::cast<std::string>(metadata_json);
    heron_status s;
    {
      nb::gil_scoped_release rel;
      s = heron_safetensors_save_file(path.c_str(), g.m, metadata_json.is_none() ? nullptr : md.c_str());
    }
    check(s);
  }, "items"_a, "path"_a, "metadata_json"_a = nb::none());
  m.def("_st_save_bytes", [](nb::handle items, nb::handle metadata_json) {
    MapGuard g;
    st_pack(items, g);
    std::string md = metadata_json.is_none() ? std::string() : nb::cast<std::string>(metadata_json);
    uint8_t* buf = nullptr;
    size_t len = 0;
    check(heron_safetensors_save_buffer(g.m, metadata_json.is_none() ? nullptr : md.c_str(), &buf, &len));
    PyObject* b = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(buf), static_cast<Py_ssize_t>(len));
    heron_safetensors_free_buffer(buf);
    if (!b) throw nb::python_error();
    return nb::steal<nb::bytes>(b);
  }, "items"_a, "metadata_json"_a = nb::none());
}
// ==================================================================== END safetensors (area optim)

}  // namespace

NB_MODULE(_C, m) {
  m.doc() = "Heron's native extension (over the C ABI in heron.h).";
  // The dtype singletons are referenced from Python module globals (dicts in heron._creation ...)
  // that the interpreter may tear down after this module: nanobind would report them as leaks.
  nb::set_leak_warnings(false);
  if (heron_abi_check(HERON_ABI_VERSION) != HERON_OK) {
    PyErr_SetString(PyExc_ImportError, heron_last_error_message());
    throw nb::python_error();
  }
  {
    nb::object bases = nb::make_tuple(nb::handle(PyExc_ValueError), nb::handle(PyExc_RuntimeError));
    g_invalid_argument = PyErr_NewExceptionWithDoc(
        "heron.InvalidArgumentError",
        "A value is wrong (shape, size, attribute value). Subclass of both ValueError and RuntimeError, so code "
        "written for PyTorch (RuntimeError) or numpy (ValueError) catches it.",
        bases.ptr(), nullptr);
    m.attr("InvalidArgumentError") = nb::handle(g_invalid_argument);
  }

  // dtypes
  nb::class_<DTypeObj>(m, "dtype", "An element type: heron.float32, heron.int64, ...")
      .def_ro("_code", &DTypeObj::code)
      .def_prop_ro("itemsize", [](const DTypeObj& d) { return heron_dtype_size(d.code); })
      .def_prop_ro("name", [](const DTypeObj& d) { return std::string(heron_dtype_name(d.code)); })
      .def_prop_ro("is_floating_point", [](const DTypeObj& d) { return d.code <= HERON_BFLOAT16; })
      .def_prop_ro("is_signed", [](const DTypeObj& d) { return d.code != HERON_UINT8 && d.code != HERON_BOOL; })
      .def("__repr__", [](const DTypeObj& d) { return std::string("heron.") + heron_dtype_name(d.code); })
      .def("__str__", [](const DTypeObj& d) { return std::string("heron.") + heron_dtype_name(d.code); })
      .def("__eq__", [](const DTypeObj& a, nb::handle b) { return nb::isinstance<DTypeObj>(b) && nb::cast<DTypeObj&>(b).code == a.code; })
      .def("__hash__", [](const DTypeObj& d) { return d.code + 1000; })
      .def("__reduce__", [](const DTypeObj& d) { return std::string(heron_dtype_name(d.code)); });
  g_dtype_type = m.attr("dtype");
  for (int32_t c = 0; c < HERON_NUM_DTYPES; ++c) {
    nb::object o = nb::cast(DTypeObj{c});
    m.attr(heron_dtype_name(c)) = o;
    g_dtypes[c] = o;
  }
  m.def("promote_types", [](const DTypeObj& a, const DTypeObj& b) {
    int32_t out = 0;
    check(heron_promote_types(a.code, b.code, &out));
    return nb::borrow(g_dtypes[out]);
  }, "a"_a, "b"_a, "The dtype two dtypes promote to (torch.promote_types).");

  // devices
  nb::class_<DeviceObj>(m, "device", "A device: heron.device('cpu'), heron.device('cuda:0'), heron.device('cuda', 1).")
      .def("__init__", [](DeviceObj* self, const std::string& spec, nb::handle index) {
        std::string type = spec;
        int32_t idx = 0;
        auto colon = spec.find(':');
        if (colon != std::string::npos) {
          type = spec.substr(0, colon);
          try { idx = std::stoi(spec.substr(colon + 1)); } catch (...) {
            PyErr_Format(PyExc_ValueError, "invalid device string '%s'", spec.c_str());
            throw nb::python_error();
          }
        }
        if (!index.is_none()) idx = nb::cast<int32_t>(index);
        int32_t count = 0;
        check(heron_device_count(type.c_str(), &count));
        new (self) DeviceObj{type, idx};
      }, "type"_a, "index"_a = nb::none())
      .def_ro("type", &DeviceObj::type)
      .def_ro("index", &DeviceObj::index)
      .def("__str__", &DeviceObj::str)
      .def("__repr__", [](const DeviceObj& d) {
        return d.type == "cpu" ? std::string("device(type='cpu')") : "device(type='" + d.type + "', index=" + std::to_string(d.index) + ")";
      })
      .def("__eq__", [](const DeviceObj& a, nb::handle b) {
        if (nb::isinstance<DeviceObj>(b)) { auto& o = nb::cast<DeviceObj&>(b); return a.type == o.type && a.index == o.index; }
        if (nb::isinstance<nb::str>(b)) return a.str() == nb::cast<std::string>(b) || (a.type == nb::cast<std::string>(b) && a.index == 0);
        return false;
      })
      .def("__hash__", [](const DeviceObj& d) { return std::hash<std::string>()(d.str()); });

  m.def("device_types", [] {
    std::vector<std::string> out;
    for (int32_t i = 0; i < heron_device_type_count(); ++i) {
      const char* n = nullptr;
      check(heron_device_type_name(i, &n));
      out.push_back(n);
    }
    return out;
  }, "Device kinds compiled into this build.");
  m.def("device_count", [](const std::string& name) {
    int32_t n = 0;
    check(heron_device_count(name.c_str(), &n));
    return n;
  }, "name"_a, "How many devices of this kind are usable.");
  m.def("synchronize", [](const std::string& dev) { check(heron_device_synchronize(dev.c_str())); }, "device"_a);

  // ops
  nb::class_<OpObj>(m, "_Op").def_ro("name", &OpObj::name).def("__repr__", [](const OpObj& o) { return "<heron op " + o.name + ">"; });
  m.def("_op", [](const std::string& name) { return OpObj{find(name.c_str()), name}; });
  m.def("_call", &call1, "op"_a, "inputs"_a, "attrs"_a);
  m.def("_calln", &calln, "op"_a, "inputs"_a, "attrs"_a);
  m.def("_op_names", [] {
    std::vector<std::string> out;
    for (int32_t i = 0; i < heron_op_count(); ++i) {
      const heron_op* op = nullptr;
      const char* n = nullptr;
      check(heron_op_at(i, &op));
      check(heron_op_name(op, &n));
      out.push_back(n);
    }
    return out;
  });
  m.def("_schema_json", [] { return std::string(heron_ops_schema_json()); });

  F = {find("add"), find("sub"), find("mul"), find("div"), find("floor_divide"), find("remainder"), find("pow"),
       find("matmul"), find("neg"), find("abs"), find("bitwise_not"), find("bitwise_and"), find("bitwise_or"),
       find("bitwise_xor"), find("bitwise_left_shift"), find("bitwise_right_shift"), find("eq"), find("ne"),
       find("lt"), find("le"), find("gt"), find("ge"), find("copy_"), find("logical_not")};

  // tensors
  auto T = nb::class_<PyTensor>(m, "Tensor", "An n-dimensional array on a device.");
  g_tensor_type = T;
  T.def_prop_ro("shape", [](PyTensor& t) { return to_tuple(shape_of(t.h)); }, "The shape, as a tuple.")
      .def_prop_ro("ndim", [](PyTensor& t) { int32_t n = 0; check(heron_tensor_ndim(t.h, &n)); return n; })
      .def("dim", [](PyTensor& t) { int32_t n = 0; check(heron_tensor_ndim(t.h, &n)); return n; })
      .def_prop_ro("dtype", [](PyTensor& t) { int32_t d = 0; check(heron_tensor_dtype(t.h, &d)); return nb::borrow(g_dtypes[d]); })
      .def_prop_ro("device", [](PyTensor& t) {
        const char* name = nullptr;
        int32_t idx = 0;
        check(heron_tensor_device(t.h, &name, &idx));
        return DeviceObj{name, idx};
      })
      .def("numel", [](PyTensor& t) { int64_t n = 0; check(heron_tensor_numel(t.h, &n)); return n; })
      .def("_strides", [](PyTensor& t) {
        int32_t nd = 0;
        check(heron_tensor_ndim(t.h, &nd));
        std::vector<int64_t> s(nd);
        check(heron_tensor_strides(t.h, s.data(), nd));
        return to_tuple(s);
      })
      .def("storage_offset", [](PyTensor& t) { int64_t o = 0; check(heron_tensor_offset(t.h, &o)); return o; })
      .def("is_contiguous", [](PyTensor& t) { int32_t c = 0; check(heron_tensor_is_contiguous(t.h, &c)); return c != 0; })
      .def("data_ptr", [](PyTensor& t) { void* p = nullptr; check(heron_tensor_data_ptr(t.h, &p)); return reinterpret_cast<uintptr_t>(p); })
      .def("_shares_storage", [](PyTensor& a, PyTensor& b) { int32_t r = 0; check(heron_tensor_shares_storage(a.h, b.h, &r)); return r != 0; })
      .def("_item_float", [](PyTensor& t) { double v = 0; check(heron_tensor_item_double(t.h, &v)); return v; })
      .def("_item_int", [](PyTensor& t) { int64_t v = 0; check(heron_tensor_item_int64(t.h, &v)); return v; })
      .def("_to_bytes", &to_bytes)
      .def("__dlpack__", [](PyTensor& t, nb::handle stream, nb::handle max_version, nb::handle dl_device, nb::handle copy) {
        if (!copy.is_none() && nb::cast<bool>(copy)) {
          PyErr_SetString(PyExc_BufferError, "heron: __dlpack__(copy=True) is not supported; call .clone() first");
          throw nb::python_error();
        }
        bool versioned = false;
        if (!max_version.is_none()) versioned = nb::cast<int>(nb::borrow<nb::tuple>(max_version)[0]) >= 1;
        return to_dlpack(t, versioned);
      }, "stream"_a = nb::none(), "max_version"_a = nb::none(), "dl_device"_a = nb::none(), "copy"_a = nb::none(),
         "Exports the tensor as a DLPack capsule (versioned when max_version >= (1, 0)). Zero-copy.")
      .def("__dlpack_device__", [](PyTensor& t) {
        const char* name = nullptr;
        int32_t idx = 0;
        check(heron_tensor_device(t.h, &name, &idx));
        int code = std::strcmp(name, "cpu") == 0 ? 1 : std::strcmp(name, "cuda") == 0 ? 2 : 0;
        return nb::make_tuple(code, idx);
      })
      .def("__add__", [](nb::handle a, nb::handle b) { return binop(F.add, a, b, false); })
      .def("__radd__", [](nb::handle a, nb::handle b) { return binop(F.add, a, b, true); })
      .def("__sub__", [](nb::handle a, nb::handle b) { return binop(F.sub, a, b, false); })
      .def("__rsub__", [](nb::handle a, nb::handle b) { return binop(F.sub, a, b, true); })
      .def("__mul__", [](nb::handle a, nb::handle b) { return binop(F.mul, a, b, false); })
      .def("__rmul__", [](nb::handle a, nb::handle b) { return binop(F.mul, a, b, true); })
      .def("__truediv__", [](nb::handle a, nb::handle b) { return binop(F.div, a, b, false); })
      .def("__rtruediv__", [](nb::handle a, nb::handle b) { return binop(F.div, a, b, true); })
      .def("__floordiv__", [](nb::handle a, nb::handle b) { return binop(F.floor_divide, a, b, false); })
      .def("__rfloordiv__", [](nb::handle a, nb::handle b) { return binop(F.floor_divide, a, b, true); })
      .def("__mod__", [](nb::handle a, nb::handle b) { return binop(F.remainder, a, b, false); })
      .def("__rmod__", [](nb::handle a, nb::handle b) { return binop(F.remainder, a, b, true); })
      .def("__pow__", [](nb::handle a, nb::handle b, nb::handle) { return binop(F.pow, a, b, false); }, "other"_a, "mod"_a = nb::none())
      .def("__rpow__", [](nb::handle a, nb::handle b, nb::handle) { return binop(F.pow, a, b, true); }, "other"_a, "mod"_a = nb::none())
      .def("__matmul__", [](nb::handle a, nb::handle b) { return binop(F.matmul, a, b, false); })
      .def("__rmatmul__", [](nb::handle a, nb::handle b) { return binop(F.matmul, a, b, true); })
      .def("__and__", [](nb::handle a, nb::handle b) { return binop(F.bitwise_and, a, b, false); })
      .def("__rand__", [](nb::handle a, nb::handle b) { return binop(F.bitwise_and, a, b, true); })
      .def("__or__", [](nb::handle a, nb::handle b) { return binop(F.bitwise_or, a, b, false); })
      .def("__ror__", [](nb::handle a, nb::handle b) { return binop(F.bitwise_or, a, b, true); })
      .def("__xor__", [](nb::handle a, nb::handle b) { return binop(F.bitwise_xor, a, b, false); })
      .def("__rxor__", [](nb::handle a, nb::handle b) { return binop(F.bitwise_xor, a, b, true); })
      .def("__lshift__", [](nb::handle a, nb::handle b) { return binop(F.lshift, a, b, false); })
      .def("__rlshift__", [](nb::handle a, nb::handle b) { return binop(F.lshift, a, b, true); })
      .def("__rshift__", [](nb::handle a, nb::handle b) { return binop(F.rshift, a, b, false); })
      .def("__rrshift__", [](nb::handle a, nb::handle b) { return binop(F.rshift, a, b, true); })
      .def("__eq__", [](nb::handle a, nb::handle b) { return binop(F.eq, a, b, false); })
      .def("__ne__", [](nb::handle a, nb::handle b) { return binop(F.ne, a, b, false); })
      .def("__lt__", [](nb::handle a, nb::handle b) { return binop(F.lt, a, b, false); })
      .def("__le__", [](nb::handle a, nb::handle b) { return binop(F.le, a, b, false); })
      .def("__gt__", [](nb::handle a, nb::handle b) { return binop(F.gt, a, b, false); })
      .def("__ge__", [](nb::handle a, nb::handle b) { return binop(F.ge, a, b, false); })
      .def("__iadd__", [](nb::handle a, nb::handle b) { return ibinop(F.add, a, b); })
      .def("__isub__", [](nb::handle a, nb::handle b) { return ibinop(F.sub, a, b); })
      .def("__imul__", [](nb::handle a, nb::handle b) { return ibinop(F.mul, a, b); })
      .def("__itruediv__", [](nb::handle a, nb::handle b) { return ibinop(F.div, a, b); })
      .def("__ifloordiv__", [](nb::handle a, nb::handle b) { return ibinop(F.floor_divide, a, b); })
      .def("__imod__", [](nb::handle a, nb::handle b) { return ibinop(F.remainder, a, b); })
      .def("__ipow__", [](nb::handle a, nb::handle b) { return ibinop(F.pow, a, b); })
      .def("__iand__", [](nb::handle a, nb::handle b) { return ibinop(F.bitwise_and, a, b); })
      .def("__ior__", [](nb::handle a, nb::handle b) { return ibinop(F.bitwise_or, a, b); })
      .def("__ixor__", [](nb::handle a, nb::handle b) { return ibinop(F.bitwise_xor, a, b); })
      .def("__neg__", [](nb::handle a) { return unop(F.neg, a); })
      .def("__pos__", [](nb::handle a) { return nb::borrow(a); })
      .def("__abs__", [](nb::handle a) { return unop(F.abs, a); })
      .def("__invert__", [](nb::handle a) { return unop(F.bitwise_not, a); });
  // ---- autograd (the engine is in the core; these are thin ABI calls)
  T.def_prop_rw("requires_grad",
      [](PyTensor& t) { int32_t r = 0; check(heron_tensor_requires_grad(t.h, &r)); return r != 0; },
      [](PyTensor& t, bool v) { check(heron_tensor_set_requires_grad(t.h, v)); },
      "Whether gradients are computed for this tensor.")
      .def("requires_grad_", [](nb::handle self, bool v) {
        check(heron_tensor_set_requires_grad(nb::cast<PyTensor&>(self).h, v));
        return nb::borrow(self);
      }, "requires_grad"_a = true, "Sets requires_grad in place and returns the tensor.")
      .def_prop_rw("grad",
      [](PyTensor& t) -> nb::object {
        heron_tensor* g = nullptr;
        check(heron_tensor_grad(t.h, &g));
        if (!g) return nb::none();
        return wrap(g);
      },
      [](PyTensor& t, nb::handle g) {
        if (g.is_none()) { check(heron_tensor_set_grad(t.h, nullptr)); return; }
        PyTensor* gt = as_tensor(g);
        if (!gt) throw nb::type_error("grad must be a Tensor or None");
        check(heron_tensor_set_grad(t.h, gt->h));
      }, nb::arg("value").none(), "The accumulated gradient, or None.")
      .def_prop_ro("is_leaf", [](PyTensor& t) { int32_t r = 0; check(heron_tensor_is_leaf(t.h, &r)); return r != 0; })
      .def_prop_ro("_grad_fn_name", [](PyTensor& t) -> nb::object {
        const char* n = nullptr;
        check(heron_tensor_grad_fn_name(t.h, &n));
        if (!n) return nb::none();
        return nb::str(n);
      })
      .def("detach", [](PyTensor& t) { heron_tensor* o = nullptr; check(heron_tensor_detach(t.h, &o)); return wrap(o); },
           "A tensor sharing this one's data, outside the autograd graph.")
      .def("retain_grad", [](PyTensor& t) { check(heron_tensor_retain_grad(t.h)); },
           "Keeps this non-leaf tensor's gradient in .grad during backward.")
      .def("_zero_grad", [](PyTensor& t) { check(heron_tensor_zero_grad(t.h)); });
  // Post-accumulate-grad hooks: the C callback re-takes the GIL (backward runs with it released) and
  // calls the Python callable with the leaf; an exception aborts the backward with its message.
  struct GradHook {
    static int32_t call(void* user, heron_tensor* leaf, char* msg, size_t n) {
      nb::gil_scoped_acquire gil;
      try {
        check(heron_tensor_retain(leaf));
        nb::object t = wrap(leaf);
        nb::handle(static_cast<PyObject*>(user))(t);
        return 0;
      } catch (nb::python_error& e) {
        std::string text;
        try {  // "KeyError: 'x'": the exception without the traceback
          text = nb::cast<std::string>(nb::str(e.type().attr("__name__"))) + ": " +
                 nb::cast<std::string>(nb::str(e.value()));
        } catch (...) {
          text = e.what();
        }
        std::snprintf(msg, n, "%s", text.c_str());
        return 1;
      } catch (std::exception& e) {
        std::snprintf(msg, n, "%s", e.what());
        return 1;
      }
    }
    static void release(void* user) {
      if (!Py_IsInitialized()) return;  // interpreter gone: nothing left to decref
      nb::gil_scoped_acquire gil;
      Py_DECREF(static_cast<PyObject*>(user));
    }
  };
  m.def("_register_post_accumulate_grad_hook", [](PyTensor& t, nb::callable fn) {
    int64_t id = 0;
    PyObject* user = fn.ptr();
    Py_INCREF(user);
    heron_status st = heron_tensor_register_post_accumulate_grad_hook(t.h, &GradHook::call, user, &GradHook::release, &id);
    if (st != HERON_OK) Py_DECREF(user);
    check(st);
    return id;
  });
  m.def("_remove_post_accumulate_grad_hook", [](PyTensor& t, int64_t id) {
    int32_t removed = 0;
    check(heron_tensor_remove_post_accumulate_grad_hook(t.h, id, &removed));
    return removed != 0;
  });
  m.def("_backward", [](std::vector<PyTensor*> roots, std::vector<nb::handle> grads, bool retain_graph) {
    std::vector<heron_tensor*> rs, gs;
    for (auto* r : roots) rs.push_back(r->h);
    for (auto g : grads) gs.push_back(g.is_none() ? nullptr : nb::cast<PyTensor&>(g).h);
    heron_status st;
    {
      nb::gil_scoped_release nogil;
      st = heron_backward(rs.data(), gs.data(), rs.size(), retain_graph);
    }
    check(st);
  });
  m.def("_autograd_grad", [](std::vector<PyTensor*> roots, std::vector<nb::handle> grads, std::vector<PyTensor*> inputs,
                             bool retain_graph, bool allow_unused) {
    std::vector<heron_tensor*> rs, gs, ins, out(inputs.size(), nullptr);
    for (auto* r : roots) rs.push_back(r->h);
    for (auto g : grads) gs.push_back(g.is_none() ? nullptr : nb::cast<PyTensor&>(g).h);
    for (auto* i : inputs) ins.push_back(i->h);
    heron_status st;
    {
      nb::gil_scoped_release nogil;
      st = heron_autograd_grad(rs.data(), gs.data(), rs.size(), ins.data(), ins.size(), retain_graph, allow_unused, out.data());
    }
    check(st);
    nb::list res;
    for (auto* o : out) res.append(o ? wrap(o) : nb::none());
    return res;
  });
  m.def("_set_grad_enabled", [](bool e) { int32_t prev = 0; check(heron_set_grad_enabled(e, &prev)); return prev != 0; });
  m.def("is_grad_enabled", [] { return heron_is_grad_enabled() != 0; }, "Whether this thread records ops for autograd.");
  m.def("_set_anomaly_enabled", [](bool e) { int32_t prev = 0; check(heron_set_anomaly_enabled(e, &prev)); return prev != 0; });
  m.def("is_anomaly_enabled", [] { return heron_is_anomaly_enabled() != 0; });

  // ---- deployment: models, tracing, sessions (thin ABI calls)
  struct PyModel {
    heron_model* m = nullptr;
    explicit PyModel(heron_model* p) : m(p) {}
    PyModel(const PyModel&) = delete;
    PyModel(PyModel&& o) noexcept : m(o.m) { o.m = nullptr; }
    ~PyModel() { heron_model_release(m); }
  };
  auto info_list = [](heron_model* m, bool outputs) {
    size_t n = 0;
    check(outputs ? heron_model_num_outputs(m, &n) : heron_model_num_inputs(m, &n));
    nb::list res;
    for (size_t i = 0; i < n; ++i) {
      const char* name = nullptr;
      int32_t dt = 0, nd = 0;
      const int64_t* shape = nullptr;
      check(outputs ? heron_model_output_info(m, i, &name, &dt, &nd, &shape) : heron_model_input_info(m, i, &name, &dt, &nd, &shape));
      nb::list s;
      for (int32_t d = 0; d < nd; ++d) s.append(shape[d]);
      res.append(nb::make_tuple(nb::str(name), nb::borrow(g_dtypes[dt]), nb::tuple(s)));
    }
    return res;
  };
  nb::class_<PyModel>(m, "_Model")
      .def_static("load", [](const std::string& path) {
        heron_model* p = nullptr;
        check(heron_model_load_file(path.c_str(), &p));
        return PyModel(p);
      })
      .def_static("load_buffer", [](nb::bytes data) {
        heron_model* p = nullptr;
        check(heron_model_load_buffer(data.c_str(), data.size(), &p));
        return PyModel(p);
      })
      .def("save", [](PyModel& self, const std::string& path) { check(heron_model_save_file(self.m, path.c_str())); })
      .def("inputs", [info_list](PyModel& self) { return info_list(self.m, false); })
      .def("outputs", [info_list](PyModel& self) { return info_list(self.m, true); })
      .def("text", [](PyModel& self) {
        char* s = nullptr;
        check(heron_model_text(self.m, &s));
        std::string r(s);
        heron_free_string(s);
        return r;
      });
  struct PyTracer {
    heron_tracer* t = nullptr;
    ~PyTracer() { heron_tracer_release(t); }
  };
  nb::class_<PyTracer>(m, "_Tracer")
      .def("__init__", [](PyTracer* self) {
        new (self) PyTracer();
        check(heron_tracer_begin(&self->t));
      })
      .def("add_input", [](PyTracer& self, PyTensor& t, const std::string& name) {
        check(heron_tracer_add_input(self.t, t.h, name.c_str()));
      })
      .def("name_constant", [](PyTracer& self, PyTensor& t, const std::string& name) {
        check(heron_tracer_name_constant(self.t, t.h, name.c_str()));
      })
      .def("finish", [](PyTracer& self, std::vector<PyTensor*> outs, std::vector<std::string> names, bool dynamic_batch) {
        std::vector<heron_tensor*> hs;
        std::vector<const char*> ns;
        for (auto* o : outs) hs.push_back(o->h);
        for (auto& n : names) ns.push_back(n.c_str());
        heron_model* p = nullptr;
        check(heron_tracer_finish(self.t, hs.data(), ns.data(), hs.size(), dynamic_batch, &p));
        return PyModel(p);
      })
      .def("close", [](PyTracer& self) {
        heron_tracer_release(self.t);
        self.t = nullptr;
      });
  struct PySession {
    heron_session* s = nullptr;
    ~PySession() { heron_session_release(s); }
  };
  nb::class_<PySession>(m, "_Session")
      .def("__init__", [](PySession* self, PyModel& model, const std::string& device, int32_t threads, bool profile, bool optimize,
                          bool arena, bool microbatch) {
        new (self) PySession();
        heron_session_options* o = nullptr;
        check(heron_session_options_create(&o));
        heron_status st = heron_session_options_set_device(o, device.c_str());
        if (st == HERON_OK) st = heron_session_options_set_threads(o, threads);
        if (st == HERON_OK) st = heron_session_options_set_profiling(o, profile);
        if (st == HERON_OK) st = heron_session_options_set_optimization(o, optimize ? 1 : 0);
        if (st == HERON_OK) st = heron_session_options_set_arena(o, arena);
        if (st == HERON_OK) st = heron_session_options_set_microbatch(o, microbatch);
        if (st == HERON_OK) st = heron_session_create(model.m, o, &self->s);
        heron_session_options_release(o);
        check(st);
      })
      .def("run", [](PySession& self, std::vector<std::string> names, std::vector<PyTensor*> ins, std::vector<std::string> outs) {
        std::vector<const char*> in_names, out_names;
        std::vector<heron_tensor*> hs;
        for (auto& n : names) in_names.push_back(n.c_str());
        for (auto* t : ins) hs.push_back(t->h);
        for (auto& n : outs) out_names.push_back(n.c_str());
        std::vector<heron_tensor*> res(outs.size(), nullptr);
        heron_status st;
        {
          nb::gil_scoped_release nogil;
          st = heron_session_run(self.s, in_names.data(), hs.data(), hs.size(), out_names.data(), out_names.size(), res.data());
        }
        check(st);
        nb::list l;
        for (auto* r : res) l.append(wrap(r));
        return l;
      })
      .def("graph_text", [](PySession& self) {
        char* s = nullptr;
        check(heron_session_graph_text(self.s, &s));
        std::string r(s);
        heron_free_string(s);
        return r;
      })
      .def("profile_json", [](PySession& self) {
        char* s = nullptr;
        check(heron_session_profile_json(self.s, &s));
        std::string r(s);
        heron_free_string(s);
        return r;
      })
      .def("chrome_trace", [](PySession& self) {
        char* s = nullptr;
        check(heron_session_chrome_trace(self.s, &s));
        std::string r(s);
        heron_free_string(s);
        return r;
      })
      .def("peak_memory", [](PySession& self) {
        int64_t last = 0, mx = 0;
        check(heron_session_peak_memory(self.s, &last, &mx));
        return mx;
      })
      .def("arena_bytes", [](PySession& self) {
        int64_t n = 0;
        check(heron_session_arena_bytes(self.s, &n));
        return n;
      });

  // Python would otherwise hash tensors by identity while __eq__ is elementwise: keep identity hashing.
  T.attr("__hash__") = nb::cpp_function([](nb::handle a) { return reinterpret_cast<intptr_t>(a.ptr()) >> 4; }, nb::is_method());

  // ---------------------------------------------------------------- heron.nn support (pynn) begin
  // Tensor(other): a new Python object holding another reference to other's handle, so that Python
  // subclasses (heron.nn.Parameter) can wrap an existing tensor. _set_handle(other): makes this object
  // hold other's handle instead of its own (Module.to/float/double keep their Parameter objects, like
  // PyTorch's `param.data = ...`).
  T.def("__init__", [](PyTensor* self, PyTensor& other) {
    check(heron_tensor_retain(other.h));
    new (self) PyTensor(other.h);
  }, "other"_a, "A new tensor object sharing `other`'s handle (for subclasses such as heron.nn.Parameter).");
  T.def("_set_handle", [](PyTensor& self, PyTensor& other) {
    if (self.h == other.h) return;
    check(heron_tensor_retain(other.h));
    heron_tensor_release(self.h);
    self.h = other.h;
  }, "other"_a);
  // ---------------------------------------------------------------- heron.nn support (pynn) end

  m.def("from_dlpack", [](nb::handle obj) -> nb::object {
    if (PyCapsule_CheckExact(obj.ptr())) return from_capsule(obj);
    if (as_tensor(obj)) return nb::borrow(obj);
    if (!PyObject_HasAttrString(obj.ptr(), "__dlpack__")) {
      PyErr_Format(PyExc_TypeError, "from_dlpack: %s supports neither __dlpack__ nor is a DLPack capsule", Py_TYPE(obj.ptr())->tp_name);
      throw nb::python_error();
    }
    nb::object cap;
    try {
      cap = obj.attr("__dlpack__")("max_version"_a = nb::make_tuple(1, 0));
    } catch (nb::python_error& e) {
      if (!e.matches(PyExc_TypeError)) throw;
      cap = obj.attr("__dlpack__")();
    }
    return from_capsule(cap);
  }, "obj"_a, "A tensor sharing memory with any object that supports DLPack (numpy, PyTorch, ...), or a DLPack capsule.");
  m.def("_from_buffer", &from_buffer, "obj"_a, "dtype"_a, "shape"_a, "device"_a = nb::none());

  m.def("live_handles", [] { return heron_live_handles(); }, "Live handles in the process (tensors and other objects).");
  m.def("set_num_threads", [](int32_t n) { check(heron_set_num_threads(n)); }, "n"_a, "Sets the intra-op thread pool size (also BLAS).");
  m.def("get_num_threads", [] { return heron_get_num_threads(); }, "The intra-op thread pool size.");
  m.def("manual_seed", [](uint64_t s) { heron_manual_seed(s); }, "seed"_a, "Reseeds the default random generator.");
  m.def("abi_version", [] { return heron_abi_version(); });
  m.def("version", [] { return std::string(heron_version_string()); });
  register_safetensors(m);  // safetensors (area optim): see the block above NB_MODULE
}
