# frozen_string_literal: true

module Heron
  # dtype Symbols and their ABI codes.
  DTYPES = {
    float32: Native::HERON_FLOAT32, float64: Native::HERON_FLOAT64, float16: Native::HERON_FLOAT16,
    bfloat16: Native::HERON_BFLOAT16, int8: Native::HERON_INT8, uint8: Native::HERON_UINT8,
    int32: Native::HERON_INT32, int64: Native::HERON_INT64, bool: Native::HERON_BOOL
  }.freeze
  DTYPE_NAMES = DTYPES.invert.freeze
  ITEMSIZE = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int8: 1, uint8: 1, int32: 4, int64: 8, bool: 1 }.freeze
  # String#pack / #unpack directives (native byte order) of the dtypes Ruby can pack directly.
  PACK = { float32: "f*", float64: "d*", int8: "c*", uint8: "C*", int32: "l*", int64: "q*", bool: "C*" }.freeze
  INT_RANGE = { int8: -128..127, uint8: 0..255, int32: -2**31..(2**31 - 1), int64: -2**63..(2**63 - 1) }.freeze
  FLOAT_DTYPES = %i[float32 float64 float16 bfloat16].freeze

  # The ABI code of a dtype given as a Symbol or String (:float32, "int64").
  def self.dtype_code(dtype)
    key = case dtype
          when Symbol then dtype
          when String then dtype.to_sym
          else raise ::TypeError, "dtype must be a Symbol such as :float32, got #{dtype.class}"
          end
    DTYPES.fetch(key) do
      raise ::ArgumentError, "unknown dtype #{dtype.inspect} (known: #{DTYPES.keys.join(', ')})"
    end
  end

  # The Symbol of a dtype given as a Symbol, String or ABI code.
  def self.dtype_sym(dtype)
    dtype.is_a?(Integer) ? DTYPE_NAMES.fetch(dtype) { raise ::ArgumentError, "unknown dtype code #{dtype}" } :
                           DTYPE_NAMES[dtype_code(dtype)]
  end
end
