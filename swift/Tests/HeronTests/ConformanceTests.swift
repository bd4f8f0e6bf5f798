import Foundation
import XCTest
@testable import Heron

/// Runs conformance cases (tests/conformance/README.md, format version 1) through the generic op call
/// `Heron.call`, the path every generated function takes. Returns one message per failing case.
enum Conformance {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func run(json: Data) throws -> (count: Int, failures: [String]) {
        guard let root = try JSONSerialization.jsonObject(with: json) as? [String: Any],
              let cases = root["cases"] as? [[String: Any]] else { throw Failure(description: "not a cases file") }
        guard (root["version"] as? Int) == 1 else { throw Failure(description: "unknown version \(root["version"] ?? "none")") }
        var failures: [String] = []
        for c in cases {
            let id = c["id"] as? String ?? "?"
            do {
                try assertNoLeaksThrowing { try runCase(c) }
            } catch {
                failures.append("\(id): \(error)")
            }
        }
        return (cases.count, failures)
    }

    static func assertNoLeaksThrowing(_ body: () throws -> Void) throws {
        let before = Heron.liveHandles()
        try body()
        let after = Heron.liveHandles()
        if after != before { throw Failure(description: "\(after - before) handles leaked") }
    }

    static func runCase(_ c: [String: Any]) throws {
        guard let op = c["op"] as? String else { throw Failure(description: "no op") }
        guard let schemaAttrs = Heron.opAttributes[op] else { throw Failure(description: "op \(op) is not in the binding's schema") }
        let rtol = (c["rtol"] as? Double) ?? 1e-5, atol = (c["atol"] as? Double) ?? 1e-6
        // Inputs, flattened (a variadic input's list goes at the end, in order), remembering each one's grad slot.
        var inputs: [Tensor?] = []
        for item in c["inputs"] as? [Any] ?? [] {
            if item is NSNull { inputs.append(nil) }
            else if let list = item as? [Any] { for t in list { inputs.append(try tensor(t)) } }
            else { inputs.append(try tensor(item)) }
        }
        let attrsIn = c["attrs"] as? [String: Any] ?? [:]
        for name in attrsIn.keys where !schemaAttrs.contains(where: { $0.name == name }) {
            throw Failure(description: "attribute \(name) is not in the schema of \(op)")
        }
        let attrs: [AttrValue] = try schemaAttrs.map { a in try attrsIn[a.name].map(attr) ?? .default }
        // Gradients wanted: mark those inputs.
        let wantGrads = flatten(c["grads"])
        let gradOutputs = flatten(c["grad_outputs"])
        if wantGrads != nil {
            for (k, g) in wantGrads!.enumerated() where !(g is NSNull) && k < inputs.count {
                try inputs[k]?.setRequiresGrad(true)
            }
        }
        if let seed = c["seed"] as? NSNumber { Heron.manualSeed(seed.uint64Value) }
        let outs = try Heron.call(op, inputs, attrs)
        let want = flatten(c["outputs"]) ?? []
        guard outs.count == want.count else { throw Failure(description: "\(outs.count) outputs, want \(want.count)") }
        for (k, w) in want.enumerated() {
            if w is NSNull { continue }
            guard let got = outs[k] else { throw Failure(description: "output \(k) is undefined") }
            try compare(got, w, rtol: rtol, atol: atol, what: "output \(k)")
        }
        guard let wg = wantGrads, let go = gradOutputs else { return }
        var roots: [Tensor] = [], seeds: [Tensor?] = []
        for (k, g) in go.enumerated() where !(g is NSNull) {
            guard k < outs.count, let o = outs[k] else { continue }
            roots.append(o); seeds.append(try tensor(g))
        }
        try Heron.backward(roots, gradients: seeds)
        for (k, w) in wg.enumerated() where !(w is NSNull) {
            guard k < inputs.count, let t = inputs[k], let g = t.grad else { throw Failure(description: "no gradient for input \(k)") }
            try compare(g, w, rtol: rtol, atol: atol, what: "grad of input \(k)")
        }
    }

    /// A list of T whose entries may be lists (variadic) flattened one level; nil for JSON null or absent.
    static func flatten(_ v: Any?) -> [Any]? {
        guard let list = v as? [Any] else { return nil }
        return list.flatMap { ($0 as? [Any]) ?? [$0] }
    }

