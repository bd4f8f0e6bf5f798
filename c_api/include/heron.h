/**
 * @file heron.h
 * @brief Heron's C ABI: the only door into the engine.
 *
 * Rules (see docs/c_api.md):
 *  - Every fallible call returns a ::heron_status (0 = ::HERON_OK) and writes results through
 *    out-parameters, which are left untouched on failure. The thread-local last error
 *    (heron_last_error_code(), heron_last_error_message(), heron_last_error_op()) explains it.
 *  - No C++ exception, abort or crash crosses this boundary.
 *  - A handle returned to the caller is owned by the caller: release it with its *_release
 *    function (which accepts NULL). heron_live_handles() counts live handles, for leak tests.
 *  - Append-only within a major version. Check heron_abi_version() against HERON_ABI_VERSION at
 *    load time (heron_abi_check() does it and explains a mismatch).
 */
#ifndef HERON_H_
#define HERON_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(HERON_BUILDING)
#    define HERON_API __declspec(dllexport)
#  else
#    define HERON_API __declspec(dllimport)
#  endif
#else
#  define HERON_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================= versions */

/** Major version of the ABI this header describes; a library with another major is incompatible. */
#define HERON_ABI_VERSION_MAJOR 1
/** Minor version: grows when symbols are appended. A library must have at least this minor. */
#define HERON_ABI_VERSION_MINOR 6  /* 1.1: autograd, named tensor maps and safetensors; 1.2: models, sessions, tracing;
                                      1.3: session graph optimisation switch and graph text, arena switch and size;
                                      1.4: distributed process groups and collectives (heron_dist_*);
                                      1.5: post-accumulate-grad hooks; 1.6: session micro-batching switch */
/** Packed ABI version of this header: (major << 16) | minor. */
#define HERON_ABI_VERSION ((HERON_ABI_VERSION_MAJOR << 16) | HERON_ABI_VERSION_MINOR)

/** Status code: 0 on success, one of HERON_ERR_* on failure. */
typedef int32_t heron_status;

/** Success. */
#define HERON_OK 0
/** A value is wrong: a shape, an axis size, an attribute value. */
#define HERON_ERR_INVALID_ARGUMENT 1
/** A dtype or the kind of an argument is wrong. */
#define HERON_ERR_TYPE 2
/** An index or axis is out of range. */
#define HERON_ERR_INDEX 3
/** A NULL handle or pointer where one is required. */
#define HERON_ERR_NULL_HANDLE 4
/** An unknown name: op, device, attribute. */
#define HERON_ERR_NOT_FOUND 5
/** No kernel for this op, device and dtype. */
#define HERON_ERR_NOT_IMPLEMENTED 6
/** Memory could not be allocated. */
#define HERON_ERR_OUT_OF_MEMORY 7
/** A caller-provided array is too small; the needed size is reported. */
#define HERON_ERR_BUFFER_TOO_SMALL 8
/** Any other failure. */
#define HERON_ERR_RUNTIME 9
/** The header and the library disagree on the ABI version. */
#define HERON_ERR_ABI_MISMATCH 10
/** A device runtime failed. */
#define HERON_ERR_DEVICE 11

/** The packed ABI version of the loaded library: (major << 16) | minor. */
HERON_API uint32_t heron_abi_version(void);

/** The library's release version, e.g. "0.1.0". Never NULL. */
HERON_API const char* heron_version_string(void);

/**
 * Checks that the loaded library can serve a caller compiled against @p header_version
 * (pass HERON_ABI_VERSION). Fails with HERON_ERR_ABI_MISMATCH and a readable message when the
 * majors differ or the header is newer than the library.
 */
HERON_API heron_status heron_abi_check(uint32_t header_version);

/* ======================================================================= errors */

/** The status of the last failed call on this thread (HERON_OK if none since heron_clear_error()). */
HERON_API heron_status heron_last_error_code(void);
/** The message of the last failure on this thread; "" if none. Valid until the next failing call on this thread. */
HERON_API const char* heron_last_error_message(void);
/** The op the last failure on this thread happened in; "" if none or not in an op. */
HERON_API const char* heron_last_error_op(void);
/** Clears this thread's last error. */
HERON_API void heron_clear_error(void);

/* ======================================================================= dtypes */

#define HERON_FLOAT32 0  /**< IEEE 754 binary32. */
#define HERON_FLOAT64 1  /**< IEEE 754 binary64. */
#define HERON_FLOAT16 2  /**< IEEE 754 binary16. */
#define HERON_BFLOAT16 3 /**< bfloat16 (8-bit exponent, 7-bit mantissa). */
#define HERON_INT8 4     /**< Signed 8-bit integer. */
#define HERON_UINT8 5    /**< Unsigned 8-bit integer. */
#define HERON_INT32 6    /**< Signed 32-bit integer. */
#define HERON_INT64 7    /**< Signed 64-bit integer. */
#define HERON_BOOL 8     /**< Boolean, one byte (0 or 1). */
/** Number of dtypes. */
#define HERON_NUM_DTYPES 9

