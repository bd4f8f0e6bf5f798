import Foundation
import XCTest
@testable import Heron

final class TrainingTests: XCTestCase {
    func testAutogradClosedForms() throws {
        try assertNoLeaks {
            // y = sum(x^2 * w + sin(x)): dy/dx = 2 x w + cos(x), dy/dw = x^2
            let xs = [0.5, -1.0, 2.0], ws = [3.0, 0.25, -1.0]
            let x = try Tensor(xs, requiresGrad: true)
            let w = try Tensor(ws).setRequiresGrad()
            XCTAssertTrue(x.requiresGrad); XCTAssertTrue(x.isLeaf)
            let y = try (x * x * w + Heron.sin(x)).sum()
            XCTAssertTrue(y.requiresGrad); XCTAssertFalse(y.isLeaf); XCTAssertNotNil(y.gradFnName)
            try y.backward()
            assertClose(try values(x.grad!), zip(xs, ws).map { 2 * $0 * $1 + cos($0) }, rtol: 1e-12)
            assertClose(try values(w.grad!), xs.map { $0 * $0 }, rtol: 1e-12)
            // Gradients accumulate; zeroGrad fills zeros; detach leaves the graph.
            try (x * 2.0).sum().backward()
            assertClose(try values(x.grad!), zip(xs, ws).map { 2 * $0 * $1 + cos($0) + 2 }, rtol: 1e-12)
            try x.zeroGrad()
            XCTAssertEqual(try values(x.grad!), [0, 0, 0])
            XCTAssertFalse(try x.detach().requiresGrad)
            // noGrad records nothing; a non-scalar root takes an explicit gradient.
            let z = try Heron.noGrad { try x * 3.0 }
            XCTAssertFalse(z.requiresGrad)
            XCTAssertTrue(Heron.isGradEnabled)
            try x.setGrad(nil)
            try (x * x).backward(Tensor([1.0, 10.0, 100.0]))
            assertClose(try values(x.grad!), [1.0, -20.0, 400.0], rtol: 1e-12)
            // mean of log_softmax: gradient softmax closed form
            let l = try Tensor([1.0, 2.0, 4.0], requiresGrad: true)
            try Heron.logSoftmax(l, dim: 0).select(dim: 0, index: 0).backward()
            let e = [1.0, 2.0, 4.0].map { exp($0) }, s = e.reduce(0, +)
            assertClose(try values(l.grad!), [1 - e[0] / s, -e[1] / s, -e[2] / s], rtol: 1e-12)
        }
    }

    func testSGDMatchesClosedForm() throws {
        try assertNoLeaks {
            // Loss 0.5 * sum(p^2): grad = p. momentum 0.9, weight decay 0.1, lr 0.1, two steps (PyTorch's rule).
            let p0 = [1.0, -2.0]
            let p = try Tensor(p0, requiresGrad: true)
            let opt = try SGD([p], lr: 0.1, momentum: 0.9, weightDecay: 0.1)
            var want = p0, buf = [0.0, 0.0]
            for stepIndex in 0..<2 {
                try opt.zeroGrad()
                try ((p * p).sum() * 0.5).backward()
                try opt.step()
                for i in 0..<2 {
                    let g = want[i] + 0.1 * want[i]
                    buf[i] = stepIndex == 0 ? g : 0.9 * buf[i] + g
                    want[i] -= 0.1 * buf[i]
                }
                assertClose(try values(p), want, rtol: 1e-12)
            }
            // Plain SGD: p -= lr * grad
            let q = try Tensor([3.0], requiresGrad: true)
            let plain = try SGD([q], lr: 0.5)
            try (q * q).sum().backward()
            try plain.step()
            assertClose(try values(q), [3.0 - 0.5 * 6.0], rtol: 1e-12)
            XCTAssertThrowsError(try SGD([q], lr: -1))
        }
    }

    func testAdamMatchesClosedForm() throws {
        try assertNoLeaks {
            // Loss sum(p^3 / 3): grad = p^2. Adam lr 0.01, betas (0.9, 0.999), eps 1e-8, three steps.
            let p0 = [0.5, -1.5, 2.0]
            let p = try Tensor(p0, requiresGrad: true)
            let opt = try Adam([p], lr: 0.01)
            var want = p0, m = [0.0, 0, 0], v = [0.0, 0, 0]
            for t in 1...3 {
                try opt.zeroGrad()
                try (p * p * p / 3.0).sum().backward()
                try opt.step()
                for i in 0..<3 {
                    let g = want[i] * want[i]
                    m[i] = 0.9 * m[i] + 0.1 * g
                    v[i] = 0.999 * v[i] + 0.001 * g * g
                    let bc1 = 1 - pow(0.9, Double(t)), bc2 = 1 - pow(0.999, Double(t))
                    want[i] -= 0.01 / bc1 * m[i] / (v[i].squareRoot() / bc2.squareRoot() + 1e-8)
                }
                assertClose(try values(p), want, rtol: 1e-10)
            }
        }
    }

