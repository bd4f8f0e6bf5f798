/* All-reduce (float32 sum) timings through Heron's C ABI (heron_dist_*), one rank per process.
 *   allreduce_heron INIT_METHOD RANK WORLD_SIZE
 * Rank 0 prints "bytes microseconds" per size (the mean of K calls between barriers). */
#include <heron.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void check(heron_status st, const char* what) {
  if (st != HERON_OK) {
    fprintf(stderr, "%s: %s\n", what, heron_last_error_message());
    exit(2);
  }
}

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  int rank = atoi(argv[2]), world = atoi(argv[3]);
  heron_process_group* g = NULL;
  check(heron_dist_init(argv[1], rank, world, 120000, &g), "init");
  static const size_t sizes[] = {4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; ++k) {
    size_t bytes = sizes[k];
    int64_t n = (int64_t)(bytes / 4);
    float* host = malloc(bytes);
    for (int64_t i = 0; i < n; ++i) host[i] = (float)(i % 7);
    heron_tensor* t = NULL;
    check(heron_tensor_from_host(host, bytes, HERON_FLOAT32, &n, 1, NULL, &t), "tensor");
    int iters = bytes <= (256 << 10) ? 200 : bytes <= (4 << 20) ? 40 : 8;
    check(heron_dist_all_reduce(g, t, HERON_REDUCE_SUM), "warmup");
    check(heron_dist_barrier(g), "barrier");
    double t0 = now_us();
    for (int i = 0; i < iters; ++i) check(heron_dist_all_reduce(g, t, HERON_REDUCE_SUM), "all_reduce");
    check(heron_dist_barrier(g), "barrier");
    double us = (now_us() - t0) / iters;
    if (rank == 0) printf("%zu %.2f\n", bytes, us);
    fflush(stdout);
    heron_tensor_release(t);
    free(host);
  }
  check(heron_dist_destroy(g), "destroy");
  heron_dist_release(g);
  return 0;
}
