#!/usr/bin/env bash
# Builds the gem, installs it into a scratch GEM_HOME (which compiles its C extension, offline) and
# runs a smoke example from a folder outside the source tree: nothing may work only inside the
# repository. libheron is found as an installed
# gem finds it (HERON_LIBRARY, or the Python package heron of HERON_PYTHON).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$here"
gem build heron.gemspec --output "$work/heron.gem" >/dev/null 2>&1
GEM_HOME="$work/gems" gem install --local "$work/heron.gem" --ignore-dependencies --no-document >/dev/null 2>&1
cd "$work"
cat > smoke.rb <<'RUBY'
require "heron"
a = Heron.tensor([[1.0, 2.0], [3.0, 4.0]])
s = Heron.matmul(a, a).sum.item
raise "sum(a @ a) = #{s}, want 54" unless s == 54.0
raise "loaded from the source tree" if $LOADED_FEATURES.any? { |f| f.start_with?(ENV.fetch("HERON_SOURCE_RUBY")) }
ext = $LOADED_FEATURES.grep(/heron_native/)
raise "the C extension compiled at gem install is not loaded: #{ext}" unless ext.size == 1 && ext[0].start_with?(ENV.fetch("GEM_HOME"))
puts "installed gem works: heron #{Heron::VERSION}, sum(a @ a) = #{s}"
RUBY
GEM_HOME="$work/gems" GEM_PATH="$work/gems:$(gem env gempath)" HERON_SOURCE_RUBY="$here/lib" ruby smoke.rb
