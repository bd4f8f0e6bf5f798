# frozen_string_literal: true

require_relative "test_helper"
require "json"

class OpsTest < Minitest::Test
  include HeronTest

  def x
    Heron.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]])
  end

  def test_unary_vs_closed_forms
    assert_close x.to_a.flatten.map { |v| Math.exp(v) }, Heron.exp(x).to_flat_a
    assert_close x.to_a.flatten.map { |v| Math.tanh(v) }, x.tanh.to_flat_a
    assert_close x.to_a.flatten.map { |v| 1 / (1 + Math.exp(-v)) }, x.sigmoid.to_flat_a
    assert_equal [[1.0, 2.0, 3.0], [0.0, 0.0, 0.5]], x.relu.to_a
  end

  def test_log_softmax_closed_form_and_method_form
    rows = x.to_a
    want = rows.map do |r|
      lse = Math.log(r.sum { |v| Math.exp(v) })
      r.map { |v| v - lse }
    end
    assert_close want, Heron.log_softmax(x, dim: 1).to_a
    assert_close want, x.log_softmax(dim: 1).to_a
    cols = Heron.softmax(x, dim: 0).to_a.transpose.map(&:sum)
    assert_close [1.0, 1.0, 1.0], cols
  end

  def test_reductions_with_keyword_defaults
    assert_equal 5.5, x.sum.item
    assert_equal [6.0, -0.5], x.sum(dim: 1).to_a
    assert_equal [6.0, -0.5], x.sum(dim: [1]).to_a
    assert_equal [[6.0], [-0.5]], x.sum(dim: 1, keepdim: true).to_a
    assert_equal :float64, x.sum(dtype: :float64).dtype
    assert_equal [2, 2], x.argmax(dim: 1).to_a
    # var: default is the unbiased estimator (correction 1), a closed form over [1, 2, 3] is 1
    assert_close [1.0], Heron.var(Heron.tensor([1.0, 2.0, 3.0])).to_flat_a
  end

  def test_binary_attributes_and_defaults
    a = Heron.tensor([1.0, 2.0])
    b = Heron.tensor([10.0, 20.0])
    assert_equal [11.0, 22.0], Heron.add(a, b).to_a
    assert_equal [21.0, 42.0], Heron.add(a, b, alpha: 2).to_a
    assert_equal [6.0, 12.0], a.add(b, alpha: 0.5).to_a
    assert_equal [-1.5, -2.25], Heron.div(Heron.tensor([-3.0, -4.5]), 2).to_a
    assert_equal [-2.0, -3.0], Heron.div(Heron.tensor([-3.0, -4.5]), 2, rounding_mode: "floor").to_a
    assert_equal [-1.0, -2.0], Heron.div(Heron.tensor([-3.0, -4.5]), 2, rounding_mode: "trunc").to_a
    # softplus defaults: beta 1, threshold 20 -> log(1 + e^x), and x itself above the threshold
    assert_close [Math.log(1 + Math.exp(0.5)), 30.0], Heron.softplus(Heron.tensor([0.5, 30.0])).to_flat_a
    assert_close [Math.log(1 + Math.exp(1.0)) / 2], Heron.softplus(Heron.tensor([0.5]), beta: 2).to_flat_a
    gelu_tanh = ->(v) { 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math::PI) * (v + 0.044715 * v**3))) }
    assert_close [gelu_tanh.call(0.7)], Heron.gelu(Heron.tensor([0.7]), approximate: "tanh").to_flat_a
    assert_close [0.5 * 0.7 * (1 + Math.erf(0.7 / Math.sqrt(2)))], Heron.gelu(Heron.tensor([0.7])).to_flat_a
  end

  def test_matmul_and_linear_with_optional_bias
    a = Heron.tensor([[1.0, 2.0], [3.0, 4.0]])
    w = Heron.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    assert_equal [[7.0, 10.0], [15.0, 22.0]], Heron.matmul(a, a).to_a
    assert_equal [[1.0, 3.0, 4.0], [3.0, 7.0, 8.0]], Heron.linear(a, w).to_a
    assert_equal [[2.0, 3.0, 3.0], [4.0, 7.0, 7.0]], Heron.linear(a, w, Heron.tensor([1.0, 0.0, -1.0])).to_a
    assert_equal [[1.0, 3.0, 4.0], [3.0, 7.0, 8.0]], Heron.linear(a, w, nil).to_a
  end

  def test_variadic_inputs_and_outputs
    a = Heron.tensor([1, 2])
    b = Heron.tensor([3])
    assert_equal [1, 2, 3], Heron.concat([a, b]).to_a
    assert_equal [[1, 2], [5, 6]], Heron.stack([a, Heron.tensor([5, 6])]).to_a
    assert_equal [[1, 5], [2, 6]], Heron.stack([a, Heron.tensor([5, 6])], dim: 1).to_a
    parts = Heron.split(Heron.arange(end: 10), split_size: 3)
    assert_equal [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]], parts.map(&:to_a)
    # more outputs than the first guess of the output capacity (BUFFER_TOO_SMALL retry)
    many = Heron.split(Heron.arange(end: 40), split_size: 1)
    assert_equal 40, many.size
    assert_equal (0...40).to_a, many.map(&:item)
    assert_equal [[0, 1], [2, 3], [4]], Heron.arange(end: 5).chunk(chunks: 3).map(&:to_a)
    assert_raises(TypeError) { Heron.concat(a) }
    assert_raises(TypeError) { Heron.concat([a, "b"]) }
  end

  def test_several_outputs
    v, i = Heron.sort(Heron.tensor([3.0, 1.0, 2.0]))
    assert_equal [1.0, 2.0, 3.0], v.to_a
    assert_equal [1, 2, 0], i.to_a
    v, i = Heron.topk(Heron.tensor([3.0, 1.0, 2.0]), k: 2)
    assert_equal [3.0, 2.0], v.to_a
    assert_equal [0, 2], i.to_a
    v, = Heron.tensor([3, 1, 2]).sort(descending: true)
    assert_equal [3, 2, 1], v.to_a
  end

  def test_creation_ops_dtype_and_reserved_word_attribute
    assert_equal [[0, 0, 0]], Heron.zeros(size: [1, 3], dtype: :int32).to_a
    assert_equal :int32, Heron.zeros(size: [1, 3], dtype: :int32).dtype
    assert_equal :float32, Heron.ones(size: 2).dtype
    assert_equal [2.5, 2.5], Heron.full(size: [2], fill_value: 2.5).to_a
    assert_equal [1, 3, 5], Heron.arange(start: 1, end: 6, step: 2).to_a
    assert_close [0.0, 0.25, 0.5, 0.75, 1.0], Heron.linspace(start: 0, end: 1, steps: 5).to_a
    assert_equal [[1.0, 0.0], [0.0, 1.0]], Heron.eye(n: 2).to_a
    assert_equal [1, 2], Heron.slice(Heron.tensor([0, 1, 2, 3]), dim: 0, start: 1, end: 3).to_a
    assert_equal [1, 2], Heron.cast(Heron.tensor([1.7, 2.2]), dtype: :int64).to_a
    assert_equal [[1, 2], [3, 4]], Heron.arange(start: 1, end: 5).reshape(shape: [2, 2]).to_a
  end

  def test_random_ops_follow_manual_seed
    Heron.manual_seed(1234)
    a = Heron.randn(size: [5]).to_a
    Heron.manual_seed(1234)
    assert_equal a, Heron.randn(size: [5]).to_a
    r = Heron.rand(size: [1000], low: 2.0, high: 3.0).to_a
    assert r.all? { |v| v >= 2.0 && v < 3.0 }
    assert_equal (0...10).to_a, Heron.randperm(n: 10).to_a.sort
  end

  def test_every_schema_op_has_a_module_function_with_the_schema_keywords
    schema = JSON.parse(Heron::Native.heron_ops_schema_json)["ops"]
    assert_equal schema.map { |o| o["name"] }, Heron::Ops::SPECS.map(&:name)
    schema.each do |o|
      m = Heron.method(o["name"])
      keys = m.parameters.select { |k, _| k == :key || k == :keyreq }.map { |_, n| n.to_s }
      assert_equal o["attrs"].map { |a| a["name"] }.sort, keys.sort, o["name"]
      required = m.parameters.select { |k, _| k == :keyreq }.map { |_, n| n.to_s }
      assert_equal o["attrs"].select { |a| a["required"] }.map { |a| a["name"] }, required, o["name"]
    end
    methods = schema.select { |o| o["method"] }.map { |o| o["name"].to_sym }
    assert_equal methods, Heron::METHODS
    methods.each { |m| assert Heron::Tensor.method_defined?(m), m.to_s }
  end

  def test_spec_defaults_match_the_library_schema
    schema = JSON.parse(Heron::Native.heron_ops_schema_json)["ops"].to_h { |o| [o["name"], o] }
    Heron::Ops::SPECS.each do |spec|
      spec.attrs.zip(schema.fetch(spec.name)["attrs"]).each do |(name, type, optional, has_default, default), a|
        assert_equal a["name"], name.to_s, spec.name
        assert_equal a["type"], type.to_s, "#{spec.name}.#{name}"
        assert_equal a["optional"], optional, "#{spec.name}.#{name}"
        assert_equal !a["required"], has_default, "#{spec.name}.#{name}"
        next unless has_default
        want = a["default"]
        want = want.to_sym if type == :dtype && want
        if want.nil?
          assert_nil default, "#{spec.name}.#{name}"
        else
          assert_equal want, default, "#{spec.name}.#{name}"
        end
      end
    end
  end

  def test_an_explicit_value_equal_to_the_default_but_of_another_kind_is_sent
    i = Heron.tensor([1, 2])
    assert_equal :int64, Heron.add(i, i, alpha: 1).dtype      # the default (an int scalar): left out
    assert_equal [2, 4], Heron.add(i, i, alpha: 1).to_a
    e = assert_raises(StandardError) { Heron.add(i, i, alpha: 1.5) } # a float alpha on ints is refused
    assert_kind_of Heron::ErrorInfo, e
  end

  def test_generic_op_call
    a = Heron.tensor([1.0, 2.0])
    assert_equal [3.0, 5.0], Heron.op_call("add", [a, Heron.tensor([1.0, 1.5])], { alpha: 2 }).to_a
    assert_equal [3.0], Heron.op_call(:sum, [a]).to_flat_a
    assert_raises(ArgumentError) { Heron.op_call("nope", [a]) }
    assert_raises(ArgumentError) { Heron.op_call("add", [a]) }
    assert_raises(ArgumentError) { Heron.op_call("add", [a, a], { beta: 1 }) }
  end

  def test_in_place_ops_write_into_input_zero
    dst = Heron.zeros(size: [2])
    Heron.copy_(dst, Heron.tensor([4.0, 5.0]))
    assert_equal [4.0, 5.0], dst.to_a
  end
end
