import CDNNL

extension PrimitiveDescriptor {
    /// Forward-inference softmax along `axis` (`dnnl_softmax_v2_forward_desc_init`):
    /// `dst_i = exp(src_i - max) / sum_j exp(src_j - max)`, or its logarithm when `log` is set.
    /// - Parameters:
    ///   - src: any shape, f32.
    ///   - dst: src's dims; f32, or u8/s8 with output scales.
    /// - Throws: `DNNLError` naming the call and shapes.
    public static func softmax(
        src: MemoryDescriptor, dst: MemoryDescriptor, axis: Int, log: Bool = false,
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            log ? "logsoftmax" : "softmax", [("src", src), ("dst", dst)],
            extra: "axis \(axis)")
        var desc = dnnl_softmax_v2_desc_t()
        var s = src.raw, d = dst.raw
        try check(
            dnnl_softmax_v2_forward_desc_init(
                &desc, dnnl_forward_inference, log ? dnnl_softmax_log : dnnl_softmax_accurate,
                &s, &d, Int32(axis)), "dnnl_softmax_v2_forward_desc_init", summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}
