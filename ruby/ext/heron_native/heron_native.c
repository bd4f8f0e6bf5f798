/*
 * heron_native: the hot path of Heron's Ruby binding as a C extension (see docs/design/bindings.md,
 * "Ruby: a C extension for the hot path").
 *
 *  - Heron::Tensor is a TypedData object holding one heron_tensor handle; its free function
 *    releases the handle when Ruby collects the tensor (Tensor#release! releases it at once).
 *  - Heron::Ext.<op>(inputs..., attrs...) runs one op of the schema: one C function per op,
 *    generated into ops_gen.h by bindings/langs/ruby.py from the op table. Anything the fast path
 *    does not take (variadic inputs or outputs, a value of an unusual type, an argument error) is
 *    handed to the Ruby implementation Heron::Ops.call over ffi, which raises the Ruby errors.
 *  - Tensor#ndim/shape/numel/dtype read the handle directly.
 *
 * libheron is not linked at build time: Heron::Ext.init(path, specs) dlopens the library the Ruby
 * code found (HERON_LIBRARY, the Python package, the build tree; the same file ffi opened, so one
 * copy of the engine is in the process) and resolves the few functions used here with dlsym.
 * heron.h and ops_gen.h are generated copies (bindings/generate.py); do not edit them.
 */
#include <ruby.h>
#include <dlfcn.h>
#include <string.h>

#include "heron.h"

/* ---- libheron, resolved at Heron::Ext.init */
#define HERON_NATIVE_FNS(X)                                                                      \
  X(heron_op_call) X(heron_op_find) X(heron_tensor_release) X(heron_tensor_retain)              \
  X(heron_tensor_from_scalar) X(heron_tensor_ndim) X(heron_tensor_shape) X(heron_tensor_numel) \
  X(heron_tensor_dtype)
#define DECLARE_FN(name) static __typeof__(&name) p_##name;
HERON_NATIVE_FNS(DECLARE_FN)
#undef DECLARE_FN

static int loaded = 0;
static VALUE mHeron, mExt, mOps, cTensor;
static VALUE specs = Qnil;        /* Heron::Ops::SPECS, for the Ruby fallback */
static VALUE dtype_names = Qnil;  /* Heron::DTYPE_NAMES (code -> Symbol) */
static ID id_call, id_error_for, id_dtype_code;

/* ---- generated op table types (filled in by ops_gen.h) */
enum { T_INT_ = 1, T_FLOAT_, T_BOOL_, T_SCALAR_, T_STRING_, T_INTS_, T_FLOATS_, T_DTYPE_ };

typedef struct {
  uint8_t type;        /* T_*_ above */
  uint8_t optional;    /* nil means None (HERON_ATTR_NONE) */
  uint8_t has_default; /* nil means the default (HERON_ATTR_DEFAULT) */
  uint8_t default_kind; /* HERON_ATTR_INT/FLOAT/BOOL when the default is one of those, else 0 */
  int64_t di;          /* the default, for default_kind INT/BOOL */
  double df;           /* the default, for default_kind FLOAT */
} attr_desc;

typedef struct {
  const char* name;
  int n_in;
  const uint8_t* in_optional; /* n_in flags */
  int n_attr;
  const attr_desc* attrs;
  int n_out;    /* -1: variadic outputs */
  int fast;     /* 0: always the Ruby path (variadic inputs or outputs) */
} op_desc;

#define HERON_NATIVE_MAX_ATTRS 32
#define HERON_NATIVE_MAX_INPUTS 16
#define HERON_NATIVE_MAX_OUTPUTS 8
#define HERON_NATIVE_MAX_ELEMS 64 /* ints/floats elements per call on the fast path */

static VALUE op_call(int index, const VALUE* argv);

#include "ops_gen.h"

static const heron_op* op_handles[HERON_NATIVE_N_OPS];

/* ---- errors */
static void ensure_loaded(void) {
  if (!loaded) rb_raise(rb_eRuntimeError, "Heron::Ext is not initialized (require \"heron\")");
}

