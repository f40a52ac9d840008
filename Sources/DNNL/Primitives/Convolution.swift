import CDNNL

extension PrimitiveDescriptor {
    /// Forward-inference convolution (`dnnl_dilated_convolution_forward_desc_init`).
    ///
    /// `dst[n, oc, o] = sum_{ic, k} src[n, g*ICg + ic, o*stride + k*(dilation+1) - padL] *
    /// weights[g, oc', ic, k] + bias[oc]` (oneDNN doc primitives/convolution.md).
    /// - Parameters:
    ///   - src: `[N, IC, (D,) (H,) W]`, f32 or u8/s8 (INT8).
    ///   - weights: `[OC, IC, (KD,) (KH,) KW]`, or with groups `[G, OC/G, IC/G, ...]`
    ///     (depthwise: `[C, 1, 1, KH, KW]`); f32, or s8 for INT8. Use tag `.any` and reorder
    ///     into `self.weights`.
    ///   - bias: `[OC]` (f32, or s32/s8/u8 for INT8; added before the output scale), or nil.
    ///   - dst: `[N, OC, (OD,) (OH,) OW]`.
    ///   - strides, paddingL, paddingR: one value per spatial dim.
    ///   - dilations: oneDNN's 0-based dilation (ONNX dilation - 1); nil means none.
    /// - Throws: `DNNLError` naming the call and the shapes (e.g. mismatched channels,
    ///   an INT8 configuration oneDNN does not implement: `isUnimplemented`).
    public static func convolutionForward(
        src: MemoryDescriptor, weights: MemoryDescriptor, bias: MemoryDescriptor?,
        dst: MemoryDescriptor, strides: [Int], dilations: [Int]? = nil,
        paddingL: [Int], paddingR: [Int],
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        try convolutionLike(
            "convolution", call: "dnnl_dilated_convolution_forward_desc_init",
            initialize: dnnl_dilated_convolution_forward_desc_init, algorithm: dnnl_convolution_direct,
            src: src, weights: weights, bias: bias, dst: dst, strides: strides, dilations: dilations,
            paddingL: paddingL, paddingR: paddingR, attributes: attributes, engine: engine)
    }

    /// Forward-inference deconvolution, i.e. transposed convolution
    /// (`dnnl_dilated_deconvolution_forward_desc_init`).
    /// - Parameters:
    ///   - src: `[N, IC, (H,) W]`.
    ///   - weights: `[OC, IC, (KH,) KW]` or with groups `[G, OC/G, IC/G, ...]`. (ONNX
    ///     ConvTranspose stores `[IC, OC/G, KH, KW]`: permute before use.)
    ///   - bias: `[OC]` or nil.
    ///   - dst: `[N, OC, (OH,) OW]` with `OH = (H-1)*stride - padL - padR + (KH-1)*(dil+1) + 1`.
    ///   - dilations: 0-based; nil means none.
    /// - Throws: `DNNLError` naming the call and shapes.
    public static func deconvolutionForward(
        src: MemoryDescriptor, weights: MemoryDescriptor, bias: MemoryDescriptor?,
        dst: MemoryDescriptor, strides: [Int], dilations: [Int]? = nil,
        paddingL: [Int], paddingR: [Int],
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        try convolutionLike(
            "deconvolution", call: "dnnl_dilated_deconvolution_forward_desc_init",
            initialize: dnnl_dilated_deconvolution_forward_desc_init, algorithm: dnnl_deconvolution_direct,
            src: src, weights: weights, bias: bias, dst: dst, strides: strides, dilations: dilations,
            paddingL: paddingL, paddingR: paddingR, attributes: attributes, engine: engine)
    }

    /// The shared body of convolution and deconvolution (their C descriptors are one type).
    private static func convolutionLike(
        _ kind: String, call: String,
        initialize: (
            UnsafeMutablePointer<dnnl_convolution_desc_t>?, dnnl_prop_kind_t, dnnl_alg_kind_t,
            UnsafePointer<dnnl_memory_desc_t>?, UnsafePointer<dnnl_memory_desc_t>?,
            UnsafePointer<dnnl_memory_desc_t>?, UnsafePointer<dnnl_memory_desc_t>?,
            UnsafePointer<dnnl_dim_t>?, UnsafePointer<dnnl_dim_t>?, UnsafePointer<dnnl_dim_t>?,
            UnsafePointer<dnnl_dim_t>?
        ) -> dnnl_status_t,
        algorithm: dnnl_alg_kind_t, src: MemoryDescriptor, weights: MemoryDescriptor, bias: MemoryDescriptor?,
        dst: MemoryDescriptor, strides: [Int], dilations: [Int]?, paddingL: [Int], paddingR: [Int],
        attributes: PrimitiveAttributes?, engine: Engine
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize(
            kind, [("src", src), ("weights", weights), ("bias", bias), ("dst", dst)],
            extra: "strides \(strides) dilations \(dilations ?? []) pad \(paddingL) \(paddingR)")
        let g = try SpatialGeometry(
            rank: src.rank, strides: strides, dilations: dilations,
            paddingL: paddingL, paddingR: paddingR, call: call, summary: summary)
        var desc = dnnl_convolution_desc_t()
        var s = src.raw, w = weights.raw, d = dst.raw
        let status = withOptionalPointer(bias) { bp in
            initialize(
                &desc, dnnl_forward_inference, algorithm, &s, &w, bp, &d,
                g.strides, g.dilations, g.paddingL, g.paddingR)
        }
        try check(status, call, summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}

/// Strides, 0-based dilations and paddings of a sliding-window primitive as C dims, checked
/// to have one value per spatial dim (`rank - 2`).
struct SpatialGeometry {
    let strides: [dnnl_dim_t], dilations: [dnnl_dim_t], paddingL: [dnnl_dim_t], paddingR: [dnnl_dim_t]

    init(
        rank: Int, strides: [Int], dilations: [Int]?, paddingL: [Int], paddingR: [Int],
        call: String, summary: String
    ) throws(DNNLError) {
        guard rank >= 3 else {
            throw DNNLError(
                status: dnnl_invalid_arguments, call: call, context: "source rank \(rank): a sliding window needs rank 3 to 5. \(summary)")
        }
        let sp = rank - 2
        let dil = dilations ?? Array(repeating: 0, count: sp)
        for (name, v) in [
            ("strides", strides), ("dilations", dil), ("paddingL", paddingL),
            ("paddingR", paddingR),
        ] where v.count != sp {
            throw DNNLError(
                status: dnnl_invalid_arguments, call: call,
                context: "\(name) \(v) needs \(sp) values. \(summary)")
        }
        self.strides = try makeDims(strides, call)
        self.dilations = try makeDims(dil, call)
        self.paddingL = try makeDims(paddingL, call)
        self.paddingR = try makeDims(paddingR, call)
    }
}
