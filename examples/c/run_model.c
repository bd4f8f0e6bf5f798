/* Deployment without Python: load a .heron model, create a session, run it on one float32 input
 * filled with a constant, print the outputs' shapes and first values, the profile and peak memory.
 *   cc run_model.c $(pkg-config --cflags --libs heron) -o run_model && ./run_model model.heron
 * Every call returns a heron_status; heron_last_error_message() explains a failure. */
#include <stdio.h>
#include <stdlib.h>

#include "heron.h"

#define CHECK(call)                                                                      \
  do {                                                                                   \
    heron_status s_ = (call);                                                            \
    if (s_ != HERON_OK) {                                                                \
      fprintf(stderr, "%s failed: [%d] %s\n", #call, (int)s_, heron_last_error_message()); \
      return 1;                                                                          \
    }                                                                                    \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.heron\n", argv[0]);
    return 2;
  }
  CHECK(heron_abi_check(HERON_ABI_VERSION));
  heron_model* model = NULL;
  CHECK(heron_model_load_file(argv[1], &model));

  /* The first input: its name, dtype and shape (-1 = symbolic, e.g. the batch: we use 1). */
  const char* in_name;
  int32_t dtype, ndim;
  const int64_t* mshape;
  CHECK(heron_model_input_info(model, 0, &in_name, &dtype, &ndim, &mshape));
  if (dtype != HERON_FLOAT32) { fprintf(stderr, "this example feeds float32 inputs only\n"); return 1; }
  int64_t shape[16];
  size_t numel = 1;
  for (int32_t i = 0; i < ndim && i < 16; ++i) {
    shape[i] = mshape[i] < 0 ? 1 : mshape[i];
    numel *= (size_t)shape[i];
  }
  float* data = malloc(numel * sizeof(float));
  for (size_t i = 0; i < numel; ++i) data[i] = 0.5f;
  heron_tensor* x = NULL;
  CHECK(heron_tensor_from_host(data, numel * sizeof(float), HERON_FLOAT32, shape, ndim, NULL, &x));
  free(data);

  heron_session_options* opts = NULL;
  CHECK(heron_session_options_create(&opts));
  CHECK(heron_session_options_set_device(opts, "cpu"));
  CHECK(heron_session_options_set_threads(opts, 2));
  CHECK(heron_session_options_set_profiling(opts, 1));
  heron_session* session = NULL;
  CHECK(heron_session_create(model, opts, &session));
  heron_session_options_release(opts);

  size_t n_out;
  CHECK(heron_model_num_outputs(model, &n_out));
  heron_tensor* outs[8] = {NULL};
  if (n_out > 8) n_out = 8;
  /* output_names NULL: all outputs (n_out must then be the model's count; we cap at 8 for brevity) */
  CHECK(heron_session_run(session, &in_name, &x, 1, NULL, n_out, outs));
  for (size_t k = 0; k < n_out; ++k) {
    const char* name;
    CHECK(heron_model_output_info(model, k, &name, NULL, NULL, NULL));
    int32_t nd;
    int64_t s[16];
    CHECK(heron_tensor_ndim(outs[k], &nd));
    CHECK(heron_tensor_shape(outs[k], s, 16));
    double first;
    int64_t n;
    CHECK(heron_tensor_numel(outs[k], &n));
    printf("output %s: ndim %d, %lld elements", name, (int)nd, (long long)n);
    int32_t odt;
    CHECK(heron_tensor_dtype(outs[k], &odt));
    if (n > 0 && odt == HERON_FLOAT32) {
      float* buf = malloc((size_t)n * sizeof(float));
      CHECK(heron_tensor_to_host(outs[k], buf, (size_t)n * sizeof(float)));
      first = buf[0];
      free(buf);
      printf(", first value %g", first);
    }
    printf("\n");
    heron_tensor_release(outs[k]);
  }
  int64_t peak;
  CHECK(heron_session_peak_memory(session, &peak, NULL));
  printf("peak memory of intermediates: %lld bytes\n", (long long)peak);
  char* profile = NULL;
  CHECK(heron_session_profile_json(session, &profile));
  printf("profile: %.120s...\n", profile);
  heron_free_string(profile);

  heron_tensor_release(x);
  heron_session_release(session);
  heron_model_release(model);
  return heron_live_handles() == 0 ? 0 : 1;
}
