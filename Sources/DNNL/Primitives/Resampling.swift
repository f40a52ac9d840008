import CDNNL

/// Resampling algorithms (`dnnl_resampling_*`).
public enum ResamplingAlgorithm: Sendable, Hashable {
    /// Nearest neighbour: `src index = floor((dst index + 0.5) / factor)` (oneDNN's
    /// half-pixel convention; equals ONNX asymmetric/floor for integer factors).
    case nearest
    case linear

    var raw: dnnl_alg_kind_t { self == .nearest ? dnnl_resampling_nearest : dnnl_resampling_linear }
}

extension PrimitiveDescriptor {
    /// Forward-inference resampling (`dnnl_resampling_forward_desc_init`).
    /// - Parameters:
    ///   - src: `[N, C, (D,) (H,) W]`; f32, u8 or s8.
    ///   - dst: `[N, C, (OD,) (OH,) OW]`.
    ///   - factors: `dst / src` per spatial dim, or nil to derive them from the dims.
    /// - Throws: `DNNLError` naming the call and shapes.
    public static func resampling(
        _ algorithm: ResamplingAlgorithm, src: MemoryDescriptor, dst: MemoryDescriptor,
        factors: [Float]? = nil, attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            "resampling \(algorithm)", [("src", src), ("dst", dst)],
            extra: factors.map { "factors \($0)" } ?? "")
        var desc = dnnl_resampling_desc_t()
        var s = src.raw, d = dst.raw
        try check(
            dnnl_resampling_forward_desc_init(
                &desc, dnnl_forward_inference, algorithm.raw,
                factors, &s, &d),
            "dnnl_resampling_forward_desc_init", summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}
