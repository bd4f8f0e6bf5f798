#ifndef COVERHEAD_H_
#define COVERHEAD_H_
#include <stdint.h>
/* Nanoseconds per call of `iters` 1-element float32 adds through the typed C wrapper heron_add() (heron_op_call with alpha = 1) from C (handles
 * made and released in C, as a C program would); negative on an ABI failure. */
double coverhead_add_ns(int64_t iters);
#endif
