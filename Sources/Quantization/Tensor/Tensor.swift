import Foundation

/// A dense, row-major (C order) n-dimensional array of one ``ElementType``.
///
/// A tensor is a value type: copies share one 64-byte aligned buffer until one of them is
/// mutated through ``withUnsafeMutableBytes(_:)``, which copies the buffer first unless it is
/// uniquely referenced (copy-on-write).
///
/// The element at index `(i0, i1, …, in)` of a tensor with shape `[d0, d1, …, dn]` is stored at
/// linear position `((i0 * d1 + i1) * d2 + …) * dn + in`. The empty shape `[]` is a scalar with
/// one element; a shape containing `0` has no elements.
///
/// The preconditions of the initializers, ``scalars(as:)`` and ``reshaped(_:)`` guard against
/// errors in the calling code (like an array index out of range), never against data: the
/// readers (`.npy`, `.npz`, ONNX) and the plan-time evaluation check shapes, counts and
/// element types taken from files and models first, and throw.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    /// The extent of each dimension, outermost first. Every entry is `>= 0`.
    public let shape: [Int]
    /// The type of every element.
    public let elementType: ElementType
    private var storage: TensorStorage

    /// The number of elements: the product of ``shape`` (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }

    /// The number of bytes of element data: `count * elementType.byteSize`.
    public var byteCount: Int { count * elementType.byteSize }

    /// Creates a tensor of the given shape whose bytes are all zero.
    ///
    /// - Precondition: every dimension is `>= 0` and the byte count does not overflow `Int`.
    public init(zeros shape: [Int], elementType: ElementType) {
        let byteCount = Tensor.byteCount(of: shape, elementType: elementType)
        precondition(byteCount != nil, "invalid tensor shape \(shape)")
        self.shape = shape
        self.elementType = elementType
        self.storage = TensorStorage(byteCount: byteCount!)
    }

    /// Creates a tensor of the given shape holding `scalars` in row-major order;
    /// its ``elementType`` is `T.elementType`.
    ///
    /// - Precondition: `scalars.count` equals the product of `shape`.
    public init<T: TensorScalar>(shape: [Int], scalars: [T]) {
        self.init(zeros: shape, elementType: T.elementType)
        precondition(
            scalars.count == count,
            "shape \(shape) needs \(count) scalars, got \(scalars.count)")
        scalars.withUnsafeBytes { storage.bytes.copyMemory(from: $0) }
    }

    /// Returns the elements in row-major order.
    ///
    /// - Precondition: `T.elementType == elementType`.
    public func scalars<T: TensorScalar>(as type: T.Type = T.self) -> [T] {
        precondition(
            T.elementType == elementType,
            "tensor holds \(elementType), not \(T.elementType)")
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(storage.bytes))
            initialized = count
        }
    }

    /// Calls `body` with the ``byteCount`` bytes of element data (64-byte aligned, row-major,
    /// native = little-endian). The buffer must not escape `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage.bytes))
    }

    /// Calls `body` with writable element data, first copying the buffer if it is shared
    /// with another tensor. The buffer must not escape `body`.
    public mutating func withUnsafeMutableBytes<R>(
        _ body: (UnsafeMutableRawBufferPointer) throws -> R
    ) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy()
        }
        return try body(storage.bytes)
    }

    /// Returns a tensor with the same elements in the same order but a different shape.
    /// The result shares this tensor's buffer (copy-on-write).
    ///
    /// - Precondition: every dimension is `>= 0` and the element count is unchanged.
    public func reshaped(_ shape: [Int]) -> Tensor {
        precondition(
            Tensor.byteCount(of: shape, elementType: elementType) == byteCount,
            "cannot reshape \(self.shape) to \(shape)")
        return Tensor(shape: shape, elementType: elementType, storage: storage)
    }

    /// Tensors are equal when shape, element type and every byte of data are equal
    /// (so `Float` NaNs with the same bits compare equal, and `0.0 != -0.0`).
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.shape == rhs.shape, lhs.elementType == rhs.elementType else { return false }
        return lhs.storage === rhs.storage
            || memcmp(lhs.storage.pointer, rhs.storage.pointer, lhs.byteCount) == 0
    }

    /// For example `Tensor(f32, shape: [2, 3])`.
    public var description: String {
        "Tensor(\(elementType), shape: \(shape))"
    }

    private init(shape: [Int], elementType: ElementType, storage: TensorStorage) {
        self.shape = shape
        self.elementType = elementType
        self.storage = storage
    }

    /// The byte count of a tensor with this shape, or `nil` if a dimension is negative
    /// or the count overflows `Int`.
    static func byteCount(of shape: [Int], elementType: ElementType) -> Int? {
        var total = elementType.byteSize
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: dim)
            guard !overflow else { return nil }
            total = product
        }
        return total
    }
}

/// The buffer behind a ``Tensor``: `byteCount` zero-initialised bytes, 64-byte aligned.
///
/// It is `@unchecked Sendable` because the class itself does no synchronisation: the bytes are
/// never written after initialisation except through `Tensor.withUnsafeMutableBytes`, which first
/// ensures the buffer is uniquely referenced (copying it otherwise). A buffer reachable from more
/// than one tensor, and so from more than one thread, is therefore effectively immutable.
private final class TensorStorage: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int) {
        let allocated = max(1, byteCount)
        pointer = UnsafeMutableRawPointer.allocate(byteCount: allocated, alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: allocated)
        self.byteCount = byteCount
    }

    deinit { pointer.deallocate() }

    var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: pointer, count: byteCount)
    }

    func copy() -> TensorStorage {
        let result = TensorStorage(byteCount: byteCount)
        result.pointer.copyMemory(from: pointer, byteCount: byteCount)
        return result
    }
}
