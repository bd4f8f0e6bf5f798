// Typed attribute unpacking from the ABI's heron_attr values (used by generated code).
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

#include "core/ops/dispatcher.h"

struct heron_attr;

namespace heron {
namespace ops {
namespace detail {

void check_attr_count(const char* op, size_t given, size_t expected);
[[noreturn]] void missing_attr(const char* op, const char* attr);
void check_enum(const char* op, const char* attr, const std::string& v, std::initializer_list<const char*> allowed);
// Runs the registered implementation of op `id`; throws NotImplemented when there is none.
void run_impl(int id, OpCtx& ctx, const void* attrs);

int64_t get_int(const heron_attr& a, const char* op, const char* name);
double get_float(const heron_attr& a, const char* op, const char* name);
bool get_bool(const heron_attr& a, const char* op, const char* name);
Scalar get_scalar(const heron_attr& a, const char* op, const char* name);
std::string get_string(const heron_attr& a, const char* op, const char* name);
Dims get_ints(const heron_attr& a, const char* op, const char* name);
std::vector<double> get_floats(const heron_attr& a, const char* op, const char* name);
DType get_dtype(const heron_attr& a, const char* op, const char* name);
std::string get_device(const heron_attr& a, const char* op, const char* name);

}  // namespace detail
}  // namespace ops
}  // namespace heron
