import Foundation
import XCTest
import Heron

/// The "Use" section of swift/README.md, run as written (the session uses the tiny fixture model).
final class ReadmeTests: XCTestCase {
    func testReadmeUsage() throws {
        try assertNoLeaks {
            let x = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
            let y = try Heron.logSoftmax(x, dim: 1)          // or x.logSoftmax(dim: 1)
            XCTAssertEqual("\(y.shape) \(y.dtype) \(y.device)", "[2, 3] float32 cpu")
            XCTAssertEqual(try (x * 2.0 + 1).toArray(Float.self), [3, 5, 7, 9, 11, 13])
            let (values, indices) = try x.sort(dim: 1, descending: true)
            XCTAssertEqual(try values.toArray(Float.self), [3, 2, 1, 6, 5, 4])
            XCTAssertEqual(try indices.toArray(Int64.self), [2, 1, 0, 2, 1, 0])

            let w = try Tensor([0.5, -1.0] as [Double], requiresGrad: true)
            let opt = try SGD([w], lr: 0.1, momentum: 0.9)
            try (w * w).sum().backward()
            try opt.step()
            XCTAssertEqual(try w.toArray(Double.self), [0.5 - 0.1 * 1.0, -1.0 + 0.1 * 2.0])
            try opt.zeroGrad()
            XCTAssertNil(w.grad)
            let z = try Heron.noGrad { try w * 3.0 }
            XCTAssertFalse(z.requiresGrad)

            do { _ = try x + Tensor([1, 2] as [Float]); XCTFail("no error") } catch let e as HeronError {
                XCTAssertEqual(e.op, "add"); XCTAssertFalse(e.message.isEmpty); XCTAssertEqual(e.code, 1)
            }

            let path = NSTemporaryDirectory() + "heron-readme-\(getpid()).safetensors"
            defer { try? FileManager.default.removeItem(atPath: path) }
            try Heron.saveSafetensors(["w": w], to: path)
            XCTAssertEqual(try Heron.loadSafetensors(path)["w"]!.toArray(Double.self), try w.toArray(Double.self))
            let session = try Session(path: fixturesDir.appendingPathComponent("tiny_mlp.heron").path, device: "cpu",
                                      threads: 0, profiling: true)
            let out = try session.run([session.inputNames[0]: Tensor([Float](repeating: 0, count: 3), shape: [1, 3])])
            // relu(b1) @ W2^T + b2 with the fixture's weights: h = [0.1, 0, 0.3, 0]
            let yz = try out["y"]!.toArray(Float.self)
            XCTAssertEqual(yz[0], 0.1 - 0.3 + 0.05, accuracy: 1e-6)
            XCTAssertEqual(yz[1], -0.05 + 0.075 - 0.1, accuracy: 1e-6)
            XCTAssertTrue(try session.profileJSON().contains("\"runs\""))
            XCTAssertFalse(Heron.version.isEmpty); XCTAssertTrue(Heron.deviceTypes().contains("cpu"))
        }
    }
}
