# frozen_string_literal: true

module Heron
  # Finds libheron: $HERON_LIBRARY, then the lib/ folder of the installed Python package `heron`
  # (asked of $HERON_PYTHON or python3, without importing the package), then the build tree
  # (python/heron/lib of the repository this gem sits in).
  module Library
    NAMES = %w[libheron.so libheron.dylib heron.dll].freeze

    module_function

    def in_dir(dir)
      return nil unless dir && File.directory?(dir)
      NAMES.map { |n| File.join(dir, n) }.find { |p| File.file?(p) }
    end

    def python_package_dir
      py = ENV.fetch("HERON_PYTHON", "python3")
      code = "import importlib.util as u, os; s = u.find_spec('heron'); " \
             "print(os.path.dirname(s.origin) if s and s.origin else '')"
      out = IO.popen([py, "-c", code], err: File::NULL, &:read)
      dir = out.to_s.strip
      dir.empty? ? nil : dir
    rescue SystemCallError, IOError
      nil
    end

    def build_tree_dir
      File.expand_path("../../../python/heron/lib", __dir__)
    end

    # [path, where it came from]; raises LoadError naming every place looked at.
    def find
      env = ENV["HERON_LIBRARY"]
      if env && !env.empty?
        return [env, "HERON_LIBRARY"] if File.file?(env)
        raise LoadError, "HERON_LIBRARY=#{env} is not a file"
      end
      looked = []
      pkg = python_package_dir
      if pkg
        lib = File.join(pkg, "lib")
        found = in_dir(lib)
        return [found, "the Python package heron (#{pkg})"] if found
        looked << lib
      else
        looked << "the Python package heron (not installed for #{ENV.fetch('HERON_PYTHON', 'python3')})"
      end
      found = in_dir(build_tree_dir)
      return [found, "the build tree"] if found
      looked << build_tree_dir
      raise LoadError, "libheron not found: set HERON_LIBRARY to the path of libheron.so (looked in: " \
                       "#{looked.join(', ')})"
    end
  end
end
