import CHeron
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A typed attribute value for the generic op call, in the schema's terms (kinds HERON_ATTR_*).
public enum AttrValue: Equatable {
    /// The schema's default (HERON_ATTR_DEFAULT; only for attributes that have one).
    case `default`
    /// None, for optional attributes (HERON_ATTR_NONE).
    case none
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case ints([Int64])
    case floats([Double])
    case dtype(DType)

    /// A scalar attribute: INT, FLOAT or BOOL by the scalar's kind.
    public static func scalar(_ s: Scalar) -> AttrValue {
        switch s {
        case let .int(v): return .int(v)
        case let .float(v): return .float(v)
        case let .bool(v): return .bool(v)
        }
    }
}

/// An op handle resolved once by name (heron_op_find); the handle is static in the library.
public final class _OpRef: @unchecked Sendable {
    public let name: String
    let handle: OpaquePointer?
    let error: HeronError?

    public init(_ name: String) {
        self.name = name
        var h: OpaquePointer?
        let status = heron_op_find(name, &h)
        if status == HERON_OK {
            handle = h
            error = nil
        } else {
            handle = nil
            error = HeronError.last(status)
        }
    }
}

// Attribute makers used by the generated functions (one per schema type, and the optional forms).
@inline(__always) func _int(_ v: Int) -> AttrValue { .int(Int64(v)) }
@inline(__always) func _intOpt(_ v: Int?) -> AttrValue { v.map { .int(Int64($0)) } ?? .none }
@inline(__always) func _float(_ v: Double) -> AttrValue { .float(v) }
@inline(__always) func _floatOpt(_ v: Double?) -> AttrValue { v.map { .float($0) } ?? .none }
@inline(__always) func _bool(_ v: Bool) -> AttrValue { .bool(v) }
@inline(__always) func _boolOpt(_ v: Bool?) -> AttrValue { v.map { .bool($0) } ?? .none }
@inline(__always) func _scalar(_ v: Scalar) -> AttrValue { .scalar(v) }
@inline(__always) func _scalarOpt(_ v: Scalar?) -> AttrValue { v.map { .scalar($0) } ?? .none }
@inline(__always) func _string(_ v: String) -> AttrValue { .string(v) }
@inline(__always) func _stringOpt(_ v: String?) -> AttrValue { v.map { .string($0) } ?? .none }
@inline(__always) func _ints(_ v: [Int]) -> AttrValue { .ints(v.map { Int64($0) }) }
@inline(__always) func _intsOpt(_ v: [Int]?) -> AttrValue { v.map { .ints($0.map { Int64($0) }) } ?? .none }
@inline(__always) func _floats(_ v: [Double]) -> AttrValue { .floats(v) }
@inline(__always) func _floatsOpt(_ v: [Double]?) -> AttrValue { v.map { .floats($0) } ?? .none }
@inline(__always) func _dtype(_ v: DType) -> AttrValue { .dtype(v) }
@inline(__always) func _dtypeOpt(_ v: DType?) -> AttrValue { v.map { .dtype($0) } ?? .none }

@inline(__always)
func cAttr(_ a: AttrValue) -> heron_attr {
    var c = heron_attr(kind: HERON_ATTR_DEFAULT, reserved: 0, i: 0, f: 0, p: nil)
    switch a {
    case .default: c.kind = HERON_ATTR_DEFAULT
    case .none: c.kind = HERON_ATTR_NONE
    case let .int(v): c.kind = HERON_ATTR_INT; c.i = v
    case let .float(v): c.kind = HERON_ATTR_FLOAT; c.f = v
    case let .bool(v): c.kind = HERON_ATTR_BOOL; c.i = v ? 1 : 0
    case let .dtype(v): c.kind = HERON_ATTR_DTYPE; c.i = Int64(v.rawValue)
    case .string, .ints, .floats: break  // need memory: see withCAttrs
    }
    return c
}

