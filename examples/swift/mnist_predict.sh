#!/bin/sh
# Builds (quietly, once) and runs the Swift MNIST example: prints "predictions: d d d ..." for the
# first 20 MNIST-10k test images.  Usage: examples/swift/mnist_predict.sh MODEL.heron [MNIST10K_DIR]
# libheron is found through PKG_CONFIG_PATH (build) and LD_LIBRARY_PATH (run); HERON_PREFIX, when set,
# names a folder holding lib/ and lib/pkgconfig/ and sets both.
set -e
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "$HERON_PREFIX" ]; then
  PKG_CONFIG_PATH="$HERON_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  LD_LIBRARY_PATH="$HERON_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_PATH LD_LIBRARY_PATH
fi
cd "$here/MnistPredict"
swift build -j "${SWIFT_JOBS:-1}" >build.log 2>&1 || { cat build.log >&2; exit 1; }
exec "$here/MnistPredict/.build/debug/mnist-predict" "$@"
