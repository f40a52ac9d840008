import CDNNL

/// Maximum rank of a oneDNN memory descriptor (`DNNL_MAX_NDIMS`).
public let maxRank = 12

/// Converts Swift dims to the C API's `const dnnl_dims_t` argument: an array of
/// `DNNL_MAX_NDIMS` values, zero-filled, passed by pointer. (Passing `&tuple.0` would hand C a
/// pointer to a copy of one element in optimized builds.)
/// - Throws: `DNNLError` (`invalid_arguments` from `call`) when there are more than
///   `DNNL_MAX_NDIMS` values.
@inline(__always)
func makeDims(_ values: [Int], _ call: String) throws(DNNLError) -> [dnnl_dim_t] {
    guard values.count <= maxRank else {
        throw DNNLError(
            status: dnnl_invalid_arguments, call: call, context: "rank \(values.count) of \(values) exceeds DNNL_MAX_NDIMS (\(maxRank))")
    }
    return values.map { dnnl_dim_t($0) } + [dnnl_dim_t](repeating: 0, count: maxRank - values.count)
}

/// Reads the first `count` entries of a `dnnl_dims_t`.
@inline(__always)
func readDims(_ d: dnnl_dims_t, count: Int) -> [Int] {
    withUnsafeBytes(of: d) { raw in
        let p = raw.bindMemory(to: dnnl_dim_t.self)
        return (0..<count).map { Int(p[$0]) }
    }
}

/// A oneDNN memory descriptor (`dnnl_memory_desc_t`, a plain C struct in 2.6): logical dims,
/// element type and physical layout (plain strides, blocked, or `any` before a primitive
/// chooses).
public struct MemoryDescriptor: @unchecked Sendable, CustomStringConvertible {
    /// The C struct; passed by pointer to the C API.
    public var raw: dnnl_memory_desc_t

    public init(raw: dnnl_memory_desc_t) { self.raw = raw }