/* Raises the Ruby exception Heron.error_for(status) builds from the thread's last ABI error. */
static void raise_status(heron_status st) {
  rb_exc_raise(rb_funcall(mHeron, id_error_for, 1, INT2NUM(st)));
}

static void raise_released(void) {
  rb_raise(rb_const_get(mHeron, rb_intern("Error")), "this Heron::Tensor has been released");
}

/* ---- Heron::Tensor */

/* Tensors at least this large are reported to Ruby's GC (rb_gc_adjust_memory_usage) while an
 * object holds them, so that native memory growth prompts a collection: otherwise the GC sees only
 * small objects and a loop dropping 1 MiB results grows the process by gigabytes. The bytes are
 * numel * itemsize (views count their own elements: an overstatement of shared storage, the safe
 * side for GC pressure); a handle's shape and dtype never change, so the same figure is taken off
 * when it is released. */
#define HERON_NATIVE_GC_MIN_BYTES 16384

static int64_t tensor_bytes(const heron_tensor* t) {
  static const int8_t itemsize[] = {4, 8, 2, 2, 1, 1, 4, 8, 1}; /* HERON_FLOAT32 .. HERON_BOOL */
  int64_t n = 0;
  int32_t dt = -1;
  if (p_heron_tensor_numel(t, &n) != HERON_OK || p_heron_tensor_dtype(t, &dt) != HERON_OK) return 0;
  if (dt < 0 || dt >= (int32_t)sizeof itemsize) return 0;
  return n * itemsize[dt];
}

/* Reports (sign 1) or takes back (sign -1) a held handle's bytes. */
static void gc_account(const heron_tensor* t, int sign) {
  const int64_t bytes = tensor_bytes(t);
  if (bytes >= HERON_NATIVE_GC_MIN_BYTES) rb_gc_adjust_memory_usage((ssize_t)(sign * bytes));
}

static void tensor_free(void* p) {
  if (p) {
    gc_account((heron_tensor*)p, -1);
    p_heron_tensor_release((heron_tensor*)p);
  }
}

static size_t tensor_memsize(const void* p) {
  return sizeof(void*) + (p ? (size_t)tensor_bytes((const heron_tensor*)p) : 0);
}

static const rb_data_type_t tensor_type = {
    "Heron::Tensor",
    {NULL, tensor_free, tensor_memsize},
    NULL,
    NULL,
    /* the object holds no Ruby reference (only the C handle): write barriers are trivially
       respected, and WB-protected objects take the allocator's fast path */
    RUBY_TYPED_FREE_IMMEDIATELY | RUBY_TYPED_WB_PROTECTED,
};

static VALUE tensor_alloc(VALUE klass) { return TypedData_Wrap_Struct(klass, &tensor_type, NULL); }

static inline int is_tensor(VALUE v) { return !SPECIAL_CONST_P(v) && RB_TYPE_P(v, T_DATA) && RTYPEDDATA_P(v) && RTYPEDDATA_TYPE(v) == &tensor_type; }

static heron_tensor* tensor_handle(VALUE self) {
  heron_tensor* t = (heron_tensor*)rb_check_typeddata(self, &tensor_type);
  if (!t) raise_released();
  return t;
}

/* Tensor.from_address(Integer): wraps an owned raw handle (its address). */
static VALUE tensor_s_from_address(VALUE klass, VALUE addr) {
  ensure_loaded();
  void* p = (void*)(uintptr_t)NUM2ULL(addr);
  if (!p) rb_raise(rb_const_get(mHeron, rb_intern("Error")), "NULL tensor handle");
  VALUE obj = tensor_alloc(klass);
  DATA_PTR(obj) = p;
  gc_account((heron_tensor*)p, 1);
  return obj;
}

/* The handle's address (Integer); raises once released. */
static VALUE tensor_address(VALUE self) { return ULL2NUM((uintptr_t)tensor_handle(self)); }