/** The name of a dtype ("float32", ...), or NULL for an unknown code. */
HERON_API const char* heron_dtype_name(int32_t dtype);
/** Size in bytes of one element of @p dtype, or 0 for an unknown code. */
HERON_API size_t heron_dtype_size(int32_t dtype);
/** The dtype code for a name ("float32", "int64", ...). */
HERON_API heron_status heron_dtype_from_name(const char* name, int32_t* out);
/** The dtype two dtypes promote to (the same table as numpy and PyTorch). */
HERON_API heron_status heron_promote_types(int32_t a, int32_t b, int32_t* out);

/* ======================================================================= handles */

/** An n-dimensional array: storage, dtype, shape, strides, offset. Opaque; refcounted. */
typedef struct heron_tensor heron_tensor;
/** An op of the schema, resolved once by name. Static: never released. */
typedef struct heron_op heron_op;

/** The number of live handles (tensors and other refcounted objects) in the process. */
HERON_API int64_t heron_live_handles(void);
/** Adds a reference to @p t. */
HERON_API heron_status heron_tensor_retain(heron_tensor* t);
/** Drops a reference to @p t (NULL is allowed and ignored). */
HERON_API void heron_tensor_release(heron_tensor* t);

/* ======================================================================= devices */

/** Number of device kinds compiled into this library ("cpu" always; "cuda" when built with it). */
HERON_API int32_t heron_device_type_count(void);
/** The name of device kind @p i (0 <= i < heron_device_type_count()). The string is static. */
HERON_API heron_status heron_device_type_name(int32_t i, const char** out);
/** How many devices of kind @p name are usable now (0 when, e.g., no GPU is present). */
HERON_API heron_status heron_device_count(const char* name, int32_t* out);
/** Waits until all work queued on @p device ("cuda:0") has finished. */
HERON_API heron_status heron_device_synchronize(const char* device);

/* ======================================================================= attributes */

#define HERON_ATTR_DEFAULT 0 /**< Use the schema's default (only for attributes that have one). */
#define HERON_ATTR_NONE 1    /**< None/null, for optional attributes. */
#define HERON_ATTR_INT 2     /**< Integer in field i. */
#define HERON_ATTR_FLOAT 3   /**< Double in field f. */
#define HERON_ATTR_BOOL 4    /**< Boolean in field i (0 or 1). */
#define HERON_ATTR_STRING 5  /**< UTF-8 string in p; length in i, or -1 for NUL-terminated. */
#define HERON_ATTR_INTS 6    /**< const int64_t* in p; count in i. */
#define HERON_ATTR_FLOATS 7  /**< const double* in p; count in i. */
#define HERON_ATTR_DTYPE 8   /**< dtype code in i. */

/**
 * A typed attribute value, passed by pointer in arrays to heron_op_call() in schema order.
 * 32 bytes, no unions, so every FFI can lay it out. Missing trailing attributes take defaults.
 */
typedef struct heron_attr {
  int32_t kind;     /**< HERON_ATTR_*. */
  int32_t reserved; /**< Must be 0. */
  int64_t i;        /**< INT, BOOL, DTYPE value; element count of INTS/FLOATS; length of STRING. */
  double f;         /**< FLOAT value. */
  const void* p;    /**< INTS, FLOATS, STRING data (borrowed for the duration of the call). */
} heron_attr;

/* ======================================================================= tensors */

/**
 * Creates a contiguous tensor of @p dtype and @p shape on @p device (NULL = host) by copying
 * @p nbytes bytes of row-major data from host memory. @p nbytes must equal numel * itemsize.
 */
HERON_API heron_status heron_tensor_from_host(const void* data, size_t nbytes, int32_t dtype, const int64_t* shape,
                                              int32_t ndim, const char* device, heron_tensor** out);

/**
 * Wraps external host memory without copying. @p strides are in elements (NULL = contiguous) and
 * may be zero or negative; every element reached must lie inside [data, data + nbytes), and
 * @p data must be aligned to the dtype's size. When the last view dies, @p deleter(@p ctx) is
 * called (deleter may be NULL). On failure the deleter is not called.
 */
HERON_API heron_status heron_tensor_from_external(void* data, size_t nbytes, int32_t dtype, const int64_t* shape,
                                                  const int64_t* strides, int32_t ndim, void (*deleter)(void* ctx),
                                                  void* ctx, heron_tensor** out);

/**
 * Creates a 0-d tensor from a scalar attribute value (INT, FLOAT or BOOL). With @p dtype = -1 the
 * tensor is a "wrapped number": it takes part in type promotion as a Python scalar does
 * (int tensor + 2.5 -> float32, float16 tensor + 2.0 -> float16). Otherwise it has @p dtype.
 */
HERON_API heron_status heron_tensor_from_scalar(const heron_attr* value, int32_t dtype, heron_tensor** out);