/// Calls `body` with the heron_attr form of `attrs`; strings and arrays are copied into memory that
/// lives until `body` returns. Attributes without such data are laid out on the stack.
@inline(__always)
func withCAttrs<R>(_ attrs: [AttrValue], _ body: (UnsafePointer<heron_attr>?, Int) throws -> R) rethrows -> R {
    if attrs.isEmpty { return try body(nil, 0) }
    var simple = true
    for a in attrs {
        switch a {
        case .string, .ints, .floats: simple = false
        default: break
        }
    }
    if simple {
        return try withUnsafeTemporaryAllocation(of: heron_attr.self, capacity: attrs.count) { buf in
            for k in 0..<attrs.count { buf.initializeElement(at: k, to: cAttr(attrs[k])) }
            return try body(UnsafePointer(buf.baseAddress), attrs.count)
        }
    }
    var owned: [UnsafeMutableRawPointer] = []
    defer { for p in owned { p.deallocate() } }
    var c = [heron_attr](repeating: heron_attr(kind: HERON_ATTR_DEFAULT, reserved: 0, i: 0, f: 0, p: nil), count: attrs.count)
    for (k, a) in attrs.enumerated() {
        switch a {
        case .default: c[k].kind = HERON_ATTR_DEFAULT
        case .none: c[k].kind = HERON_ATTR_NONE
        case let .int(v): c[k].kind = HERON_ATTR_INT; c[k].i = v
        case let .float(v): c[k].kind = HERON_ATTR_FLOAT; c[k].f = v
        case let .bool(v): c[k].kind = HERON_ATTR_BOOL; c[k].i = v ? 1 : 0
        case let .dtype(v): c[k].kind = HERON_ATTR_DTYPE; c[k].i = Int64(v.rawValue)
        case let .string(s):
            let bytes = Array(s.utf8)
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count + 1, alignment: 1)
            owned.append(p)
            bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            p.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self)
            c[k].kind = HERON_ATTR_STRING; c[k].i = Int64(bytes.count); c[k].p = UnsafeRawPointer(p)
        case let .ints(v):
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, v.count) * 8, alignment: 8)
            owned.append(p)
            v.withUnsafeBytes { if v.count > 0 { p.copyMemory(from: $0.baseAddress!, byteCount: v.count * 8) } }
            c[k].kind = HERON_ATTR_INTS; c[k].i = Int64(v.count); c[k].p = UnsafeRawPointer(p)
        case let .floats(v):
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, v.count) * 8, alignment: 8)
            owned.append(p)
            v.withUnsafeBytes { if v.count > 0 { p.copyMemory(from: $0.baseAddress!, byteCount: v.count * 8) } }
            c[k].kind = HERON_ATTR_FLOATS; c[k].i = Int64(v.count); c[k].p = UnsafeRawPointer(p)
        }
    }
    return try c.withUnsafeBufferPointer { try body($0.baseAddress, $0.count) }
}

/// The generic op call every generated function goes through: inputs in schema order (`nil` for an
/// optional input left out; a variadic input's tensors at the end), attributes in schema order
/// (missing trailing ones take their defaults). Returns every output (`nil` for an undefined one).
/// Retries once with the size the engine asks for when `capacity` is too small.
public func _call(_ op: _OpRef, _ inputs: [Tensor?], _ attrs: [AttrValue], capacity: Int = 1) throws -> [Tensor?] {
    guard let h = op.handle else { throw op.error! }
    var handles = [OpaquePointer?](repeating: nil, count: inputs.count)
    for (i, t) in inputs.enumerated() { handles[i] = t?.handle }
    return try withExtendedLifetime(inputs) {
        try withCAttrs(attrs) { cattrs, nattrs in
            var cap = max(capacity, 1)
            while true {
                var outs = [OpaquePointer?](repeating: nil, count: cap)
                var n = 0
                let status = handles.withUnsafeBufferPointer { ins in
                    outs.withUnsafeMutableBufferPointer { o in
                        heron_op_call(h, ins.baseAddress, ins.count, cattrs, nattrs, o.baseAddress, cap, &n)
                    }
                }
                if status == HERON_ERR_BUFFER_TOO_SMALL && n > cap {
                    cap = n
                    continue
                }
                try check(status)
                return (0..<n).map { k in outs[k].map { Tensor(owning: $0) } }
            }
        }
    }
}

/// The generic op call by op name, for ops given at run time (the conformance runner uses it).
public extension Heron {
    ///
    /// Attributes are checked against the schema (their count, and each value's kind against the
    /// attribute's type) before the engine is called: too many is ``HeronError/invalidArgument(code:message:op:)``,
    /// a wrong kind ``HeronError/typeMismatch(code:message:op:)``.
    static func call(_ op: String, _ inputs: [Tensor?], _ attrs: [AttrValue] = []) throws -> [Tensor?] {
        if let schema = opAttributes[op] {
            if attrs.count > schema.count {
                throw HeronError.argument("\(op): \(attrs.count) attributes given, the schema has \(schema.count)", op: op)
            }
            for (a, s) in zip(attrs, schema) where !accepts(s.type, a) {
                throw HeronError.type("\(op): attribute '\(s.name)' is of type \(s.type), got \(a)", op: op)
            }
        }
        return try _call(opRef(op), inputs, attrs, capacity: max(64, inputs.count))
    }

