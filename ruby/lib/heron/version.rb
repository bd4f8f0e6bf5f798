# frozen_string_literal: true

module Heron
  # The gem's version (the library's own version is Heron.version).
  VERSION = "0.1.0"
end
