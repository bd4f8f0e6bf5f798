# Heron — two commands matter:  `make demo`  and  `make test`.
# Both bootstrap everything they need on a fresh Debian machine (apt + pip into .venv/), idempotently.

SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BUILD := $(ROOT)/build
BUILD_ASAN := $(ROOT)/build-asan
JOBS ?= $(shell nproc)
# The cuda device is built whenever nvcc is found; `make ... HERON_CUDA=OFF` skips it.
HERON_CUDA ?= ON
APT_PACKAGES := build-essential cmake ninja-build pkg-config libopenblas-dev libgtest-dev nlohmann-json3-dev \
                flatbuffers-compiler libflatbuffers-dev zlib1g-dev \
                python3 python3-dev python3-venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(ROOT)/build/.stamps
MNIST_DIR := $(ROOT)/python/heron/datasets/data/mnist10k

.PHONY: demo test bootstrap apt venv build build-asan generate check-generated test-cpp test-asan test-python \
        test-capi test-examples test-wheel other-languages node-toolchain node-addon test-node ruby-toolchain ruby-ext test-ruby test-swift bench bench-commnet clean help

help:
	@echo "make demo   - bootstrap, build, run the tour (Python + a C program linked against libheron), train MNIST"
	@echo "make test   - bootstrap, build, run every suite (C++ incl. ASan/UBSan, C ABI, Python, examples)"
	@echo "make bench  - run the benchmarks (prints a table)"

# ---------------------------------------------------------------- bootstrap
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "== installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.deps: requirements-dev.txt requirements-cuda.txt | apt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@if [ "$$(uname -m)" = x86_64 ] && [ "$(HERON_CUDA)" = ON ]; then $(PY) -m pip install -q -r requirements-cuda.txt; fi
	@# The package is used from the source tree (python/) in development: a .pth file points there.
	echo "$(ROOT)/python" > $$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/heron-dev.pth
	touch $@

venv: apt $(VENV)/.deps
bootstrap: venv

# ---------------------------------------------------------------- build
build: bootstrap
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE=$(PY) -DHERON_CUDA=$(HERON_CUDA) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_ASAN)/build.ninja: | bootstrap
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERON_SANITIZE=ON \
	  -DHERON_BUILD_PYTHON=OFF -DHERON_DEV_LAYOUT=OFF -DHERON_CUDA=OFF

build-asan: bootstrap $(BUILD_ASAN)/build.ninja
	cmake --build $(BUILD_ASAN) -j $(JOBS) --target heron_tests heron_c_tour commnet_tests

generate: bootstrap
	$(PY) bindings/generate.py

check-generated: bootstrap
	$(PY) bindings/generate.py --check

# ---------------------------------------------------------------- tests
test: bootstrap check-generated build test-cpp test-python test-capi test-examples test-asan test-wheel other-languages
	@echo "== make test: all suites passed"

test-cpp: build
	cd $(BUILD) && ctest --output-on-failure

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(BUILD_ASAN)/heron_tests --gtest_brief=1
	ASAN_OPTIONS=detect_leaks=1 $(BUILD_ASAN)/heron_c_tour >/dev/null
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(BUILD_ASAN)/core/commnet/tests/commnet_tests --gtest_brief=1

test-python: build
	$(PY) -m pytest tests/python -q -p no:cacheprovider
	@echo "== the recurrent layers again through the device-generic algorithm the cuda kernels run (HERON_RNN_GENERIC=1)"
	HERON_RNN_GENERIC=1 $(PY) -m pytest tests/python/test_rnn.py tests/python/test_rnn_torch_parity.py tests/python/test_rnn_trace.py -q -p no:cacheprovider
	@# Training reproducibility at any thread count needs OpenBLAS's AVX-512 kernels (with its Haswell
	@# kernels, OpenBLAS's own thread split of a matmul changes the bits): where the
	@# CPU has AVX-512 but the environment chose other kernels (OPENBLAS_CORETYPE), run it with them.
	@if grep -q avx512bw /proc/cpuinfo 2>/dev/null; then \
	  echo "== thread-count reproducibility with OpenBLAS's AVX-512 kernels (OPENBLAS_CORETYPE=SKYLAKEX)"; \
	  OPENBLAS_CORETYPE=SKYLAKEX $(PY) -m pytest tests/python/test_training_parity.py -q -p no:cacheprovider -k bitwise -rs && \
	  OPENBLAS_CORETYPE=SKYLAKEX HERON_RNN_GENERIC=1 $(PY) -m pytest tests/python/test_rnn.py -q -p no:cacheprovider \
	    -k test_results_do_not_depend_on_thread_count -rs; fi

test-capi: build
	HERON_LIB=$(ROOT)/python/heron/lib/libheron.so $(PY) -m pytest tests/capi -q -p no:cacheprovider

