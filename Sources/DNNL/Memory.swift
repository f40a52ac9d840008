import CDNNL

/// A oneDNN memory object (`dnnl_memory_t`): a descriptor plus a buffer on an engine.
///
/// The buffer is either allocated by oneDNN (64-byte aligned, owned by the memory object) or a
/// caller's buffer, which this object keeps alive through `owner`.
/// Not `Sendable`: the buffer is mutable and shared with primitives that write it.
public final class Memory {
    public let handle: dnnl_memory_t
    public let descriptor: MemoryDescriptor
    public let engine: Engine
    /// Keeps a caller's buffer alive as long as this memory may point into it.
    private var owner: AnyObject?

    /// A memory whose buffer oneDNN allocates (contents undefined).
    /// - Throws: `DNNLError` from `dnnl_memory_create` (e.g. a descriptor still `any`).
    public init(_ descriptor: MemoryDescriptor, engine: Engine = .cpu) throws(DNNLError) {
        var h: dnnl_memory_t?
        var md = descriptor.raw
        try check(
            dnnl_memory_create(&h, &md, engine.handle, cdnnl_memory_allocate()),
            "dnnl_memory_create", "\(descriptor)")
        handle = try created(h, "dnnl_memory_create", "\(descriptor)")
        self.descriptor = descriptor
        self.engine = engine
    }

    /// A memory over a caller's buffer of at least `descriptor.byteCount` bytes.
    /// - Parameter owner: an object that keeps the buffer alive (held by this memory).
    /// - Throws: `DNNLError` from `dnnl_memory_create`.
    public init(
        _ descriptor: MemoryDescriptor, engine: Engine = .cpu,
        buffer: UnsafeMutableRawPointer, owner: AnyObject?
    ) throws(DNNLError) {
        var h: dnnl_memory_t?
        var md = descriptor.raw
        try check(
            dnnl_memory_create(&h, &md, engine.handle, buffer),
            "dnnl_memory_create", "\(descriptor) over a caller's buffer")
        handle = try created(h, "dnnl_memory_create", "\(descriptor) over a caller's buffer")
        self.descriptor = descriptor
        self.engine = engine
        self.owner = owner
    }

    deinit { dnnl_memory_destroy(handle) }

    /// The buffer's address.
    public var dataPointer: UnsafeMutableRawPointer {
        var p: UnsafeMutableRawPointer?
        _ = dnnl_memory_get_data_handle(handle, &p)
        // Never nil: both initializers give the memory a buffer (oneDNN's allocation or the
        // caller's non-null pointer) and `setDataPointer` only takes non-null ones.
        return p!
    }

    /// Points this memory at another buffer of at least `descriptor.byteCount` bytes.
    /// - Throws: `DNNLError` from `dnnl_memory_set_data_handle`.
    public func setDataPointer(_ buffer: UnsafeMutableRawPointer, owner: AnyObject?) throws(DNNLError) {
        try check(
            dnnl_memory_set_data_handle(handle, buffer), "dnnl_memory_set_data_handle",
            "\(descriptor)")
        self.owner = owner
    }

    /// Bytes of the buffer (padding included).
    public var byteCount: Int { descriptor.byteCount }

    /// Copies `values` into the buffer (a plain layout of exactly that many elements).
    /// - Throws: `DNNLError` (`invalid_arguments`, call `"Memory.write"`) when the values' bytes
    ///   differ from ``byteCount``; the buffer is then left unchanged.
    public func write<T: BitwiseCopyable>(_ values: [T]) throws(DNNLError) {
        guard values.count * MemoryLayout<T>.stride == byteCount else {
            throw DNNLError(
                status: dnnl_invalid_arguments, call: "Memory.write",
                context:
                    "writing \(values.count) x \(T.self) (\(values.count * MemoryLayout<T>.stride) bytes) into \(descriptor) (\(byteCount) bytes)")
        }
        values.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { dataPointer.copyMemory(from: base, byteCount: bytes.count) }
        }
    }

    /// Reads the buffer as elements of `T`: `byteCount / stride` of them (trailing bytes that
    /// do not fill a whole element are left out).
    public func read<T: BitwiseCopyable>(as type: T.Type = T.self) -> [T] {
        let n = byteCount / MemoryLayout<T>.stride
        let p = dataPointer.bindMemory(to: T.self, capacity: n)
        return Array(UnsafeBufferPointer(start: p, count: n))
    }

    /// Fills the buffer with zero bytes.
    public func zero() { dataPointer.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount) }
}
