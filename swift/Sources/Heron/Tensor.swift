import CHeron

/// Swift element types a tensor can be made of and read back into.
public protocol TensorElement {
    /// The engine dtype with this element's layout.
    static var heronDType: DType { get }
}
extension Float: TensorElement { public static var heronDType: DType { .float32 } }
extension Double: TensorElement { public static var heronDType: DType { .float64 } }
extension Int8: TensorElement { public static var heronDType: DType { .int8 } }
extension UInt8: TensorElement { public static var heronDType: DType { .uint8 } }
extension Int32: TensorElement { public static var heronDType: DType { .int32 } }
extension Int64: TensorElement { public static var heronDType: DType { .int64 } }
extension Bool: TensorElement { public static var heronDType: DType { .bool } }

/// An n-dimensional array owned through one `heron_tensor*` handle, released in `deinit`.
public final class Tensor: CustomStringConvertible {
    /// The ABI handle (owned by this object; do not release it).
    public let handle: OpaquePointer

    /// Takes ownership of a handle returned by the ABI.
    public init(owning handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        heron_tensor_release(handle)
    }

    /// A tensor with a copy of `data` (row-major) and `shape` (default: one dimension of `data.count`).
    public convenience init<T: TensorElement>(_ data: [T], shape: [Int]? = nil, device: String? = nil,
                                              requiresGrad: Bool = false) throws {
        let shape = shape ?? [data.count]
        if shape.contains(where: { $0 < 0 }) {
            throw HeronError.argument("Tensor: negative dimension in shape \(shape)")
        }
        let numel = shape.reduce(1, *)
        if numel != data.count {
            throw HeronError.argument("Tensor: \(data.count) elements do not fill shape \(shape) (\(numel) elements)")
        }
        let dims = shape.map { Int64($0) }
        var out: OpaquePointer?
        let status = data.withUnsafeBytes { bytes in
            dims.withUnsafeBufferPointer { d in
                heron_tensor_from_host(bytes.baseAddress, bytes.count, T.heronDType.rawValue, d.baseAddress,
                                       Int32(dims.count), device, &out)
            }
        }
        try check(status)
        self.init(owning: out!)
        if requiresGrad { try setRequiresGrad(true) }
    }

    /// A 0-d tensor holding `value` with dtype `dtype`.
    public convenience init(scalar value: Scalar, dtype: DType) throws {
        try self.init(owning: Tensor.scalarHandle(value, dtype: dtype.rawValue))
    }

    /// A "wrapped number": a 0-d tensor that takes part in type promotion as a literal does
    /// (an int32 tensor + 2 stays int32, + 2.5 becomes float32).
    public static func wrapped(_ value: Scalar) throws -> Tensor {
        Tensor(owning: try scalarHandle(value, dtype: -1))
    }

    private static func scalarHandle(_ value: Scalar, dtype: Int32) throws -> OpaquePointer {
        var a = heron_attr(kind: HERON_ATTR_INT, reserved: 0, i: 0, f: 0, p: nil)
        switch value {
        case let .int(v): a.kind = HERON_ATTR_INT; a.i = v
        case let .float(v): a.kind = HERON_ATTR_FLOAT; a.f = v
        case let .bool(v): a.kind = HERON_ATTR_BOOL; a.i = v ? 1 : 0
        }
        var out: OpaquePointer?
        try check(heron_tensor_from_scalar(&a, dtype, &out))
        return out!
    }

    // ------------------------------------------------------------------ metadata

    /// Number of dimensions.
    public var ndim: Int {
        var n: Int32 = 0
        _ = heron_tensor_ndim(handle, &n)
        return Int(n)
    }

    /// The sizes of the dimensions.
    public var shape: [Int] {
        let n = ndim
        var dims = [Int64](repeating: 0, count: max(n, 1))
        _ = heron_tensor_shape(handle, &dims, Int32(dims.count))
        return dims.prefix(n).map { Int($0) }
    }

    /// The element type.
    public var dtype: DType {
        var d: Int32 = 0
        _ = heron_tensor_dtype(handle, &d)
        return DType(rawValue: d) ?? .float32
    }

