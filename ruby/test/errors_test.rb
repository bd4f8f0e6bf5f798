# frozen_string_literal: true

require_relative "test_helper"

class ErrorsTest < Minitest::Test
  include HeronTest

  def x
    Heron.tensor([1.0, 2.0])
  end

  def test_wrong_types_and_counts_are_caught_before_the_abi
    e = assert_raises(TypeError) { Heron.add("a", x) }
    assert_match(/add: input 'input' must be a Heron::Tensor or a number, got String/, e.message)
    refute_kind_of Heron::ErrorInfo, e
    assert_raises(TypeError) { Heron.exp(nil) }
    assert_raises(TypeError) { Heron.sum(x, dim: "a") }
    assert_raises(TypeError) { Heron.sum(x, keepdim: 1) }
    assert_raises(TypeError) { Heron.round(x, decimals: 1.5) }
    assert_raises(TypeError) { Heron.softplus(x, beta: "2") }
    assert_raises(TypeError) { Heron.gelu(x, approximate: 3) }
    assert_raises(TypeError) { Heron.add(x, x, alpha: "2") }
    assert_raises(TypeError) { Heron.zeros(size: [2], dtype: 1.5) }
    assert_raises(ArgumentError) { Heron.zeros(size: [2], dtype: :nope) }
    assert_raises(ArgumentError) { Heron.exp(x, x) }           # too many inputs
    assert_raises(ArgumentError) { Heron.add(x) }              # too few
    assert_raises(ArgumentError) { Heron.exp(x, alpha: 1) }    # unknown keyword
    assert_raises(ArgumentError) { Heron.log_softmax(x) }      # missing required keyword
    assert_raises(ArgumentError) { Heron.gelu(x, approximate: "a\0b") }
    assert_raises(TypeError) { x.requires_grad = 1 }
    assert_raises(TypeError) { Heron::Session.new(42) }
    assert_raises(TypeError) { Heron.save_safetensors("/tmp/x.safetensors", [x]) }
    assert_raises(TypeError) { Heron.manual_seed(1.5) }
  end

  def test_abi_errors_map_to_ruby_exceptions_with_the_abi_message
    e = assert_raises(ArgumentError) { Heron.add(x, Heron.tensor([1.0, 2.0, 3.0])) }
    assert_kind_of Heron::InvalidArgumentError, e
    assert_equal Heron::Native::HERON_ERR_INVALID_ARGUMENT, e.code
    assert_equal "add", e.op
    assert_match(/add: shapes \[2\] and \[3\] cannot be broadcast/, e.message)

    e = assert_raises(IndexError) { Heron.select(x, dim: 0, index: 5) }
    assert_kind_of Heron::IndexOutOfRangeError, e
    assert_equal Heron::Native::HERON_ERR_INDEX, e.code
    assert_match(/index 5 is out of bounds/, e.message)

    e = assert_raises(TypeError) { Heron.bitwise_and(x, x) }
    assert_kind_of Heron::DTypeError, e
    assert_equal Heron::Native::HERON_ERR_TYPE, e.code
    assert_equal "bitwise_and", e.op

    e = assert_raises(ArgumentError) { Heron.gelu(x, approximate: "foo") }
    assert_match(/must be one of 'none', 'tanh'/, e.message)

    e = assert_raises(Heron::Error) { Heron.zeros(size: [2], device: "nope") }
    assert_equal Heron::Native::HERON_ERR_NOT_FOUND, e.code
    assert_match(/unknown device 'nope'/, e.message)

    e = assert_raises(TypeError) { Heron.tensor([1], dtype: :int8).requires_grad = true }
    assert_match(/only floating-point tensors can require gradients/, e.message)

    e = assert_raises(Heron::Error) { Heron::Model.new("/nonexistent/model.heron") }
    assert_match(%r{cannot open '/nonexistent/model.heron'}, e.message)
  end

  def test_errors_leave_no_handles_behind
    assert_no_leak do
      10.times do
        Heron.add(x, Heron.tensor([1.0, 2.0, 3.0]))
      rescue ArgumentError
        nil
      end
      10.times do
        Heron.add(x, 2.5, alpha: "bad")
      rescue TypeError
        nil
      end
    end
  end
end
