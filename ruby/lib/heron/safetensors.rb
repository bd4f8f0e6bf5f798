# frozen_string_literal: true

require "json"

module Heron
  # ---- safetensors (through the ABI's named tensor maps)

  # Writes +tensors+ (a Hash of name => Tensor) as a safetensors file; +metadata+ a Hash of strings.
  def self.save_safetensors(path, tensors, metadata: nil)
    with_map(tensors) do |map|
      check(Native.heron_safetensors_save_file(path.to_s, map, metadata_json(metadata)))
    end
    nil
  end

  # The safetensors bytes of +tensors+, as a binary String.
  def self.save_safetensors_buffer(tensors, metadata: nil)
    with_map(tensors) do |map|
      bytes = FFI::MemoryPointer.new(:pointer)
      len = FFI::MemoryPointer.new(:size_t)
      check(Native.heron_safetensors_save_buffer(map, metadata_json(metadata), bytes, len))
      p = bytes.read_pointer
      begin
        p.read_bytes(len.read_ulong)
      ensure
        Native.heron_safetensors_free_buffer(p)
      end
    end
  end

  # Loads a safetensors file: a Hash of name => Tensor in name order (with metadata: true,
  # [tensors, metadata Hash]).
  def self.load_safetensors(path, metadata: false)
    out = FFI::MemoryPointer.new(:pointer)
    check(Native.heron_safetensors_load_file(path.to_s, out))
    read_map(out.read_pointer, metadata)
  end

  # Loads safetensors bytes (a String); like load_safetensors.
  def self.load_safetensors_buffer(bytes, metadata: false)
    raise ::TypeError, "safetensors bytes must be a String, got #{bytes.class}" unless bytes.is_a?(String)
    buf = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
    buf.put_bytes(0, bytes)
    out = FFI::MemoryPointer.new(:pointer)
    check(Native.heron_safetensors_load_buffer(buf, bytes.bytesize, out))
    read_map(out.read_pointer, metadata)
  end

  def self.metadata_json(metadata)
    return nil if metadata.nil?
    raise ::TypeError, "metadata must be a Hash of strings" unless metadata.is_a?(Hash)
    metadata.to_h { |k, v| [k.to_s, v.to_s] }.to_json
  end

  def self.with_map(tensors)
    raise ::TypeError, "tensors must be a Hash of name => Heron::Tensor, got #{tensors.class}" unless tensors.is_a?(Hash)
    out = FFI::MemoryPointer.new(:pointer)
    check(Native.heron_tensor_map_create(out))
    map = out.read_pointer
    begin
      tensors.each do |name, t|
        raise ::TypeError, "tensor #{name.inspect} must be a Heron::Tensor, got #{t.class}" unless t.is_a?(Tensor)
        check(Native.heron_tensor_map_set(map, name.to_s, t.ptr))
      end
      yield map
    ensure
      Native.heron_tensor_map_release(map)
    end
  end

  def self.read_map(map, with_metadata)
    size = FFI::MemoryPointer.new(:size_t)
    check(Native.heron_tensor_map_size(map, size))
    key = FFI::MemoryPointer.new(:pointer)
    t = FFI::MemoryPointer.new(:pointer)
    res = {}
    size.read_ulong.times do |i|
      check(Native.heron_tensor_map_key(map, i, key))
      name = key.read_pointer.read_string.force_encoding(Encoding::UTF_8)
      check(Native.heron_tensor_map_tensor(map, i, t))
      res[name] = Tensor.from_raw(t.read_pointer)
    end
    return res unless with_metadata
    meta = FFI::MemoryPointer.new(:pointer)
    check(Native.heron_tensor_map_metadata_json(map, meta))
    [res, JSON.parse(meta.read_pointer.read_string)]
  ensure
    Native.heron_tensor_map_release(map)
  end
  private_class_method :metadata_json, :with_map, :read_map
end