    static func number(_ v: Any) throws -> Double {
        if let s = v as? String {
            switch s { case "nan": return .nan; case "inf": return .infinity; case "-inf": return -.infinity
            default: throw Failure(description: "bad number \(s)") }
        }
        if let b = v as? Bool { return b ? 1 : 0 }
        if let n = v as? NSNumber { return n.doubleValue }
        throw Failure(description: "bad number \(v)")
    }

    static func tensor(_ v: Any) throws -> Tensor {
        guard let d = v as? [String: Any], let dt = d["dtype"] as? String, let shape = d["shape"] as? [Int],
              let data = d["data"] as? [Any] else { throw Failure(description: "bad tensor \(v)") }
        let dtype = try DType(name: dt)
        switch dtype {
        case .bool: return try Tensor(data.map { ($0 as? Bool) ?? false }, shape: shape)
        case .int64: return try Tensor(data.map { ($0 as! NSNumber).int64Value }, shape: shape)
        case .int32: return try Tensor(data.map { ($0 as! NSNumber).int32Value }, shape: shape)
        case .int8: return try Tensor(data.map { ($0 as! NSNumber).int8Value }, shape: shape)
        case .uint8: return try Tensor(data.map { ($0 as! NSNumber).uint8Value }, shape: shape)
        case .float64: return try Tensor(try data.map(number), shape: shape)
        case .float32: return try Tensor(try data.map { Float(try number($0)) }, shape: shape)
        case .float16, .bfloat16: return try Heron.cast(Tensor(try data.map(number), shape: shape), dtype: dtype)
        }
    }

    static func attr(_ v: Any) throws -> AttrValue {
        guard let d = v as? [String: Any], d.count == 1, let (tag, x) = d.first else { throw Failure(description: "bad attribute \(v)") }
        switch tag {
        case "int", "scalar_int": return .int((x as! NSNumber).int64Value)
        case "float", "scalar_float": return .float(try number(x))
        case "bool": return .bool(x as! Bool)
        case "string", "device": return .string(x as! String)
        case "ints": return .ints((x as! [NSNumber]).map { $0.int64Value })
        case "floats": return .floats(try (x as! [Any]).map(number))
        case "dtype": return .dtype(try DType(name: x as! String))
        case "none": return .none
        default: throw Failure(description: "unknown attribute tag \(tag)")
        }
    }

    static func compare(_ got: Tensor, _ want: Any, rtol: Double, atol: Double, what: String) throws {
        guard let d = want as? [String: Any], let dt = d["dtype"] as? String, let shape = d["shape"] as? [Int],
              let data = d["data"] as? [Any] else { throw Failure(description: "bad expected tensor") }
        if got.dtype.name != dt { throw Failure(description: "\(what): dtype \(got.dtype), want \(dt)") }
        if got.shape != shape { throw Failure(description: "\(what): shape \(got.shape), want \(shape)") }
        if got.dtype.isFloatingPoint {
            let g = try got.toArray(Double.self), w = try data.map(number)
            for (a, b) in zip(g, w) {
                let ok = (a.isNaN && b.isNaN) || a == b || abs(a - b) <= atol + rtol * abs(b)
                if !ok { throw Failure(description: "\(what): got \(g), want \(w)") }
            }
        } else if got.dtype == .bool {
            let g = try got.toArray(Bool.self), w = data.map { ($0 as? Bool) ?? false }
            if g != w { throw Failure(description: "\(what): got \(g), want \(w)") }
        } else {
            let g = try got.toArray(Int64.self), w = data.map { ($0 as! NSNumber).int64Value }
            if g != w { throw Failure(description: "\(what): got \(g), want \(w)") }
        }
    }
}

