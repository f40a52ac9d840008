import CDNNL

extension PrimitiveDescriptor {
    /// Forward-inference element-wise function (`dnnl_eltwise_forward_desc_init`), in place
    /// or out of place; dst has the same descriptor as src.
    /// - Parameters:
    ///   - data: src/dst descriptor, any shape; f32 (s8/u8/s32 for relu and linear only).
    ///   - alpha, beta: the algorithm's parameters (see `EltwiseAlgorithm`).
    /// - Throws: `DNNLError` naming the call and shape.
    public static func eltwise(
        _ algorithm: EltwiseAlgorithm, data: MemoryDescriptor, alpha: Float = 0, beta: Float = 0,
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            "eltwise \(algorithm)", [("data", data)],
            extra: "alpha \(alpha) beta \(beta)")
        var desc = dnnl_eltwise_desc_t()
        var md = data.raw
        try check(
            dnnl_eltwise_forward_desc_init(
                &desc, dnnl_forward_inference, algorithm.raw,
                &md, alpha, beta),
            "dnnl_eltwise_forward_desc_init", summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}