test-examples: build node-addon ruby-ext
	$(PY) examples/tour.py >/dev/null
	$(PY) tests/run_doc_examples.py docs README.md ruby/README.md
	@echo "== the MNIST row-LSTM example (about a minute on 2 cores) must reach 97% test accuracy:"
	set -o pipefail; $(PY) -m heron.examples.mnist_lstm 2>/dev/null | tail -n 1 | \
	  $(PY) -c "import sys; line = sys.stdin.read().strip(); print(line); sys.exit(float(line.split('=')[1]) < 0.97)"

# ---------------------------------------------------------------- other languages ([bindings])
# A missing toolchain is installed from Debian when possible; otherwise the suite is skipped with a
# loud message on a developer machine and fails under CI=true.
other-languages: test-node test-ruby test-swift

NODE_NPM := npm_config_nodedir=$$(dirname $$(dirname $$(readlink -f $$(command -v node)))) npm_config_audit=false npm_config_fund=false

RUBY_PACKAGES := ruby ruby-dev ruby-ffi rake

ruby-toolchain:
	@missing=""; for p in $(RUBY_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "== installing Debian packages for Ruby:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null || true; fi

# The Ruby binding's C extension (ruby/ext/heron_native: op calls and tensor handles), built into
# ruby/lib/heron/ for the source tree (an installed gem compiles it at `gem install`).
RUBY_OK := command -v ruby >/dev/null && command -v rake >/dev/null && ruby -e 'require "ffi"; require "rbconfig"; \
  exit File.file?(File.join(RbConfig::CONFIG["rubyhdrdir"], "ruby.h"))' 2>/dev/null

ruby-ext: ruby-toolchain
	@if $(RUBY_OK); then cd ruby && rake compile; fi

test-ruby: build ruby-ext
	@if ! ($(RUBY_OK)); then \
	  if [ "$$CI" = true ]; then echo "!!! Ruby with ffi, rake and its headers (ruby-dev) is missing: the Ruby suite cannot run (CI=true)"; exit 1; fi; \
	  echo "!!! Ruby with ffi, rake and its headers (ruby-dev) is missing: SKIPPING the Ruby suite"; exit 0; fi; \
	echo "== Ruby: minitest suite (rake test), the MNIST example and the gem installed into a scratch GEM_HOME"; \
	cd ruby && HERON_LIBRARY=$(ROOT)/python/heron/lib/libheron.so rake test && cd .. && \
	HERON_LIBRARY=$(ROOT)/python/heron/lib/libheron.so ruby examples/ruby/mnist_predict.rb $(ROOT)/tests/data/mnist_convnet.heron && \
	HERON_PYTHON=$(PY) bash ruby/check_gem.sh

# Swift: the toolchain that comes with the machine (swift, SwiftPM, XCTest); libheron through
# pkg-config at build time and the loader path at run time.
SWIFT_ENV := PKG_CONFIG_PATH=$(ROOT)/python/heron/lib/pkgconfig LD_LIBRARY_PATH=$(ROOT)/python/heron/lib SWIFT_JOBS=$(JOBS)

test-swift: build
	@if ! command -v swift >/dev/null; then \
	  if [ "$$CI" = true ]; then echo "!!! Swift is missing: the Swift suite cannot run (CI=true)"; exit 1; fi; \
	  echo "!!! Swift is missing: SKIPPING the Swift suite"; exit 0; fi; \
	echo "== Swift: swift build and swift test (XCTest), the MNIST example, an outside package"; \
	cd swift && $(SWIFT_ENV) swift build -j $(JOBS) >/dev/null && $(SWIFT_ENV) swift test -j $(JOBS) 2>&1 | \
	  grep -E "error|failed|skipped|Executed .* tests" ; test $${PIPESTATUS[0]} -eq 0 && cd .. && \
	$(SWIFT_ENV) examples/swift/mnist_predict.sh $(ROOT)/tests/data/mnist_convnet.heron && \
	$(SWIFT_ENV) bash swift/check_package.sh

node-toolchain:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "== installing Debian's nodejs, npm and the Node headers"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm libnode-dev >/dev/null || true; }

node-addon: build node-toolchain
	@if ! command -v node >/dev/null; then \
	  if [ "$$CI" = true ]; then echo "!!! Node.js is missing: the JavaScript suite cannot run (CI=true)"; exit 1; fi; \
	  echo "!!! Node.js is missing: SKIPPING the JavaScript binding"; exit 0; fi; \
	echo "== JavaScript: building the addon (node-gyp, offline)"; \
	cd javascript && $(NODE_NPM) npm install --foreground-scripts --no-save >/dev/null

test-node: node-addon
	@if command -v node >/dev/null; then \
	  node --expose-gc --test javascript/test/ && \
	  node $(ROOT)/examples/node/mnist_predict.js $(ROOT)/tests/data/mnist_convnet.heron && \
	  echo "== JavaScript: npm pack, installed into a scratch project" && bash javascript/scripts/check-pack.sh; fi

test-wheel: bootstrap
	$(PY) tests/check_wheel.py

