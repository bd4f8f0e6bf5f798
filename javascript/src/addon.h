/* Heron's Node.js addon: the hand-written core shared with the generated wrappers
 * (abi_gen.c, written by bindings/langs/node.py). Handles travel to JavaScript as V8 externals
 * holding a small box from the addon's slabs (see addon.c); after a collection finds the external
 * dead, fast.cc releases the handle, so memory follows the JavaScript garbage collector, and
 * `release(h)` frees one early (later uses then raise). */
#ifndef HERON_NODE_ADDON_H_
#define HERON_NODE_ADDON_H_

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#include "heron.h"

/* One kind per opaque handle type of heron.h (abi_gen.c numbers them and gives their release
 * functions; heron_op is static and never released). */
typedef struct hn_kind {
  const char* name;            /* "heron_tensor" */
  void (*release)(void* handle); /* NULL: never released */
} hn_kind;
extern const hn_kind hn_kinds[];
extern const int hn_num_kinds;
int hn_kind_of(const char* type_name);

typedef struct hn_box {
  void* ptr;
  int kind;
  int64_t ext; /* bytes reported to V8 as external memory (tensors of >= HN_EXT_MIN_BYTES), 0 otherwise */
  void* weak;  /* the v8::Global (weak) on the box's JavaScript value (fast.cc) */
} hn_box;

/* the kinds of heron_tensor and heron_op (hn_kind_of, set at load) */
extern int hn_tensor_kind, hn_op_kind;

/* The addon's box slabs (addon.c; JavaScript thread only). hn_box_at: the live box at p, or NULL
 * when p is not one of ours. */
hn_box* hn_box_alloc(void);
void hn_box_free(hn_box* b);
hn_box* hn_box_at(const void* p);

/* fast.cc (V8 API): the External for box b, tied to the collector by a weak handle whose callback
 * releases b's handle and frees b; and the registration of the V8-API functions on `exports`. */
napi_value hn_v8_external(napi_env env, hn_box* b);
/* The live box in v (one of our Externals), or NULL for any other value. */
hn_box* hn_v8_box_of(napi_value v);
int hn_v8_register(napi_env env, napi_value exports); /* 0: threw (e.g. a second JavaScript thread) */

/* Tensors at least this large are reported to V8 (napi_adjust_external_memory) while a JavaScript
 * object holds them, so the garbage collector runs when native memory grows, not only when the
 * JavaScript heap does. Smaller ones are not worth the call. */
#define HN_EXT_MIN_BYTES 16384

/* Wraps a new handle (ownership moves to JavaScript). NULL wraps as null. */
napi_value hn_wrap(napi_env env, void* ptr, int kind);
/* The handle in `v` of kind `kind`; null/undefined give NULL when `nullable`. On a wrong type or a
 * released handle throws a TypeError and sets *ok = 0. */
void* hn_unwrap(napi_env env, napi_value v, int kind, int nullable, int* ok);
/* Throws the ABI's last error as a JavaScript error and returns 0 when st != HERON_OK. */
int hn_check(napi_env env, heron_status st);
/* Throws a TypeError naming the function and argument. Returns NULL (for `return hn_type_error(...)`). */
napi_value hn_type_error(napi_env env, const char* fn, const char* what);

/* Argument readers: each returns 0 after throwing a TypeError that names fn and the argument. */
int hn_get_i64(napi_env env, napi_value v, const char* fn, const char* arg, int64_t* out);
int hn_get_u64(napi_env env, napi_value v, const char* fn, const char* arg, uint64_t* out);
int hn_get_f64(napi_env env, napi_value v, const char* fn, const char* arg, double* out);
/* A UTF-8 copy (free with free()); null/undefined give NULL when nullable. */
int hn_get_str(napi_env env, napi_value v, const char* fn, const char* arg, int nullable, char** out);
/* An array of handles of one kind (entries may be null when nullable); *out is malloc'ed (free()). */
int hn_get_handles(napi_env env, napi_value v, const char* fn, const char* arg, int kind, int nullable_entries, void*** out,
                   size_t* n);
int hn_get_i64s(napi_env env, napi_value v, const char* fn, const char* arg, int64_t** out, size_t* n);
napi_value hn_num(napi_env env, double v);
napi_value hn_str(napi_env env, const char* s);
napi_value hn_undefined(napi_env env);

/* Registers the generated wrappers on `exports` (abi_gen.c). */
void hn_register_generated(napi_env env, napi_value exports);

#endif