static VALUE tensor_release_bang(VALUE self) {
  heron_tensor* t = (heron_tensor*)rb_check_typeddata(self, &tensor_type);
  if (t) {
    DATA_PTR(self) = NULL;
    gc_account(t, -1);
    p_heron_tensor_release(t);
  }
  return Qnil;
}

static VALUE tensor_released_p(VALUE self) { return rb_check_typeddata(self, &tensor_type) ? Qfalse : Qtrue; }

/* dup / clone share the handle (a new reference), as the AutoPointer did. */
static VALUE tensor_init_copy(VALUE self, VALUE orig) {
  if (self == orig) return self;
  rb_obj_init_copy(self, orig);
  heron_tensor* t = (heron_tensor*)rb_check_typeddata(orig, &tensor_type);
  if (t) {
    heron_status st = p_heron_tensor_retain(t);
    if (st) raise_status(st);
    gc_account(t, 1);
  }
  DATA_PTR(self) = t;
  return self;
}

static VALUE tensor_ndim(VALUE self) {
  int32_t n = 0;
  heron_status st = p_heron_tensor_ndim(tensor_handle(self), &n);
  if (st) raise_status(st);
  return INT2NUM(n);
}

static VALUE tensor_shape(VALUE self) {
  heron_tensor* t = tensor_handle(self);
  int32_t n = 0;
  heron_status st = p_heron_tensor_ndim(t, &n);
  if (st) raise_status(st);
  int64_t small[16];
  int64_t* dims = n <= 16 ? small : (int64_t*)ALLOCA_N(int64_t, n);
  if (n > 0 && (st = p_heron_tensor_shape(t, dims, n))) raise_status(st);
  VALUE ary = rb_ary_new_capa(n);
  for (int32_t i = 0; i < n; i++) rb_ary_push(ary, LL2NUM(dims[i]));
  return ary;
}

static VALUE tensor_numel(VALUE self) {
  int64_t n = 0;
  heron_status st = p_heron_tensor_numel(tensor_handle(self), &n);
  if (st) raise_status(st);
  return LL2NUM(n);
}

static VALUE tensor_dtype(VALUE self) {
  int32_t code = 0;
  heron_status st = p_heron_tensor_dtype(tensor_handle(self), &code);
  if (st) raise_status(st);
  return rb_hash_fetch(dtype_names, INT2NUM(code));
}

/* ---- the op call */

/* The Ruby path: Heron::Ops.call(spec, inputs, attrs) over ffi. */
static VALUE fallback(int index, const VALUE* argv) {
  const op_desc* d = &heron_native_ops[index];
  VALUE ins = rb_ary_new_from_values(d->n_in, argv);
  VALUE ats = rb_ary_new_from_values(d->n_attr, argv + d->n_in);
  return rb_funcall(mOps, id_call, 3, rb_ary_entry(specs, index), ins, ats);
}

static inline void set_attr(heron_attr* a, int32_t kind, int64_t i, double f, const void* p) {
  a->kind = kind;
  a->reserved = 0;
  a->i = i;
  a->f = f;
  a->p = p;
}