    /// A descriptor by format tag.
    /// - Parameters:
    ///   - dims: logical dims, e.g. `[N, C, H, W]`; rank 1...12.
    ///   - dataType: element type.
    ///   - tag: physical order (default plain row-major of that rank); `.any` for primitives.
    /// - Throws: `DNNLError` from `dnnl_memory_desc_init_by_tag` (bad dims or rank).
    public init(dims: [Int], dataType: DataType, tag: FormatTag? = nil) throws(DNNLError) {
        guard !dims.isEmpty, dims.count <= maxRank else {
            throw DNNLError(
                status: dnnl_invalid_arguments, call: "dnnl_memory_desc_init_by_tag",
                context: "rank \(dims.count) of dims \(dims) is outside 1...\(maxRank)")
        }
        let t = tag ?? FormatTag.plain(rank: dims.count) ?? .any
        var md = dnnl_memory_desc_t()
        let d = try makeDims(dims, "dnnl_memory_desc_init_by_tag")
        try check(
            dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), d, dataType.raw, t.raw),
            "dnnl_memory_desc_init_by_tag", "dims \(dims) \(dataType)")
        raw = md
    }

    /// A descriptor by explicit strides (in elements).
    /// - Throws: `DNNLError` from `dnnl_memory_desc_init_by_strides`.
    public init(dims: [Int], dataType: DataType, strides: [Int]) throws(DNNLError) {
        guard !dims.isEmpty, dims.count <= maxRank, strides.count == dims.count else {
            throw DNNLError(
                status: dnnl_invalid_arguments,
                call: "dnnl_memory_desc_init_by_strides",
                context: "dims \(dims) and strides \(strides) disagree in rank")
        }
        var md = dnnl_memory_desc_t()
        let d = try makeDims(dims, "dnnl_memory_desc_init_by_strides")
        let s = try makeDims(strides, "dnnl_memory_desc_init_by_strides")
        try check(
            dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), d, dataType.raw, s),
            "dnnl_memory_desc_init_by_strides", "dims \(dims) strides \(strides)")
        raw = md
    }

    /// The empty descriptor ("no argument", e.g. no bias).
    public static var zero: MemoryDescriptor { MemoryDescriptor(raw: dnnl_memory_desc_t()) }

    /// Logical dims.
    public var dims: [Int] { readDims(raw.dims, count: Int(raw.ndims)) }
    public var rank: Int { Int(raw.ndims) }
    public var dataType: DataType { DataType(raw.data_type) }
    /// True for the empty descriptor.
    public var isZero: Bool { raw.ndims == 0 }
    /// True while the layout is still `any` (not yet chosen by a primitive).
    public var isFormatAny: Bool { raw.format_kind == dnnl_format_kind_any }
    /// Bytes the memory needs, padding included.
    public var byteCount: Int { withUnsafePointer(to: raw) { Int(dnnl_memory_desc_get_size($0)) } }
    /// Number of logical elements.
    public var elementCount: Int { dims.reduce(1, *) }

    /// Strides in elements when the layout is plain (blocked without inner blocks), else nil.
    public var plainStrides: [Int]? {
        guard raw.format_kind == dnnl_blocked, raw.format_desc.blocking.inner_nblks == 0 else {
            return nil
        }
        return readDims(raw.format_desc.blocking.strides, count: rank)
    }

    /// True when this is the dense row-major layout of its dims.
    public var isPlainRowMajor: Bool {
        guard let s = plainStrides else { return false }
        var expected = 1
        for i in stride(from: rank - 1, through: 0, by: -1) {
            if dims[i] != 1 && s[i] != expected { return false }
            expected *= dims[i]
        }
        return raw.offset0 == 0
    }

    /// The same memory seen with a different element type (same layout).
    public func with(dataType: DataType) throws(DNNLError) -> MemoryDescriptor {
        if let s = plainStrides, isFormatAny == false {
            return try MemoryDescriptor(dims: dims, dataType: dataType, strides: s)
        }
        var copy = self
        copy.raw.data_type = dataType.raw
        return copy
    }

    /// A descriptor of a sub-tensor (a view at `offsets`, same layout).
    /// - Throws: `DNNLError` from `dnnl_memory_desc_init_submemory`.
    public func submemory(dims: [Int], offsets: [Int]) throws(DNNLError) -> MemoryDescriptor {
        var md = dnnl_memory_desc_t()
        let d = try makeDims(dims, "dnnl_memory_desc_init_submemory")
        let o = try makeDims(offsets, "dnnl_memory_desc_init_submemory")
        var parent = raw
        try check(
            dnnl_memory_desc_init_submemory(&md, &parent, d, o),
            "dnnl_memory_desc_init_submemory",
            "parent \(self.dims) sub \(dims) at \(offsets)")
        return MemoryDescriptor(raw: md)
    }

    /// The same memory with new dims (same element count, compatible layout).
    /// - Throws: `DNNLError` from `dnnl_memory_desc_reshape`.
    public func reshaped(_ newDims: [Int]) throws(DNNLError) -> MemoryDescriptor {
        var md = dnnl_memory_desc_t()
        let d = try makeDims(newDims, "dnnl_memory_desc_reshape")
        var src = raw
        try check(
            dnnl_memory_desc_reshape(&md, &src, Int32(newDims.count), d),
            "dnnl_memory_desc_reshape", "\(dims) -> \(newDims)")
        return MemoryDescriptor(raw: md)
    }

    /// The same memory with logical axes permuted: input axis `i` becomes axis
    /// `permutation[i]` (oneDNN's convention).
    /// - Throws: `DNNLError` from `dnnl_memory_desc_permute_axes`.
    public func permutingAxes(_ permutation: [Int]) throws(DNNLError) -> MemoryDescriptor {
        var md = dnnl_memory_desc_t()
        var src = raw
        guard permutation.count == rank, permutation.sorted() == Array(0..<rank) else {
            throw DNNLError(
                status: dnnl_invalid_arguments, call: "dnnl_memory_desc_permute_axes",
                context: "\(permutation) is not a permutation of the \(rank) axes of \(dims)")
        }
        let perm = permutation.map(Int32.init)
        try check(
            dnnl_memory_desc_permute_axes(&md, &src, perm), "dnnl_memory_desc_permute_axes",
            "\(dims) permutation \(permutation)")
        return MemoryDescriptor(raw: md)
    }

    public var description: String {
        if isZero { return "none" }
        var layout = "blocked"
        if isFormatAny {
            layout = "any"
        } else if let s = plainStrides {
            layout = "strides \(s)"
        } else if raw.format_kind == dnnl_format_kind_rnn_packed {
            layout = "rnn_packed"
        }
        return "\(dims) \(dataType) \(layout)"
    }
}

extension MemoryDescriptor: Equatable {
    /// oneDNN's own equality (`dnnl_memory_desc_equal`): same dims, type and layout.
    public static func == (lhs: MemoryDescriptor, rhs: MemoryDescriptor) -> Bool {
        var l = lhs.raw
        var r = rhs.raw
        return dnnl_memory_desc_equal(&l, &r) != 0
    }
}

/// Calls `body` with a pointer to the descriptor's C struct, or nil when absent (an optional
/// argument such as a bias).
func withOptionalPointer<R>(
    _ md: MemoryDescriptor?,
    _ body: (UnsafePointer<dnnl_memory_desc_t>?) -> R
) -> R {
    guard let md else { return body(nil) }
    return withUnsafePointer(to: md.raw) { body($0) }
}
