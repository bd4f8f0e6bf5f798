# frozen_string_literal: true

module Heron
  # Optimizers over the fused in-place ops sgd_step_ and adam_step_ (one call per step), with
  # PyTorch's update rules (see python/heron/optim).
  module Optim
    # The common part: parameters, per-parameter state, zero_grad.
    class Optimizer
      attr_reader :params, :state

      def initialize(params)
        @params = Array(params)
        @params.each do |p|
          raise ::TypeError, "#{self.class.name}: parameters must be Heron::Tensor, got #{p.class}" unless p.is_a?(Tensor)
        end
        raise ::ArgumentError, "#{self.class.name}: got an empty parameter list" if @params.empty?
        @state = {}.compare_by_identity
      end

      # Clears the gradients (set_to_none: false fills them with zeros instead).
      def zero_grad(set_to_none: true)
        @params.each { |p| set_to_none ? p.grad = nil : p.zero_grad }
        nil
      end

      # One update of every parameter that has a gradient.
      def step
        Heron.no_grad do
          with_grads = @params.filter_map { |p| (g = p.grad) && [p, g] }
          update(with_grads.map(&:first), with_grads.map(&:last)) unless with_grads.empty?
        end
        nil
      end

      private

      def check_nonneg(name, v)
        raise ::TypeError, "#{self.class.name}: #{name} must be a number" unless v.is_a?(Numeric)
        raise ::ArgumentError, "#{self.class.name}: invalid #{name} #{v} (must be >= 0)" if v.negative?
        v.to_f
      end
    end

    # Stochastic gradient descent with momentum, dampening, Nesterov and weight decay:
    #   g = (maximize ? -grad : grad) + weight_decay * p
    #   buf = g (first step) or momentum * buf + (1 - dampening) * g;  g = nesterov ? g + momentum * buf : buf
    #   p -= lr * g
    class SGD < Optimizer
      attr_accessor :lr

      def initialize(params, lr:, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false, maximize: false)
        super(params)
        @lr = check_nonneg("lr", lr)
        @momentum = check_nonneg("momentum", momentum)
        @dampening = dampening.to_f
        @weight_decay = check_nonneg("weight_decay", weight_decay)
        @nesterov = nesterov
        @maximize = maximize
        if nesterov && (@momentum <= 0 || @dampening != 0)
          raise ::ArgumentError, "SGD: Nesterov momentum requires a momentum and zero dampening"
        end
      end

      private

      def update(ps, gs)
        attrs = { lr: @lr.to_f, momentum: @momentum, dampening: @dampening, weight_decay: @weight_decay,
                  nesterov: @nesterov, maximize: @maximize }
        if @momentum.zero?
          Heron.sgd_step_(ps + gs, first_step: false, **attrs)
          return
        end
        old, new = (0...ps.size).partition { |i| @state.key?(ps[i]) }
        new.each { |i| @state[ps[i]] = { momentum_buffer: Heron.zeros_like(ps[i]) } }
        [[old, false], [new, true]].each do |idx, first|
          next if idx.empty?
          sub = idx.map { |i| ps[i] }
          Heron.sgd_step_(sub + idx.map { |i| gs[i] } + sub.map { |p| @state[p][:momentum_buffer] },
                          first_step: first, **attrs)
        end
      end
    end

    # Adam (and AdamW with decoupled_weight_decay: true):
    #   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
    #   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    class Adam < Optimizer
      attr_accessor :lr

      def initialize(params, lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.0, amsgrad: false,
                     maximize: false, decoupled_weight_decay: false)
        super(params)
        @lr = check_nonneg("lr", lr)
        unless betas.is_a?(Array) && betas.size == 2 && betas.all? { |b| b.is_a?(Numeric) && b >= 0 && b < 1 }
          raise ::ArgumentError, "#{self.class.name}: betas must be two numbers in [0, 1), got #{betas.inspect}"
        end
        @betas = betas.map(&:to_f)
        @eps = check_nonneg("eps", eps)
        @weight_decay = check_nonneg("weight_decay", weight_decay)
        @amsgrad = amsgrad
        @maximize = maximize
        @decoupled = decoupled_weight_decay
      end

      private

      def update(ps, gs)
        ps.each do |p|
          st = (@state[p] ||= { step: 0, exp_avg: Heron.zeros_like(p), exp_avg_sq: Heron.zeros_like(p) })
          st[:max_exp_avg_sq] ||= Heron.zeros_like(p) if @amsgrad
          st[:step] += 1
        end
        (0...ps.size).group_by { |i| @state[ps[i]][:step] }.each do |step, idx|
          sub = idx.map { |i| ps[i] }
          sts = sub.map { |p| @state[p] }
          tensors = sub + idx.map { |i| gs[i] } + sts.map { |s| s[:exp_avg] } + sts.map { |s| s[:exp_avg_sq] }
          tensors += sts.map { |s| s[:max_exp_avg_sq] } if @amsgrad
          Heron.adam_step_(tensors, lr: @lr.to_f, beta1: @betas[0], beta2: @betas[1], eps: @eps,
                                    weight_decay: @weight_decay, amsgrad: @amsgrad, maximize: @maximize, step: step,
                                    decoupled_weight_decay: @decoupled)
        end
      end
    end

    # Adam with decoupled weight decay (weight_decay defaults to 1e-2).
    class AdamW < Adam
      def initialize(params, lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-2, amsgrad: false,
                     maximize: false)
        super(params, lr: lr, betas: betas, eps: eps, weight_decay: weight_decay, amsgrad: amsgrad,
                      maximize: maximize, decoupled_weight_decay: true)
      end
    end
  end
end