/** Number of dimensions. */
HERON_API heron_status heron_tensor_ndim(const heron_tensor* t, int32_t* out);
/** Writes the shape (ndim entries) into @p out, which holds @p capacity entries. */
HERON_API heron_status heron_tensor_shape(const heron_tensor* t, int64_t* out, int32_t capacity);
/** Writes the strides in elements (ndim entries) into @p out, which holds @p capacity entries. */
HERON_API heron_status heron_tensor_strides(const heron_tensor* t, int64_t* out, int32_t capacity);
/** Offset of the first element in its storage, in elements. */
HERON_API heron_status heron_tensor_offset(const heron_tensor* t, int64_t* out);
/** Number of elements. */
HERON_API heron_status heron_tensor_numel(const heron_tensor* t, int64_t* out);
/** The dtype code. */
HERON_API heron_status heron_tensor_dtype(const heron_tensor* t, int32_t* out);
/** The device kind's name (static string) and the device index. */
HERON_API heron_status heron_tensor_device(const heron_tensor* t, const char** type_name, int32_t* index);
/** 1 when the elements are laid out row-major without gaps, else 0. */
HERON_API heron_status heron_tensor_is_contiguous(const heron_tensor* t, int32_t* out);
/** 1 when @p a and @p b share storage (views of one another), else 0. */
HERON_API heron_status heron_tensor_shares_storage(const heron_tensor* a, const heron_tensor* b, int32_t* out);
/** Address of the first element (a device address for device tensors). Valid while @p t lives. */
HERON_API heron_status heron_tensor_data_ptr(const heron_tensor* t, void** out);
/**
 * Copies the elements in row-major order to host memory @p dst of @p nbytes bytes, which must be
 * exactly numel * itemsize. Works for any strides and any device.
 */
HERON_API heron_status heron_tensor_to_host(const heron_tensor* t, void* dst, size_t nbytes);
/** The value of a one-element tensor as a double. */
HERON_API heron_status heron_tensor_item_double(const heron_tensor* t, double* out);
/** The value of a one-element tensor as an int64 (floats truncate toward zero). */
HERON_API heron_status heron_tensor_item_int64(const heron_tensor* t, int64_t* out);

/* ======================================================================= DLPack (v1.x, versioned and legacy) */

/** DLPack device (layout-compatible with DLDevice). */
typedef struct heron_DLDevice { int32_t device_type; int32_t device_id; } heron_DLDevice;
/** DLPack dtype (layout-compatible with DLDataType). */
typedef struct heron_DLDataType { uint8_t code; uint8_t bits; uint16_t lanes; } heron_DLDataType;
/** DLPack tensor (layout-compatible with DLTensor). */
typedef struct heron_DLTensor {
  void* data;
  heron_DLDevice device;
  int32_t ndim;
  heron_DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
} heron_DLTensor;
/** Legacy DLPack managed tensor (layout-compatible with DLManagedTensor). */
typedef struct heron_DLManagedTensor {
  heron_DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(struct heron_DLManagedTensor* self);
} heron_DLManagedTensor;
/** DLPack version pair (layout-compatible with DLPackVersion). */
typedef struct heron_DLPackVersion { uint32_t major; uint32_t minor; } heron_DLPackVersion;
/** Versioned DLPack managed tensor (layout-compatible with DLManagedTensorVersioned, DLPack >= 1.0). */
typedef struct heron_DLManagedTensorVersioned {
  heron_DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(struct heron_DLManagedTensorVersioned* self);
  uint64_t flags;
  heron_DLTensor dl_tensor;
} heron_DLManagedTensorVersioned;
/** DLPack flag: the consumer must not write. */
#define HERON_DLPACK_FLAG_READ_ONLY 1
/** DLPack flag: the tensor is a copy. */
#define HERON_DLPACK_FLAG_IS_COPIED 2

/** Exports @p t as a versioned DLPack tensor (v1.0) that keeps @p t's storage alive until its deleter runs. */
HERON_API heron_status heron_tensor_to_dlpack(heron_tensor* t, heron_DLManagedTensorVersioned** out);
/** Exports @p t as a legacy (unversioned) DLPack tensor. */
HERON_API heron_status heron_tensor_to_dlpack_legacy(heron_tensor* t, heron_DLManagedTensor** out);
/**
 * Imports a versioned DLPack tensor without copying. On success Heron owns @p m and calls its
 * deleter when the last view dies; on failure the caller still owns it. Major versions other
 * than 1 are refused.
 */
HERON_API heron_status heron_tensor_from_dlpack(heron_DLManagedTensorVersioned* m, heron_tensor** out);
/** Imports a legacy DLPack tensor without copying; ownership as heron_tensor_from_dlpack(). */
HERON_API heron_status heron_tensor_from_dlpack_legacy(heron_DLManagedTensor* m, heron_tensor** out);

/* ======================================================================= ops */

