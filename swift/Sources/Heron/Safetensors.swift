import CHeron

/// A heron_tensor_map handle, released on deinit.
final class TensorMap {
    let handle: OpaquePointer
    init(owning h: OpaquePointer) { handle = h }
    convenience init() throws {
        var h: OpaquePointer?
        try check(heron_tensor_map_create(&h))
        self.init(owning: h!)
    }
    deinit { heron_tensor_map_release(handle) }

    convenience init(_ tensors: [String: Tensor]) throws {
        try self.init()
        for (name, t) in tensors { try check(heron_tensor_map_set(handle, name, t.handle)) }
    }

    func dictionary() throws -> [String: Tensor] {
        var n = 0
        try check(heron_tensor_map_size(handle, &n))
        var out: [String: Tensor] = [:]
        for i in 0..<n {
            var key: UnsafePointer<CChar>?
            var t: OpaquePointer?
            try check(heron_tensor_map_key(handle, i, &key))
            try check(heron_tensor_map_tensor(handle, i, &t))
            out[String(cString: key!)] = Tensor(owning: t!)
        }
        return out
    }

    var metadataJSON: String {
        var s: UnsafePointer<CChar>?
        guard heron_tensor_map_metadata_json(handle, &s) == HERON_OK, let s else { return "{}" }
        return String(cString: s)
    }
}

/// A JSON object of strings, written by hand (the library depends on nothing but libheron).
func jsonObject(_ dict: [String: String]) -> String {
    func quote(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\r": r += "\\r"
            case "\t": r += "\\t"
            default:
                if u.value < 0x20 { r += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) }
                else { r.unicodeScalars.append(u) }
            }
        }
        return r + "\""
    }
    return "{" + dict.keys.sorted().map { "\(quote($0)):\(quote(dict[$0]!))" }.joined(separator: ",") + "}"
}

extension Heron {
    /// Loads a safetensors file into named tensors (memory-mapped; the file is verified).
    public static func loadSafetensors(_ path: String) throws -> [String: Tensor] {
        try loadSafetensorsWithMetadata(path).tensors
    }

    /// Loads a safetensors file: its tensors and its "__metadata__" as a JSON object text ("{}" when none).
    public static func loadSafetensorsWithMetadata(_ path: String) throws -> (tensors: [String: Tensor], metadataJSON: String) {
        var h: OpaquePointer?
        try check(heron_safetensors_load_file(path, &h))
        let map = TensorMap(owning: h!)
        return (try map.dictionary(), map.metadataJSON)
    }

    /// Loads safetensors bytes.
    public static func loadSafetensors(bytes: [UInt8]) throws -> [String: Tensor] {
        var h: OpaquePointer?
        try check(bytes.withUnsafeBytes { heron_safetensors_load_buffer($0.baseAddress, $0.count, &h) })
        return try TensorMap(owning: h!).dictionary()
    }

    /// Writes named tensors as a safetensors file, with optional string metadata.
    public static func saveSafetensors(_ tensors: [String: Tensor], to path: String, metadata: [String: String]? = nil) throws {
        let map = try TensorMap(tensors)
        try check(heron_safetensors_save_file(path, map.handle, metadata.map(jsonObject)))
    }

    /// Serializes named tensors as safetensors bytes.
    public static func saveSafetensors(_ tensors: [String: Tensor], metadata: [String: String]? = nil) throws -> [UInt8] {
        let map = try TensorMap(tensors)
        var bytes: UnsafeMutablePointer<UInt8>?
        var len = 0
        try check(heron_safetensors_save_buffer(map.handle, metadata.map(jsonObject), &bytes, &len))
        defer { heron_safetensors_free_buffer(bytes) }
        return Array(UnsafeBufferPointer(start: bytes, count: len))
    }
}
