# frozen_string_literal: true

# Shared set-up of the Ruby suite: loads Heron (HERON_LIBRARY, the Python package or the build
# tree), records the live-handle count, and checks at exit that every handle made by the suite was
# released by Ruby's garbage collector (Heron::Tensor's free function, FFI::AutoPointer for the rest).
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "minitest/autorun"
require "heron"
require "tmpdir"

module HeronTest
  START_HANDLES = Heron.live_handles
  FIXTURES = File.expand_path("fixtures", __dir__)

  def self.collect
    4.times { GC.start(full_mark: true, immediate_sweep: true) }
  end

  # |got - want| <= atol + rtol * |want| elementwise over (nested) Arrays; NaN equals NaN.
  def assert_close(want, got, rtol: 1e-5, atol: 1e-6, msg: nil)
    w = Array(want).flatten
    g = Array(got).flatten
    assert_equal w.size, g.size, msg || "element count"
    w.zip(g).each_with_index do |(a, b), i|
      next if a.is_a?(Float) && a.nan? && b.is_a?(Float) && b.nan?
      next if a == b
      assert (b - a).abs <= atol + rtol * a.abs, (msg || "mismatch") + " at #{i}: want #{a}, got #{b}"
    end
  end

  # Runs the block and checks that the handles it made are released once their tensors are gone.
  def assert_no_leak
    HeronTest.collect
    before = Heron.live_handles
    yield
    HeronTest.collect
    assert_equal before, Heron.live_handles, "live handles after the block"
  end
end

Minitest.after_run do
  HeronTest.collect
  live = Heron.live_handles
  if live == HeronTest::START_HANDLES
    puts "live handles back to #{live} (started at #{HeronTest::START_HANDLES})"
  else
    warn "FAIL: #{live - HeronTest::START_HANDLES} handle(s) still live at the end of the suite " \
         "(started at #{HeronTest::START_HANDLES}, now #{live})"
    exit 1
  end
end