/** Finds an op of the schema by name ("add", "conv2d"). The handle is static. */
HERON_API heron_status heron_op_find(const char* name, const heron_op** out);
/** Number of ops in the schema. */
HERON_API int32_t heron_op_count(void);
/** The op at position @p i of the schema (0 <= i < heron_op_count()). */
HERON_API heron_status heron_op_at(int32_t i, const heron_op** out);
/** The op's name (static string). */
HERON_API heron_status heron_op_name(const heron_op* op, const char** out);
/** The op's schema entry as canonical JSON (static string). */
HERON_API heron_status heron_op_schema_json(const heron_op* op, const char** out);
/** The whole op schema as canonical JSON (static string; {"version":..,"ops":[..]}). Never NULL. */
HERON_API const char* heron_ops_schema_json(void);

/**
 * Runs @p op. @p inputs follow the schema's order (a variadic input takes all the remaining
 * entries; an optional input may be NULL); @p attrs follow the schema's attribute order and may
 * stop early (the rest take their defaults). New output handles (owned by the caller) are written
 * to @p outputs, which holds @p capacity entries; their count goes to @p n_outputs. When
 * @p capacity is too small, HERON_ERR_BUFFER_TOO_SMALL is returned, @p n_outputs holds the count
 * needed and no handle is written. In-place ops (names ending in '_') write into input 0 and
 * return a new handle to it.
 */
HERON_API heron_status heron_op_call(const heron_op* op, heron_tensor* const* inputs, size_t n_inputs,
                                     const heron_attr* attrs, size_t n_attrs, heron_tensor** outputs,
                                     size_t capacity, size_t* n_outputs);

/* ======================================================================= threads and random numbers */

/** Sets the size of the intra-op thread pool (process-wide; also the BLAS thread count). n >= 1. */
HERON_API heron_status heron_set_num_threads(int32_t n);
/** The size of the intra-op thread pool. */
HERON_API int32_t heron_get_num_threads(void);
/** Reseeds the process-wide default random generator (Philox4x32-10). Ops with a `seed` attribute bypass it. */
HERON_API void heron_manual_seed(uint64_t seed);

/* ======================================================================= autograd
 * Reverse-mode autograd is recorded by the core as ops run (see docs/guide/autograd.md). Grad mode
 * and anomaly mode are per thread (a new thread starts with grad mode on, anomaly mode off).
 * Gradients accumulate into leaf tensors' .grad; a tensor's grad is read with heron_tensor_grad. */

/** Marks a leaf tensor as requiring gradients (floating-point dtypes only), or clears the mark. */
HERON_API heron_status heron_tensor_set_requires_grad(heron_tensor* t, int32_t requires_grad);
/** 1 when the tensor requires gradients (a marked leaf, or computed from one with grad mode on). */
HERON_API heron_status heron_tensor_requires_grad(const heron_tensor* t, int32_t* out);
/** 1 for leaves (tensors not produced by a recorded op). */
HERON_API heron_status heron_tensor_is_leaf(const heron_tensor* t, int32_t* out);
/** A new handle to the accumulated gradient, or *out = NULL when there is none. */
HERON_API heron_status heron_tensor_grad(const heron_tensor* t, heron_tensor** out);
/** Replaces the gradient (same shape, dtype, device); grad = NULL clears it (PyTorch's set_to_none). */
HERON_API heron_status heron_tensor_set_grad(heron_tensor* t, const heron_tensor* grad);
/** Fills an existing gradient with zeros in place (no-op when there is none). */
HERON_API heron_status heron_tensor_zero_grad(heron_tensor* t);
/** Keeps the gradient of a non-leaf tensor in its .grad during backward. */
HERON_API heron_status heron_tensor_retain_grad(heron_tensor* t);
/** A post-accumulate-grad hook: called during heron_backward, on the thread running it, right after
 * this backward's gradient has been accumulated into leaf's grad (once per backward, when every
 * gradient flowing into the leaf has arrived; not for leaves that received none, nor for
 * heron_autograd_grad). `leaf` is borrowed (valid during the call; heron_tensor_retain to keep it).
 * Return 0, or non-zero to abort the backward pass: heron_backward then fails with HERON_ERR_RUNTIME
 * and the message "post-accumulate-grad hook failed: <message>" when the hook filled `message`
 * (a NUL-terminated buffer of message_size bytes), else a generic one. (ABI 1.5) */
typedef int32_t (*heron_grad_hook_fn)(void* user, heron_tensor* leaf, char* message, size_t message_size);
/** Releases a hook's `user` pointer (may be NULL): called once, when the hook is removed or the leaf is freed. */
typedef void (*heron_free_fn)(void* user);
/** Registers a post-accumulate-grad hook on a leaf tensor that requires grad; hooks run in registration
 * order. *out_id identifies it for heron_tensor_remove_post_accumulate_grad_hook. On error free_user is
 * not called. (ABI 1.5) */
HERON_API heron_status heron_tensor_register_post_accumulate_grad_hook(heron_tensor* t, heron_grad_hook_fn fn,
                                                                       void* user, heron_free_fn free_user,
                                                                       int64_t* out_id);
