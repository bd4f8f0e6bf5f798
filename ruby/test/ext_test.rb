# frozen_string_literal: true

require_relative "test_helper"

# The C extension heron_native (Heron::Ext, the generated op methods' path) against the Ruby path
# over ffi (Heron::Ops.call, its fallback) as the oracle: the same results for every kind of value
# the fast path marshals itself and for those it hands over, the same errors, and tensor handles
# owned by Heron::Tensor objects.
class ExtTest < Minitest::Test
  include HeronTest

  def x
    Heron.tensor([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
  end

  # op +name+ through both paths; the results (Tensors or Arrays of them) must be equal.
  def both(name, inputs, attrs = {})
    fast = Heron.op_call(name, inputs, attrs)
    slow = Heron.op_call(name, inputs, attrs, ffi: true)
    fast_a = fast.is_a?(Array) ? fast.map(&:to_a) : fast.to_a
    slow_a = slow.is_a?(Array) ? slow.map(&:to_a) : slow.to_a
    assert_equal slow_a, fast_a, "#{name} #{attrs}"
    fast
  end

  def test_attribute_kinds_match_the_ffi_path
    both("add", [x, x], alpha: 2)              # scalar Integer
    both("add", [x, x], alpha: 0.5)            # scalar Float
    both("add", [x, x], alpha: 1)              # equal to the default: left out
    both("add", [x, 2], alpha: 3)              # a number input: a temporary wrapped number
    both("add", [1.5, x])
    both("mul", [x, true])
    both("sum", [x], dim: 1)                   # ints from an Integer
    both("sum", [x], dim: [0, 1], keepdim: true)
    both("sum", [x], dim: [], keepdim: false)  # an empty ints
    both("sum", [x], dim: nil)                 # optional: none
    both("sum", [x], dtype: :float64)          # a dtype Symbol
    both("sum", [x], dtype: "float64")         # a dtype String: handed to the Ruby path
    both("softplus", [x], beta: 2, threshold: 1.5) # float from an Integer
    both("gelu", [x], approximate: "tanh")    # string
    both("round", [x], decimals: 1)
    both("clamp", [x], min: -1, max: 2.5)
    both("reshape", [x], shape: [3, 2])
    both("reshape", [Heron.zeros(size: [2] * 7)], shape: [1] * 63 + [128]) # 64 ints: the last that fit
    both("reshape", [Heron.zeros(size: [2] * 7)], shape: [1] * 64 + [128]) # 65: handed over
    both("permute", [x], dims: [1, 0])
    both("linear", [x, Heron.ones(size: [4, 3]), nil])                   # optional input left nil
    both("linear", [x, Heron.ones(size: [4, 3]), Heron.ones(size: [4])])
  end

  def test_several_and_variadic_outputs
    v, i = both("sort", [Heron.tensor([3.0, 1.0, 2.0])], descending: true)
    assert_equal [3.0, 2.0, 1.0], v.to_a
    assert_equal [0, 2, 1], i.to_a
    parts = both("split", [x], sizes: [1, 1], dim: 0)
    assert_equal 2, parts.size
    assert_equal [[10.0, 6.0, -6.0]], Heron.concat([x, x], dim: 0).sum(dim: 0, keepdim: true).to_a
  end

  def test_errors_are_the_same_on_both_paths
    [[["add", ["a", x]], TypeError, /add: input 'input' must be a Heron::Tensor or a number, got String/],
     [["add", [x, x], { alpha: "2" }], TypeError, /attribute 'alpha'/],
     [["sum", [x], { keepdim: 1 }], TypeError, /attribute 'keepdim'/],
     [["sum", [x], { dtype: :nope }], ArgumentError, /unknown dtype/],
     [["gelu", [x], { approximate: "a\0b" }], ArgumentError, /NUL/],
     [["add", [x, Heron.tensor([1.0, 2.0])]], Heron::InvalidArgumentError, /cannot be broadcast/],
     [["select", [x], { dim: 0, index: 5 }], Heron::IndexOutOfRangeError, /out of bounds/]].each do |args, cls, msg|
      [false, true].each do |ffi|
        name, inputs, attrs = args
        e = assert_raises(cls, "#{name} ffi=#{ffi}") { Heron.op_call(name, inputs, attrs || {}, ffi: ffi) }
        assert_match msg, e.message
      end
    end
    e = assert_raises(Heron::InvalidArgumentError) { Heron.add(x, Heron.tensor([1.0, 2.0])) }
    assert_equal "add", e.op
    assert_equal Heron::Native::HERON_ERR_INVALID_ARGUMENT, e.code
  end

  def test_tensor_handles
    t = Heron.tensor([1.0, 2.0])
    assert_kind_of Integer, t.address
    assert_equal t.address, t.ptr.address
    assert_kind_of FFI::Pointer, t.ptr
    d = t.dup # a second reference to the same handle
    t.release!
    assert t.released?
    assert_equal [1.0, 2.0], d.to_a
    assert_raises(Heron::Error) { t.address }
    assert_raises(Heron::Error) { t.ptr }
    assert_raises(Heron::Error) { Heron.add(t, d) }
    assert_raises(Heron::Error) { Heron.add(d, t, alpha: 2) }
    assert Heron::Tensor.allocate.released?
    assert_raises(Heron::Error) { Heron::Tensor.new.shape }
    assert_raises(Heron::Error) { Heron::Tensor.from_address(0) }
    sub = Class.new(Heron::Tensor)
    s = sub.from_address(Heron.tensor([2.0]).tap { |u| Heron::Native.heron_tensor_retain(u.ptr) }.address)
    assert_equal [3.0], Heron.add(s, 1.0).to_a
  end

  def test_no_leak_through_both_paths
    assert_no_leak do
      200.times do |k|
        Heron.add(x, k, alpha: 2)
        Heron.op_call("add", [x, k], {}, ffi: true)
        Heron.sort(x, dim: 1)
        Heron.split(x, split_size: 1, dim: 0)
        x.dup
        begin
          Heron.add(2, Heron.tensor([1.0, 2.0, 3.0]) + x.sum)
          Heron.add(x, Heron.tensor([1.0, 2.0]))
        rescue ArgumentError
          nil
        end
      end
    end
  end

  def test_a_stale_extension_is_refused
    e = assert_raises(LoadError) { Heron::Ext.init(Heron::LIBRARY_PATH, Heron::Ops::SPECS.first(3)) }
    assert_match(/stale/, e.message)
    e = assert_raises(LoadError) { Heron::Ext.init(Heron::LIBRARY_PATH, Heron::Ops::SPECS.reverse) }
    assert_match(/stale/, e.message)
    assert_equal Heron::Ops::SPECS.size, Heron::Ext::OP_COUNT
  end

  # Native memory must prompt Ruby's GC: 2000 dropped 1 MiB results (through both paths) in a
  # child process, whose peak RSS must stay bounded. Without the accounting the GC sees only small
  # objects and the process grew by gigabytes (2986 MiB after 3000 measured before the fix).
  def test_native_tensor_memory_drives_the_gc
    script = <<~RUBY
      require "heron"
      x = Heron.zeros(size: [1 << 18])
      peak = 0
      2000.times do |i|
        i.even? ? Heron.add(x, x) : Heron.op_call("add", [x, x], {}, ffi: true)
        peak = [peak, File.read("/proc/self/status")[/VmRSS:\\s+(\\d+)/, 1].to_i * 1024].max if (i % 50).zero?
      end
      print peak
    RUBY
    out = IO.popen([RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", script], &:read)
    assert $?.success?, "child failed: #{out}"
    peak = Integer(out)
    assert_operator peak, :>, 0
    assert_operator peak, :<, 600 * 2**20, "peak RSS #{peak / 2**20} MiB for 1 MiB tensors dropped one at a time"
  end
end
