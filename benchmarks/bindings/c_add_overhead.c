/* Per-op call overhead from C, the baseline of the bindings' bar: a 1-element float32 add through
 * heron_op_call (op handle resolved once), releasing the output, as the language bindings do.
 * Prints the median ns/call of REPEATS runs of N calls. Build (done by ruby_overhead.rb):
 *   cc -O2 c_add_overhead.c -I<include> -L<lib> -lheron -Wl,-rpath,<lib> */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "heron.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 20000, repeats = argc > 2 ? atoi(argv[2]) : 15;
  float one = 1.0f;
  int64_t shape[1] = {1};
  heron_tensor *a = NULL, *b = NULL;
  const heron_op* add = NULL;
  if (heron_tensor_from_host(&one, sizeof one, HERON_FLOAT32, shape, 1, NULL, &a) ||
      heron_tensor_from_host(&one, sizeof one, HERON_FLOAT32, shape, 1, NULL, &b) || heron_op_find("add", &add)) {
    fprintf(stderr, "setup failed: %s\n", heron_last_error_message());
    return 1;
  }
  heron_tensor* ins[2] = {a, b};
  double* t = malloc(sizeof(double) * (size_t)repeats);
  for (int r = -1; r < repeats; ++r) { /* r = -1 warms up */
    double t0 = now_ns();
    for (int i = 0; i < n; ++i) {
      heron_tensor* out = NULL;
      size_t n_out = 0;
      if (heron_op_call(add, ins, 2, NULL, 0, &out, 1, &n_out)) {
        fprintf(stderr, "add failed: %s\n", heron_last_error_message());
        return 1;
      }
      heron_tensor_release(out);
    }
    if (r >= 0) t[r] = (now_ns() - t0) / n;
  }
  qsort(t, (size_t)repeats, sizeof(double), cmp);
  printf("%.1f\n", t[repeats / 2]);
  heron_tensor_release(a);
  heron_tensor_release(b);
  free(t);
  return 0;
}
