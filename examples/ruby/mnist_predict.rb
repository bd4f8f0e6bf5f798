#!/usr/bin/env ruby
# frozen_string_literal: true

# Classifies the first 20 test images of MNIST-10k (indices 8500..8519: the demo's test split)
# with a .heron model through Heron's Ruby binding, and prints one line:
#   predictions: d d d ...
# Usage: ruby examples/ruby/mnist_predict.rb MODEL.heron [IMAGES-idx3-ubyte[.gz]]
# (default images: python/heron/datasets/data/mnist10k/images-idx3-ubyte.gz of this repository).
# Images are scaled to [0, 1] as heron.datasets.MNIST does. libheron: HERON_LIBRARY, the Python
# package or the build tree (see ruby/README.md).
$LOAD_PATH.unshift File.expand_path("../../ruby/lib", __dir__)
require "heron"
require "zlib"

FIRST = 8500
COUNT = 20

model_path = ARGV[0] or abort "usage: #{$PROGRAM_NAME} MODEL.heron [IMAGES-idx3-ubyte[.gz]]"
images_path = ARGV[1] || File.expand_path("../../python/heron/datasets/data/mnist10k/images-idx3-ubyte.gz", __dir__)

raw = File.binread(images_path)
raw = Zlib.gunzip(raw) if raw.start_with?("\x1f\x8b".b)
magic, count, rows, cols = raw.unpack("N4")
abort "#{images_path}: not an IDX image file (magic 0x#{magic.to_s(16)})" unless magic == 0x803
abort "#{images_path}: expected 28x28 images, got #{rows}x#{cols}" unless rows == 28 && cols == 28
abort "#{images_path}: only #{count} images" if count < FIRST + COUNT
abort "#{images_path}: truncated" if raw.bytesize < 16 + count * 784

pixels = raw.byteslice(16 + FIRST * 784, COUNT * 784).unpack("C*").map { |v| v / 255.0 }
x = Heron.tensor(pixels, dtype: :float32, shape: [COUNT, 1, 28, 28])

session = Heron::Session.new(model_path)
logits = session.run({ session.input_names[0] => x })[session.output_names[0]]
predictions = Heron.argmax(logits, dim: 1).to_a
puts "predictions: #{predictions.join(' ')}"
