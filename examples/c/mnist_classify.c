/* Classifies MNIST test images with a .heron model through the C API alone: no Python in the
 * process. Build:  cc -std=c99 mnist_classify.c $(pkg-config --cflags --libs heron) -lz
 * Run:    mnist_classify MODEL.heron IMAGES-idx3-ubyte.gz LABELS-idx1-ubyte.gz [FIRST [BATCH]]
 * Images FIRST.. (default 8500: the last 1,500 of MNIST-10k, the demo's test split) are scaled to
 * [0, 1] like heron.datasets.MNIST, run in batches, and the accuracy is printed; each prediction is
 * also written to stdout as "index label prediction" when HERON_PRINT_PREDICTIONS is set, and
 * HERON_PREDICTIONS_LINE=1 prints "predictions: d d ..." for the first 20 (every language prints it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "heron.h"

static int fail(const char* what) {
  fprintf(stderr, "mnist_classify: %s: %s\n", what, heron_last_error_message());
  return 1;
}

/* Reads a whole (optionally gzip-compressed) file. */
static unsigned char* read_all(const char* path, size_t* len) {
  gzFile f = gzopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 20, n = 0;
  unsigned char* buf = malloc(cap);
  for (;;) {
    if (n == cap) {
      unsigned char* nb = realloc(buf, cap *= 2);
      if (!nb) { free(buf); gzclose(f); return NULL; }
      buf = nb;
    }
    int r = gzread(f, buf + n, (unsigned)(cap - n));
    if (r < 0) { free(buf); gzclose(f); return NULL; }
    if (r == 0) break;
    n += (size_t)r;
  }
  gzclose(f);
  *len = n;
  return buf;
}

static uint32_t be32(const unsigned char* p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL.heron IMAGES-idx3-ubyte[.gz] LABELS-idx1-ubyte[.gz] [FIRST [BATCH]]\n", argv[0]);
    return 2;
  }
  if (heron_abi_check(HERON_ABI_VERSION) != HERON_OK) return fail("abi");
  size_t ilen = 0, llen = 0;
  unsigned char* img = read_all(argv[2], &ilen);
  unsigned char* lab = read_all(argv[3], &llen);
  if (!img || !lab || ilen < 16 || llen < 8 || be32(img) != 0x803 || be32(lab) != 0x801) {
    fprintf(stderr, "mnist_classify: cannot read IDX files %s / %s\n", argv[2], argv[3]);
    return 1;
  }
  const uint32_t count = be32(img + 4), rows = be32(img + 8), cols = be32(img + 12);
  if (rows != 28 || cols != 28 || be32(lab + 4) != count || ilen != 16 + (size_t)count * 784 || llen != 8 + (size_t)count) {
    fprintf(stderr, "mnist_classify: unexpected IDX sizes\n");
    return 1;
  }
  const long first = argc > 4 ? atol(argv[4]) : 8500;
  const long batch = argc > 5 ? atol(argv[5]) : 100;
  if (first < 0 || first >= (long)count || batch < 1) {
    fprintf(stderr, "mnist_classify: FIRST must be in [0, %u) and BATCH >= 1\n", count);
    return 2;
  }

  heron_model* model = NULL;
  heron_session* session = NULL;
  if (heron_model_load_file(argv[1], &model) != HERON_OK) return fail("load model");
  const char* in_name = NULL;
  const char* out_name = NULL;
  if (heron_model_input_info(model, 0, &in_name, NULL, NULL, NULL) != HERON_OK) return fail("input info");
  if (heron_model_output_info(model, 0, &out_name, NULL, NULL, NULL) != HERON_OK) return fail("output info");
  if (heron_session_create(model, NULL, &session) != HERON_OK) return fail("create session");

  float* x = malloc(sizeof(float) * (size_t)batch * 784);
  float* logits = malloc(sizeof(float) * (size_t)batch * 10);
  long correct = 0, total = 0;
  const int print = getenv("HERON_PRINT_PREDICTIONS") != NULL;
  int first20[20];
  long n20 = 0;
  for (long start = first; start < (long)count; start += batch) {
    long nb = (long)count - start < batch ? (long)count - start : batch;
    for (long i = 0; i < nb * 784; ++i) x[i] = img[16 + (size_t)start * 784 + (size_t)i] * (1.0f / 255.0f);
    int64_t shape[4] = {nb, 1, 28, 28};
    heron_tensor* in = NULL;
    heron_tensor* out = NULL;
    if (heron_tensor_from_host(x, sizeof(float) * (size_t)nb * 784, HERON_FLOAT32, shape, 4, NULL, &in) != HERON_OK)
      return fail("input tensor");
    if (heron_session_run(session, &in_name, &in, 1, &out_name, 1, &out) != HERON_OK) return fail("run");
    if (heron_tensor_to_host(out, logits, sizeof(float) * (size_t)nb * 10) != HERON_OK) return fail("read logits");
    for (long i = 0; i < nb; ++i) {
      int best = 0;
      for (int k = 1; k < 10; ++k)
        if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
      int label = lab[8 + start + i];
      correct += best == label;
      ++total;
      if (print) printf("%ld %d %d\n", start + i, label, best);
      if (n20 < 20) first20[n20++] = best;
    }
    heron_tensor_release(in);
    heron_tensor_release(out);
  }
  if (getenv("HERON_PREDICTIONS_LINE")) { /* the line every language's example prints (make demo compares them) */
    printf("predictions:");
    for (long i = 0; i < n20; ++i) printf(" %d", first20[i]);
    printf("\n");
  }
  printf("images=%ld correct=%ld accuracy=%.4f\n", total, correct, (double)correct / (double)total);
  heron_session_release(session);
  heron_model_release(model);
  free(x);
  free(logits);
  free(img);
  free(lab);
  return heron_live_handles() == 0 ? 0 : 3;
}
