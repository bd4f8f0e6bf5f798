/* The C module over Heron's ABI: heron.h comes from the include folder pkg-config `heron` names. */
#ifndef HERON_SWIFT_SHIM_H_
#define HERON_SWIFT_SHIM_H_
#include <heron.h>
#endif
