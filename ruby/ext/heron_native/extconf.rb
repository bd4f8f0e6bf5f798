# frozen_string_literal: true

# Builds heron_native, the C extension for the hot path of Heron's Ruby binding (op calls, tensor
# handles). It does not link libheron: it dlopens the library the Ruby code finds at load time, so
# only Ruby's headers (Debian ruby-dev) and a C compiler are needed, at `gem install` or `rake
# compile`, offline.
require "mkmf"

abort "heron_native needs dlopen (dlfcn.h)" unless have_header("dlfcn.h")
have_library("dl", "dlopen") unless have_func("dlopen", "dlfcn.h")
$CFLAGS << " -O2 -Wall -Wno-unused-parameter"
create_makefile("heron/heron_native")
