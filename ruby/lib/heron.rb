# frozen_string_literal: true

# Heron for Ruby: the engine through its C ABI (heron.h): op calls and tensor handles through the C
# extension heron_native (ext/heron_native), everything else over the ffi gem.
require "ffi"
require_relative "heron/version"
require_relative "heron/library"
require_relative "heron/ffi_gen"

module Heron
  LIBRARY_PATH, LIBRARY_SOURCE = Library.find
  MISSING_FUNCTIONS = Native.attach_all(LIBRARY_PATH).freeze
  unless Native.heron_abi_check(Native::HERON_ABI_VERSION).zero?
    raise LoadError, "#{LIBRARY_PATH}: #{Native.heron_last_error_message}"
  end
end

begin
  require "heron/heron_native"
rescue LoadError => e
  raise LoadError, "Heron's C extension heron_native is not built (#{e.message}): run `rake compile` in " \
                   "#{File.expand_path('..', __dir__)} (or `make ruby-ext`), or install the heron gem"
end
require_relative "heron/errors"
require_relative "heron/dtype"
require_relative "heron/tensor"
require_relative "heron/ops"
require_relative "heron/ops_gen"
require_relative "heron/autograd"
require_relative "heron/optim"
require_relative "heron/safetensors"
require_relative "heron/session"

# The extension opens the same libheron ffi opened and checks that it was built for these op specs.
Heron::Ext.init(Heron::LIBRARY_PATH, Heron::Ops::SPECS)

module Heron
  # The library's release version ("0.1.0").
  def self.version
    Native.heron_version_string
  end

  # The packed ABI version of the loaded library: (major << 16) | minor.
  def self.abi_version
    Native.heron_abi_version
  end

  # The number of live handles (tensors, maps, models, sessions) in the process, for leak checks.
  def self.live_handles
    Native.heron_live_handles
  end

  # Device kinds compiled into the library: ["cpu"], or ["cpu", "cuda"].
  def self.device_types
    name = FFI::MemoryPointer.new(:pointer)
    Array.new(Native.heron_device_type_count) do |i|
      check(Native.heron_device_type_name(i, name))
      name.read_pointer.read_string
    end
  end

  # How many devices of kind +name+ are usable now.
  def self.device_count(name = "cpu")
    out = FFI::MemoryPointer.new(:int32)
    check(Native.heron_device_count(name.to_s, out))
    out.read_int32
  end

  def self.synchronize(device)
    check(Native.heron_device_synchronize(device.to_s))
  end

  # Reseeds the process-wide random generator.
  def self.manual_seed(seed)
    raise ::TypeError, "seed must be an Integer, got #{seed.class}" unless seed.is_a?(Integer)
    raise ::RangeError, "seed must be in 0...2**64, got #{seed}" unless (0...2**64).cover?(seed)
    Native.heron_manual_seed(seed)
    nil
  end

  def self.num_threads
    Native.heron_get_num_threads
  end

  def self.num_threads=(n)
    raise ::TypeError, "threads must be an Integer" unless n.is_a?(Integer)
    check(Native.heron_set_num_threads(n))
  end

  # The op names of the schema the library was built with.
  def self.op_names
    JSON.parse(Native.heron_ops_schema_json)["ops"].map { |o| o["name"] }
  end
end
