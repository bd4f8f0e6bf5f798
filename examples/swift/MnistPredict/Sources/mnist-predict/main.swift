// mnist-predict MODEL.heron [MNIST10K_DIR]
// Runs the first 20 test images of MNIST-10k (images 8500..8519: the demo's test split is the last
// 1,500 of the 10,000) through MODEL.heron and prints "predictions: d d d ...". Images are scaled to
// [0, 1] like heron.datasets.MNIST. MNIST10K_DIR defaults to the copy bundled with the Python package.
import CZlib
import Foundation
import Heron

let firstTestImage = 8500, count = 20

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("mnist-predict: \(message)\n".utf8))
    exit(1)
}

/// The whole (optionally gzip-compressed) file.
func readAll(_ path: String) -> [UInt8] {
    guard let f = gzopen(path, "rb") else { fail("cannot open \(path)") }
    defer { gzclose(f) }
    var out: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { gzread(f, $0.baseAddress, UInt32($0.count)) }
        if n < 0 { fail("cannot read \(path)") }
        if n == 0 { return out }
        out += chunk[0..<Int(n)]
    }
}

func be32(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3]) }

let args = CommandLine.arguments
guard args.count >= 2 else { fail("usage: mnist-predict MODEL.heron [MNIST10K_DIR]") }
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let dataDir = args.count >= 3 ? args[2] : repoRoot.appendingPathComponent("python/heron/datasets/data/mnist10k").path
let img = readAll(dataDir + "/images-idx3-ubyte.gz")
guard img.count >= 16, be32(img, 0) == 0x803, be32(img, 8) == 28, be32(img, 12) == 28,
      img.count == 16 + be32(img, 4) * 784, be32(img, 4) >= firstTestImage + count else { fail("unexpected IDX images file in \(dataDir)") }

do {
    let model = try Model(path: args[1])
    let info = try model.inputInfo(0)
    // The model's input shape with the symbolic batch set to `count` (e.g. (N, 1, 28, 28) or (N, 784)).
    let shape = [count] + info.shape.dropFirst().map { $0 < 0 ? 1 : $0 }
    guard shape.dropFirst().reduce(1, *) == 784 else { fail("model input \(info.shape) is not one 28x28 image per row") }
    let start = 16 + firstTestImage * 784
    let pixels = img[start..<(start + count * 784)].map { Float($0) / 255 }
    let session = try Session(model: model)
    let out = try session.run([info.name: Tensor(pixels, shape: shape)])
    guard let logits = out[session.outputNames[0]] else { fail("no output") }
    let pred = try Heron.argmax(logits, dim: 1).toArray(Int64.self)
    print("predictions: " + pred.map(String.init).joined(separator: " "))
} catch {
    fail("\(error)")
}