/* Marshals one attribute value; 0 when the fast path does not take it (the Ruby path will). */
static int put_attr(heron_attr* a, const attr_desc* ad, VALUE v, int64_t* ibuf, double* fbuf, int* used) {
  if (NIL_P(v)) {
    if (ad->optional) set_attr(a, HERON_ATTR_NONE, 0, 0.0, NULL);
    else if (ad->has_default) set_attr(a, HERON_ATTR_DEFAULT, 0, 0.0, NULL);
    else return 0;
    return 1;
  }
  switch (ad->type) {
    case T_INT_:
      if (!FIXNUM_P(v)) return 0;
      set_attr(a, HERON_ATTR_INT, FIX2LONG(v), 0.0, NULL);
      break;
    case T_FLOAT_:
      if (RB_FLOAT_TYPE_P(v)) set_attr(a, HERON_ATTR_FLOAT, 0, RFLOAT_VALUE(v), NULL);
      else if (FIXNUM_P(v)) set_attr(a, HERON_ATTR_FLOAT, 0, (double)FIX2LONG(v), NULL);
      else return 0;
      break;
    case T_BOOL_:
      if (v == Qtrue) set_attr(a, HERON_ATTR_BOOL, 1, 0.0, NULL);
      else if (v == Qfalse) set_attr(a, HERON_ATTR_BOOL, 0, 0.0, NULL);
      else return 0;
      break;
    case T_SCALAR_:
      if (FIXNUM_P(v)) set_attr(a, HERON_ATTR_INT, FIX2LONG(v), 0.0, NULL);
      else if (RB_FLOAT_TYPE_P(v)) set_attr(a, HERON_ATTR_FLOAT, 0, RFLOAT_VALUE(v), NULL);
      else if (v == Qtrue || v == Qfalse) set_attr(a, HERON_ATTR_BOOL, v == Qtrue, 0.0, NULL);
      else return 0;
      break;
    case T_STRING_:
      /* the String is in argv (on the caller's stack) for the whole call */
      if (!RB_TYPE_P(v, T_STRING) || memchr(RSTRING_PTR(v), 0, RSTRING_LEN(v))) return 0;
      set_attr(a, HERON_ATTR_STRING, RSTRING_LEN(v), 0.0, RSTRING_PTR(v));
      break;
    case T_INTS_: {
      int64_t* p = ibuf + *used;
      long n;
      if (FIXNUM_P(v)) {
        if (*used + 1 > HERON_NATIVE_MAX_ELEMS) return 0;
        p[0] = FIX2LONG(v);
        n = 1;
      } else if (RB_TYPE_P(v, T_ARRAY)) {
        n = RARRAY_LEN(v);
        if (*used + n > HERON_NATIVE_MAX_ELEMS) return 0;
        for (long k = 0; k < n; k++) {
          VALUE e = RARRAY_AREF(v, k);
          if (!FIXNUM_P(e)) return 0;
          p[k] = FIX2LONG(e);
        }
      } else {
        return 0;
      }
      *used += (int)n;
      set_attr(a, HERON_ATTR_INTS, n, 0.0, p);
      break;
    }
    case T_FLOATS_: {
      double* p = fbuf + *used;
      long n;
      if (FIXNUM_P(v) || RB_FLOAT_TYPE_P(v)) {
        if (*used + 1 > HERON_NATIVE_MAX_ELEMS) return 0;
        p[0] = FIXNUM_P(v) ? (double)FIX2LONG(v) : RFLOAT_VALUE(v);
        n = 1;
      } else if (RB_TYPE_P(v, T_ARRAY)) {
        n = RARRAY_LEN(v);
        if (*used + n > HERON_NATIVE_MAX_ELEMS) return 0;
        for (long k = 0; k < n; k++) {
          VALUE e = RARRAY_AREF(v, k);
          if (FIXNUM_P(e)) p[k] = (double)FIX2LONG(e);
          else if (RB_FLOAT_TYPE_P(e)) p[k] = RFLOAT_VALUE(e);
          else return 0;
        }
      } else {
        return 0;
      }
      *used += (int)n;
      set_attr(a, HERON_ATTR_FLOATS, n, 0.0, p);
      break;
    }
    case T_DTYPE_:
      if (!SYMBOL_P(v)) return 0;
      /* Heron.dtype_code raises ArgumentError for an unknown name (nothing is held yet) */
      set_attr(a, HERON_ATTR_DTYPE, NUM2INT(rb_funcall(mHeron, id_dtype_code, 1, v)), 0.0, NULL);
      break;
    default:
      return 0;
  }
  /* a value equal to a scalar default is sent as "the default" so trailing ones can be left out */
  if (ad->default_kind && a->kind == ad->default_kind &&
      (ad->default_kind == HERON_ATTR_FLOAT ? a->f == ad->df : a->i == ad->di))
    set_attr(a, HERON_ATTR_DEFAULT, 0, 0.0, NULL);
  return 1;
}

