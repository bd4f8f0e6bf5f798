/* Compiled by tests/capi/test_heron_ops_h.py against c_api/include with -std=c99 -Wall -Wextra
 * -Werror: drives the typed wrappers of heron_ops.h. argv[1] picks a section; exit status 0 means
 * every check passed and heron_live_handles() was back to 0 at exit. */
#include <stdio.h>
#include <string.h>

#include "heron.h"
#include "heron_ops.h"

#define CHECK(call)                                                                                  \
  do {                                                                                               \
    heron_status s_ = (call);                                                                        \
    if (s_ != HERON_OK) {                                                                            \
      fprintf(stderr, "%s:%d: %s failed with %d: %s\n", __FILE__, __LINE__, #call, (int)s_,          \
              heron_last_error_message());                                                           \
      return 1;                                                                                      \
    }                                                                                                \
  } while (0)
#define EXPECT(cond)                                                                \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);           \
      return 1;                                                                     \
    }                                                                               \
  } while (0)

static const float kData[6] = {0, 1, 2, 3, 4, 5}; /* a [2, 3] matrix */

static int expect_values(heron_tensor* t, const float* want, int n) {
  float got[16];
  int i;
  EXPECT(n <= 16);
  CHECK(heron_tensor_to_host(t, got, (size_t)n * sizeof(float)));
  for (i = 0; i < n; ++i) {
    if (got[i] != want[i]) {
      fprintf(stderr, "element %d: got %g, want %g\n", i, (double)got[i], (double)want[i]);
      return 1;
    }
  }
  return 0;
}

static int expect_shape(heron_tensor* t, int32_t ndim, int64_t d0, int64_t d1) {
  int32_t nd = -1;
  int64_t sh[4] = {-1, -1, -1, -1};
  CHECK(heron_tensor_ndim(t, &nd));
  EXPECT(nd == ndim);
  CHECK(heron_tensor_shape(t, sh, 4));
  EXPECT(sh[0] == d0);
  if (ndim > 1) EXPECT(sh[1] == d1);
  return 0;
}

static int views(heron_tensor* x) {
  static const float transposed[6] = {0, 3, 1, 4, 2, 5};
  heron_tensor* t = NULL;
  heron_tensor* r = NULL;
  heron_tensor* parts[4] = {NULL, NULL, NULL, NULL};
  const int64_t new_shape[1] = {6};
  const int64_t one = 1;
  const int64_t sizes[2] = {1, 2};
  size_t n = 0;
  size_t i;
  int32_t shares = 0;

  CHECK(heron_transpose(x, 0, 1, &t));
  if (expect_shape(t, 2, 3, 2) || expect_values(t, transposed, 6)) return 1;
  CHECK(heron_tensor_shares_storage(t, x, &shares));
  EXPECT(shares == 1);

  CHECK(heron_reshape(t, new_shape, 1, &r));
  if (expect_shape(r, 1, 6, 0) || expect_values(r, transposed, 6)) return 1;

  /* split into columns: three [2, 1] views */
  CHECK(heron_split(x, &one, NULL, 0, 1, parts, 4, &n));
  EXPECT(n == 3);
  for (i = 0; i < n; ++i) {
    float col[2];
    col[0] = kData[i];
    col[1] = kData[3 + i];
    if (expect_shape(parts[i], 2, 2, 1) || expect_values(parts[i], col, 2)) return 1;
    heron_tensor_release(parts[i]);
    parts[i] = NULL;
  }
  /* too small an output array: the count needed, and nothing written */
  n = 0;
  EXPECT(heron_split(x, &one, NULL, 0, 1, parts, 2, &n) == HERON_ERR_BUFFER_TOO_SMALL);
  EXPECT(n == 3);
  EXPECT(parts[0] == NULL && parts[1] == NULL);
  EXPECT(heron_last_error_code() == HERON_ERR_BUFFER_TOO_SMALL);
  /* explicit sizes along dim 1 */
  CHECK(heron_split(x, NULL, sizes, 2, 1, parts, 4, &n));
  EXPECT(n == 2);
  if (expect_shape(parts[0], 2, 2, 1) || expect_shape(parts[1], 2, 2, 2)) return 1;
  heron_tensor_release(parts[0]);
  heron_tensor_release(parts[1]);

  /* an error from a wrapper: dim out of range */
  EXPECT(heron_transpose(x, 0, 5, &r) == HERON_ERR_INDEX);
  EXPECT(strcmp(heron_last_error_op(), "transpose") == 0);

  heron_tensor_release(r);
  heron_tensor_release(t);
  return 0;
}

static int add(heron_tensor* x) {
  heron_tensor* s = NULL;
  heron_tensor* d = NULL;
  float want[6];
  int i;
  int32_t dtype = -1;
  CHECK(heron_add(x, x, heron_attr_int(2), &s)); /* x + 2 * x */
  for (i = 0; i < 6; ++i) want[i] = 3 * kData[i];
  if (expect_values(s, want, 6)) return 1;
  CHECK(heron_tensor_dtype(s, &dtype));
  EXPECT(dtype == HERON_FLOAT32);
  CHECK(heron_add(x, s, heron_attr_default(), &d)); /* alpha defaults to 1 */
  for (i = 0; i < 6; ++i) want[i] = 4 * kData[i];
  if (expect_values(d, want, 6)) return 1;
  heron_tensor_release(d);
  heron_tensor_release(s);
  return 0;
}

int main(int argc, char** argv) {
  const int64_t shape[2] = {2, 3};
  heron_tensor* x = NULL;
  int rc;
  if (argc != 2) return 2;
  CHECK(heron_abi_check(HERON_ABI_VERSION));
  CHECK(heron_tensor_from_host(kData, sizeof kData, HERON_FLOAT32, shape, 2, NULL, &x));
  if (strcmp(argv[1], "views") == 0) rc = views(x);
  else if (strcmp(argv[1], "add") == 0) rc = add(x);
  else rc = 2;
  heron_tensor_release(x);
  if (rc == 0 && heron_live_handles() != 0) {
    fprintf(stderr, "%lld handles still live at exit\n", (long long)heron_live_handles());
    rc = 1;
  }
  if (rc == 0) printf("ok %s\n", argv[1]);
  return rc;
}
