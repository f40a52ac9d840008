import CDNNL

extension PrimitiveDescriptor {
    /// Forward-inference inner product (fully connected), `dnnl_inner_product_forward_desc_init`:
    /// `dst[n, oc] = sum_i src[n, i] * weights[oc, i] + bias[oc]` over all non-batch dims of src.
    /// - Parameters:
    ///   - src: `[N, IC]` or `[N, IC, (D,) (H,) W]`; f32, or u8/s8 for INT8.
    ///   - weights: `[OC, IC]` (or `[OC, IC, ...spatial]` matching src); f32 or s8.
    ///   - bias: `[OC]` or nil.
    ///   - dst: `[N, OC]`.
    /// - Throws: `DNNLError` naming the call and shapes.
    public static func innerProduct(
        src: MemoryDescriptor, weights: MemoryDescriptor, bias: MemoryDescriptor?,
        dst: MemoryDescriptor, attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            "inner_product", [("src", src), ("weights", weights), ("bias", bias), ("dst", dst)])
        var desc = dnnl_inner_product_desc_t()
        var s = src.raw, w = weights.raw, d = dst.raw
        let status = withOptionalPointer(bias) { bp in
            dnnl_inner_product_forward_desc_init(&desc, dnnl_forward_inference, &s, &w, bp, &d)
        }
        try check(status, "dnnl_inner_product_forward_desc_init", summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}