    /// The device: "cpu", or "cuda:0" and the like.
    public var device: String {
        var name: UnsafePointer<CChar>?
        var index: Int32 = 0
        _ = heron_tensor_device(handle, &name, &index)
        let type = name.map { String(cString: $0) } ?? "cpu"
        return type == "cpu" ? type : "\(type):\(index)"
    }

    /// Number of elements.
    public var numel: Int {
        var n: Int64 = 0
        _ = heron_tensor_numel(handle, &n)
        return Int(n)
    }

    /// Whether the elements are laid out row-major without gaps.
    public var isContiguous: Bool {
        var c: Int32 = 0
        _ = heron_tensor_is_contiguous(handle, &c)
        return c != 0
    }

    public var description: String { "Tensor(shape: \(shape), dtype: \(dtype), device: \(device))" }

    // ------------------------------------------------------------------ reading back

    /// The elements in row-major order as `T` (converted with the `cast` op when the dtype differs).
    public func toArray<T: TensorElement>(_ type: T.Type) throws -> [T] {
        let src = dtype == T.heronDType ? self : try Heron.cast(self, dtype: T.heronDType)
        let n = src.numel
        var status: heron_status = HERON_OK
        let out = [T](unsafeUninitializedCapacity: n) { buf, count in
            status = heron_tensor_to_host(src.handle, UnsafeMutableRawPointer(buf.baseAddress),
                                          n * MemoryLayout<T>.stride)
            count = status == HERON_OK ? n : 0
        }
        try check(status)
        return out
    }

    /// The value of a one-element tensor as a Double.
    public func item() throws -> Double {
        var v: Double = 0
        try check(heron_tensor_item_double(handle, &v))
        return v
    }

    /// The value of a one-element tensor as an Int64 (floats truncate toward zero).
    public func itemInt() throws -> Int64 {
        var v: Int64 = 0
        try check(heron_tensor_item_int64(handle, &v))
        return v
    }

    // ------------------------------------------------------------------ autograd

    /// Whether the tensor requires gradients (a marked leaf, or computed from one with grad mode on).
    public var requiresGrad: Bool {
        var v: Int32 = 0
        _ = heron_tensor_requires_grad(handle, &v)
        return v != 0
    }

    /// Marks this leaf as requiring gradients (floating dtypes only), or clears the mark. Returns self.
    @discardableResult
    public func setRequiresGrad(_ flag: Bool = true) throws -> Tensor {
        try check(heron_tensor_set_requires_grad(handle, flag ? 1 : 0))
        return self
    }

    /// Whether the tensor is a leaf (not produced by a recorded op).
    public var isLeaf: Bool {
        var v: Int32 = 0
        _ = heron_tensor_is_leaf(handle, &v)
        return v != 0
    }

    /// The accumulated gradient, or nil when there is none.
    public var grad: Tensor? {
        var out: OpaquePointer?
        guard heron_tensor_grad(handle, &out) == HERON_OK, let out else { return nil }
        return Tensor(owning: out)
    }

    /// Replaces the gradient (same shape, dtype, device); nil clears it.
    public func setGrad(_ g: Tensor?) throws {
        try withExtendedLifetime(g) { try check(heron_tensor_set_grad(handle, g?.handle)) }
    }

    /// Fills the gradient with zeros in place (nothing when there is none).
    public func zeroGrad() throws { try check(heron_tensor_zero_grad(handle)) }

    /// Keeps the gradient of this non-leaf tensor in its `grad` during backward.
    public func retainGrad() throws { try check(heron_tensor_retain_grad(handle)) }

    /// A tensor sharing this one's data, outside the autograd graph.
    public func detach() throws -> Tensor {
        var out: OpaquePointer?
        try check(heron_tensor_detach(handle, &out))
        return Tensor(owning: out!)
    }

    /// The name of the node that produced this tensor ("MulBackward", ...), nil for leaves.
    public var gradFnName: String? {
        var name: UnsafePointer<CChar>?
        guard heron_tensor_grad_fn_name(handle, &name) == HERON_OK, let name else { return nil }
        return String(cString: name)
    }

