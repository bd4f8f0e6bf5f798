/* Per-op call overhead from C: a 1-element float32 add through heron_op_call (output released),
 * median over repeats of ns per call. The reference the language bindings are compared with
 * (benchmarks/bindings/overhead.py). Build: cc -O2 overhead_c.c $(pkg-config --cflags --libs heron) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "heron.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 20000, reps = argc > 2 ? atoi(argv[2]) : 15;
  float one = 1.0f;
  int64_t shape[1] = {1};
  heron_tensor *a = NULL, *b = NULL;
  const heron_op* add = NULL;
  if (heron_tensor_from_host(&one, sizeof one, HERON_FLOAT32, shape, 1, NULL, &a) || heron_tensor_from_host(&one, sizeof one, HERON_FLOAT32, shape, 1, NULL, &b) ||
      heron_op_find("add", &add)) {
    fprintf(stderr, "setup failed: %s\n", heron_last_error_message());
    return 1;
  }
  heron_tensor* ins[2] = {a, b};
  double* t = malloc(sizeof(double) * reps);
  for (int r = 0; r < reps; ++r) {
    double t0 = now_ns();
    for (int i = 0; i < iters; ++i) {
      heron_tensor* out = NULL;
      size_t n = 0;
      if (heron_op_call(add, ins, 2, NULL, 0, &out, 1, &n)) return 1;
      heron_tensor_release(out);
    }
    t[r] = (now_ns() - t0) / iters;
  }
  qsort(t, reps, sizeof(double), cmp);
  printf("%.1f\n", t[reps / 2]);
  heron_tensor_release(a);
  heron_tensor_release(b);
  free(t);
  return 0;
}
