# frozen_string_literal: true

require_relative "test_helper"

class OptimTest < Minitest::Test
  include HeronTest

  # A parameter with gradient +g+ set directly (no model needed).
  def param(values, grad)
    p = Heron.tensor(values)
    p.requires_grad = true
    p.grad = Heron.tensor(grad)
    p
  end

  def test_sgd_plain_and_weight_decay
    p = param([1.0, -2.0], [0.5, 0.25])
    Heron::Optim::SGD.new([p], lr: 0.1).step
    assert_close [1.0 - 0.05, -2.0 - 0.025], p.to_a
    q = param([1.0, -2.0], [0.5, 0.25])
    Heron::Optim::SGD.new([q], lr: 0.1, weight_decay: 0.5).step
    assert_close [1.0 - 0.1 * (0.5 + 0.5), -2.0 - 0.1 * (0.25 - 1.0)], q.to_a
  end

  def test_sgd_momentum_two_steps
    p = param([1.0], [1.0])
    opt = Heron::Optim::SGD.new([p], lr: 0.1, momentum: 0.9)
    opt.step                        # buf = 1, p = 1 - 0.1
    p.grad = Heron.tensor([2.0])
    opt.step                        # buf = 0.9 * 1 + 2 = 2.9, p = 0.9 - 0.29
    assert_close [0.9 - 0.29], p.to_a
    r = param([1.0], [1.0])
    nes = Heron::Optim::SGD.new([r], lr: 0.1, momentum: 0.9, nesterov: true)
    nes.step # buf = 1, g = 1 + 0.9 * 1 = 1.9
    assert_close [1.0 - 0.19], r.to_a
  end

  def test_adam_two_steps_closed_form
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p = param([1.0, -1.0], [0.5, -2.0])
    opt = Heron::Optim::Adam.new([p], lr: lr)
    want = [1.0, -1.0]
    m = [0.0, 0.0]
    v = [0.0, 0.0]
    [[0.5, -2.0], [0.1, 3.0]].each_with_index do |g, k|
      p.grad = Heron.tensor(g)
      opt.step
      t = k + 1
      want = want.each_index.map do |i|
        m[i] = b1 * m[i] + (1 - b1) * g[i]
        v[i] = b2 * v[i] + (1 - b2) * g[i]**2
        want[i] - lr / (1 - b1**t) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(1 - b2**t) + eps)
      end
      assert_close want, p.to_a, rtol: 1e-6
    end
  end

  def test_adamw_decays_before_the_update
    lr, wd = 0.1, 0.5
    p = param([2.0], [1.0])
    Heron::Optim::AdamW.new([p], lr: lr, weight_decay: wd).step
    # p *= 1 - lr * wd; first Adam step moves by lr * g / (|g| + eps') = lr
    assert_close [2.0 * (1 - lr * wd) - lr], p.to_a, rtol: 1e-6
  end

  def test_training_a_line_fit_reduces_the_loss
    w = Heron.tensor([0.0]).requires_grad!
    b = Heron.tensor([0.0]).requires_grad!
    xs = Heron.tensor([[0.0], [1.0], [2.0], [3.0]])
    ys = Heron.tensor([[1.0], [3.0], [5.0], [7.0]]) # y = 2x + 1
    opt = Heron::Optim::SGD.new([w, b], lr: 0.05)
    loss = nil
    300.times do
      opt.zero_grad
      loss = Heron.mse_loss(xs * w + b, ys)
      loss.backward
      opt.step
    end
    assert loss.item < 1e-3
    assert_close [2.0], w.to_a, atol: 0.05
    assert_close [1.0], b.to_a, atol: 0.1
  end

  def test_bad_arguments
    p = param([1.0], [1.0])
    assert_raises(ArgumentError) { Heron::Optim::SGD.new([p], lr: -1) }
    assert_raises(ArgumentError) { Heron::Optim::SGD.new([p]) }
    assert_raises(ArgumentError) { Heron::Optim::SGD.new([p], lr: 0.1, nesterov: true) }
    assert_raises(TypeError) { Heron::Optim::SGD.new([1.0], lr: 0.1) }
    assert_raises(ArgumentError) { Heron::Optim::Adam.new([p], betas: [1.5, 0.9]) }
  end
end