/** Removes a hook; *removed (may be NULL) is 1 when it was registered on t, 0 otherwise. (ABI 1.5) */
HERON_API heron_status heron_tensor_remove_post_accumulate_grad_hook(heron_tensor* t, int64_t id, int32_t* removed);
/** A new tensor sharing t's data, outside the graph (requires_grad 0). */
HERON_API heron_status heron_tensor_detach(const heron_tensor* t, heron_tensor** out);
/** Name of the node that produced t ("MulBackward", ...), or *out = NULL for leaves. Valid while t lives. */
HERON_API heron_status heron_tensor_grad_fn_name(const heron_tensor* t, const char** out);
/** Backpropagates from n root tensors. grads may be NULL, and any entry may be NULL for a scalar root
 *  (gradient 1). Without retain_graph the graph's saved tensors are freed. */
HERON_API heron_status heron_backward(heron_tensor* const* tensors, heron_tensor* const* grads, size_t n,
                                      int32_t retain_graph);
/** Gradients of the roots w.r.t. n_inputs tensors, returned as new handles in out (n_inputs entries)
 *  without touching any .grad. An unused input is an error unless allow_unused (then its entry is NULL). */
HERON_API heron_status heron_autograd_grad(heron_tensor* const* roots, heron_tensor* const* grads, size_t n_roots,
                                           heron_tensor* const* inputs, size_t n_inputs, int32_t retain_graph,
                                           int32_t allow_unused, heron_tensor** out);
/** Turns grad mode on or off for the calling thread; *previous (may be NULL) receives the old mode. */
HERON_API heron_status heron_set_grad_enabled(int32_t enabled, int32_t* previous);
/** 1 when the calling thread records ops for autograd. */
HERON_API int32_t heron_is_grad_enabled(void);
/** Anomaly mode for the calling thread: ops that first produce nan/inf, and backward nodes that return
 *  nan/inf gradients, fail with an error naming the op. */
HERON_API heron_status heron_set_anomaly_enabled(int32_t enabled, int32_t* previous);
/** 1 when anomaly mode is on for the calling thread. */
HERON_API int32_t heron_is_anomaly_enabled(void);
/* ---- named tensor maps and safetensors ---- */

/**
 * A map from names (UTF-8 strings) to tensors, kept sorted by name, with string metadata: what a
 * safetensors file holds. Owned by the caller (release with heron_tensor_map_release()); counted by
 * heron_live_handles() like tensor handles. It holds its own references to its tensors. Not safe
 * for concurrent mutation from several threads.
 */
typedef struct heron_tensor_map heron_tensor_map;

/** Creates an empty map. */
HERON_API heron_status heron_tensor_map_create(heron_tensor_map** out);
/** Releases @p map and its references to its tensors. NULL and already-released maps are ignored. */
HERON_API void heron_tensor_map_release(heron_tensor_map* map);
/** Number of tensors in @p map. */
HERON_API heron_status heron_tensor_map_size(const heron_tensor_map* map, size_t* out);
/**
 * The name at position @p i (0 <= i < size; positions follow name order). The string is borrowed:
 * valid until @p map is modified or released.
 */
HERON_API heron_status heron_tensor_map_key(const heron_tensor_map* map, size_t i, const char** out);
/** The tensor at position @p i, as a new handle owned by the caller. */
HERON_API heron_status heron_tensor_map_tensor(const heron_tensor_map* map, size_t i, heron_tensor** out);
/** The tensor named @p name, as a new handle owned by the caller; HERON_ERR_NOT_FOUND when absent. */
HERON_API heron_status heron_tensor_map_get(const heron_tensor_map* map, const char* name, heron_tensor** out);
/** Inserts or replaces @p name -> @p t. The map retains @p t; the caller keeps its own handle. */
HERON_API heron_status heron_tensor_map_set(heron_tensor_map* map, const char* name, heron_tensor* t);
/**
 * The map's metadata as a JSON object of strings ("{}" when none), e.g. the "__metadata__" of a
 * loaded safetensors file. Borrowed: valid until @p map is modified or released.
 */
HERON_API heron_status heron_tensor_map_metadata_json(const heron_tensor_map* map, const char** out);
/**
 * Replaces the map's metadata with @p metadata_json, a JSON object of strings (NULL clears it).
 * heron_safetensors_save_*() write it when they are given no metadata of their own.
 */
HERON_API heron_status heron_tensor_map_set_metadata_json(heron_tensor_map* map, const char* metadata_json);

/**
 * Loads a safetensors file into a new map (owned by the caller). The file is memory-mapped
 * (privately: writes to the tensors never reach the file) and tensors wrap the mapping without
 * copying where the data is aligned for their dtype; the mapping lives as long as any tensor uses
 * it. Everything is verified (header length, JSON, dtypes, shapes against offsets, offsets in range,
 * not overlapping and covering the data, unique names): a bad file fails with
 * HERON_ERR_INVALID_ARGUMENT and a message naming the file and the tensor (HERON_ERR_RUNTIME for
 * I/O errors).
 */
