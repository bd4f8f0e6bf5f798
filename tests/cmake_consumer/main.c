/* Adds two tensors through an installed libheron found with find_package(Heron). */
#include <stdio.h>

#include "heron.h"
#include "heron_ops.h"

int main(void) {
  if (heron_abi_check(HERON_ABI_VERSION) != HERON_OK) {
    fprintf(stderr, "%s\n", heron_last_error_message());
    return 1;
  }
  float a[3] = {1, 2, 3}, out[3];
  int64_t shape[1] = {3};
  heron_tensor *x = NULL, *y = NULL;
  const heron_op* add = NULL;
  size_t n = 0;
  if (heron_tensor_from_host(a, sizeof a, HERON_FLOAT32, shape, 1, NULL, &x) || heron_op_find("add", &add) ||
      heron_op_call(add, (heron_tensor* const[]){x, x}, 2, NULL, 0, &y, 1, &n) || heron_tensor_to_host(y, out, sizeof out)) {
    fprintf(stderr, "%s\n", heron_last_error_message());
    return 1;
  }
  printf("heron %s: %g %g %g\n", heron_version_string(), out[0], out[1], out[2]);
  heron_tensor_release(x);
  heron_tensor_release(y);
  return out[0] == 2 && out[1] == 4 && out[2] == 6 ? 0 : 1;
}
