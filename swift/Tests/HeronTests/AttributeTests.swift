import XCTest
@testable import Heron

/// Every attribute kind and input form the generated functions marshal.
final class AttributeTests: XCTestCase {
    func testAttributeKindsAndInputForms() throws {
        try assertNoLeaks {
            let a = try Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
            let b = try Tensor([1, 0, 0, 1] as [Float], shape: [2, 2])
            // string attribute + variadic input: einsum("ij,jk->ik") is a matmul; trace "ii->"
            XCTAssertEqual(try Heron.einsum([a, b], equation: "ij,jk->ik").toArray(Float.self), [1, 2, 3, 4])
            XCTAssertEqual(try Heron.einsum([a], equation: "ii->").item(), 5)
            // dtype attribute
            let c = try Heron.cast(a, dtype: .int64)
            XCTAssertEqual(c.dtype, .int64); XCTAssertEqual(try c.toArray(Int64.self), [1, 2, 3, 4])
            // device attribute
            XCTAssertEqual(try Heron.toDevice(a, device: "cpu").device, "cpu")
            // ints + string + float attributes: constant padding of the last dim by (1, 2) with 9
            let p = try Heron.pad(a, pad: [1, 2], value: 9)
            XCTAssertEqual(p.shape, [2, 5]); XCTAssertEqual(try p.toArray(Float.self), [9, 1, 2, 9, 9, 9, 3, 4, 9, 9])
            // optional floats attribute: nearest 2x upsampling of a (1, 1, 2, 2) image
            let img = try a.reshape(shape: [1, 1, 2, 2])
            let up = try Heron.interpolate(img, scaleFactor: [2.0, 2.0])
            XCTAssertEqual(up.shape, [1, 1, 4, 4])
            XCTAssertEqual(try up.toArray(Float.self), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
            // optional variadic input with a nil entry: a[:, [1, 0]]
            let idx = try Tensor([1, 0] as [Int64])
            XCTAssertEqual(try Heron.index(a, indices: [nil, idx]).toArray(Float.self), [2, 1, 4, 3])
            // in-place op: copy_ writes into its first input and returns it
            let dst = try Heron.zeros(size: [2, 2])
            try dst.copy_(a)
            XCTAssertEqual(try dst.toArray(Float.self), [1, 2, 3, 4])
            // generic call with explicit defaults and a trailing attribute left out
            let s = try Heron.call("sum", [a], [.default, .bool(true)])
            XCTAssertEqual(s[0]?.shape, [1, 1]); XCTAssertEqual(try s[0]!.item(), 10)
            // Wrong kinds and counts are refused before the engine is called, with the same kinds of error.
            XCTAssertThrowsError(try Heron.call("sum", [a], [.string("x")])) { e in
                guard let he = e as? HeronError, case .typeMismatch = he else { return XCTFail("\(e)") }
                XCTAssertEqual(he.message, "sum: attribute 'dim' is of type ints, got string(\"x\")")
            }
            XCTAssertThrowsError(try Heron.call("neg", [a], [.int(1)])) { e in
                guard let he = e as? HeronError, case .invalidArgument = he else { return XCTFail("\(e)") }
                XCTAssertEqual(he.message, "neg: 1 attributes given, the schema has 0")
            }
            // ... and what only the engine knows (the input count) by the engine, with its message.
            XCTAssertThrowsError(try Heron.call("add", [a], [])) { e in
                guard let he = e as? HeronError, case .invalidArgument = he else { return XCTFail("\(e)") }
                XCTAssertTrue(he.message.contains("expected 2 inputs, got 1"), he.message)
            }
        }
    }

    func testVariadicOutputsBeyondTheFirstCapacity() throws {
        try assertNoLeaks {
            // 100 outputs: more than the 64 the first heron_op_call offers, so the BUFFER_TOO_SMALL retry runs.
            let v = try Heron.arange(end: 100, dtype: .float32)
            let parts = try v.split(splitSize: 1)
            XCTAssertEqual(parts.count, 100)
            XCTAssertEqual(try parts.map { try $0.item() }, (0..<100).map(Double.init))
            XCTAssertEqual(try Heron.call("chunk", [v], [.int(100)]).count, 100)
        }
    }
}