HERON_API heron_status heron_safetensors_load_file(const char* path, heron_tensor_map** out);
/** Loads safetensors bytes (copied: @p data may be freed afterwards) into a new map; checks as above. */
HERON_API heron_status heron_safetensors_load_buffer(const void* data, size_t len, heron_tensor_map** out);
/**
 * Writes @p map as a safetensors file at @p path. Tensors are made contiguous (and moved to the
 * host); the data follows the reference implementation's order (descending dtype alignment, then
 * name) and the header is padded with spaces to a multiple of 8 bytes. @p metadata_json, a JSON
 * object of strings, is written as "__metadata__"; NULL writes the map's own metadata (none when
 * it has none).
 */
HERON_API heron_status heron_safetensors_save_file(const char* path, const heron_tensor_map* map, const char* metadata_json);
/**
 * Serializes @p map like heron_safetensors_save_file() into a new buffer: *@p out_bytes (free it
 * with heron_safetensors_free_buffer()) of *@p out_len bytes.
 */
HERON_API heron_status heron_safetensors_save_buffer(const heron_tensor_map* map, const char* metadata_json, uint8_t** out_bytes,
                                                     size_t* out_len);
/** Frees a buffer from heron_safetensors_save_buffer(). NULL is ignored. */
HERON_API void heron_safetensors_free_buffer(uint8_t* bytes);

/* ======================================================================= models and sessions (deployment)
 * A model is a loaded .heron file: a graph (named inputs and outputs, nodes, weights). A session runs
 * a model on a device; heron_session_run() is safe from several threads at once on one session. No
 * Python is involved (see docs/guide/deploy.md). Models, options and sessions are counted by
 * heron_live_handles(); a session keeps what it needs of its model, so the model may be released first. */

/** A loaded model. Opaque; owned by the caller. */
typedef struct heron_model heron_model;
/** Options for heron_session_create(). Opaque; owned by the caller. */
typedef struct heron_session_options heron_session_options;
/** A model prepared to run on a device. Opaque; owned by the caller. */
typedef struct heron_session heron_session;

/**
 * Loads a .heron model file (memory-mapped: the weights are used in place). The file is verified
 * (structure, format version, ops, attributes, shapes, offsets); a bad file fails with
 * HERON_ERR_INVALID_ARGUMENT and a message naming what is wrong and where.
 */
HERON_API heron_status heron_model_load_file(const char* path, heron_model** out);
/** Loads a model from @p len bytes of .heron data (copied: @p data may be freed afterwards); checks as above. */
HERON_API heron_status heron_model_load_buffer(const void* data, size_t len, heron_model** out);
/** Writes @p model as a .heron file at @p path. */
HERON_API heron_status heron_model_save_file(const heron_model* model, const char* path);
/** Releases @p model (NULL and already-released handles are ignored). */
HERON_API void heron_model_release(heron_model* model);
/** Number of model inputs. */
HERON_API heron_status heron_model_num_inputs(const heron_model* model, size_t* out);
/** Number of model outputs. */
HERON_API heron_status heron_model_num_outputs(const heron_model* model, size_t* out);
/**
 * Describes input @p i: its name, dtype code, rank and shape (-1 for a symbolic dim such as the
 * batch). Any out-pointer may be NULL. The name and shape are borrowed: valid while @p model lives.
 */
HERON_API heron_status heron_model_input_info(const heron_model* model, size_t i, const char** name, int32_t* dtype,
                                              int32_t* ndim, const int64_t** shape);
/** Describes output @p i, like heron_model_input_info(). */
HERON_API heron_status heron_model_output_info(const heron_model* model, size_t i, const char** name, int32_t* dtype,
                                               int32_t* ndim, const int64_t** shape);

/** Creates session options with the defaults: device "cpu", threads 0 (keep the pool), no profiling. */
HERON_API heron_status heron_session_options_create(heron_session_options** out);
/** Releases @p options (NULL is ignored). */
HERON_API void heron_session_options_release(heron_session_options* options);
/** The device to run on: "cpu", "cuda", "cuda:1". Checked by heron_session_create(). */
HERON_API heron_status heron_session_options_set_device(heron_session_options* options, const char* device);
/**
 * Intra-op threads (>= 0; 0 keeps the current pool). The pool is process-wide: a session created
 * with threads > 0 sets it, as heron_set_num_threads() does.
 */
HERON_API heron_status heron_session_options_set_threads(heron_session_options* options, int32_t threads);
/** Turns per-node profiling of every run on (1) or off (0). */
HERON_API heron_status heron_session_options_set_profiling(heron_session_options* options, int32_t enable);
/**
 * Turns the memory plan on (1, the default) or off (0): with it, the intermediates of a run live in
 * one arena planned per input-shape signature (buffers whose lifetimes do not overlap share bytes);
 * without it, each is allocated by its op and freed after its last use. The arena is used on the
 * CPU (other devices allocate per op for now). The environment variable HERON_ARENA=0, read when
 * the session is created, turns it off for every session. (ABI 1.3)
 */
HERON_API heron_status heron_session_options_set_arena(heron_session_options* options, int32_t enable);
/**
 * Turns micro-batching on (1, the default) or off (0): with a batch of more than one row, the start
 * of the graph where per-row values are large (convolutions, pooling and elementwise ops on at
 * least 512 KiB per row) runs one row at a time, rows in parallel lanes of one thread each, so a
 * row's intermediates stay in cache; the rest runs on the whole batch. Host devices only. The
 * environment variable HERON_MICROBATCH=0, read when the session is created, turns it off for
 * every session. (ABI 1.6)
 */
