# frozen_string_literal: true

module Heron
  # Runs the block with grad mode off on this thread (ops are not recorded), then restores it.
  def self.no_grad(&block)
    set_grad_mode(false, &block)
  end

  # Runs the block with grad mode on, then restores the previous mode.
  def self.enable_grad(&block)
    set_grad_mode(true, &block)
  end

  def self.set_grad_mode(on)
    prev = FFI::MemoryPointer.new(:int32)
    check(Native.heron_set_grad_enabled(on ? 1 : 0, prev))
    begin
      yield
    ensure
      Native.heron_set_grad_enabled(prev.read_int32, nil)
    end
  end
  private_class_method :set_grad_mode

  def self.grad_enabled?
    Native.heron_is_grad_enabled == 1
  end

  # Gradients of +outputs+ (scalars, or with +grad_outputs+) with respect to +inputs+, as new
  # tensors (nil for an unused input when allow_unused), without touching any .grad.
  def self.grad(outputs, inputs, grad_outputs: nil, retain_graph: false, allow_unused: false)
    outputs = outputs.is_a?(Array) ? outputs : [outputs]
    inputs = inputs.is_a?(Array) ? inputs : [inputs]
    [outputs, inputs].each do |list|
      list.each { |t| raise ::TypeError, "grad: expected Heron::Tensor, got #{t.class}" unless t.is_a?(Tensor) }
    end
    roots = FFI::MemoryPointer.new(:pointer, outputs.size).put_array_of_pointer(0, outputs.map(&:ptr))
    gs = nil
    if grad_outputs
      gs = FFI::MemoryPointer.new(:pointer, outputs.size)
      gs.put_array_of_pointer(0, (grad_outputs.is_a?(Array) ? grad_outputs : [grad_outputs]).map { |g| g ? g.ptr : FFI::Pointer::NULL })
    end
    ins = FFI::MemoryPointer.new(:pointer, inputs.size).put_array_of_pointer(0, inputs.map(&:ptr))
    out = FFI::MemoryPointer.new(:pointer, inputs.size)
    check(Native.heron_autograd_grad(roots, gs, outputs.size, ins, inputs.size, retain_graph ? 1 : 0,
                                     allow_unused ? 1 : 0, out))
    out.get_array_of_pointer(0, inputs.size).map { |p| p.null? ? nil : Tensor.from_raw(p) }
  end
end
