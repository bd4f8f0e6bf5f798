# frozen_string_literal: true

require_relative "test_helper"
require "fileutils"
require "rbconfig"

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

  # Runs `ruby -e code` with +env+ (HERON_LIBRARY removed unless given) and returns [output, status].
  def ruby_with(env, code)
    lib = File.expand_path("../lib", __dir__)
    out = IO.popen({ "HERON_LIBRARY" => nil }.merge(env), [RbConfig.ruby, "-I", lib, "-e", code], err: %i[child out],
                   &:read)
    [out, $?]
  end

  def test_library_found_through_the_python_package
    Dir.mktmpdir do |dir|
      pkg = File.join(dir, "site", "heron")
      FileUtils.mkdir_p(File.join(pkg, "lib"))
      FileUtils.ln_s(File.realpath(Heron::LIBRARY_PATH), File.join(pkg, "lib", "libheron.so"))
      fake_python = File.join(dir, "python3")
      File.write(fake_python, "#!/bin/sh\necho #{pkg}\n")
      File.chmod(0o755, fake_python)
      out, st = ruby_with({ "HERON_PYTHON" => fake_python }, 'require "heron"; print Heron::LIBRARY_SOURCE, "|", Heron.version')
      assert st.success?, out
      assert_equal "the Python package heron (#{pkg})|#{Heron.version}", out
    end
  end

  def test_a_bad_heron_library_is_a_load_error
    out, st = ruby_with({ "HERON_LIBRARY" => "/nonexistent/libheron.so" },
                        'begin; require "heron"; rescue LoadError => e; print e.message; exit 3; end')
    assert_equal 3, st.exitstatus, out
    assert_match(%r{HERON_LIBRARY=/nonexistent/libheron.so is not a file}, out)
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