    /// Whether a value of this kind can be passed for an attribute of schema type `type`.
    private static func accepts(_ type: String, _ v: AttrValue) -> Bool {
        switch (type, v) {
        case (_, .default), (_, .none): return true
        case ("int", .int), ("float", .float), ("float", .int), ("bool", .bool): return true
        case ("scalar", .int), ("scalar", .float), ("scalar", .bool): return true
        case ("string", .string), ("device", .string), ("ints", .ints), ("floats", .floats), ("dtype", .dtype): return true
        default: return false
        }
    }

    private static func opRef(_ name: String) -> _OpRef {
        _opCache.lock()
        defer { _opCache.unlock() }
        if let r = _opCache.refs[name] { return r }
        let r = _OpRef(name)
        if r.handle != nil { _opCache.refs[name] = r }
        return r
    }
}

private final class _OpCache: @unchecked Sendable {
    var refs: [String: _OpRef] = [:]
    private let mutex: UnsafeMutablePointer<pthread_mutex_t> = .allocate(capacity: 1)
    init() { pthread_mutex_init(mutex, nil) }
    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
}
private let _opCache = _OpCache()

/// A single-output op on `n` input handles at `ins` (the caller keeps the tensors alive).
@inline(__always)
func _invokeOne(_ op: _OpRef, _ ins: UnsafePointer<OpaquePointer?>, _ n: Int, _ attrs: [AttrValue]) throws -> Tensor {
    guard let h = op.handle else { throw op.error! }
    return try withCAttrs(attrs) { ca, na in
        var out: OpaquePointer?
        var count = 0
        let status = heron_op_call(h, ins, n, ca, na, &out, 1, &count)
        if status == HERON_ERR_BUFFER_TOO_SMALL {
            throw HeronError.failure(code: status, message: "\(op.name): produced \(count) outputs, the schema says 1", op: op.name)
        }
        try check(status)
        guard let out else { throw HeronError.failure(code: HERON_ERR_RUNTIME, message: "\(op.name): output 0 is undefined", op: op.name) }
        return Tensor(owning: out)
    }
}

// Single-output ops with 1 to 4 fixed inputs: the input handles live on the stack (no array).
@inline(__always)
public func _call1(_ op: _OpRef, _ a: Tensor?, _ attrs: [AttrValue]) throws -> Tensor {
    var hs: OpaquePointer? = a?.handle
    return try withExtendedLifetime(a) { try _invokeOne(op, &hs, 1, attrs) }
}
@inline(__always)
public func _call2(_ op: _OpRef, _ a: Tensor?, _ b: Tensor?, _ attrs: [AttrValue]) throws -> Tensor {
    var hs: (OpaquePointer?, OpaquePointer?) = (a?.handle, b?.handle)
    return try withExtendedLifetime((a, b)) {
        try withUnsafePointer(to: &hs) { try $0.withMemoryRebound(to: OpaquePointer?.self, capacity: 2) { try _invokeOne(op, $0, 2, attrs) } }
    }
}
@inline(__always)
public func _call3(_ op: _OpRef, _ a: Tensor?, _ b: Tensor?, _ c: Tensor?, _ attrs: [AttrValue]) throws -> Tensor {
    var hs: (OpaquePointer?, OpaquePointer?, OpaquePointer?) = (a?.handle, b?.handle, c?.handle)
    return try withExtendedLifetime((a, b, c)) {
        try withUnsafePointer(to: &hs) { try $0.withMemoryRebound(to: OpaquePointer?.self, capacity: 3) { try _invokeOne(op, $0, 3, attrs) } }
    }
}
@inline(__always)
public func _call4(_ op: _OpRef, _ a: Tensor?, _ b: Tensor?, _ c: Tensor?, _ d: Tensor?, _ attrs: [AttrValue]) throws -> Tensor {
    var hs: (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?) = (a?.handle, b?.handle, c?.handle, d?.handle)
    return try withExtendedLifetime((a, b, c, d)) {
        try withUnsafePointer(to: &hs) { try $0.withMemoryRebound(to: OpaquePointer?.self, capacity: 4) { try _invokeOne(op, $0, 4, attrs) } }
    }
}

/// One output, which the op must have produced.
@inline(__always)
public func _callOne(_ op: _OpRef, _ inputs: [Tensor?], _ attrs: [AttrValue]) throws -> Tensor {
    let r = try _call(op, inputs, attrs, capacity: 1)
    return try _output(r, 0, op.name)
}

/// Output `k` of `outputs`, which must be defined.
public func _output(_ outputs: [Tensor?], _ k: Int, _ op: String) throws -> Tensor {
    guard k < outputs.count, let t = outputs[k] else {
        throw HeronError.failure(code: HERON_ERR_RUNTIME, message: "\(op): output \(k) is undefined", op: op)
    }
    return t
}

/// Every output, each of which must be defined.
public func _present(_ outputs: [Tensor?], _ op: String) throws -> [Tensor] {
    try outputs.indices.map { try _output(outputs, $0, op) }
}
