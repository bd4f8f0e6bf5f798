// The dispatcher: op table (generated from ops.yaml), op implementations (registered by impl
// files), and kernels registered per (op, device, dtype).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"

struct heron_attr;  // from heron.h: the ABI's typed attribute value

namespace heron {

// An exact number attribute (int64 ints stay exact, floats stay double).
struct Scalar {
  enum Kind : int8_t { Int, Float, Bool } kind = Int;
  int64_t i = 0;
  double f = 0.0;
  Scalar() = default;
  Scalar(int v) : kind(Int), i(v), f(v) {}
  Scalar(int64_t v) : kind(Int), i(v), f(static_cast<double>(v)) {}
  Scalar(double v) : kind(Float), i(static_cast<int64_t>(v)), f(v) {}
  static Scalar from_bool(bool b) { Scalar s(static_cast<int64_t>(b)); s.kind = Bool; return s; }
  bool is_float() const { return kind == Float; }
  double to_double() const { return kind == Float ? f : static_cast<double>(i); }
  template <typename T> T to() const {
    if (kind == Float) return convert<T>(f);
    return convert<T>(i);
  }
  // The dtype a bare scalar of this kind takes (float32 / int64 / bool).
  DType natural_dtype() const { return kind == Float ? kDefaultFloat : kind == Bool ? DType::Bool : DType::Int64; }
  std::string str() const;
};

struct OpInfo;

// The outputs of one op call: up to two live inline (no heap allocation for most ops).
class OutputList {
 public:
  void push_back(Tensor t) {
    if (n_ < kInline) inline_[n_] = std::move(t);
    else more_.push_back(std::move(t));
    ++n_;
  }
  size_t size() const { return n_; }
  Tensor& operator[](size_t i) { return i < kInline ? inline_[i] : more_[i - kInline]; }
  Tensor& at(size_t i) {
    if (i >= n_) throw Error(ErrorCode::Runtime, str_cat("op produced ", n_, " outputs, output ", i, " requested"));
    return (*this)[i];
  }
  std::vector<Tensor> to_vector() {
    std::vector<Tensor> v;
    v.reserve(n_);
    for (size_t i = 0; i < n_; ++i) v.push_back(std::move((*this)[i]));
    return v;
  }
 private:
  static constexpr size_t kInline = 2;
  Tensor inline_[kInline];
  std::vector<Tensor> more_;
  size_t n_ = 0;
};

// What an op implementation sees: its inputs and the outputs it must produce.
class OpCtx {
 public:
  OpCtx(const OpInfo* op, const Tensor* inputs, size_t n) : op_(op), inputs_(inputs), n_inputs_(n) {}
  const OpInfo& op() const { return *op_; }
  const char* name() const;
  size_t num_inputs() const { return n_inputs_; }
  const Tensor& in(size_t i) const { return inputs_[i]; }
  const Tensor* inputs() const { return inputs_; }
  OutputList outputs;
  void set(Tensor t) { outputs.push_back(std::move(t)); }
  // Bit i set: the caller drops output i unread (a session, for an output no node reads and the
  // model does not return). An op may then skip computing it and set an undefined tensor.
  uint32_t unused_outputs = 0;
  bool output_unused(int i) const { return i < 32 && ((unused_outputs >> i) & 1u); }
 private:
  const OpInfo* op_;
  const Tensor* inputs_;
  size_t n_inputs_;
};

using ImplFn = void (*)(OpCtx&, const void* attrs);

enum class AttrType : int32_t { Int, Float, Bool, Scalar, String, Ints, Floats, DType, Device };

struct AttrInfo {
  const char* name;
  AttrType type;
  bool optional;
  bool has_default;
};

struct OpInfo {
  int id;
  const char* name;
  const char* category;
  int n_inputs;           // fixed inputs, not counting the variadic one
  bool variadic_input;    // last input is a list
  int n_outputs;          // fixed outputs (0 with variadic)
  bool variadic_output;
  bool inplace;
  const bool* input_optional;  // per fixed input (+1 for the variadic list elements)
  const AttrInfo* attrs;
  int n_attrs;
  // Generated: unpacks ABI attributes (defaults filled in, types checked) and calls the impl.
  void (*invoke)(OpCtx&, const heron_attr* attrs, size_t n_attrs);
  // In-place ops: true when every input may be written (schema `writes: all`, the fused optimizer
  // ops); otherwise only input 0 is. Storage versions are bumped for exactly those.
  bool writes_all_inputs;
};

// Generated table.
const OpInfo* find_op(const std::string& name);  // nullptr when unknown
const OpInfo* op_by_id(int id);
int num_ops();
const char* ops_schema_json();  // canonical JSON of ops.yaml (all ops)

// Implementations, registered by core/ops/impl/*.cpp.
void register_impl(int op_id, ImplFn fn);
ImplFn get_impl(int op_id);  // nullptr when not implemented

// Kernels: registered per (op, device name, dtype); looked up by (op, device type, dtype).
using KernelFn = void*;  // each op family casts to its own signature
void register_kernel(int op_id, const char* device, DType dtype, KernelFn fn);
KernelFn find_kernel(int op_id, Device device, DType dtype);  // nullptr when none
// Throws NotImplemented naming op, device and dtype.
KernelFn get_kernel(int op_id, Device device, DType dtype);

template <typename Fn>
Fn kernel(int op_id, Device device, DType dtype) { return reinterpret_cast<Fn>(get_kernel(op_id, device, dtype)); }

// The device all tensor inputs share; throws naming the op and both devices when they differ.
Device common_device(const char* op, const Tensor* ts, size_t n);
Device host_device();

struct ImplRegistrar { ImplRegistrar(int id, ImplFn fn) { register_impl(id, fn); } };
struct KernelRegistrar {
  KernelRegistrar(int id, const char* dev, DType dt, KernelFn fn) { register_kernel(id, dev, dt, fn); }
};

namespace ops {
namespace detail {
// Inside an op's implementation: whether autograd will record this call (so the impl keeps what
// the backward pass needs, e.g. the recurrent layers' reserve).
bool impl_is_recording();
}  // namespace detail
}  // namespace ops

}  // namespace heron

#define HERON_CONCAT_INNER(a, b) a##b
#define HERON_CONCAT(a, b) HERON_CONCAT_INNER(a, b)

// Defines the implementation of op NAME:  HERON_IMPL(add, AddAttrs) { ... uses ctx, attrs ... }
#define HERON_IMPL(NAME, ATTRS)                                                                \
  static void heron_impl_##NAME(::heron::OpCtx& ctx, const ::heron::ops::ATTRS& attrs);        \
  static void heron_impl_thunk_##NAME(::heron::OpCtx& ctx, const void* a) {                    \
    static const ::heron::ops::ATTRS kDefaults{};                                              \
    heron_impl_##NAME(ctx, a ? *static_cast<const ::heron::ops::ATTRS*>(a) : kDefaults);       \
  }                                                                                            \
  static ::heron::ImplRegistrar heron_impl_reg_##NAME(::heron::ops::OpId::NAME, &heron_impl_thunk_##NAME); \
  static void heron_impl_##NAME([[maybe_unused]] ::heron::OpCtx& ctx, [[maybe_unused]] const ::heron::ops::ATTRS& attrs)

#define HERON_REGISTER_KERNEL(OPID, DEVICE, DTYPE, FN) \
  static ::heron::KernelRegistrar HERON_CONCAT(heron_kreg_, __COUNTER__)(OPID, DEVICE, DTYPE, reinterpret_cast<::heron::KernelFn>(FN))
