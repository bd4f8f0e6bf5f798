# frozen_string_literal: true

require_relative "test_helper"

class TensorTest < Minitest::Test
  include HeronTest

  # Values exactly representable in every dtype of the row.
  DATA = {
    float32: [[1.5, -2.25, 0.0], [3.0e10, -1.0e-3, 7.0]],
    float64: [[1.5, -2.25, 0.0], [1.0e300, -1.0e-300, 7.0]],
    float16: [[1.5, -2.25, 0.0], [65504.0, -0.5, 7.0]],
    bfloat16: [[1.5, -2.25, 0.0], [3.0e38.floor(-36).to_f, -0.5, 7.0]],
    int8: [[-128, 127, 0], [1, -1, 5]],
    uint8: [[0, 255, 1], [2, 128, 7]],
    int32: [[-2**31, 2**31 - 1, 0], [1, -1, 5]],
    int64: [[-2**63, 2**63 - 1, 0], [1, -1, 5]],
    bool: [[true, false, true], [false, false, true]]
  }.freeze

  def test_round_trip_every_dtype
    DATA.each do |dt, rows|
      want = dt == :bfloat16 ? rows.map { |r| r.map { |v| bf16(v) } } : rows
      t = Heron.tensor(rows, dtype: dt)
      assert_equal [2, 3], t.shape, dt.to_s
      assert_equal dt, t.dtype
      assert_equal "cpu", t.device
      assert_equal 6, t.numel
      assert_equal 2, t.ndim
      if %i[float32].include?(dt)
        assert_close want, t.to_a, rtol: 1e-7
      else
        assert_equal want, t.to_a, dt.to_s
      end
      assert_equal t.to_a.flatten, t.to_flat_a
      assert_equal 6 * Heron::ITEMSIZE[dt], t.to_binary.bytesize
      back = Heron.from_string(t.to_binary, dtype: dt, shape: [2, 3])
      assert_equal t.to_a, back.to_a, "from_string(to_binary) #{dt}"
    end
  end

  # bfloat16 rounding of a double (round to nearest even on the float32 bits).
  def bf16(v)
    bits = [v].pack("f").unpack1("L")
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    [bits].pack("L").unpack1("f")
  end

  def test_packed_strings_match_native_encoding
    t = Heron.from_string([1.5, -2.0, 4.0, 8.0].pack("f*"), dtype: :float32, shape: [2, 2])
    assert_equal [[1.5, -2.0], [4.0, 8.0]], t.to_a
    assert_equal [1.5, -2.0, 4.0, 8.0].pack("f*"), t.to_binary
    i = Heron.from_string([7, -9].pack("q*"), dtype: :int64)
    assert_equal [2], i.shape
    assert_equal [7, -9], i.to_a
    # float16 bits of 1.0 (0x3C00) and -2.0 (0xC000)
    h = Heron.from_string([0x3C00, 0xC000].pack("S*"), dtype: :float16)
    assert_equal [1.0, -2.0], h.to_a
    assert_equal [0x3C00, 0xC000], h.to_binary.unpack("S*")
  end

  def test_inferred_dtypes_and_scalars
    assert_equal :int64, Heron.tensor([1, 2]).dtype
    assert_equal :float32, Heron.tensor([1, 2.5]).dtype
    assert_equal :bool, Heron.tensor([true]).dtype
    s = Heron.tensor(3.5)
    assert_equal [], s.shape
    assert_equal 3.5, s.item
    assert_equal 3.5, s.to_a
    assert_equal 7, Heron.tensor([[7]]).item
    assert_equal true, Heron.tensor([true]).item
    e = Heron.tensor([], dtype: :float32)
    assert_equal [0], e.shape
    assert_equal [], e.to_a
    assert_equal [[1, 2], [3, 4], [5, 6]], Heron.tensor([1, 2, 3, 4, 5, 6], shape: [3, 2]).to_a
  end

  def test_bad_data_is_rejected_before_the_abi
    assert_raises(ArgumentError) { Heron.tensor([[1, 2], [3]]) }
    assert_raises(ArgumentError) { Heron.tensor([1, 2, 3], shape: [2, 2]) }
    assert_raises(TypeError) { Heron.tensor(["a"]) }
    assert_raises(TypeError) { Heron.tensor([1.5], dtype: :int32) }
    assert_raises(RangeError) { Heron.tensor([300], dtype: :int8) }
    assert_raises(RangeError) { Heron.tensor([-1], dtype: :uint8) }
    assert_raises(ArgumentError) { Heron.tensor([1], dtype: :complex64) }
    assert_raises(TypeError) { Heron.tensor([1], dtype: 3.0) }
    assert_raises(TypeError) { Heron.from_string([1, 2], dtype: :int8) }
    assert_raises(ArgumentError) { Heron.from_string("abc", dtype: :int32) }
    assert_raises(ArgumentError) { Heron.from_string("abcd", dtype: :int32, shape: [2]) }
    assert_raises(TypeError) { Heron.tensor([1], shape: [1.0]) }
  end

  def test_operators_with_numbers_promote_like_python_scalars
    a = Heron.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert_equal [[2.0, 3.0], [4.0, 5.0]], (a + 1).to_a
    assert_equal [[0.0, 1.0], [2.0, 3.0]], (a - 1).to_a
    assert_equal [[2.0, 4.0], [6.0, 8.0]], (a * 2).to_a
    assert_equal [[0.5, 1.0], [1.5, 2.0]], (a / 2).to_a
    assert_equal [[-1.0, -2.0], [-3.0, -4.0]], (-a).to_a
    assert_equal [[0.0, -1.0], [-2.0, -3.0]], (1 - a).to_a
    assert_equal [[3.0, 6.0], [9.0, 12.0]], (3 * a).to_a
    assert_close [1.0, 0.5, 1.0 / 3, 0.25], (1.0 / a).to_flat_a, rtol: 1e-6
    assert_equal [[1.0, 4.0], [9.0, 16.0]], (a**2).to_a
    assert_equal [[2.0, 4.0], [6.0, 8.0]], (a + a).to_a
    # an int64 tensor + 2.5 gives float32 (the number does not widen to float64); int + int stays int64
    i = Heron.tensor([1, 2])
    assert_equal :float32, (i + 2.5).dtype
    assert_equal [3.5, 4.5], (i + 2.5).to_a
    assert_equal :int64, (i * 3).dtype
    assert_equal :float16, (Heron.tensor([1.0], dtype: :float16) + 2.0).dtype
    assert_equal :float64, (Heron.tensor([1.0], dtype: :float64) * 2).dtype
    assert_equal [1, 0], (i % 2).to_a
    assert_raises(TypeError) { a + "x" }
    assert_raises(TypeError) { "x" + a }
  end

  def test_wrapped_number_and_typed_scalar
    w = Heron.scalar_tensor(2)
    assert_equal [], w.shape
    assert_equal 2, w.item
    t = Heron.scalar_tensor(2.5, dtype: :float64)
    assert_equal :float64, t.dtype
    assert_equal 2.5, t.item
  end

  def test_release_is_safe_and_final
    t = Heron.tensor([1.0])
    t.release!
    assert t.released?
    t.release!
    assert_raises(Heron::Error) { t.shape }
    assert_raises(Heron::Error) { Heron.exp(t) }
    assert_match(/released/, t.inspect)
  end

  def test_no_leak_through_tensor_traffic
    assert_no_leak do
      100.times { |k| Heron.tensor([k, k + 1]) + 1.5 }
      Heron.tensor([[1.0, 2.0]]).to_a
    end
  end
end
