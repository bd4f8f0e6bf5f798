# frozen_string_literal: true

require "json"

module Heron
  # A loaded .heron model: its graph's named inputs and outputs.
  class Model
    # Owns a heron_model handle.
    class Handle < FFI::AutoPointer
      def self.release(ptr)
        Native.heron_model_release(ptr)
      end
    end

    # Information about one input or output: name, dtype (Symbol), shape (-1 for a symbolic dim).
    Info = Struct.new(:name, :dtype, :shape)

    attr_reader :inputs, :outputs, :ptr

    def self.load(path)
      new(path)
    end

    def initialize(path)
      raise ::TypeError, "model path must be a String, got #{path.class}" unless path.is_a?(String)
      out = FFI::MemoryPointer.new(:pointer)
      Heron.check(Native.heron_model_load_file(path, out))
      @ptr = Handle.new(out.read_pointer)
      @inputs = infos(:heron_model_num_inputs, :heron_model_input_info)
      @outputs = infos(:heron_model_num_outputs, :heron_model_output_info)
    end

    def input_names = @inputs.map(&:name)
    def output_names = @outputs.map(&:name)

    # The graph as readable text.
    def text
      Heron.take_string { |out| Native.heron_model_text(@ptr, out) }
    end

    def save(path)
      Heron.check(Native.heron_model_save_file(@ptr, path.to_s))
    end

    private

    def infos(count_fn, info_fn)
      n = FFI::MemoryPointer.new(:size_t)
      Heron.check(Native.send(count_fn, @ptr, n))
      name = FFI::MemoryPointer.new(:pointer)
      dtype = FFI::MemoryPointer.new(:int32)
      ndim = FFI::MemoryPointer.new(:int32)
      shape = FFI::MemoryPointer.new(:pointer)
      Array.new(n.read_ulong) do |i|
        Heron.check(Native.send(info_fn, @ptr, i, name, dtype, ndim, shape))
        nd = ndim.read_int32
        dims = nd.zero? ? [] : shape.read_pointer.read_array_of_int64(nd)
        Info.new(name.read_pointer.read_string.force_encoding(Encoding::UTF_8), DTYPE_NAMES.fetch(dtype.read_int32), dims).freeze
      end.freeze
    end
  end

  # A model prepared to run on a device: run(hash of name => Tensor) -> hash of name => Tensor.
  class Session
    # Owns a heron_session handle.
    class Handle < FFI::AutoPointer
      def self.release(ptr)
        Native.heron_session_release(ptr)
      end
    end

    attr_reader :inputs, :outputs

    # +model+: a Heron::Model or the path of a .heron file. threads: 0 keeps the thread pool.
    # microbatch: false runs every step on the whole batch (see heron_session_options_set_microbatch).
    def initialize(model, device: "cpu", threads: 0, profiling: false, optimization: nil, arena: nil, microbatch: nil)
      model = Model.new(model) if model.is_a?(String)
      raise ::TypeError, "Session.new needs a Heron::Model or a path, got #{model.class}" unless model.is_a?(Model)
      raise ::TypeError, "threads must be an Integer" unless threads.is_a?(Integer)
      @inputs = model.inputs
      @outputs = model.outputs
      o = FFI::MemoryPointer.new(:pointer)
      Heron.check(Native.heron_session_options_create(o))
      opts = o.read_pointer
      begin
        Heron.check(Native.heron_session_options_set_device(opts, device.to_s))
        Heron.check(Native.heron_session_options_set_threads(opts, threads))
        Heron.check(Native.heron_session_options_set_profiling(opts, profiling ? 1 : 0))
        Heron.check(Native.heron_session_options_set_optimization(opts, optimization ? 1 : 0)) unless optimization.nil?
        Heron.check(Native.heron_session_options_set_arena(opts, arena ? 1 : 0)) unless arena.nil?
        Heron.check(Native.heron_session_options_set_microbatch(opts, microbatch ? 1 : 0)) unless microbatch.nil?
        out = FFI::MemoryPointer.new(:pointer)
        Heron.check(Native.heron_session_create(model.ptr, opts, out))
        @ptr = Handle.new(out.read_pointer)
      ensure
        Native.heron_session_options_release(opts)
      end
    end

    def input_names = @inputs.map(&:name)
    def output_names = @outputs.map(&:name)

    # Runs the model. +feeds+: a Hash of input name => Tensor (or nested Array, made with the
    # input's dtype). +outputs+: the names wanted (default: all). Returns a Hash name => Tensor.
    def run(feeds, outputs: nil)
      raise ::TypeError, "Session#run takes a Hash of input name => Heron::Tensor, got #{feeds.class}" unless feeds.is_a?(Hash)
      names = []
      tensors = []
      feeds.each do |name, v|
        name = name.to_s
        unless v.is_a?(Tensor)
          info = @inputs.find { |i| i.name == name }
          v = Heron.tensor(v, dtype: info&.dtype)
        end
        names << name
        tensors << v
      end
      wanted = (outputs || output_names).map(&:to_s)
      keep = names.map { |n| FFI::MemoryPointer.from_string(n) } + wanted.map { |n| FFI::MemoryPointer.from_string(n) }
      in_names = FFI::MemoryPointer.new(:pointer, [names.size, 1].max)
      in_names.put_array_of_pointer(0, keep[0, names.size]) unless names.empty?
      ins = FFI::MemoryPointer.new(:pointer, [tensors.size, 1].max)
      ins.put_array_of_pointer(0, tensors.map(&:ptr)) unless tensors.empty?
      out_names = FFI::MemoryPointer.new(:pointer, [wanted.size, 1].max)
      out_names.put_array_of_pointer(0, keep[names.size..]) unless wanted.empty?
      outs = FFI::MemoryPointer.new(:pointer, [wanted.size, 1].max)
      Heron.check(Native.heron_session_run(@ptr, in_names, ins, names.size, out_names, wanted.size, outs))
      wanted.zip(outs.get_array_of_pointer(0, wanted.size)).to_h { |n, p| [n, Tensor.from_raw(p)] }
    end

    # The recorded runs (profiling: true) as the JSON text of the ABI's profile.
    def profile_json
      Heron.take_string { |out| Native.heron_session_profile_json(@ptr, out) }
    end

    # The profile parsed into a Hash.
    def profile
      JSON.parse(profile_json)
    end

    def chrome_trace
      Heron.take_string { |out| Native.heron_session_chrome_trace(@ptr, out) }
    end

    def clear_profile
      Heron.check(Native.heron_session_clear_profile(@ptr))
    end

    # [last, max] peak bytes of live intermediates.
    def peak_memory
      last = FFI::MemoryPointer.new(:int64)
      max = FFI::MemoryPointer.new(:int64)
      Heron.check(Native.heron_session_peak_memory(@ptr, last, max))
      [last.read_int64, max.read_int64]
    end

    # The graph the session runs (after its optimisation) as text.
    def graph_text
      Heron.take_string { |out| Native.heron_session_graph_text(@ptr, out) }
    end
  end

  # Calls the block with a char** out-parameter and returns the library-allocated string, freed.
  def self.take_string
    out = FFI::MemoryPointer.new(:pointer)
    check(yield(out))
    p = out.read_pointer
    begin
      p.read_string.force_encoding(Encoding::UTF_8)
    ensure
      Native.heron_free_string(p)
    end
  end
end
