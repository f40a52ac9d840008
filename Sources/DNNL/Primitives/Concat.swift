import CDNNL

extension PrimitiveDescriptor {
    /// Concatenation along `axis` (`dnnl_concat_primitive_desc_create`). All sources have one
    /// element type and equal dims except along `axis`; no scales in 2.6 (requantize inputs
    /// with reorders into `submemory` views of dst instead).
    /// - Parameters:
    ///   - srcs: at least one source.
    ///   - dst: the result descriptor, or nil to let oneDNN choose the layout.
    /// - Throws: `DNNLError` naming the call and shapes.
    public static func concat(
        srcs: [MemoryDescriptor], axis: Int, dst: MemoryDescriptor? = nil,
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let parts = srcs.enumerated().map { ("src\($0.offset)", Optional($0.element)) }
        let summary = summarize("concat", parts + [("dst", dst)], extra: "axis \(axis)")
        let attr = try attributes.orDefault()
        var pd: dnnl_primitive_desc_t?
        let raws = srcs.map(\.raw)
        let status = withOptionalPointer(dst) { dp in
            dnnl_concat_primitive_desc_create(
                &pd, dp, Int32(srcs.count), Int32(axis), raws,
                attr.handle, engine.handle)
        }
        try check(status, "dnnl_concat_primitive_desc_create", summary)
        return PrimitiveDescriptor(
            handle: try created(pd, "dnnl_concat_primitive_desc_create", summary), engine: engine, attributes: attr, summary: summary)
    }

    /// Scaled sum of equally shaped sources (`dnnl_sum_primitive_desc_create`):
    /// `dst = sum_i scales[i] * src_i`.
    /// - Parameters:
    ///   - srcs: sources of equal dims; `scales` has one value per source.
    ///   - dst: the result descriptor, or nil to let oneDNN choose.
    /// - Throws: `DNNLError` naming the call and shapes.
    public static func sum(
        srcs: [MemoryDescriptor], scales: [Float], dst: MemoryDescriptor? = nil,
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let parts = srcs.enumerated().map { ("src\($0.offset)", Optional($0.element)) }
        let summary = summarize("sum", parts + [("dst", dst)], extra: "scales \(scales)")
        guard scales.count == srcs.count else {
            throw DNNLError(
                status: dnnl_invalid_arguments, call: "dnnl_sum_primitive_desc_create",
                context: "\(scales.count) scales for \(srcs.count) sources. \(summary)")
        }
        let attr = try attributes.orDefault()
        var pd: dnnl_primitive_desc_t?
        let raws = srcs.map(\.raw)
        let status = withOptionalPointer(dst) { dp in
            dnnl_sum_primitive_desc_create(
                &pd, dp, Int32(srcs.count), scales, raws, attr.handle,
                engine.handle)
        }
        try check(status, "dnnl_sum_primitive_desc_create", summary)
        return PrimitiveDescriptor(
            handle: try created(pd, "dnnl_sum_primitive_desc_create", summary), engine: engine, attributes: attr, summary: summary)
    }
}