    /// Backpropagates from this tensor (a scalar unless `gradient` is given) into the leaves' `grad`.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        try Heron.backward([self], gradients: [gradient], retainGraph: retainGraph)
    }
}

extension Heron {
    /// Backpropagates from several roots at once; `gradients[k]` may be nil for a scalar root.
    public static func backward(_ roots: [Tensor], gradients: [Tensor?]? = nil, retainGraph: Bool = false) throws {
        if let g = gradients, g.count != roots.count {
            throw HeronError.argument("backward: \(roots.count) roots but \(g.count) gradients")
        }
        let r: [OpaquePointer?] = roots.map { $0.handle }
        let g: [OpaquePointer?]? = gradients?.map { $0?.handle }
        try withExtendedLifetime((roots, gradients)) {
            let status = r.withUnsafeBufferPointer { rp -> heron_status in
                if let g {
                    return g.withUnsafeBufferPointer { gp in heron_backward(rp.baseAddress, gp.baseAddress, rp.count, retainGraph ? 1 : 0) }
                }
                return heron_backward(rp.baseAddress, nil, rp.count, retainGraph ? 1 : 0)
            }
            try check(status)
        }
    }
}

// ---------------------------------------------------------------------- operators
// Tensor-tensor operators call the schema's ops; scalars become wrapped numbers, so they promote as
// literals do (an int32 tensor * 2 stays int32).

public func + (a: Tensor, b: Tensor) throws -> Tensor { try Heron.add(a, b) }
public func - (a: Tensor, b: Tensor) throws -> Tensor { try Heron.sub(a, b) }
public func * (a: Tensor, b: Tensor) throws -> Tensor { try Heron.mul(a, b) }
public func / (a: Tensor, b: Tensor) throws -> Tensor { try Heron.div(a, b) }
public prefix func - (a: Tensor) throws -> Tensor { try Heron.neg(a) }

public func + (a: Tensor, b: Double) throws -> Tensor { try Heron.add(a, Tensor.wrapped(.float(b))) }
public func - (a: Tensor, b: Double) throws -> Tensor { try Heron.sub(a, Tensor.wrapped(.float(b))) }
public func * (a: Tensor, b: Double) throws -> Tensor { try Heron.mul(a, Tensor.wrapped(.float(b))) }
public func / (a: Tensor, b: Double) throws -> Tensor { try Heron.div(a, Tensor.wrapped(.float(b))) }
public func + (a: Double, b: Tensor) throws -> Tensor { try Heron.add(Tensor.wrapped(.float(a)), b) }
public func - (a: Double, b: Tensor) throws -> Tensor { try Heron.sub(Tensor.wrapped(.float(a)), b) }
public func * (a: Double, b: Tensor) throws -> Tensor { try Heron.mul(Tensor.wrapped(.float(a)), b) }
public func / (a: Double, b: Tensor) throws -> Tensor { try Heron.div(Tensor.wrapped(.float(a)), b) }

public func + (a: Tensor, b: Int) throws -> Tensor { try Heron.add(a, Tensor.wrapped(.int(Int64(b)))) }
public func - (a: Tensor, b: Int) throws -> Tensor { try Heron.sub(a, Tensor.wrapped(.int(Int64(b)))) }
public func * (a: Tensor, b: Int) throws -> Tensor { try Heron.mul(a, Tensor.wrapped(.int(Int64(b)))) }
public func / (a: Tensor, b: Int) throws -> Tensor { try Heron.div(a, Tensor.wrapped(.int(Int64(b)))) }
public func + (a: Int, b: Tensor) throws -> Tensor { try Heron.add(Tensor.wrapped(.int(Int64(a))), b) }
public func - (a: Int, b: Tensor) throws -> Tensor { try Heron.sub(Tensor.wrapped(.int(Int64(a))), b) }
public func * (a: Int, b: Tensor) throws -> Tensor { try Heron.mul(Tensor.wrapped(.int(Int64(a))), b) }
public func / (a: Int, b: Tensor) throws -> Tensor { try Heron.div(Tensor.wrapped(.int(Int64(a))), b) }
