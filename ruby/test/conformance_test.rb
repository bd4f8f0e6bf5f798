# frozen_string_literal: true

require_relative "test_helper"
require "json"

# Runs conformance cases (tests/conformance/README.md) through the generic op call (Heron.op_call),
# twice: through the C extension (Heron::Ext, the path every generated op method takes) and through
# the Ruby path over ffi (Heron::Ops.call, the extension's fallback): tests/conformance/cases.json
# when it is there (or $HERON_CONFORMANCE_CASES), and always the small hand-made file under
# test/fixtures.
module Conformance
  SHARED = ENV.fetch("HERON_CONFORMANCE_CASES") { File.expand_path("../../tests/conformance/cases.json", __dir__) }
  OWN = File.join(HeronTest::FIXTURES, "conformance_cases.json")

  NONFINITE = { "nan" => Float::NAN, "inf" => Float::INFINITY, "-inf" => -Float::INFINITY }.freeze

  module_function

  def tensor(t)
    return nil if t.nil?
    return t.map { |e| tensor(e) } if t.is_a?(Array)
    data = t["data"].map { |v| v.is_a?(String) ? NONFINITE.fetch(v) : v }
    dt = t["dtype"].to_sym
    data = data.map(&:to_f) if Heron::FLOAT_DTYPES.include?(dt)
    Heron.tensor(data, dtype: dt, shape: t["shape"])
  end

  def attr(tagged)
    raise ArgumentError, "attribute value #{tagged.inspect} must have one tag" unless tagged.is_a?(Hash) && tagged.size == 1
    tag, v = tagged.first
    case tag
    when "int", "scalar_int", "bool", "string", "device", "ints" then v
    when "float", "scalar_float" then v.is_a?(String) ? NONFINITE.fetch(v) : v.to_f
    when "floats" then v.map { |e| e.is_a?(String) ? NONFINITE.fetch(e) : e.to_f }
    when "dtype" then v.to_sym
    when "none" then nil
    else raise ArgumentError, "unknown attribute tag #{tag}"
    end
  end

  def load(path)
    doc = JSON.parse(File.read(path))
    raise "#{path}: version #{doc['version']} (this runner reads version 1)" unless doc["version"] == 1
    doc["cases"]
  end

  # Defines one test per case of +path+ on +klass+.
  def define(klass, path, prefix)
    load(path).each_with_index do |c, k|
      name = "#{prefix}_#{k.to_s.rjust(4, '0')}_#{c['id'].gsub(/[^A-Za-z0-9]+/, '_')}"
      klass.send(:define_method, "test_#{name}") { run_case(c, ffi: false) }
      klass.send(:define_method, "test_ffi_#{name}") { run_case(c, ffi: true) }
    end
  end
end

class ConformanceTest < Minitest::Test
  include HeronTest

  if File.file?(Conformance::SHARED)
    Conformance.define(self, Conformance::SHARED, "shared")
  else
    warn "\n#{'!' * 78}\n!! conformance: #{Conformance::SHARED} is absent: the shared cases are SKIPPED\n" \
         "!! (only the hand-made #{File.basename(Conformance::OWN)} runs)\n#{'!' * 78}\n"
    define_method(:test_shared_cases_present) do
      skip "tests/conformance/cases.json is absent: shared conformance cases not run"
    end
  end
  Conformance.define(self, Conformance::OWN, "own")

  def run_case(c, ffi:)
    Heron.manual_seed(c["seed"]) if c.key?("seed")
    inputs = c["inputs"].map { |t| Conformance.tensor(t) }
    grads = c["grads"]
    if grads
      inputs.each_with_index do |t, k|
        next if grads[k].nil?
        Array(grads[k].is_a?(Array) ? t : [t]).each { |e| e.requires_grad = true }
      end
    end
    attrs = (c["attrs"] || {}).to_h { |n, v| [n.to_sym, Conformance.attr(v)] }
    got = Heron.op_call(c["op"], inputs, attrs, ffi: ffi)
    got = [got] if got.is_a?(Heron::Tensor)
    spec = Heron::Ops.find(c["op"])
    got = [got] if spec.outputs == :variadic
    want = c["outputs"]
    assert_equal want.size, got.size, "#{c['id']}: number of outputs"
    rtol = c.fetch("rtol", 1e-5)
    atol = c.fetch("atol", 1e-6)
    want.zip(got).each_with_index { |(w, g), k| compare(w, g, rtol, atol, "#{c['id']} output #{k}") }
    return unless grads && c["grad_outputs"]

    roots = []
    gos = []
    flat_got = spec.outputs == :variadic ? got[0] : got
    # a variadic output (the op's only one) lists its tensors' gradients in one nested list
    go_list = spec.outputs == :variadic ? c["grad_outputs"][0] : c["grad_outputs"]
    go_list.each_with_index do |go, k|
      next if go.nil?
      roots << flat_got[k]
      gos << Conformance.tensor(go)
    end
    wrt = []
    grads.each_with_index { |gw, k| wrt.concat(gw.is_a?(Array) ? inputs[k] : [inputs[k]]) unless gw.nil? }
    res = Heron.grad(roots, wrt, grad_outputs: gos, allow_unused: true)
    i = 0
    grads.each_with_index do |gw, k|
      next if gw.nil?
      (gw.is_a?(Array) && gw.first.is_a?(Hash) && gw.first.key?("data") ? gw : [gw]).each do |one|
        compare(one, res[i], rtol, atol, "#{c['id']} grad of input #{k}")
        i += 1
      end
    end
  end

  def compare(want, got, rtol, atol, what)
    if want.is_a?(Array)
      assert_kind_of Array, got, what
      assert_equal want.size, got.size, "#{what}: count"
      want.zip(got).each_with_index { |(w, g), k| compare(w, g, rtol, atol, "#{what}[#{k}]") }
      return
    end
    refute_nil got, "#{what}: no tensor"
    assert_equal want["dtype"].to_sym, got.dtype, "#{what}: dtype"
    assert_equal want["shape"], got.shape, "#{what}: shape"
    w = want["data"].map { |v| v.is_a?(String) ? Conformance::NONFINITE.fetch(v) : v }
    g = got.to_flat_a
    if Heron::FLOAT_DTYPES.include?(got.dtype)
      w.zip(g).each_with_index do |(a, b), k|
        next if a.nan? && b.nan?
        next if a == b
        assert (b - a).abs <= atol + rtol * a.abs, "#{what}: element #{k}: want #{a}, got #{b}"
      end
    else
      assert_equal w, g, "#{what}: data"
    end
  end
end
