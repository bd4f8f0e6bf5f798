# frozen_string_literal: true

require_relative "test_helper"
require "json"

# The model (ruby/test/fixtures/tiny.heron, made by make_tiny_model.py with the Python reference):
#   y = relu(x @ W.T + b), z = 2 * y
class SessionTest < Minitest::Test
  include HeronTest

  MODEL = File.join(HeronTest::FIXTURES, "tiny.heron")
  W = [[1.0, -1.0], [2.0, 0.5], [0.0, 1.0]].freeze
  B = [0.5, -1.0, 0.0].freeze

  def expected_y(rows)
    rows.map { |r| W.each_with_index.map { |w, j| [w[0] * r[0] + w[1] * r[1] + B[j], 0.0].max } }
  end

  def test_model_info
    m = Heron::Model.new(MODEL)
    assert_equal ["x"], m.input_names
    assert_equal %w[y z], m.output_names
    assert_equal :float32, m.inputs[0].dtype
    assert_equal [-1, 2], m.inputs[0].shape
    assert_match(/linear|relu/, m.text)
  end

  def test_run_with_named_inputs_and_outputs
    s = Heron::Session.new(MODEL)
    assert_equal ["x"], s.input_names
    rows = [[1.0, 2.0], [3.0, -4.0], [-1.0, 0.5]]
    out = s.run({ "x" => Heron.tensor(rows) })
    assert_equal %w[y z], out.keys
    assert_close expected_y(rows), out["y"].to_a
    assert_close expected_y(rows).map { |r| r.map { |v| 2 * v } }, out["z"].to_a
    # the arena and micro-batching switches change how, not what
    plain = Heron::Session.new(MODEL, arena: false, microbatch: false)
    assert_close expected_y(rows), plain.run({ "x" => Heron.tensor(rows) })["y"].to_a
    only_z = s.run({ x: rows }, outputs: ["z"])
    assert_equal ["z"], only_z.keys
    assert_close expected_y(rows).map { |r| r.map { |v| 2 * v } }, only_z["z"].to_a
  end

  def test_from_a_loaded_model_with_profiling
    s = Heron::Session.new(Heron::Model.load(MODEL), device: "cpu", threads: Heron.num_threads, profiling: true)
    s.run({ "x" => Heron.tensor([[1.0, 1.0]]) })
    prof = s.profile
    assert_equal "heron-profile", prof["format"]
    assert_equal 1, prof["runs"].size
    assert_equal prof, JSON.parse(s.profile_json)
    last, max = s.peak_memory
    assert last >= 0 && max >= last
    s.clear_profile
    assert_equal 0, s.profile["runs"].size
  end

  def test_wrong_inputs
    s = Heron::Session.new(MODEL)
    e = assert_raises(Heron::Error) { s.run({ "nope" => Heron.tensor([[1.0, 2.0]]) }) }
    assert_equal Heron::Native::HERON_ERR_NOT_FOUND, e.code
    assert_match(/no input named 'nope'; it expects 'x'/, e.message)
    assert_raises(ArgumentError) { s.run({ "x" => Heron.tensor([[1.0, 2.0, 3.0]]) }) }
    assert_raises(TypeError) { s.run([Heron.tensor([[1.0, 2.0]])]) }
    assert_raises(Heron::Error) { Heron::Session.new(MODEL, device: "tpu") }
  end

  def test_runs_from_several_threads_at_once
    s = Heron::Session.new(MODEL)
    threads = Array.new(4) do |k|
      Thread.new do
        rows = [[k.to_f, 1.0], [-k.to_f, 2.0]]
        Array.new(25) { s.run({ "x" => rows })["y"].to_a }.uniq.map { |got| [rows, got] }
      end
    end
    threads.map(&:value).each do |results|
      assert_equal 1, results.size, "every run of a thread gives the same result"
      rows, got = results[0]
      assert_close expected_y(rows), got
    end
  end

  def test_sessions_release_their_handles
    assert_no_leak do
      3.times { Heron::Session.new(MODEL).run({ "x" => [[1.0, 2.0]] }) }
    end
  end
end
