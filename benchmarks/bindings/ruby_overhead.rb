#!/usr/bin/env ruby
# frozen_string_literal: true

# Per-op call overhead from Ruby: a 1-element float32 add (Heron.add(a, b), the generated method
# over the C extension's op call, Heron::Ext.add), median ns/call of REPEATS runs of N calls,
# garbage collection of the outputs (and the release of their handles) included. The bar ([bindings]): <= 3x the same call from C; benchmarks/bindings/overhead.py
# runs this next to overhead_c.c and the other languages and prints the ratios. The first line
# printed is the headline figure (ns/call).
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
puts format("%.1f ns/call: Heron.add from Ruby (1-element float32, median of %d x %d)", ruby_ns, repeats, n)

# For comparison, the floor of an ffi binding (what the Ruby binding used before the extension):
# the same heron_op_call and heron_tensor_release through ffi, with no marshalling and no Ruby
# object for the output.
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
puts format("%.1f ns/call: the ffi floor (heron_op_call + release, no Tensor object)", raw[raw.size / 2])
