/* A short tour of the C ABI: create tensors, run ops through the typed wrappers, read results.
 * Build against an installed Heron:  cc tour.c $(pkg-config --cflags --libs heron)
 * or a pip-installed one:            cc tour.c $(python -m heron.config --cflags --libs)     */
#include <stdio.h>
#include <stdlib.h>

#include "heron.h"
#include "heron_ops.h"

#define CHECK(call)                                                                      \
  do {                                                                                   \
    heron_status s_ = (call);                                                            \
    if (s_ != HERON_OK) {                                                                \
      fprintf(stderr, "%s failed: [%d] %s\n", #call, (int)s_, heron_last_error_message()); \
      return 1;                                                                          \
    }                                                                                    \
  } while (0)

int main(void) {
  CHECK(heron_abi_check(HERON_ABI_VERSION));
  printf("heron %s, ABI %u.%u, %d ops, %d threads\n", heron_version_string(), heron_abi_version() >> 16,
         heron_abi_version() & 0xffff, heron_op_count(), heron_get_num_threads());

  float a_data[6] = {1, 2, 3, 4, 5, 6};
  float b_data[3] = {10, 20, 30};
  int64_t a_shape[2] = {2, 3}, b_shape[1] = {3};
  heron_tensor *a = NULL, *b = NULL, *c = NULL, *t = NULL, *m = NULL;
  CHECK(heron_tensor_from_host(a_data, sizeof a_data, HERON_FLOAT32, a_shape, 2, NULL, &a));
  CHECK(heron_tensor_from_host(b_data, sizeof b_data, HERON_FLOAT32, b_shape, 1, NULL, &b));

  /* a + 2 * b, broadcasting b over the rows */
  CHECK(heron_add(a, b, heron_attr_int(2), &c));
  float out[6];
  CHECK(heron_tensor_to_host(c, out, sizeof out));
  printf("a + 2*b = [%g %g %g; %g %g %g]\n", out[0], out[1], out[2], out[3], out[4], out[5]);
  if (out[0] != 21 || out[5] != 66) { fprintf(stderr, "wrong result\n"); return 1; }

  /* a @ a^T through a transposed view (no copy) */
  CHECK(heron_transpose(a, 0, 1, &t));
  CHECK(heron_matmul(a, t, &m));
  float mm[4];
  CHECK(heron_tensor_to_host(m, mm, sizeof mm));
  printf("a @ a.T = [%g %g; %g %g]\n", mm[0], mm[1], mm[2], mm[3]);
  if (mm[0] != 14 || mm[3] != 77) { fprintf(stderr, "wrong matmul\n"); return 1; }

  /* errors come back as status codes with a message, never a crash */
  heron_tensor* bad = NULL;
  int64_t d4[1] = {4};
  float four[4] = {0};
  heron_tensor* x4 = NULL;
  CHECK(heron_tensor_from_host(four, sizeof four, HERON_FLOAT32, d4, 1, NULL, &x4));
  heron_status s = heron_add(a, x4, heron_attr_default(), &bad);
  printf("shape mismatch -> status %d: %s\n", (int)s, heron_last_error_message());
  if (s != HERON_ERR_INVALID_ARGUMENT || bad != NULL) return 1;

  heron_tensor_release(a);
  heron_tensor_release(b);
  heron_tensor_release(c);
  heron_tensor_release(t);
  heron_tensor_release(m);
  heron_tensor_release(x4);
  printf("live handles at exit: %lld\n", (long long)heron_live_handles());
  return heron_live_handles() == 0 ? 0 : 1;
}