static void release_all(heron_tensor** ts, int n) {
  for (int k = 0; k < n; k++)
    if (ts[k]) p_heron_tensor_release(ts[k]);
}

/* Runs op +index+ of the table on argv = its inputs then its attributes (schema order). */
static VALUE op_call(int index, const VALUE* argv) {
  ensure_loaded();
  const op_desc* d = &heron_native_ops[index];
  if (!d->fast) return fallback(index, argv);
  /* ---- inputs: Tensors and nil for optional ones; numbers become temporary wrapped numbers */
  heron_tensor* ins[HERON_NATIVE_MAX_INPUTS];
  int n_scalars = 0;
  for (int k = 0; k < d->n_in; k++) {
    VALUE v = argv[k];
    if (is_tensor(v)) {
      ins[k] = (heron_tensor*)DATA_PTR(v);
      if (!ins[k]) raise_released();
    } else if (NIL_P(v) && d->in_optional[k]) {
      ins[k] = NULL;
    } else if (FIXNUM_P(v) || RB_FLOAT_TYPE_P(v) || v == Qtrue || v == Qfalse) {
      ins[k] = NULL;
      n_scalars++;
    } else {
      return fallback(index, argv); /* raises the Ruby TypeError (or takes a subclass, a Bignum) */
    }
  }
  /* ---- attributes, trailing defaults left out */
  heron_attr attrs[HERON_NATIVE_MAX_ATTRS];
  int64_t ibuf[HERON_NATIVE_MAX_ELEMS];
  double fbuf[HERON_NATIVE_MAX_ELEMS];
  int iused = 0, fused = 0;
  int n_attr = d->n_attr;
  for (int k = 0; k < n_attr; k++) {
    const attr_desc* ad = &d->attrs[k];
    if (!put_attr(&attrs[k], ad, argv[d->n_in + k], ibuf, fbuf, ad->type == T_FLOATS_ ? &fused : &iused))
      return fallback(index, argv);
  }
  while (n_attr > 0 && attrs[n_attr - 1].kind == HERON_ATTR_DEFAULT) n_attr--;
  /* ---- the output objects first, so no allocation can fail while handles are held */
  const int n_out = d->n_out;
  VALUE objs[HERON_NATIVE_MAX_OUTPUTS];
  for (int k = 0; k < n_out; k++) objs[k] = tensor_alloc(cTensor);
  const heron_op* op = op_handles[index];
  if (!op) {
    heron_status st = p_heron_op_find(d->name, &op);
    if (st) raise_status(st);
    op_handles[index] = op;
  }
  heron_tensor* temps[HERON_NATIVE_MAX_INPUTS];
  int n_temps = 0;
  if (n_scalars) {
    for (int k = 0; k < d->n_in; k++) {
      VALUE v = argv[k];
      if (ins[k] || is_tensor(v) || NIL_P(v)) continue;
      heron_attr s;
      if (FIXNUM_P(v)) set_attr(&s, HERON_ATTR_INT, FIX2LONG(v), 0.0, NULL);
      else if (RB_FLOAT_TYPE_P(v)) set_attr(&s, HERON_ATTR_FLOAT, 0, RFLOAT_VALUE(v), NULL);
      else set_attr(&s, HERON_ATTR_BOOL, v == Qtrue, 0.0, NULL);
      heron_status st = p_heron_tensor_from_scalar(&s, -1, &ins[k]);
      if (st) {
        release_all(temps, n_temps);
        raise_status(st);
      }
      temps[n_temps++] = ins[k];
    }
  }
  heron_tensor* outs[HERON_NATIVE_MAX_OUTPUTS];
  size_t got = 0;
  heron_status st = p_heron_op_call(op, ins, (size_t)d->n_in, n_attr ? attrs : NULL, (size_t)n_attr, outs,
                                    (size_t)n_out, &got);
  release_all(temps, n_temps);
  if (st) raise_status(st);
  for (size_t k = 0; k < got; k++) {
    DATA_PTR(objs[k]) = outs[k];
    gc_account(outs[k], 1);
  }
  if (n_out == 1) return objs[0];
  return rb_ary_new_from_values((long)got, objs);
}