final class ConformanceTests: XCTestCase {
    /// A small hand-written file in the README's format; expected values worked out by hand.
    static let fixture = #"""
    {"version": 1, "cases": [
      {"id": "add/float32/broadcast-alpha", "op": "add",
       "inputs": [{"dtype": "float32", "shape": [2, 1], "data": [1, 2]}, {"dtype": "float32", "shape": [3], "data": [10, 20, 30]}],
       "attrs": {"alpha": {"scalar_float": 0.5}},
       "outputs": [{"dtype": "float32", "shape": [2, 3], "data": [6, 11, 16, 7, 12, 17]}],
       "grad_outputs": [{"dtype": "float32", "shape": [2, 3], "data": [1, 1, 1, 1, 1, 1]}],
       "grads": [{"dtype": "float32", "shape": [2, 1], "data": [3, 3]}, {"dtype": "float32", "shape": [3], "data": [1, 1, 1]}],
       "rtol": 1e-6, "atol": 1e-7},
      {"id": "sum/int32/dim", "op": "sum",
       "inputs": [{"dtype": "int32", "shape": [2, 2], "data": [1, 2, 3, 4]}],
       "attrs": {"dim": {"ints": [0]}, "keepdim": {"bool": true}},
       "outputs": [{"dtype": "int64", "shape": [1, 2], "data": [4, 6]}], "grad_outputs": null, "grads": null,
       "rtol": 0, "atol": 0},
      {"id": "sort/float64/desc", "op": "sort",
       "inputs": [{"dtype": "float64", "shape": [3], "data": [2, "nan", -1]}],
       "attrs": {"descending": {"bool": false}},
       "outputs": [{"dtype": "float64", "shape": [3], "data": [-1, 2, "nan"]}, {"dtype": "int64", "shape": [3], "data": [2, 0, 1]}],
       "rtol": 0, "atol": 0},
      {"id": "concat/float32/variadic", "op": "concat",
       "inputs": [[{"dtype": "float32", "shape": [1], "data": [1]}, {"dtype": "float32", "shape": [2], "data": [2, 3]}]],
       "attrs": {},
       "outputs": [{"dtype": "float32", "shape": [3], "data": [1, 2, 3]}],
       "grad_outputs": [{"dtype": "float32", "shape": [3], "data": [5, 6, 7]}],
       "grads": [{"dtype": "float32", "shape": [1], "data": [5]}, {"dtype": "float32", "shape": [2], "data": [6, 7]}],
       "rtol": 0, "atol": 0},
      {"id": "linear/float32/no-bias", "op": "linear",
       "inputs": [{"dtype": "float32", "shape": [1, 2], "data": [1, 2]}, {"dtype": "float32", "shape": [2, 2], "data": [1, 1, 1, -1]}, null],
       "attrs": {},
       "outputs": [{"dtype": "float32", "shape": [1, 2], "data": [3, -1]}], "rtol": 1e-6, "atol": 1e-7},
      {"id": "eq/float32/bool-out", "op": "eq",
       "inputs": [{"dtype": "float32", "shape": [3], "data": [1, "inf", "nan"]}, {"dtype": "float32", "shape": [3], "data": [1, "inf", "nan"]}],
       "attrs": {}, "outputs": [{"dtype": "bool", "shape": [3], "data": [true, true, false]}], "rtol": 0, "atol": 0},
      {"id": "clamp/float32/none-min", "op": "clamp",
       "inputs": [{"dtype": "float32", "shape": [3], "data": [-5, 0, 5]}],
       "attrs": {"min": {"none": true}, "max": {"scalar_int": 1}},
       "outputs": [{"dtype": "float32", "shape": [3], "data": [-5, 0, 1]}], "rtol": 0, "atol": 0},
      {"id": "full/int32/dtype", "op": "full", "inputs": [],
       "attrs": {"size": {"ints": [2]}, "fill_value": {"scalar_int": 3}, "dtype": {"dtype": "int32"}, "device": {"device": "cpu"}},
       "outputs": [{"dtype": "int32", "shape": [2], "data": [3, 3]}], "rtol": 0, "atol": 0}
    ]}
    """#

    func testRunnerOnHandWrittenFixture() throws {
        let r = try Conformance.run(json: Data(Self.fixture.utf8))
        XCTAssertEqual(r.count, 8)
        XCTAssertEqual(r.failures, [])
        // The runner does fail wrong expectations.
        let bad = Self.fixture.replacingOccurrences(of: "[6, 11, 16, 7, 12, 17]", with: "[6, 11, 16, 7, 12, 18]")
        let rb = try Conformance.run(json: Data(bad.utf8))
        XCTAssertEqual(rb.failures.count, 1)
        XCTAssertTrue(rb.failures.first?.hasPrefix("add/float32/broadcast-alpha") ?? false, "\(rb.failures)")
    }

    func testEveryConformanceCase() throws {
        let path = repoRoot.appendingPathComponent("tests/conformance/cases.json")
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw XCTSkip("SKIPPED: \(path.path) does not exist in this checkout (written by tests/conformance/make_cases.py); "
                          + "no conformance case was run")
        }
        let r = try Conformance.run(json: Data(contentsOf: path))
        XCTAssertGreaterThan(r.count, 0)
        for f in r.failures.prefix(50) { XCTFail(f) }
        if r.failures.count > 50 { XCTFail("... and \(r.failures.count - 50) more failing cases") }
    }
}
