# frozen_string_literal: true

require_relative "test_helper"

class MiscTest < Minitest::Test
  include HeronTest

  def test_versions
    assert_match(/\A\d+\.\d+\.\d+/, Heron::VERSION)
    assert_match(/\A\d+\.\d+\.\d+/, Heron.version)
    assert_equal Heron::Native::HERON_ABI_VERSION_MAJOR, Heron.abi_version >> 16
    assert Heron.abi_version & 0xFFFF >= Heron::Native::HERON_ABI_VERSION_MINOR
    assert_empty Heron::MISSING_FUNCTIONS
  end

  def test_devices
    types = Heron.device_types
    assert_includes types, "cpu"
    assert_operator Heron.device_count("cpu"), :>=, 1
    assert_raises(Heron::Error) { Heron.device_count("nope") }
  end

  def test_manual_seed_makes_random_ops_repeat
    Heron.manual_seed(7)
    a = Heron.rand(size: [4]).to_a
    Heron.manual_seed(7)
    assert_equal a, Heron.rand(size: [4]).to_a
    Heron.manual_seed(8)
    refute_equal a, Heron.rand(size: [4]).to_a
  end

  def test_threads
    n = Heron.num_threads
    assert_operator n, :>=, 1
    Heron.num_threads = n
    assert_equal n, Heron.num_threads
  end

  def test_library_discovery_order
    assert_equal "HERON_LIBRARY", Heron::LIBRARY_SOURCE if ENV["HERON_LIBRARY"]
    assert File.file?(Heron::LIBRARY_PATH)
  end

  def test_live_handles_counts_tensors
    HeronTest.collect
    before = Heron.live_handles
    t = Heron.tensor([1.0])
    assert_equal before + 1, Heron.live_handles
    t.release!
    assert_equal before, Heron.live_handles
  end
end