HERON_API heron_status heron_session_options_set_microbatch(heron_session_options* options, int32_t enable);

/**
 * Creates a session: checks the graph, resolves its ops, moves the weights to the device and plans
 * when each intermediate is freed (the first run of each input-shape signature also plans an arena
 * for the intermediates, see heron_session_options_set_arena()). @p options may be NULL (defaults).
 */
HERON_API heron_status heron_session_create(const heron_model* model, const heron_session_options* options, heron_session** out);
/** Releases @p session (NULL is ignored). Must not race with a heron_session_run() on it. */
HERON_API void heron_session_release(heron_session* session);
/**
 * Runs the model. @p inputs[k] is bound to the model input named @p input_names[k]; every model
 * input must be given once, with the model's dtype and a shape that matches (symbolic dims match
 * any size); inputs on another device are copied. @p output_names lists the outputs wanted
 * (NULL = all @p n_outputs model outputs in model order, and then @p n_outputs must equal their
 * count); new handles, owned by the caller, are written to @p outputs (@p n_outputs entries; with
 * @p n_outputs = 0 nothing runs). Wrong
 * names, dtypes or shapes fail with a message listing what the model expects. Thread-safe.
 */
HERON_API heron_status heron_session_run(heron_session* session, const char* const* input_names, heron_tensor* const* inputs,
                                         size_t n_inputs, const char* const* output_names, size_t n_outputs,
                                         heron_tensor** outputs);
/**
 * Peak bytes of live intermediates (tensors made by the model's nodes, each storage counted once):
 * of the last finished run (@p last) and the largest over all runs (@p max). Either may be NULL.
 */
HERON_API heron_status heron_session_peak_memory(const heron_session* session, int64_t* last, int64_t* max);
/**
 * Size in bytes of the arena of the last run that used one (0 when none has: the arena is off, or
 * only runs that planned a new input-shape signature have finished). (ABI 1.3)
 */
HERON_API heron_status heron_session_arena_bytes(const heron_session* session, int64_t* out);
/**
 * The profile of the runs so far (profiling on) as JSON: {"format": "heron-profile", "version": 1,
 * "session": {...}, "runs": [...]} (see docs/guide/deploy.md). *@p out is a new NUL-terminated
 * string; free it with heron_free_string().
 */
HERON_API heron_status heron_session_profile_json(const heron_session* session, char** out);
/** The same runs as a Chrome trace ({"traceEvents": [...]}, "X" events in microseconds); free with heron_free_string(). */
HERON_API heron_status heron_session_chrome_trace(const heron_session* session, char** out);
/** Forgets the recorded runs (e.g. after warm-up). */
HERON_API heron_status heron_session_clear_profile(heron_session* session);
/** Frees a string returned by the library (NULL is ignored). */
HERON_API void heron_free_string(char* s);

/* ======================================================================= tracing
 * A tracer records every op run on the calling thread into a graph (any language can trace).
 * It is bound to the thread that began it: finish and release it on that thread. */
/** A trace in progress. Opaque; owned by the caller. */
typedef struct heron_tracer heron_tracer;
/** Starts tracing the calling thread's op calls (tracers nest: the newest one records). */
HERON_API heron_status heron_tracer_begin(heron_tracer** out);
/** Declares @p t as the graph input named @p name (declare inputs before using them). */
HERON_API heron_status heron_tracer_add_input(heron_tracer* tracer, heron_tensor* t, const char* name);
/** Names a tensor the traced code may capture (a weight): it becomes an initializer called @p name. */
HERON_API heron_status heron_tracer_name_constant(heron_tracer* tracer, heron_tensor* t, const char* name);
/**
 * Ends the trace: the @p n tensors become the graph's outputs named @p names. Unused nodes are
 * dropped; with @p dynamic_batch the first dim of every input is symbolic and shapes are
 * re-inferred. The graph is validated. The tracer stops recording (release it afterwards).
 */
HERON_API heron_status heron_tracer_finish(heron_tracer* tracer, heron_tensor* const* outputs, const char* const* names,
                                           size_t n, int32_t dynamic_batch, heron_model** out);
/** Stops and frees @p tracer (NULL is ignored). Must be called on the thread that began it. */
HERON_API void heron_tracer_release(heron_tracer* tracer);
/** The model's graph as readable text; free with heron_free_string(). */
HERON_API heron_status heron_model_text(const heron_model* model, char** out);

/* ======================================================================= 1.3 */
/**
 * Graph optimisation of a session (default 1 = on): on host devices the session folds eval-mode
 * batch_norm into the preceding conv2d and fuses a following add and relu/clamp into the
 * convolution (conv2d_fused), on its own copy of the graph. 0 runs the graph exactly as given.
 */
