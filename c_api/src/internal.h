// Plumbing shared by the C ABI's translation units that sit beside heron_c.cpp (io_c.cpp,
// runtime_c.cpp): turning exceptions into status codes and the thread-local error, argument
// checks, tensor handles, live-handle counting. Not installed; nothing here is exported.
#pragma once
#include <new>
#include <stdexcept>
#include <string>

#include "c_api/include/heron.h"
#include "core/tensor/tensor.h"
#include "core/util/error.h"
#include "core/util/refcount.h"

// Defined in heron_c.cpp: records an error in the thread-local state and returns `code`.
heron_status heron_internal_set_error(heron_status code, const char* msg, const char* op);

namespace heron {
namespace capi {

// Call inside a catch block: records the current exception as the thread's last error.
inline heron_status fail_current() {
  try {
    throw;
  } catch (const Error& ex) {
    return heron_internal_set_error(static_cast<heron_status>(ex.code()), ex.what(), ex.op().c_str());
  } catch (const std::bad_alloc&) {
    return heron_internal_set_error(HERON_ERR_OUT_OF_MEMORY, "out of memory", "");
  } catch (const std::exception& ex) {
    return heron_internal_set_error(HERON_ERR_RUNTIME, ex.what(), "");
  } catch (...) {
    return heron_internal_set_error(HERON_ERR_RUNTIME, "unknown error", "");
  }
}

[[noreturn]] inline void null_arg(const char* fn, const char* what) {
  throw Error(ErrorCode::NullHandle, str_cat(fn, ": ", what, " is NULL"));
}

// A new reference to the tensor behind handle t (checked: not NULL, still alive).
inline Tensor borrow_tensor(heron_tensor* t, const char* fn, const std::string& what) {
  if (!t) throw Error(ErrorCode::NullHandle, str_cat(fn, ": ", what, " is NULL"));
  auto* impl = reinterpret_cast<TensorImpl*>(t);
  if (impl->magic != TensorImpl::kLiveMagic)
    throw Error(ErrorCode::NullHandle, str_cat(fn, ": ", what, " is not a live tensor handle (already released?)"));
  return Tensor(Ref<TensorImpl>::borrow(impl));
}

// A handle owning one reference to t, for the caller.
inline heron_tensor* give(const Tensor& t) { return reinterpret_cast<heron_tensor*>(Ref<TensorImpl>(t.ref()).release()); }

// A member that counts its owner in heron_live_handles().
struct LiveCount {
  LiveCount() { live_handle_counter().fetch_add(1, std::memory_order_relaxed); }
  ~LiveCount() { live_handle_counter().fetch_sub(1, std::memory_order_relaxed); }
  LiveCount(const LiveCount&) = delete;
  LiveCount& operator=(const LiveCount&) = delete;
};

}  // namespace capi
}  // namespace heron

#define HERON_CAPI_TRY try {
#define HERON_CAPI_CATCH \
  }                      \
  catch (...) { return ::heron::capi::fail_current(); }
