# frozen_string_literal: true

module Heron
  # What every error raised for a failed ABI call carries: the status code and the op (or nil).
  module ErrorInfo
    attr_reader :code, :op

    def init_info(code, op)
      @code = code
      @op = op
      self
    end
  end

  # A failed ABI call whose status has no closer Ruby exception (NULL handle, not found, not
  # implemented, out of memory, runtime, device, ...). +code+ is the HERON_ERR_* status.
  class Error < StandardError
    include ErrorInfo
  end

  # HERON_ERR_INVALID_ARGUMENT: a value is wrong (a shape, an attribute value).
  class InvalidArgumentError < ::ArgumentError
    include ErrorInfo
  end

  # HERON_ERR_INDEX: an index or axis is out of range.
  class IndexOutOfRangeError < ::IndexError
    include ErrorInfo
  end

  # HERON_ERR_TYPE: a dtype or the kind of an argument is wrong.
  class DTypeError < ::TypeError
    include ErrorInfo
  end

  ERROR_NAMES = {
    Native::HERON_ERR_INVALID_ARGUMENT => "INVALID_ARGUMENT", Native::HERON_ERR_TYPE => "TYPE",
    Native::HERON_ERR_INDEX => "INDEX", Native::HERON_ERR_NULL_HANDLE => "NULL_HANDLE",
    Native::HERON_ERR_NOT_FOUND => "NOT_FOUND", Native::HERON_ERR_NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
    Native::HERON_ERR_OUT_OF_MEMORY => "OUT_OF_MEMORY", Native::HERON_ERR_BUFFER_TOO_SMALL => "BUFFER_TOO_SMALL",
    Native::HERON_ERR_RUNTIME => "RUNTIME", Native::HERON_ERR_ABI_MISMATCH => "ABI_MISMATCH",
    Native::HERON_ERR_DEVICE => "DEVICE"
  }.freeze

  # The exception for a failed status, with the thread's last error message and op.
  def self.error_for(status)
    msg = Native.heron_last_error_message.to_s
    op = Native.heron_last_error_op.to_s
    msg = "heron error #{ERROR_NAMES.fetch(status, status)}" if msg.empty?
    cls = case status
          when Native::HERON_ERR_INVALID_ARGUMENT then InvalidArgumentError
          when Native::HERON_ERR_INDEX then IndexOutOfRangeError
          when Native::HERON_ERR_TYPE then DTypeError
          else Error
          end
    cls.new(msg).init_info(status, op.empty? ? nil : op)
  end

  # Raises the mapped exception unless +status+ is HERON_OK.
  def self.check(status)
    raise error_for(status) unless status.zero?
    nil
  end
end
