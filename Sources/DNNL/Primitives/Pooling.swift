import CDNNL

/// Pooling algorithms (`dnnl_pooling_*`).
public enum PoolingAlgorithm: Sendable, Hashable {
    case max
    /// Average counting padded positions (ONNX `count_include_pad=1`).
    case averageIncludePadding
    /// Average over the valid positions only (ONNX default).
    case averageExcludePadding

    var raw: dnnl_alg_kind_t {
        switch self {
        case .max: dnnl_pooling_max
        case .averageIncludePadding: dnnl_pooling_avg_include_padding
        case .averageExcludePadding: dnnl_pooling_avg_exclude_padding
        }
    }
}

extension PrimitiveDescriptor {
    /// Forward-inference pooling (`dnnl_pooling_v2_forward_desc_init`). Global pooling is a
    /// kernel equal to the spatial size with stride 1.
    /// - Parameters:
    ///   - src: `[N, C, (D,) (H,) W]`; f32, u8, s8 or s32.
    ///   - dst: `[N, C, (OD,) (OH,) OW]`; same element type (s8<->u8 allowed for inference).
    ///   - kernel, strides, paddingL, paddingR: one value per spatial dim.
    ///   - dilations: 0-based, nil means none.
    /// - Throws: `DNNLError` naming the call and shapes.
    public static func pooling(
        _ algorithm: PoolingAlgorithm, src: MemoryDescriptor, dst: MemoryDescriptor,
        kernel: [Int], strides: [Int], dilations: [Int]? = nil,
        paddingL: [Int], paddingR: [Int],
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            "pooling \(algorithm)", [("src", src), ("dst", dst)],
            extra: "kernel \(kernel) strides \(strides) pad \(paddingL) \(paddingR)")
        let call = "dnnl_pooling_v2_forward_desc_init"
        let g = try SpatialGeometry(
            rank: src.rank, strides: strides, dilations: dilations,
            paddingL: paddingL, paddingR: paddingR, call: call,
            summary: summary)
        guard kernel.count == src.rank - 2 else {
            throw DNNLError(
                status: dnnl_invalid_arguments, call: call,
                context: "kernel \(kernel) needs \(src.rank - 2) values. \(summary)")
        }
        let k = try makeDims(kernel, call)
        var desc = dnnl_pooling_v2_desc_t()
        var s = src.raw, d = dst.raw
        try check(
            dnnl_pooling_v2_forward_desc_init(
                &desc, dnnl_forward_inference, algorithm.raw, &s, &d, g.strides, k,
                g.dilations, g.paddingL, g.paddingR), call, summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}
