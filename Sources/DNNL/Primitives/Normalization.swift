import CDNNL

extension PrimitiveDescriptor {
    /// Forward-inference layer normalization over the last dim
    /// (`dnnl_layer_normalization_forward_desc_init`):
    /// `dst = (src - mean) / sqrt(variance + epsilon) * scale + shift`, statistics computed
    /// per row. Pass `scale`/`shift` f32 `[C]` as `ExecArg.scale` / `.shift` when enabled.
    /// - Parameters:
    ///   - data: `[..., C]`, f32 (no INT8 layer norm in 2.6).
    /// - Throws: `DNNLError` naming the call and shape.
    public static func layerNormalization(
        data: MemoryDescriptor, epsilon: Float, useScale: Bool, useShift: Bool,
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            "layer_normalization", [("data", data)],
            extra: "epsilon \(epsilon) scale \(useScale) shift \(useShift)")
        var desc = dnnl_layer_normalization_desc_t()
        var md = data.raw
        let flags = (useScale ? dnnl_use_scale.rawValue : 0) | (useShift ? dnnl_use_shift.rawValue : 0)
        try check(
            dnnl_layer_normalization_forward_desc_init(
                &desc, dnnl_forward_inference, &md, nil, epsilon, flags),
            "dnnl_layer_normalization_forward_desc_init", summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }

    /// Forward-inference batch normalization with given statistics
    /// (`dnnl_batch_normalization_forward_desc_init`, `use_global_stats`):
    /// `dst = (src - mean[c]) / sqrt(variance[c] + epsilon) * scale[c] + shift[c]`.
    /// Pass `mean`, `variance` (and `scale`, `shift`) as f32 `[C]`.
    /// - Parameters:
    ///   - data: `[N, C, ...]`, f32.
    /// - Throws: `DNNLError` naming the call and shape.
    public static func batchNormalization(
        data: MemoryDescriptor, epsilon: Float, useScale: Bool, useShift: Bool,
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            "batch_normalization", [("data", data)],
            extra: "epsilon \(epsilon) scale \(useScale) shift \(useShift)")
        var desc = dnnl_batch_normalization_desc_t()
        var md = data.raw
        let flags =
            dnnl_use_global_stats.rawValue
            | (useScale ? dnnl_use_scale.rawValue : 0) | (useShift ? dnnl_use_shift.rawValue : 0)
        try check(
            dnnl_batch_normalization_forward_desc_init(
                &desc, dnnl_forward_inference, &md, epsilon, flags),
            "dnnl_batch_normalization_forward_desc_init", summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}
