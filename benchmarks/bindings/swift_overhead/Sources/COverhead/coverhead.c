#include "coverhead.h"

#include <heron.h>
#include <heron_ops.h>
#include <time.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double coverhead_add_ns(int64_t iters) {
  float one = 1.0f;
  int64_t shape[1] = {1};
  heron_tensor *a = NULL, *b = NULL;
  if (heron_tensor_from_host(&one, sizeof one, HERON_FLOAT32, shape, 1, NULL, &a) != HERON_OK) return -1;
  if (heron_tensor_from_host(&one, sizeof one, HERON_FLOAT32, shape, 1, NULL, &b) != HERON_OK) return -1;
  heron_tensor* ins[2] = {a, b};
  double t0 = now_ns();
  for (int64_t i = 0; i < iters; ++i) {
    heron_tensor* out = NULL;
    if (heron_add(ins[0], ins[1], heron_attr_int(1), &out) != HERON_OK) return -1;
    heron_tensor_release(out);
  }
  double dt = now_ns() - t0;
  heron_tensor_release(a);
  heron_tensor_release(b);
  return dt / (double)iters;
}