HERON_API heron_status heron_session_options_set_optimization(heron_session_options* options, int32_t level);
/** The graph a session runs (after its optimisation) as readable text; free with heron_free_string(). */
HERON_API heron_status heron_session_graph_text(const heron_session* session, char** out);

/* ======================================================================= 1.4: distributed */
/*
 * Process groups and collectives over CommNet (TCP between processes). Every collective is called
 * by all members of the group, in the same order, with tensors of the same dtype and size. CPU
 * tensors; outputs are written in place and must be contiguous. A failure anywhere (a process gone,
 * a timeout, sizes that differ across ranks) is an error on every rank, never a hang.
 */
/** A distributed communication failed: a process died or left, a malformed message, an aborted group. */
#define HERON_ERR_COMM 12
/** A distributed operation, or the rendezvous of heron_dist_init(), timed out. */
#define HERON_ERR_TIMEOUT 13

/** A process group: the world made by heron_dist_init(), or a subgroup. Opaque; owned by the caller. */
typedef struct heron_process_group heron_process_group;

#define HERON_REDUCE_SUM 0     /**< Sum (bool: logical or). */
#define HERON_REDUCE_PRODUCT 1 /**< Product (bool: logical and). */
#define HERON_REDUCE_MIN 2     /**< Minimum (bool: logical and; NaN propagates). */
#define HERON_REDUCE_MAX 3     /**< Maximum (bool: logical or; NaN propagates). */
#define HERON_REDUCE_AVG 4     /**< Mean over the ranks (floating dtypes only). */

/**
 * Joins the world. @p init_method: "env://" (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE; a
 * @p rank or @p world_size >= 0 overrides the environment), "tcp://host:port" (rank 0 hosts the
 * store there), or "file:///path" (a fresh file every rank can see). NULL means "env://". Every
 * later operation of the group times out after @p timeout_ms. A rank that does not arrive makes
 * the others fail with HERON_ERR_TIMEOUT or HERON_ERR_COMM naming it.
 */
HERON_API heron_status heron_dist_init(const char* init_method, int32_t rank, int32_t world_size, int64_t timeout_ms,
                                       heron_process_group** out);
/**
 * A subgroup of @p group's ranks @p ranks[0..n) (ascending group ranks). Collective: every member of
 * @p group calls it, in the same order. On non-members the new group's rank is -1.
 */
HERON_API heron_status heron_dist_new_group(heron_process_group* group, const int32_t* ranks, int32_t n,
                                            heron_process_group** out);
/** This process's rank in @p group (-1 when not a member). */
HERON_API heron_status heron_dist_rank(const heron_process_group* group, int32_t* out);
/** The number of ranks in @p group. */
HERON_API heron_status heron_dist_size(const heron_process_group* group, int32_t* out);
/** Leaves the world @p group belongs to (closes the connections; its groups become unusable). Idempotent. */
HERON_API heron_status heron_dist_destroy(heron_process_group* group);
/** Frees the handle (NULL is ignored). The world is left when its last group handle is released. */
HERON_API void heron_dist_release(heron_process_group* group);
/** Reduces @p tensor across the ranks with @p op (HERON_REDUCE_*); every rank gets the result. */
HERON_API heron_status heron_dist_all_reduce(heron_process_group* group, heron_tensor* tensor, int32_t op);
/** Copies @p tensor of rank @p src to every rank. */
HERON_API heron_status heron_dist_broadcast(heron_process_group* group, heron_tensor* tensor, int32_t src);
/** Reduces @p tensor across the ranks into rank @p dst's tensor (the others' stay unchanged). */
HERON_API heron_status heron_dist_reduce(heron_process_group* group, heron_tensor* tensor, int32_t dst, int32_t op);
/** @p outputs[i] (one per rank) receives rank i's @p input. */
HERON_API heron_status heron_dist_all_gather(heron_process_group* group, heron_tensor* const* outputs, size_t n_outputs,
                                             heron_tensor* input);
/** @p output receives the reduction over the ranks of their @p inputs[rank] (one input per rank). */
HERON_API heron_status heron_dist_reduce_scatter(heron_process_group* group, heron_tensor* output,
                                                 heron_tensor* const* inputs, size_t n_inputs, int32_t op);
/** @p outputs[i] receives rank i's @p inputs[this rank] (one input and one output per rank). */
HERON_API heron_status heron_dist_all_to_all(heron_process_group* group, heron_tensor* const* outputs, size_t n_outputs,
                                             heron_tensor* const* inputs, size_t n_inputs);
/** Returns once every rank of @p group has called it. */
HERON_API heron_status heron_dist_barrier(heron_process_group* group);
/** Sends @p tensor to rank @p dst with @p tag (>= 0); matched by heron_dist_recv() with the same tag. */
HERON_API heron_status heron_dist_send(heron_process_group* group, heron_tensor* tensor, int32_t dst, int32_t tag);
/** Receives into @p tensor (contiguous, the sent size) from rank @p src with @p tag. */
HERON_API heron_status heron_dist_recv(heron_process_group* group, heron_tensor* tensor, int32_t src, int32_t tag);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* HERON_H_ */
