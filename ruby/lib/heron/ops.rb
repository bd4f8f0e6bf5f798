# frozen_string_literal: true

module Heron
  # The generic op call over ffi (heron_op_call). The generated op methods call the C extension
  # (Heron::Ext.<op>), which hands anything its fast path does not take to Ops.call: variadic
  # inputs or outputs, values it does not marshal itself, and wrong arguments (raised here).
  module Ops
    ATTR_SIZE = 32 # sizeof(heron_attr): int32 kind, int32 reserved, int64 i, double f, const void* p
    N = Native
    # An attribute value meaning "the schema's default" (HERON_ATTR_DEFAULT), for Heron.op_call.
    DEFAULT = Object.new.freeze

    # One op of the schema (emitted in ops_gen.rb).
    class Spec
      attr_reader :name, :inputs, :attrs, :outputs, :inplace, :variadic_input

      def initialize(name, inputs, attrs, outputs, inplace)
        @name = name
        @inputs = inputs.freeze
        @variadic_input = inputs.any? { |i| i[2] }
        @attrs = attrs.freeze
        @outputs = outputs
        @inplace = inplace
        @handle = nil
      end

      # The op's static handle, resolved once.
      def handle
        @handle ||= begin
          out = FFI::MemoryPointer.new(:pointer)
          Heron.check(Native.heron_op_find(@name, out))
          out.read_pointer
        end
      end
    end

    # Per-fiber scratch buffers so a call allocates no FFI memory in the common case.
    class Scratch
      CAP = 32
      attr_reader :ins, :attrs, :outs, :nout

      def initialize
        @ins = FFI::MemoryPointer.new(:pointer, CAP)
        @attrs = FFI::MemoryPointer.new(:uint8, ATTR_SIZE * CAP)
        @outs = FFI::MemoryPointer.new(:pointer, CAP)
        @nout = FFI::MemoryPointer.new(:size_t)
      end
    end

    def self.scratch
      Thread.current[:__heron_scratch] ||= Scratch.new
    end

    # Writes a scalar attribute (Integer, Float, true/false) at byte offset +off+ of +buf+.
    def self.put_scalar(buf, off, v)
      if v.is_a?(Integer)
        put_attr(buf, off, N::HERON_ATTR_INT, v, 0.0, nil)
      elsif v.is_a?(Float)
        put_attr(buf, off, N::HERON_ATTR_FLOAT, 0, v, nil)
      elsif v == true || v == false
        put_attr(buf, off, N::HERON_ATTR_BOOL, v ? 1 : 0, 0.0, nil)
      else
        raise ::TypeError, "expected an Integer, Float, true or false, got #{v.class}"
      end
    end

    def self.put_attr(buf, off, kind, i, f, p)
      buf.put_int32(off, kind)
      buf.put_int32(off + 4, 0)
      buf.put_int64(off + 8, i)
      buf.put_double(off + 16, f)
      buf.put_pointer(off + 24, p)
    end

    def self.int_array(name, v, op)
      v = [v] if v.is_a?(Integer)
      unless v.is_a?(Array) && v.all?(Integer)
        raise ::TypeError, "#{op}: attribute '#{name}' must be an Integer or an Array of Integers, got #{v.inspect}"
      end
      v
    end

    def self.float_array(name, v, op)
      v = [v] if v.is_a?(Integer) || v.is_a?(Float)
      unless v.is_a?(Array) && v.all? { |x| x.is_a?(Integer) || x.is_a?(Float) }
        raise ::TypeError, "#{op}: attribute '#{name}' must be a number or an Array of numbers, got #{v.inspect}"
      end
      v.map(&:to_f)
    end

    # Marshals attribute +k+ of +spec+ into +buf+; +keep+ collects memory that must outlive the call.
    def self.put_attr_value(buf, k, (name, type, optional, _has_default, _default), v, keep, op)
      off = k * ATTR_SIZE
      return put_attr(buf, off, N::HERON_ATTR_DEFAULT, 0, 0.0, nil) if v.equal?(DEFAULT)
      if v.nil?
        return put_attr(buf, off, optional ? N::HERON_ATTR_NONE : N::HERON_ATTR_DEFAULT, 0, 0.0, nil)
      end
      case type
      when :int
        raise ::TypeError, "#{op}: attribute '#{name}' must be an Integer, got #{v.inspect}" unless v.is_a?(Integer)
        put_attr(buf, off, N::HERON_ATTR_INT, v, 0.0, nil)
      when :float
        unless v.is_a?(Float) || v.is_a?(Integer)
          raise ::TypeError, "#{op}: attribute '#{name}' must be a number, got #{v.inspect}"
        end
        put_attr(buf, off, N::HERON_ATTR_FLOAT, 0, v.to_f, nil)
      when :bool
        raise ::TypeError, "#{op}: attribute '#{name}' must be true or false, got #{v.inspect}" unless v == true || v == false
        put_attr(buf, off, N::HERON_ATTR_BOOL, v ? 1 : 0, 0.0, nil)
      when :scalar
        unless Heron.scalar_like?(v)
          raise ::TypeError, "#{op}: attribute '#{name}' must be an Integer, Float, true or false, got #{v.inspect}"
        end
        put_scalar(buf, off, v)
      when :string, :device
        unless v.is_a?(String) || v.is_a?(Symbol)
          raise ::TypeError, "#{op}: attribute '#{name}' must be a String, got #{v.inspect}"
        end
        s = v.to_s
        raise ::ArgumentError, "#{op}: attribute '#{name}' contains a NUL byte" if s.include?("\0")
        mp = FFI::MemoryPointer.from_string(s)
        keep << mp
        put_attr(buf, off, N::HERON_ATTR_STRING, -1, 0.0, mp)
      when :ints
        a = int_array(name, v, op)
        mp = FFI::MemoryPointer.new(:int64, [a.size, 1].max)
        mp.put_array_of_int64(0, a) unless a.empty?
        keep << mp
        put_attr(buf, off, N::HERON_ATTR_INTS, a.size, 0.0, mp)
      when :floats
        a = float_array(name, v, op)
        mp = FFI::MemoryPointer.new(:double, [a.size, 1].max)
        mp.put_array_of_double(0, a) unless a.empty?
        keep << mp
        put_attr(buf, off, N::HERON_ATTR_FLOATS, a.size, 0.0, mp)
      when :dtype
        put_attr(buf, off, N::HERON_ATTR_DTYPE, Heron.dtype_code(v), 0.0, nil)
      else
        raise ::ArgumentError, "#{op}: unknown attribute type #{type}"
      end
    end

    # A handle for one input value: a Tensor's, NULL for nil (optional inputs), or a temporary
    # wrapped-number tensor for a number (collected in +temps+, released after the call).
    def self.input_handle(v, optional, name, op, temps)
      return v.ptr if v.is_a?(Tensor)
      if v.nil?
        return FFI::Pointer::NULL if optional
        raise ::TypeError, "#{op}: input '#{name}' is required, got nil"
      end
      unless Heron.scalar_like?(v)
        raise ::TypeError, "#{op}: input '#{name}' must be a Heron::Tensor or a number, got #{v.class}"
      end
      t = Heron.scalar_tensor(v)
      temps << t
      t.ptr
    end

    # Runs the op of +spec+ on +inputs+ (one entry per schema input; a variadic one is an Array)
    # with +attrs+ (one value per schema attribute, nil = default / none). Returns a Tensor, or an
    # Array of Tensors for ops with several or variadic outputs. Trailing attributes equal (eql?) to
    # their schema default are not sent (heron_op_call gives missing trailing attributes their
    # defaults), which keeps the common call short.
    def self.call(spec, inputs, attrs)
      op = spec.name
      temps = nil
      sc = scratch
      # ---- inputs
      sin = spec.inputs
      if spec.variadic_input
        handles = []
        k = 0
        while k < sin.size
          name, optional, variadic = sin[k]
          v = inputs[k]
          if variadic
            unless v.is_a?(Array)
              raise ::TypeError, "#{op}: input '#{name}' must be an Array of Heron::Tensor, got #{v.class}"
            end
            v.each do |e|
              handles << if e.is_a?(Tensor) then e.ptr
                         else input_handle(e, optional, name, op, temps ||= [])
                         end
            end
          else
            handles << (v.is_a?(Tensor) ? v.ptr : input_handle(v, optional, name, op, temps ||= []))
          end
          k += 1
        end
        nin = handles.size
        ins = nin <= Scratch::CAP ? sc.ins : FFI::MemoryPointer.new(:pointer, nin)
        ins.put_array_of_pointer(0, handles) if nin.positive?
      else
        nin = sin.size
        ins = sc.ins
        k = 0
        while k < nin
          v = inputs[k]
          ins.put_pointer(k * 8, v.is_a?(Tensor) ? v.ptr : input_handle(v, sin[k][1], sin[k][0], op, temps ||= []))
          k += 1
        end
      end
      # ---- attributes (trailing defaults left out)
      sat = spec.attrs
      nat = sat.size
      while nat.positive?
        a = sat[nat - 1]
        v = attrs[nat - 1]
        break unless v.equal?(DEFAULT) || (a[3] && v.eql?(a[4])) || (v.nil? && !a[2])
        nat -= 1
      end
      abuf = nil
      if nat.positive?
        keep = []
        abuf = nat <= Scratch::CAP ? sc.attrs : FFI::MemoryPointer.new(:uint8, nat * ATTR_SIZE)
        k = 0
        while k < nat
          put_attr_value(abuf, k, sat[k], attrs[k], keep, op)
          k += 1
        end
      end
      # ---- call
      nout = spec.outputs
      variadic = nout == :variadic
      cap = variadic ? [nin, 16].max : nout
      outs = cap <= Scratch::CAP ? sc.outs : FFI::MemoryPointer.new(:pointer, cap)
      st = N.heron_op_call(spec.handle, ins, nin, abuf, nat, outs, cap, sc.nout)
      if st == N::HERON_ERR_BUFFER_TOO_SMALL && variadic && !spec.inplace
        cap = sc.nout.read_ulong
        outs = FFI::MemoryPointer.new(:pointer, cap)
        st = N.heron_op_call(spec.handle, ins, nin, abuf, nat, outs, cap, sc.nout)
      end
      raise Heron.error_for(st) unless st.zero?
      return Tensor.from_raw(outs.read_pointer) if nout == 1
      outs.get_array_of_pointer(0, sc.nout.read_ulong).map { |p| Tensor.from_raw(p) }
    ensure
      temps&.each(&:release!)
    end

    # The spec of an op by name (nil when the schema has none).
    def self.find(name)
      @by_name ||= SPECS.to_h { |s| [s.name, s] }
      @by_name[name.to_s]
    end
  end

  # Runs op +name+ through the generic call: +inputs+ in schema order (variadic: an Array),
  # +attrs+ a Hash by attribute name (missing ones take their defaults). With ffi: true it takes the
  # Ruby path over ffi (Heron::Ops.call) instead of the C extension's (Heron::Ext), which the
  # generated op methods take.
  def self.op_call(name, inputs, attrs = {}, ffi: false)
    spec = Ops.find(name) or raise ::ArgumentError, "unknown op #{name.inspect}"
    unknown = attrs.keys.map(&:to_sym) - spec.attrs.map(&:first)
    raise ::ArgumentError, "#{name}: unknown attribute(s) #{unknown.join(', ')}" unless unknown.empty?
    unless inputs.size == spec.inputs.size
      raise ::ArgumentError, "#{name}: expected #{spec.inputs.size} inputs, got #{inputs.size}"
    end
    vals = spec.attrs.map do |(n, _type, _optional, has_default, default)|
      if attrs.key?(n) then attrs[n]
      elsif attrs.key?(n.to_s) then attrs[n.to_s]
      elsif has_default && !ffi then default # as the generated method's keyword default
      else Ops::DEFAULT
      end
    end
    ffi ? Ops.call(spec, inputs, vals) : Ext.public_send(spec.name, *inputs, *vals)
  end
end
