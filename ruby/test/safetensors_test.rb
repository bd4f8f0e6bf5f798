# frozen_string_literal: true

require_relative "test_helper"

class SafetensorsTest < Minitest::Test
  include HeronTest

  def tensors
    {
      "weight" => Heron.tensor([[1.5, -2.0], [0.25, 8.0]]),
      "bias" => Heron.tensor([1.0, 2.0], dtype: :float64),
      "ids" => Heron.tensor([[1, -2, 3]], dtype: :int32),
      "mask" => Heron.tensor([true, false]),
      "half" => Heron.tensor([0.5, -4.0], dtype: :float16),
      "scalar" => Heron.tensor(7)
    }
  end

  def check_same(want, got)
    assert_equal want.keys.sort, got.keys
    want.each do |k, t|
      assert_equal t.dtype, got[k].dtype, k
      assert_equal t.shape, got[k].shape, k
      assert_equal t.to_a, got[k].to_a, k
    end
  end

  def test_file_round_trip_with_metadata
    Dir.mktmpdir do |dir|
      path = File.join(dir, "t.safetensors")
      Heron.save_safetensors(path, tensors, metadata: { "format" => "pt", "epoch" => 3 })
      got, meta = Heron.load_safetensors(path, metadata: true)
      check_same(tensors, got)
      assert_equal({ "format" => "pt", "epoch" => "3" }, meta)
      check_same(tensors, Heron.load_safetensors(path))
      # the header is an 8-byte little-endian length and JSON naming every tensor
      bytes = File.binread(path)
      n = bytes[0, 8].unpack1("Q<")
      header = JSON.parse(bytes[8, n])
      assert_equal %w[F32 F64 I32 BOOL F16 I64].sort, tensors.keys.map { |k| header[k]["dtype"] }.sort
    end
  end

  def test_buffer_round_trip
    bytes = Heron.save_safetensors_buffer(tensors)
    assert_equal Encoding::BINARY, bytes.encoding
    check_same(tensors, Heron.load_safetensors_buffer(bytes))
  end

  def test_bad_files
    e = assert_raises(ArgumentError) { Heron.load_safetensors_buffer("garbage") }
    assert_match(/too few for the 8-byte header length/, e.message)
    assert_raises(Heron::Error) { Heron.load_safetensors("/nonexistent/x.safetensors") }
  end
end
