# frozen_string_literal: true

require_relative "test_helper"

class AutogradTest < Minitest::Test
  include HeronTest

  def leaf(values)
    t = Heron.tensor(values)
    t.requires_grad = true
    t
  end

  def test_square_sum_gradient_is_2x
    x = leaf([1.0, -2.0, 3.0])
    assert x.requires_grad?
    assert x.leaf?
    assert_nil x.grad
    (x * x).sum.backward
    assert_close [2.0, -4.0, 6.0], x.grad.to_a
  end

  def test_chain_rule_closed_forms
    x = leaf([0.5, 1.0])
    y = leaf([2.0, -1.0])
    z = (Heron.sin(x) * y + x.exp).sum
    refute z.leaf?
    assert_equal "SumBackward", z.grad_fn.sub(/\d+$/, "")
    z.backward
    assert_close [0.5, 1.0].zip([2.0, -1.0]).map { |a, b| Math.cos(a) * b + Math.exp(a) }, x.grad.to_a
    assert_close [Math.sin(0.5), Math.sin(1.0)], y.grad.to_a
  end

  def test_gradients_accumulate_and_zero_grad
    x = leaf([1.0, 2.0])
    (x * 3).sum.backward
    (x * 3).sum.backward
    assert_close [6.0, 6.0], x.grad.to_a
    x.zero_grad
    assert_equal [0.0, 0.0], x.grad.to_a
    x.grad = nil
    assert_nil x.grad
  end

  def test_backward_with_a_gradient_and_retain_graph
    x = leaf([1.0, 2.0])
    y = x * x
    y.backward(Heron.tensor([1.0, 0.5]), retain_graph: true)
    assert_close [2.0, 2.0], x.grad.to_a
    y.backward(Heron.tensor([1.0, 1.0]))
    assert_close [4.0, 6.0], x.grad.to_a
  end

  def test_no_grad_and_detach
    x = leaf([1.0])
    y = Heron.no_grad { x * 2 }
    refute y.requires_grad
    assert Heron.grad_enabled?
    Heron.no_grad { refute Heron.grad_enabled? }
    assert Heron.grad_enabled?
    d = (x * 2).detach
    refute d.requires_grad
    assert_equal [2.0], d.to_a
  end

  def test_functional_grad_leaves_dot_grad_alone
    x = leaf([3.0])
    y = x * x * x
    g, = Heron.grad(y.sum, [x])
    assert_close [27.0], g.to_a
    assert_nil x.grad
  end

  def test_softmax_cross_entropy_gradient_closed_form
    logits = leaf([[1.0, 2.0, 0.5]])
    target = Heron.tensor([1])
    Heron.cross_entropy(logits, target).backward
    exps = [1.0, 2.0, 0.5].map { |v| Math.exp(v) }
    p = exps.map { |e| e / exps.sum }
    assert_close [p[0], p[1] - 1, p[2]], logits.grad.to_flat_a
  end
end