/* ---- Heron::Ext.init(library_path, specs): checks that the extension was built for these op specs
 * (raises LoadError when stale), then opens libheron once. */
static VALUE ext_init(VALUE self, VALUE path, VALUE rb_specs) {
  (void)self;
  Check_Type(rb_specs, T_ARRAY);
  if (RARRAY_LEN(rb_specs) != HERON_NATIVE_N_OPS)
    rb_raise(rb_eLoadError,
             "heron_native was built for %d ops, the Ruby code has %ld: the extension is stale, rebuild it "
             "(rake compile in ruby/)",
             HERON_NATIVE_N_OPS, RARRAY_LEN(rb_specs));
  for (int k = 0; k < HERON_NATIVE_N_OPS; k++) {
    VALUE name = rb_funcall(rb_ary_entry(rb_specs, k), rb_intern("name"), 0);
    if (strcmp(StringValueCStr(name), heron_native_ops[k].name) != 0)
      rb_raise(rb_eLoadError,
               "heron_native has op '%s' at %d, the Ruby code '%s': the extension is stale, rebuild it (rake "
               "compile in ruby/)",
               heron_native_ops[k].name, k, StringValueCStr(name));
  }
  if (loaded) return Qtrue;
  const char* cpath = StringValueCStr(path);
  void* lib = dlopen(cpath, RTLD_NOW | RTLD_GLOBAL);
  if (!lib) rb_raise(rb_eLoadError, "heron_native: cannot open %s: %s", cpath, dlerror());
#define RESOLVE_FN(name)                                                                             \
  p_##name = (__typeof__(&name))dlsym(lib, #name);                                                  \
  if (!p_##name) rb_raise(rb_eLoadError, "heron_native: %s lacks %s (a library older than these bindings)", cpath, #name);
  HERON_NATIVE_FNS(RESOLVE_FN)
#undef RESOLVE_FN
  specs = rb_obj_freeze(rb_ary_dup(rb_specs));
  rb_gc_register_mark_object(specs);
  dtype_names = rb_const_get(mHeron, rb_intern("DTYPE_NAMES"));
  rb_gc_register_mark_object(dtype_names);
  loaded = 1;
  return Qtrue;
}

void Init_heron_native(void) {
  mHeron = rb_define_module("Heron");
  mExt = rb_define_module_under(mHeron, "Ext");
  mOps = rb_define_module_under(mHeron, "Ops");
  cTensor = rb_define_class_under(mHeron, "Tensor", rb_cObject);
  rb_define_alloc_func(cTensor, tensor_alloc);
  id_call = rb_intern("call");
  id_error_for = rb_intern("error_for");
  id_dtype_code = rb_intern("dtype_code");
  rb_define_const(mExt, "OP_COUNT", INT2NUM(HERON_NATIVE_N_OPS));
  rb_define_module_function(mExt, "init", ext_init, 2);
  rb_define_singleton_method(cTensor, "from_address", tensor_s_from_address, 1);
  rb_define_method(cTensor, "address", tensor_address, 0);
  rb_define_method(cTensor, "release!", tensor_release_bang, 0);
  rb_define_method(cTensor, "released?", tensor_released_p, 0);
  rb_define_method(cTensor, "initialize_copy", tensor_init_copy, 1);
  rb_define_method(cTensor, "ndim", tensor_ndim, 0);
  rb_define_method(cTensor, "shape", tensor_shape, 0);
  rb_define_method(cTensor, "numel", tensor_numel, 0);
  rb_define_method(cTensor, "dtype", tensor_dtype, 0);
  heron_native_define_ops(mExt);
}
