import CHeron
import XCTest
@testable import Heron

final class OpTests: XCTestCase {
    func testOpsAgainstKnownValues() throws {
        try assertNoLeaks {
            let x = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
            // sum over dim 1 and over everything
            XCTAssertEqual(try Heron.sum(x, dim: [1]).toArray(Float.self), [6, 15])
            XCTAssertEqual(try x.sum().item(), 21)
            XCTAssertEqual(try x.sum(dim: [0], keepdim: true).shape, [1, 3])
            // matmul with its transpose: [[14, 32], [32, 77]]
            let xt = try x.transpose(dim0: 0, dim1: 1)
            XCTAssertEqual(try Heron.matmul(x, xt).toArray(Float.self), [14, 32, 32, 77])
            // log_softmax closed form: x - log(sum(exp(x)))
            let ls = try Heron.logSoftmax(x, dim: 1).toArray(Double.self)
            let row = [1.0, 2, 3], lse = log(row.map { exp($0) }.reduce(0, +))
            assertClose(Array(ls[0..<3]), row.map { $0 - lse }, rtol: 1e-5)
            XCTAssertEqual(try x.logSoftmax(dim: 1).shape, [2, 3])
            // reshape, argmax (int64), where, clamp with an absent bound
            XCTAssertEqual(try x.reshape(shape: [3, 2]).shape, [3, 2])
            XCTAssertEqual(try Heron.argmax(x, dim: 1).toArray(Int64.self), [2, 2])
            let cond = try Tensor([true, false, true, false, true, false], shape: [2, 3])
            XCTAssertEqual(try Heron.where(cond, x, -x).toArray(Float.self), [1, -2, 3, -4, 5, -6])
            XCTAssertEqual(try x.clamp(max: 3).toArray(Float.self), [1, 2, 3, 3, 3, 3])
            XCTAssertEqual(try x.clamp(min: 2.5, max: 4).toArray(Float.self), [2.5, 2.5, 3, 4, 4, 4])
            // scalar attribute: add's alpha
            XCTAssertEqual(try Heron.add(x, x, alpha: 3).toArray(Float.self), [4, 8, 12, 16, 20, 24])
            // creation ops with dtype and scalar attributes
            XCTAssertEqual(try Heron.arange(end: 5).toArray(Int64.self), [0, 1, 2, 3, 4])
            let ar = try Heron.arange(start: 1, end: 2, step: 0.25)
            XCTAssertEqual(ar.dtype, .float32); XCTAssertEqual(try ar.toArray(Float.self), [1, 1.25, 1.5, 1.75])
            let full = try Heron.full(size: [2, 2], fillValue: 7, dtype: .int32)
            XCTAssertEqual(full.dtype, .int32); XCTAssertEqual(try full.toArray(Int32.self), [7, 7, 7, 7])
            XCTAssertEqual(try Heron.eye(n: 2).toArray(Float.self), [1, 0, 0, 1])
        }
    }

    func testDefaultsAreTheSchemas() throws {
        try assertNoLeaks {
            // sort defaults: dim -1, ascending; topk default largest
            let v = try Tensor([3, 1, 2] as [Float])
            let (values, indices) = try v.sort()
            XCTAssertEqual(try values.toArray(Float.self), [1, 2, 3]); XCTAssertEqual(try indices.toArray(Int64.self), [1, 2, 0])
            let desc = try Heron.sort(v, descending: true)
            XCTAssertEqual(try desc.values.toArray(Float.self), [3, 2, 1])
            XCTAssertEqual(try Heron.topk(v, k: 2).values.toArray(Float.self), [3, 2])
            // gelu default 'none' (erf form): gelu(1) = 0.5 * (1 + erf(1 / sqrt 2))
            let g = try Heron.gelu(Tensor([1.0] as [Double])).item()
            XCTAssertEqual(g, 0.5 * (1 + erf(1 / 2.0.squareRoot())), accuracy: 1e-12)
            // mse_loss default reduction 'mean'
            let a = try Tensor([1, 2] as [Float]), b = try Tensor([3, 5] as [Float])
            XCTAssertEqual(try Heron.mseLoss(a, b).item(), 6.5)
            XCTAssertEqual(try Heron.mseLoss(a, b, reduction: "sum").item(), 13)
            // variadic input and variadic output
            let cat = try Heron.concat([a, b], dim: 0)
            XCTAssertEqual(try cat.toArray(Float.self), [1, 2, 3, 5])
            let parts = try cat.split(splitSize: 1)
            XCTAssertEqual(parts.count, 4)
            XCTAssertEqual(try parts[3].toArray(Float.self), [5])
            XCTAssertEqual(try Heron.chunk(cat, chunks: 2).map { try $0.toArray(Float.self) }, [[1, 2], [3, 5]])
            // optional input left out (linear without bias)
            let w = try Tensor([1, 1, 1, -1] as [Float], shape: [2, 2])
            XCTAssertEqual(try Heron.linear(a, w).toArray(Float.self), [3, -1])
            XCTAssertEqual(try Heron.linear(a, w, bias: Tensor([10, 20] as [Float])).toArray(Float.self), [13, 19])
        }
    }

    func testErrorsCarryTheABIMessage() throws {
        try assertNoLeaks {
            let a = try Tensor([1, 2, 3] as [Float])
            let b = try Tensor([1, 2] as [Float])
            XCTAssertThrowsError(try a + b) { e in
                guard let he = e as? HeronError, case .invalidArgument = he else { return XCTFail("\(e)") }
                XCTAssertEqual(he.op, "add")
                XCTAssertTrue(he.message.hasPrefix("add"), he.message)
                XCTAssertFalse(he.message.isEmpty)
            }
            XCTAssertThrowsError(try Heron.sum(a, dim: [5])) { e in
                guard let he = e as? HeronError else { return XCTFail("\(e)") }
                XCTAssertEqual(he.code, 3 /* HERON_ERR_INDEX */, he.description)
                guard case .invalidArgument = he else { return XCTFail("INDEX maps to invalidArgument: \(he)") }
            }
            // TYPE: bitwise ops refuse floats
            XCTAssertThrowsError(try Heron.bitwiseAnd(a, a)) { e in
                guard let he = e as? HeronError, case .typeMismatch = he else { return XCTFail("\(e)") }
                XCTAssertEqual(he.code, 2)
            }
            // Unknown op through the generic call: NOT_FOUND is a failure with that code
            XCTAssertThrowsError(try Heron.call("no_such_op", [a])) { e in
                guard let he = e as? HeronError, case .failure = he else { return XCTFail("\(e)") }
                XCTAssertEqual(he.code, 5)
                XCTAssertTrue(he.message.contains("no_such_op"), he.message)
            }
        }
    }

    func testOpListIsTheSchema() throws {
        // The generated table against the loaded library's schema (heron_op_count / heron_op_at).
        XCTAssertEqual(Heron.opNames.count, Int(heron_op_count()))
        for (i, name) in Heron.opNames.enumerated() {
            var op: OpaquePointer?
            var cname: UnsafePointer<CChar>?
            XCTAssertEqual(heron_op_at(Int32(i), &op), 0)
            XCTAssertEqual(heron_op_name(op, &cname), 0)
            XCTAssertEqual(name, String(cString: cname!))
        }
        XCTAssertEqual(Set(Heron.opAttributes.keys), Set(Heron.opNames))
    }
}