# ---------------------------------------------------------------- demo and benchmarks
demo: build node-addon ruby-ext
	$(PY) examples/tour.py
	@echo "== a C program built against this Heron with pkg-config:"
	cc -std=c99 -Wall examples/c/tour.c -o $(BUILD)/tour_pkgconfig \
	  $$(PKG_CONFIG_PATH=$(ROOT)/python/heron/lib/pkgconfig pkg-config --cflags --libs heron) \
	  -Wl,-rpath,$(ROOT)/python/heron/lib
	$(BUILD)/tour_pkgconfig
	@echo "== training a ConvNet on MNIST-10k (python -m heron.examples.mnist):"
	$(PY) -m heron.examples.mnist --out $(ROOT)/out/mnist
	@echo "== one epoch of it on 2 data-parallel processes (python -m heron.distributed.run --nproc-per-node 2 -m heron.examples.mnist):"
	$(PY) -m heron.distributed.run --nproc-per-node 2 \
	  --master-port $$($(PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
	  -m heron.examples.mnist --epochs 1 --no-export --out $(ROOT)/out/mnist-2proc
	@echo "== deployment without Python: heron-run on the traced model (out/mnist/mnist.heron):"
	$(ROOT)/python/heron/bin/heron-run $(ROOT)/out/mnist/mnist.heron --input image=$(ROOT)/out/mnist/test_images.npy \
	  --warmup 1 --iter 5 --dump-outputs $(ROOT)/out/mnist/heron-run
	@echo "== deployment without Python: examples/c/mnist_classify.c built with pkg-config heron:"
	cc -std=c99 -Wall examples/c/mnist_classify.c -o $(BUILD)/mnist_classify \
	  $$(PKG_CONFIG_PATH=$(ROOT)/python/heron/lib/pkgconfig pkg-config --cflags --libs heron) -lz \
	  -Wl,-rpath,$(ROOT)/python/heron/lib
	HERON_PRINT_PREDICTIONS=1 $(BUILD)/mnist_classify $(ROOT)/out/mnist/mnist.heron $(MNIST_DIR)/images-idx3-ubyte.gz \
	  $(MNIST_DIR)/labels-idx1-ubyte.gz > $(ROOT)/out/mnist/c_predictions.txt
	@tail -n 1 $(ROOT)/out/mnist/c_predictions.txt
	$(PY) -m heron.examples.mnist_check $(ROOT)/out/mnist
	@echo "== one model, every language: predictions of out/mnist/mnist.heron for the first 20 test images"
	@$(PY) -m heron.examples.mnist_predict $(ROOT)/out/mnist/mnist.heron | tee $(ROOT)/out/mnist/line_python.txt
	@HERON_PREDICTIONS_LINE=1 $(BUILD)/mnist_classify $(ROOT)/out/mnist/mnist.heron $(MNIST_DIR)/images-idx3-ubyte.gz \
	  $(MNIST_DIR)/labels-idx1-ubyte.gz | grep '^predictions:' | sed 's/^/C:       /'
	@HERON_PREDICTIONS_LINE=1 $(BUILD)/mnist_classify $(ROOT)/out/mnist/mnist.heron $(MNIST_DIR)/images-idx3-ubyte.gz \
	  $(MNIST_DIR)/labels-idx1-ubyte.gz | grep '^predictions:' > $(ROOT)/out/mnist/line_c.txt
	@if command -v node >/dev/null; then node examples/node/mnist_predict.js $(ROOT)/out/mnist/mnist.heron > $(ROOT)/out/mnist/line_node.txt && \
	  sed 's/^/Node.js: /' $(ROOT)/out/mnist/line_node.txt; fi
	@if $(RUBY_OK); then HERON_LIBRARY=$(ROOT)/python/heron/lib/libheron.so ruby examples/ruby/mnist_predict.rb \
	  $(ROOT)/out/mnist/mnist.heron > $(ROOT)/out/mnist/line_ruby.txt && sed 's/^/Ruby:    /' $(ROOT)/out/mnist/line_ruby.txt; fi
	@if command -v swift >/dev/null; then $(SWIFT_ENV) examples/swift/mnist_predict.sh $(ROOT)/out/mnist/mnist.heron \
	  > $(ROOT)/out/mnist/line_swift.txt && sed 's/^/Swift:   /' $(ROOT)/out/mnist/line_swift.txt; fi
	@$(PY) examples/compare_lines.py $(ROOT)/out/mnist/line_*.txt

bench: build
	$(PY) benchmarks/run.py
	$(PY) benchmarks/conv.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/deploy.py --quick
	$(PY) benchmarks/einsum.py --quick
	$(PY) benchmarks/rnn.py --quick

# CommNet next to raw TCP, and all-reduce next to Open MPI (apt-get install openmpi-bin libopenmpi-dev).
bench-commnet: build
	cmake -S benchmarks/commnet -B $(ROOT)/build-commnet-bench -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(ROOT)/build-commnet-bench -j $(JOBS)
	$(ROOT)/build-commnet-bench/bench_p2p
	$(PY) benchmarks/commnet/allreduce.py

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) dist python/heron/_C*.so python/heron/lib python/heron/include
