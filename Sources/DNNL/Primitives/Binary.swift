import CDNNL

extension PrimitiveDescriptor {
    /// Element-wise binary operation with broadcasting (`dnnl_binary_desc_init`):
    /// `dst = src0 op src1`; src1's dims are equal to src0's or 1 (broadcast). Scales per source
    /// (`PrimitiveAttributes.setScales(_:for: .src / .src1)`) multiply each source first.
    /// - Parameters:
    ///   - src0: the full-size operand (not tag any); f32, u8 or s8.
    ///   - src1: same rank, dims equal or 1.
    ///   - dst: src0's dims; f32, u8 or s8.
    /// - Throws: `DNNLError` naming the call and shapes.
    public static func binary(
        _ algorithm: BinaryAlgorithm, src0: MemoryDescriptor, src1: MemoryDescriptor,
        dst: MemoryDescriptor, attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            "binary \(algorithm)",
            [("src0", src0), ("src1", src1), ("dst", dst)])
        var desc = dnnl_binary_desc_t()
        var a = src0.raw, b = src1.raw, d = dst.raw
        try check(
            dnnl_binary_desc_init(&desc, algorithm.raw, &a, &b, &d),
            "dnnl_binary_desc_init", summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}
