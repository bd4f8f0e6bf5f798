# frozen_string_literal: true

module Heron
  # An n-dimensional array owned by the engine. Tensor is a C object of the extension heron_native
  # holding one heron_tensor handle, released with heron_tensor_release when the Tensor is garbage
  # collected (or at once by #release!). The extension also defines #release!, #released?, #ndim,
  # #shape, #numel, #dtype, #address (the handle, an Integer) and Tensor.from_address.
  class Tensor
    # An FFI::Pointer to a tensor's handle that keeps the tensor (and so the handle) alive while the
    # pointer is referenced: what ffi calls take.
    class HandleRef < FFI::Pointer
      def initialize(tensor)
        super(tensor.address)
        @tensor = tensor
      end
    end

    # Wraps a new (owned) raw handle (an FFI::Pointer).
    def self.from_raw(raw)
      raise Heron::Error, "NULL tensor handle" if raw.null?
      from_address(raw.address)
    end

    # The handle as an FFI::Pointer for ffi calls; raises once released.
    def ptr
      HandleRef.new(self)
    end

    def strides
      n = ndim
      return [] if n.zero?
      out = FFI::MemoryPointer.new(:int64, n)
      Heron.check(Native.heron_tensor_strides(ptr, out, n))
      out.read_array_of_int64(n)
    end

    # "cpu", or "cuda:0" for a device tensor.
    def device
      name = FFI::MemoryPointer.new(:pointer)
      index = FFI::MemoryPointer.new(:int32)
      Heron.check(Native.heron_tensor_device(ptr, name, index))
      kind = name.read_pointer.read_string
      kind == "cpu" ? kind : "#{kind}:#{index.read_int32}"
    end

    def contiguous?
      out = FFI::MemoryPointer.new(:int32)
      Heron.check(Native.heron_tensor_is_contiguous(ptr, out))
      out.read_int32 == 1
    end

    # The value of a one-element tensor: Float, Integer, or true/false.
    def item
      dt = dtype
      if FLOAT_DTYPES.include?(dt)
        out = FFI::MemoryPointer.new(:double)
        Heron.check(Native.heron_tensor_item_double(ptr, out))
        out.read_double
      else
        out = FFI::MemoryPointer.new(:int64)
        Heron.check(Native.heron_tensor_item_int64(ptr, out))
        dt == :bool ? out.read_int64 != 0 : out.read_int64
      end
    end

    # The elements' bytes in row-major order, in the dtype's own encoding (native byte order).
    def to_binary
      nbytes = numel * ITEMSIZE.fetch(dtype)
      return "".b if nbytes.zero?
      buf = FFI::MemoryPointer.new(:uint8, nbytes)
      Heron.check(Native.heron_tensor_to_host(ptr, buf, nbytes))
      buf.read_bytes(nbytes)
    end

    # The elements as a flat Array in row-major order (Float, Integer or true/false).
    def to_flat_a
      dt = dtype
      case dt
      when :float16, :bfloat16
        Heron.no_grad { Heron.cast(self, dtype: :float32) }.to_flat_a
      when :bool
        to_binary.unpack("C*").map { |v| v != 0 }
      else
        to_binary.unpack(PACK.fetch(dt))
      end
    end

    # The elements as nested Arrays of the tensor's shape (a 0-d tensor gives its value).
    def to_a
      flat = to_flat_a
      sh = shape
      return flat[0] if sh.empty?
      Tensor.nest(flat, sh)
    end

    def self.nest(flat, shape)
      return flat if shape.size == 1
      inner = shape[1..]
      step = inner.reduce(1, :*)
      Array.new(shape[0]) { |i| nest(flat[i * step, step], inner) }
    end

    def inspect
      return "#<Heron::Tensor released>" if released?
      data = numel <= 20 ? to_a.inspect : "..."
      "#<Heron::Tensor shape=#{shape} dtype=#{dtype} device=#{device} #{data}>"
    end
    alias to_s inspect

    # ---- arithmetic: + - * / % ** and unary - are generated (ops_gen.rb)
    def +@ = self

    # Lets `2 * t`, `1 - t` work: the number becomes a wrapped-number tensor.
    def coerce(number)
      raise ::TypeError, "#{number.class} can't be coerced into Heron::Tensor" unless Heron.scalar_like?(number)
      [Heron.scalar_tensor(number), self]
    end

    # ---- autograd
    def requires_grad
      out = FFI::MemoryPointer.new(:int32)
      Heron.check(Native.heron_tensor_requires_grad(ptr, out))
      out.read_int32 == 1
    end
    alias requires_grad? requires_grad

    def requires_grad=(flag)
      raise ::TypeError, "requires_grad must be true or false, got #{flag.inspect}" unless [true, false].include?(flag)
      Heron.check(Native.heron_tensor_set_requires_grad(ptr, flag ? 1 : 0))
    end

    # Marks the tensor as requiring gradients and returns it (for chaining).
    def requires_grad!(flag = true)
      self.requires_grad = flag
      self
    end

    def leaf?
      out = FFI::MemoryPointer.new(:int32)
      Heron.check(Native.heron_tensor_is_leaf(ptr, out))
      out.read_int32 == 1
    end

    # The accumulated gradient, or nil.
    def grad
      out = FFI::MemoryPointer.new(:pointer)
      Heron.check(Native.heron_tensor_grad(ptr, out))
      raw = out.read_pointer
      raw.null? ? nil : Tensor.from_raw(raw)
    end

    # Replaces the gradient (nil clears it).
    def grad=(value)
      raise ::TypeError, "grad must be a Heron::Tensor or nil" unless value.nil? || value.is_a?(Tensor)
      Heron.check(Native.heron_tensor_set_grad(ptr, value&.ptr))
    end

    # Fills the existing gradient with zeros (nothing when there is none).
    def zero_grad
      Heron.check(Native.heron_tensor_zero_grad(ptr))
      self
    end

    def retain_grad
      Heron.check(Native.heron_tensor_retain_grad(ptr))
      self
    end

    # A tensor sharing the data, outside the graph.
    def detach
      out = FFI::MemoryPointer.new(:pointer)
      Heron.check(Native.heron_tensor_detach(ptr, out))
      Tensor.from_raw(out.read_pointer)
    end

    # "MulBackward" and so on, or nil for a leaf.
    def grad_fn
      out = FFI::MemoryPointer.new(:pointer)
      Heron.check(Native.heron_tensor_grad_fn_name(ptr, out))
      p = out.read_pointer
      p.null? ? nil : p.read_string
    end

    # Backpropagates from this tensor (a scalar, or with +gradient+ of its shape).
    def backward(gradient = nil, retain_graph: false)
      raise ::TypeError, "gradient must be a Heron::Tensor or nil" unless gradient.nil? || gradient.is_a?(Tensor)
      ts = FFI::MemoryPointer.new(:pointer, 1).put_pointer(0, ptr)
      gs = FFI::MemoryPointer.new(:pointer, 1).put_pointer(0, gradient ? gradient.ptr : nil)
      Heron.check(Native.heron_backward(ts, gs, 1, retain_graph ? 1 : 0))
      nil
    end
  end

  # ---- creation

  # A tensor from a (nested) Array or a number. dtype: defaults to :bool for true/false data,
  # :float32 when any element is a Float, else :int64. shape: reshapes the data (same count).
  def self.tensor(data, dtype: nil, shape: nil, device: nil)
    return data.detach if data.is_a?(Tensor) && dtype.nil? && shape.nil? && device.nil?
    inferred = infer_shape(data)
    flat = data.is_a?(Array) ? data.flatten : [data]
    unless inferred.reduce(1, :*) == flat.size
      raise ::ArgumentError, "ragged nested array: shape #{inferred} does not hold #{flat.size} elements"
    end
    dt = dtype.nil? ? infer_dtype(flat) : dtype_sym(dtype)
    shape = shape.nil? ? inferred : check_shape(shape)
    if shape.reduce(1, :*) != flat.size
      raise ::ArgumentError, "shape #{shape} needs #{shape.reduce(1, :*)} elements, the data has #{flat.size}"
    end
    if dt == :float16 || dt == :bfloat16
      t32 = from_string(pack(flat, :float32), dtype: :float32, shape: shape, device: device)
      return no_grad { cast(t32, dtype: dt) }
    end
    from_string(pack(flat, dt), dtype: dt, shape: shape, device: device)
  end

  # A tensor from packed bytes of +dtype+ in native byte order (shape: defaults to 1-d).
  def self.from_string(packed, dtype:, shape: nil, device: nil)
    raise ::TypeError, "packed data must be a String, got #{packed.class}" unless packed.is_a?(String)
    code = dtype_code(dtype)
    size = ITEMSIZE.fetch(DTYPE_NAMES[code])
    if shape.nil?
      raise ::ArgumentError, "#{packed.bytesize} bytes is not a whole number of #{dtype} elements" unless (packed.bytesize % size).zero?
      shape = [packed.bytesize / size]
    end
    shape = check_shape(shape)
    nbytes = shape.reduce(1, :*) * size
    if nbytes != packed.bytesize
      raise ::ArgumentError, "shape #{shape} of #{dtype} needs #{nbytes} bytes, got #{packed.bytesize}"
    end
    buf = FFI::MemoryPointer.new(:uint8, [nbytes, 1].max)
    buf.put_bytes(0, packed) if nbytes.positive?
    sh = FFI::MemoryPointer.new(:int64, [shape.size, 1].max)
    sh.put_array_of_int64(0, shape) unless shape.empty?
    out = FFI::MemoryPointer.new(:pointer)
    check(Native.heron_tensor_from_host(buf, nbytes, code, sh, shape.size, device&.to_s, out))
    Tensor.from_raw(out.read_pointer)
  end

  def self.scalar_like?(v)
    v.is_a?(Integer) || v.is_a?(Float) || v == true || v == false
  end

  # A 0-d tensor from a number; without dtype: a "wrapped number" that promotes like a Python scalar.
  def self.scalar_tensor(value, dtype: nil)
    code = dtype.nil? ? -1 : dtype_code(dtype)
    a = FFI::MemoryPointer.new(:uint8, 32)
    Ops.put_scalar(a, 0, value)
    out = FFI::MemoryPointer.new(:pointer)
    check(Native.heron_tensor_from_scalar(a, code, out))
    Tensor.from_raw(out.read_pointer)
  end

  def self.check_shape(shape)
    raise ::TypeError, "shape must be an Array of Integers, got #{shape.class}" unless shape.is_a?(Array)
    shape.each do |d|
      raise ::TypeError, "shape entries must be Integers, got #{d.inspect}" unless d.is_a?(Integer)
      raise ::ArgumentError, "shape entries must be >= 0, got #{d}" if d.negative?
    end
    shape
  end

  def self.infer_shape(data)
    return [] unless data.is_a?(Array)
    return [0] if data.empty?
    subs = data.map { |e| infer_shape(e) }
    first = subs[0]
    raise ::ArgumentError, "ragged nested array: sub-arrays of shapes #{subs.uniq.first(2)}" unless subs.all?(first)
    [data.size, *first]
  end

  def self.infer_dtype(flat)
    return :float32 if flat.empty?
    if flat.all? { |v| v == true || v == false }
      :bool
    elsif flat.any? { |v| v.is_a?(Float) }
      :float32
    else
      :int64
    end
  end

  def self.pack(flat, dt)
    vals = case dt
           when :float32, :float64
             flat.map do |v|
               next v.to_f if v.is_a?(Integer) || v.is_a?(Float)
               next(v ? 1.0 : 0.0) if v == true || v == false
               raise ::TypeError, "#{dt} tensor: element #{v.inspect} is not a number"
             end
           when :bool
             flat.map do |v|
               next(v ? 1 : 0) if v == true || v == false
               next(v.zero? ? 0 : 1) if v.is_a?(Numeric)
               raise ::TypeError, "bool tensor: element #{v.inspect} is not true/false"
             end
           else
             range = INT_RANGE.fetch(dt)
             flat.map do |v|
               v = (v ? 1 : 0) if v == true || v == false
               raise ::TypeError, "#{dt} tensor: element #{v.inspect} is not an Integer" unless v.is_a?(Integer)
               raise ::RangeError, "#{dt} tensor: #{v} is out of range #{range}" unless range.cover?(v)
               v
             end
           end
    vals.pack(PACK.fetch(dt))
  end
end
