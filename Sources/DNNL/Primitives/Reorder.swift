import CDNNL

extension PrimitiveDescriptor {
    /// Reorder (`dnnl_reorder_primitive_desc_create`): copies src into dst's layout and element
    /// type. With output scales and zero points this is quantize, dequantize and requantize:
    /// `dst = saturate(round_half_even(scale * (src - zpSrc)) + zpDst)` (oneDNN doc
    /// primitives/reorder.md); integer destinations saturate to their range.
    /// - Parameters:
    ///   - src, dst: same logical dims; any layouts and element types.
    ///   - attributes: output scales (any mask), zero points of `.src`/`.dst`.
    /// - Throws: `DNNLError` naming the call and descriptors.
    public static func reorder(
        src: MemoryDescriptor, dst: MemoryDescriptor,
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize("reorder", [("src", src), ("dst", dst)])
        let attr = try attributes.orDefault()
        var pd: dnnl_primitive_desc_t?
        var s = src.raw, d = dst.raw
        try check(
            dnnl_reorder_primitive_desc_create(
                &pd, &s, engine.handle, &d, engine.handle,
                attr.handle),
            "dnnl_reorder_primitive_desc_create", summary)
        return PrimitiveDescriptor(
            handle: try created(pd, "dnnl_reorder_primitive_desc_create", summary), engine: engine, attributes: attr, summary: summary)
    }
}

extension Memory {
    /// Reorders this memory into `dst` once (weights at session creation, tests, I/O).
    /// - Throws: `DNNLError` from the reorder's creation or execution.
    public func reorder(
        into dst: Memory, attributes: PrimitiveAttributes? = nil,
        stream: Stream
    ) throws(DNNLError) {
        let pd = try PrimitiveDescriptor.reorder(
            src: descriptor, dst: dst.descriptor,
            attributes: attributes, engine: engine)
        try pd.makePrimitive().execute(on: stream, [.src: self, .dst: dst])
    }
}