    func testSafetensorsRoundTrip() throws {
        try assertNoLeaks {
            let path = NSTemporaryDirectory() + "heron-swift-\(getpid()).safetensors"
            defer { try? FileManager.default.removeItem(atPath: path) }
            let w = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
            let ids = try Tensor([7, -8] as [Int64])
            let mask = try Tensor([true, false], shape: [1, 2])
            try Heron.saveSafetensors(["w": w, "ids": ids, "mask": mask], to: path, metadata: ["format": "pt", "note": "a \"quoted\" value"])
            let (loaded, meta) = try Heron.loadSafetensorsWithMetadata(path)
            XCTAssertEqual(Set(loaded.keys), ["w", "ids", "mask"])
            XCTAssertEqual(loaded["w"]!.shape, [2, 3]); XCTAssertEqual(try loaded["w"]!.toArray(Float.self), [1, 2, 3, 4, 5, 6])
            XCTAssertEqual(loaded["ids"]!.dtype, .int64); XCTAssertEqual(try loaded["ids"]!.toArray(Int64.self), [7, -8])
            XCTAssertEqual(try loaded["mask"]!.toArray(Bool.self), [true, false])
            let obj = try JSONSerialization.jsonObject(with: Data(meta.utf8)) as! [String: String]
            XCTAssertEqual(obj, ["format": "pt", "note": "a \"quoted\" value"])
            // In memory, and the file's first 8 bytes are the header length (little-endian u64).
            let bytes = try Heron.saveSafetensors(["w": w])
            let n = bytes.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
            XCTAssertEqual(bytes.count, 8 + n + 6 * 4)
            XCTAssertEqual(try Heron.loadSafetensors(bytes: bytes)["w"]!.toArray(Float.self), [1, 2, 3, 4, 5, 6])
            XCTAssertThrowsError(try Heron.loadSafetensors(bytes: [1, 2, 3])) { e in
                guard case HeronError.invalidArgument = e else { return XCTFail("\(e)") }
            }
        }
    }

    func testSessionOnTinyModel() throws {
        try assertNoLeaks {
            let path = fixturesDir.appendingPathComponent("tiny_mlp.heron").path
            let session = try Session(path: path, profiling: true)
            XCTAssertEqual(session.inputNames, ["x"]); XCTAssertEqual(session.outputNames, ["y"])
            let xs: [Float] = [1, 2, 3, -1, 0.5, 2, 0, 0, 0]
            let out = try session.run(["x": Tensor(xs, shape: [3, 3])])
            // The closed form with the weights of make_fixtures.py.
            let w1: [[Float]] = [[1, -2, 0.5], [0, 1, -1], [2, 0, 1], [-1, 1, 1]], b1: [Float] = [0.1, -0.2, 0.3, 0]
            let w2: [[Float]] = [[1, 0.5, -1, 2], [-0.5, 1, 0.25, 0]], b2: [Float] = [0.05, -0.1]
            var want: [Double] = []
            for r in 0..<3 {
                let x = Array(xs[(3 * r)..<(3 * r + 3)])
                let h = (0..<4).map { j in max(0, zip(w1[j], x).map(*).reduce(0, +) + b1[j]) }
                for k in 0..<2 { want.append(Double(zip(w2[k], h).map(*).reduce(0, +) + b2[k])) }
            }
            XCTAssertEqual(out["y"]!.shape, [3, 2])
            assertClose(try values(out["y"]!), want, rtol: 1e-5)
            let profile = try session.profileJSON()
            XCTAssertTrue(profile.contains("heron-profile"), profile)
            XCTAssertThrowsError(try session.run(["nope": Tensor(xs, shape: [3, 3])])) { e in
                XCTAssertTrue(e is HeronError)
            }
            let model = try Model(path: path)
            XCTAssertEqual(model.inputNames, ["x"])
            XCTAssertEqual(try model.inputInfo(0).shape, [-1, 3])
            XCTAssertThrowsError(try Model(path: "/nonexistent.heron"))
        }
    }
}
