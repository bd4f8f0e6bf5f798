#!/usr/bin/env ruby
# frozen_string_literal: true

# Per-op call overhead from Ruby: a 1-element float32 add (Heron.add(a, b), the generated method
# over the generic op call), median ns/call of REPEATS runs of N calls, garbage collection of the
# outputs included. The bar ([bindings]): <= 3x the same call from C. When a C compiler and
# heron.h are found (HERON_INCLUDE, default: next to HERON_LIBRARY's lib/ as include/, or
# c_api/include), c_add_overhead.c is built and run too and the ratio printed.
# Usage: HERON_LIBRARY=.../libheron.so ruby benchmarks/bindings/ruby_overhead.rb [N [REPEATS]]
$LOAD_PATH.unshift File.expand_path("../../ruby/lib", __dir__)
require "heron"
require "tmpdir"

n = (ARGV[0] || 20_000).to_i
repeats = (ARGV[1] || 15).to_i

def clock_ns = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)

a = Heron.tensor([1.0])
b = Heron.tensor([1.0])
times = (-1...repeats).map do |r|
  t0 = clock_ns
  i = 0
  while i < n
    Heron.add(a, b)
    i += 1
  end
  r.negative? ? nil : (clock_ns - t0).fdiv(n)
end.compact.sort
ruby_ns = times[times.size / 2]
puts format("ruby: %.1f ns/call (1-element add, median of %d x %d)", ruby_ns, repeats, n)

# The floor of any ffi binding: the same heron_op_call and heron_tensor_release through ffi, with
# no marshalling and no Ruby object for the output.
sc = Heron::Ops.scratch
h = Heron::Ops::ADD.handle
sc.ins.put_pointer(0, a.ptr)
sc.ins.put_pointer(8, b.ptr)
raw = (-1...repeats).map do |r|
  t0 = clock_ns
  i = 0
  while i < n
    Heron::Native.heron_op_call(h, sc.ins, 2, nil, 0, sc.outs, 1, sc.nout)
    Heron::Native.heron_tensor_release(sc.outs.read_pointer)
    i += 1
  end
  r.negative? ? nil : (clock_ns - t0).fdiv(n)
end.compact.sort
puts format("ruby raw ffi (op_call + release, no Tensor): %.1f ns/call", raw[raw.size / 2])

lib = Heron::LIBRARY_PATH
lib_dir = File.dirname(File.realpath(lib))
include_dir = ENV["HERON_INCLUDE"] || [File.expand_path("../include", lib_dir),
                                       File.expand_path("../../c_api/include", __dir__)].find do |d|
  File.file?(File.join(d, "heron.h"))
end
cc = ENV.fetch("CC", "cc")
if include_dir && system("command -v #{cc} >/dev/null 2>&1")
  Dir.mktmpdir do |dir|
    exe = File.join(dir, "c_add_overhead")
    src = File.expand_path("c_add_overhead.c", __dir__)
    if system(cc, "-O2", src, "-I#{include_dir}", lib, "-Wl,-rpath,#{lib_dir}", "-o", exe)
      c_ns = `#{exe} #{n} #{repeats}`.to_f
      puts format("c:    %.1f ns/call", c_ns)
      ratio = ruby_ns / c_ns
      puts format("ratio ruby/c: %.2f (bar: <= 3.00) %s", ratio, ratio <= 3.0 ? "PASS" : "FAIL")
    else
      puts "c baseline: build failed"
    end
  end
else
  puts "c baseline: skipped (no C compiler or heron.h; set CC / HERON_INCLUDE)"
end
