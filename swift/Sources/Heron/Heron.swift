import CHeron

/// The namespace of Heron's free functions: every op of the schema (`Heron.add`, `Heron.logSoftmax`, ...,
/// generated in Ops.generated.swift), devices, seeding, the version and the live-handle counter.
public enum Heron {
    /// The library's release version, e.g. "0.1.0".
    public static var version: String { String(cString: heron_version_string()) }

    /// The packed ABI version of the loaded library: (major << 16) | minor.
    public static var abiVersion: UInt32 { heron_abi_version() }

    /// Checks that the loaded library serves the ABI this binding was compiled against.
    public static func checkABI() throws {
        try check(heron_abi_check(UInt32(HERON_ABI_VERSION_MAJOR << 16 | HERON_ABI_VERSION_MINOR)))
    }

    /// The device kinds compiled into the library ("cpu", and "cuda" when built with it).
    public static func deviceTypes() -> [String] {
        var out: [String] = []
        for i in 0..<heron_device_type_count() {
            var name: UnsafePointer<CChar>?
            if heron_device_type_name(i, &name) == HERON_OK, let name { out.append(String(cString: name)) }
        }
        return out
    }

    /// How many devices of kind `type` are usable now (0 when, e.g., no GPU is present).
    public static func deviceCount(_ type: String) throws -> Int {
        var n: Int32 = 0
        try check(heron_device_count(type, &n))
        return Int(n)
    }

    /// Reseeds the process-wide default random generator.
    public static func manualSeed(_ seed: UInt64) { heron_manual_seed(seed) }

    /// Sets the size of the intra-op thread pool (process-wide).
    public static func setNumThreads(_ n: Int) throws { try check(heron_set_num_threads(Int32(n))) }

    /// The size of the intra-op thread pool.
    public static func numThreads() -> Int { Int(heron_get_num_threads()) }

    /// The number of live handles (tensors, maps, models, sessions) in the process, for leak checks.
    public static func liveHandles() -> Int64 { heron_live_handles() }

    /// Whether the calling thread records ops for autograd.
    public static var isGradEnabled: Bool { heron_is_grad_enabled() != 0 }

    /// Runs `body` with gradient recording off on this thread (restored afterwards, also on throw).
    public static func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        var previous: Int32 = 1
        _ = heron_set_grad_enabled(0, &previous)
        defer { _ = heron_set_grad_enabled(previous, nil) }
        return try body()
    }

    /// Runs `body` with gradient recording on or off as `enabled` says (restored afterwards).
    public static func withGradEnabled<T>(_ enabled: Bool, _ body: () throws -> T) rethrows -> T {
        var previous: Int32 = 1
        _ = heron_set_grad_enabled(enabled ? 1 : 0, &previous)
        defer { _ = heron_set_grad_enabled(previous, nil) }
        return try body()
    }
}

/// Element types of tensors, with the ABI's codes.
public enum DType: Int32, CaseIterable, CustomStringConvertible, Sendable {
    case float32 = 0, float64 = 1, float16 = 2, bfloat16 = 3, int8 = 4, uint8 = 5, int32 = 6, int64 = 7, bool = 8

    /// The engine's name of the dtype ("float32", ...).
    public var name: String { String(cString: heron_dtype_name(rawValue)) }
    public var description: String { name }
    /// Size in bytes of one element.
    public var itemSize: Int { Int(heron_dtype_size(rawValue)) }
    public var isFloatingPoint: Bool { self == .float32 || self == .float64 || self == .float16 || self == .bfloat16 }

    /// The dtype named `name` ("float32", "int64", ...).
    public init(name: String) throws {
        var code: Int32 = 0
        try check(heron_dtype_from_name(name, &code))
        guard let d = DType(rawValue: code) else {
            throw HeronError.invalidArgument(code: HERON_ERR_INVALID_ARGUMENT, message: "unknown dtype code \(code)", op: "")
        }
        self = d
    }
}

/// A scalar attribute value: an integer, a float or a boolean (write a literal: `alpha: 2`, `value: 0.5`).
public enum Scalar: Equatable, Sendable, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral {
    case int(Int64)
    case float(Double)
    case bool(Bool)

    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .float(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(_ value: Int) { self = .int(Int64(value)) }
    public init(_ value: Double) { self = .float(value) }
    public init(_ value: Float) { self = .float(Double(value)) }
    public init(_ value: Bool) { self = .bool(value) }
}
