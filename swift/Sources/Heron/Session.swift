import CHeron

/// A loaded .heron model (graph, named inputs and outputs, weights), released on deinit.
public final class Model {
    public let handle: OpaquePointer

    /// Loads (and verifies) a .heron file.
    public init(path: String) throws {
        var h: OpaquePointer?
        try check(heron_model_load_file(path, &h))
        handle = h!
    }

    /// Loads .heron bytes.
    public init(bytes: [UInt8]) throws {
        var h: OpaquePointer?
        try check(bytes.withUnsafeBytes { heron_model_load_buffer($0.baseAddress, $0.count, &h) })
        handle = h!
    }

    deinit { heron_model_release(handle) }

    /// The model inputs' names, in model order.
    public var inputNames: [String] { (try? names(input: true)) ?? [] }
    /// The model outputs' names, in model order.
    public var outputNames: [String] { (try? names(input: false)) ?? [] }

    func names(input: Bool) throws -> [String] {
        var n = 0
        try check(input ? heron_model_num_inputs(handle, &n) : heron_model_num_outputs(handle, &n))
        return try (0..<n).map { i in
            var name: UnsafePointer<CChar>?
            try check(input ? heron_model_input_info(handle, i, &name, nil, nil, nil)
                            : heron_model_output_info(handle, i, &name, nil, nil, nil))
            return String(cString: name!)
        }
    }

    /// Input `i`'s dtype and shape (-1 for a symbolic dimension such as the batch).
    public func inputInfo(_ i: Int) throws -> (name: String, dtype: DType, shape: [Int]) {
        var name: UnsafePointer<CChar>?
        var dt: Int32 = 0, nd: Int32 = 0
        var shape: UnsafePointer<Int64>?
        try check(heron_model_input_info(handle, i, &name, &dt, &nd, &shape))
        let dims = (0..<Int(nd)).map { Int(shape![$0]) }
        return (String(cString: name!), DType(rawValue: dt) ?? .float32, dims)
    }

    /// The graph as readable text.
    public func text() throws -> String {
        var s: UnsafeMutablePointer<CChar>?
        try check(heron_model_text(handle, &s))
        defer { heron_free_string(s) }
        return String(cString: s!)
    }
}

/// A model prepared to run on a device, released on deinit. `run` is safe from several threads.
public final class Session {
    public let handle: OpaquePointer
    public let inputNames: [String]
    public let outputNames: [String]

    /// Loads the .heron file at `path` and prepares it to run.
    public convenience init(path: String, device: String = "cpu", threads: Int = 0, profiling: Bool = false,
                            optimization: Bool = true) throws {
        try self.init(model: Model(path: path), device: device, threads: threads, profiling: profiling,
                      optimization: optimization)
    }

    /// Prepares `model` to run (the session keeps what it needs: the model may be released).
    public init(model: Model, device: String = "cpu", threads: Int = 0, profiling: Bool = false,
                optimization: Bool = true) throws {
        var o: OpaquePointer?
        try check(heron_session_options_create(&o))
        defer { heron_session_options_release(o) }
        try check(heron_session_options_set_device(o, device))
        try check(heron_session_options_set_threads(o, Int32(threads)))
        try check(heron_session_options_set_profiling(o, profiling ? 1 : 0))
        try check(heron_session_options_set_optimization(o, optimization ? 1 : 0))
        var s: OpaquePointer?
        try check(heron_session_create(model.handle, o, &s))
        handle = s!
        inputNames = model.inputNames
        outputNames = model.outputNames
    }

    deinit { heron_session_release(handle) }

    /// Runs the model on named inputs; returns the outputs named in `outputs` (default: all) by name.
    public func run(_ inputs: [String: Tensor], outputs: [String]? = nil) throws -> [String: Tensor] {
        let wanted = outputs ?? outputNames
        let keys = Array(inputs.keys)
        let tensors = keys.map { inputs[$0]! }
        let cIn = keys.map { strdupArray($0) }
        let cOut = wanted.map { strdupArray($0) }
        defer { (cIn + cOut).forEach { $0.deallocate() } }
        var inNames: [UnsafePointer<CChar>?] = cIn.map { UnsafePointer($0) }
        var outNames: [UnsafePointer<CChar>?] = cOut.map { UnsafePointer($0) }
        var ins: [OpaquePointer?] = tensors.map { $0.handle }
        var outs = [OpaquePointer?](repeating: nil, count: wanted.count)
        try withExtendedLifetime(tensors) {
            try check(heron_session_run(handle, &inNames, &ins, ins.count, &outNames, outs.count, &outs))
        }
        var result: [String: Tensor] = [:]
        for (k, name) in wanted.enumerated() { if let h = outs[k] { result[name] = Tensor(owning: h) } }
        return result
    }

    /// The profile of the runs so far (profiling on) as JSON text.
    public func profileJSON() throws -> String {
        var s: UnsafeMutablePointer<CChar>?
        try check(heron_session_profile_json(handle, &s))
        defer { heron_free_string(s) }
        return String(cString: s!)
    }

    /// Forgets the recorded runs.
    public func clearProfile() throws { try check(heron_session_clear_profile(handle)) }

    /// Peak bytes of live intermediates: of the last run and the largest over all runs.
    public func peakMemory() throws -> (last: Int64, max: Int64) {
        var l: Int64 = 0, m: Int64 = 0
        try check(heron_session_peak_memory(handle, &l, &m))
        return (l, m)
    }
}

/// A NUL-terminated copy of `s` (deallocate it).
func strdupArray(_ s: String) -> UnsafeMutablePointer<CChar> {
    let u = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: u.count)
    p.initialize(from: u, count: u.count)
    return p
}
