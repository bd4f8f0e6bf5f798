import CHeron

/// A failed call into the engine (or an argument the binding refuses before calling it), carrying the
/// ABI's status code, its message (heron_last_error_message) and the op it happened in (heron_last_error_op).
///
/// By status, as docs/design/bindings.md says: INVALID_ARGUMENT and INDEX are ``invalidArgument``, TYPE is
/// ``typeMismatch``, every other status is ``failure``.
public enum HeronError: Error, CustomStringConvertible, Equatable {
    /// HERON_ERR_INVALID_ARGUMENT or HERON_ERR_INDEX: a wrong value, shape, axis or index.
    case invalidArgument(code: Int32, message: String, op: String)
    /// HERON_ERR_TYPE: a wrong dtype or kind of argument.
    case typeMismatch(code: Int32, message: String, op: String)
    /// Any other status (NOT_FOUND, NOT_IMPLEMENTED, NULL_HANDLE, RUNTIME, DEVICE, ...).
    case failure(code: Int32, message: String, op: String)

    /// The ABI status code (HERON_ERR_*).
    public var code: Int32 {
        switch self {
        case let .invalidArgument(c, _, _), let .typeMismatch(c, _, _), let .failure(c, _, _): return c
        }
    }
    /// The engine's message.
    public var message: String {
        switch self {
        case let .invalidArgument(_, m, _), let .typeMismatch(_, m, _), let .failure(_, m, _): return m
        }
    }
    /// The op the failure happened in ("" when none).
    public var op: String {
        switch self {
        case let .invalidArgument(_, _, o), let .typeMismatch(_, _, o), let .failure(_, _, o): return o
        }
    }
    public var description: String { "HeronError(\(HeronError.codeName(code))): \(message)" }

    /// The error for status `code` with this message and op.
    public static func from(code: Int32, message: String, op: String = "") -> HeronError {
        switch code {
        case HERON_ERR_INVALID_ARGUMENT, HERON_ERR_INDEX: return .invalidArgument(code: code, message: message, op: op)
        case HERON_ERR_TYPE: return .typeMismatch(code: code, message: message, op: op)
        default: return .failure(code: code, message: message, op: op)
        }
    }

    /// The error the engine reported last on this thread, for a call that returned `code`.
    static func last(_ code: Int32) -> HeronError {
        from(code: code, message: String(cString: heron_last_error_message()), op: String(cString: heron_last_error_op()))
    }

    /// A binding-side refusal, raised before the ABI is called.
    static func argument(_ message: String, op: String = "") -> HeronError {
        .invalidArgument(code: HERON_ERR_INVALID_ARGUMENT, message: message, op: op)
    }
    static func type(_ message: String, op: String = "") -> HeronError {
        .typeMismatch(code: HERON_ERR_TYPE, message: message, op: op)
    }

    /// The name of a status code ("INVALID_ARGUMENT", ...).
    public static func codeName(_ code: Int32) -> String {
        switch code {
        case HERON_OK: return "OK"
        case HERON_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT"
        case HERON_ERR_TYPE: return "TYPE"
        case HERON_ERR_INDEX: return "INDEX"
        case HERON_ERR_NULL_HANDLE: return "NULL_HANDLE"
        case HERON_ERR_NOT_FOUND: return "NOT_FOUND"
        case HERON_ERR_NOT_IMPLEMENTED: return "NOT_IMPLEMENTED"
        case HERON_ERR_OUT_OF_MEMORY: return "OUT_OF_MEMORY"
        case HERON_ERR_BUFFER_TOO_SMALL: return "BUFFER_TOO_SMALL"
        case HERON_ERR_RUNTIME: return "RUNTIME"
        case HERON_ERR_ABI_MISMATCH: return "ABI_MISMATCH"
        case HERON_ERR_DEVICE: return "DEVICE"
        case HERON_ERR_COMM: return "COMM"
        case HERON_ERR_TIMEOUT: return "TIMEOUT"
        default: return "ERROR \(code)"
        }
    }
}

/// Throws the engine's last error when `status` is not HERON_OK.
@inline(__always)
func check(_ status: heron_status) throws {
    if status != HERON_OK { throw HeronError.last(status) }
}
