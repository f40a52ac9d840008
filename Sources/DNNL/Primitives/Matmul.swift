import CDNNL

extension PrimitiveDescriptor {
    /// Matrix multiplication, batched with broadcasting (`dnnl_matmul_desc_init`):
    /// `dst[b..., m, n] = sum_k src[b..., m, k] * weights[b..., k, n] + bias[..., n]`,
    /// batch dims of size 1 broadcast.
    /// - Parameters:
    ///   - src: `[..., M, K]`; f32, or u8/s8 for INT8.
    ///   - weights: `[..., K, N]` of the same rank; f32, or s8 for INT8 (u8 weights are rejected).
    ///   - bias: same rank, dims 1 or equal to dst's, or nil.
    ///   - dst: `[..., M, N]`.
    /// - Throws: `DNNLError` naming the call and shapes.
    public static func matmul(
        src: MemoryDescriptor, weights: MemoryDescriptor, bias: MemoryDescriptor? = nil,
        dst: MemoryDescriptor, attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            "matmul", [("src", src), ("weights", weights), ("bias", bias), ("dst", dst)])
        var desc = dnnl_matmul_desc_t()
        var s = src.raw, w = weights.raw, d = dst.raw
        let status = withOptionalPointer(bias) { bp in dnnl_matmul_desc_init(&desc, &s, &w, bp, &d) }
        try check(status, "dnnl_matmul_desc_init", summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}
