# frozen_string_literal: true

require_relative "lib/heron/version"

Gem::Specification.new do |s|
  s.name = "heron"
  s.version = Heron::VERSION
  s.summary = "Heron deep-learning engine for Ruby (over its C ABI: a C extension for op calls, ffi for the rest)"
  s.description = "Tensors, every op of the Heron schema with keyword arguments, autograd, SGD/Adam, " \
                  "safetensors and .heron model sessions, over libheron's C ABI. libheron is found " \
                  "through HERON_LIBRARY, the installed Python package heron, or the build tree."
  s.authors = ["Heron contributors"]
  s.license = "Apache-2.0"
  s.files = Dir["lib/**/*.rb"] + Dir["ext/heron_native/*.{c,h,rb}"] + ["README.md", "heron.gemspec", "Rakefile"]
  s.extensions = ["ext/heron_native/extconf.rb"]
  s.require_paths = ["lib"]
  s.required_ruby_version = ">= 3.0"
  s.add_runtime_dependency "ffi", ">= 1.15"
  s.add_development_dependency "minitest", ">= 5.15"
  s.add_development_dependency "rake", ">= 13"
end
