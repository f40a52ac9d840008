import CDNNL

/// A chain of post-ops (`dnnl_post_ops_t`) applied to a primitive's result before it is
/// stored: sums (residual adds), eltwise functions and binary operations.
///
/// Order for convolution (oneDNN doc primitives/convolution.md): src zero point, output scale,
/// post-ops in order, dst zero point, then saturation and rounding half to even.
public final class PostOps {
    public let handle: dnnl_post_ops_t
    /// Descriptors of the second inputs of binary post-ops, by post-op index.
    public private(set) var binarySources: [(index: Int, descriptor: MemoryDescriptor)] = []

    /// - Throws: `DNNLError` from `dnnl_post_ops_create`.
    public init() throws(DNNLError) {
        var h: dnnl_post_ops_t?
        try check(dnnl_post_ops_create(&h), "dnnl_post_ops_create")
        handle = try created(h, "dnnl_post_ops_create")
    }

    deinit { dnnl_post_ops_destroy(handle) }

    /// Number of post-ops in the chain.
    public var count: Int { Int(dnnl_post_ops_len(handle)) }

    /// Appends a sum: `dst = scale * (dst_prev - zeroPoint) + result`, where `dst_prev` is what
    /// the destination buffer held before the primitive ran (read as `dataType`, default the
    /// dst's type). With an s8 residual into a u8 dst, pass `dataType: .s8` (same size only).
    /// - Throws: `DNNLError` from `dnnl_post_ops_append_sum_v3`.
    public func appendSum(
        scale: Float = 1, zeroPoint: Int32 = 0,
        dataType: DataType = .undefined
    ) throws(DNNLError) {
        try check(
            dnnl_post_ops_append_sum_v3(handle, scale, zeroPoint, dataType.raw),
            "dnnl_post_ops_append_sum_v3",
            "sum scale \(scale) zero point \(zeroPoint) \(dataType)")
    }

    /// Appends `scale * f(x; alpha, beta)`.
    /// - Throws: `DNNLError` from `dnnl_post_ops_append_eltwise`.
    public func appendEltwise(
        _ algorithm: EltwiseAlgorithm, alpha: Float = 0, beta: Float = 0,
        scale: Float = 1
    ) throws(DNNLError) {
        try check(
            dnnl_post_ops_append_eltwise(handle, scale, algorithm.raw, alpha, beta),
            "dnnl_post_ops_append_eltwise", "\(algorithm) alpha \(alpha) beta \(beta)")
    }

    /// Appends `x op src1`, src1 broadcast to the dst dims. At execution pass src1 as
    /// `ExecArg.postOpBinarySrc1(index)` where `index` is this post-op's position.
    /// - Returns: the post-op's index in the chain.
    /// - Throws: `DNNLError` from `dnnl_post_ops_append_binary`.
    @discardableResult
    public func appendBinary(
        _ algorithm: BinaryAlgorithm,
        src1: MemoryDescriptor
    ) throws(DNNLError) -> Int {
        var md = src1.raw
        let index = count
        try check(
            dnnl_post_ops_append_binary(handle, algorithm.raw, &md),
            "dnnl_post_ops_append_binary", "\(algorithm) src1 \(src1)")
        binarySources.append((index, src1))
        return index
    }
}

/// Primitive attributes (`dnnl_primitive_attr_t`): quantization parameters, post-ops and the
/// scratchpad mode.
///
/// Every attribute made here uses `dnnl_scratchpad_mode_user`: the caller (an inference
/// session) owns each primitive's scratchpad, so primitives hold no per-thread state and a
/// session may run on any thread (DESIGN.md, concurrency contract). `Primitive.execute` passes
/// a scratchpad automatically when the caller gives none.
public final class PrimitiveAttributes {
    public let handle: dnnl_primitive_attr_t
    /// The post-ops set on these attributes (kept alive; oneDNN copies them anyway).
    public private(set) var postOps: PostOps?

    /// - Throws: `DNNLError` from `dnnl_primitive_attr_create`.
    public init() throws(DNNLError) {
        var h: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&h), "dnnl_primitive_attr_create")
        handle = try created(h, "dnnl_primitive_attr_create")
        try check(
            dnnl_primitive_attr_set_scratchpad_mode(handle, dnnl_scratchpad_mode_user),
            "dnnl_primitive_attr_set_scratchpad_mode")
    }

    deinit { dnnl_primitive_attr_destroy(handle) }

    /// Output scales (v2 API): `dst = scales[i] * acc`, one scale (mask 0) or one per index of
    /// the dims set in `mask` (bit i = dst dim i): conv and inner product mask 2 (per output
    /// channel, OC over all groups), matmul `1 << (rank-1)`, reorder any.
    /// - Throws: `DNNLError` from `dnnl_primitive_attr_set_output_scales`.
    public func setOutputScales(_ scales: [Float], mask: Int32 = 0) throws(DNNLError) {
        try check(
            dnnl_primitive_attr_set_output_scales(handle, dnnl_dim_t(scales.count), mask, scales),
            "dnnl_primitive_attr_set_output_scales", "\(scales.count) scales mask \(mask)")
    }

    /// Output scales given at execution time (`DNNL_RUNTIME_F32_VAL`), passed as
    /// `ExecArg.attrOutputScales` (f32 memory of `count` values). Inner product, matmul and
    /// reorder only in 2.6.
    public func setRuntimeOutputScales(count: Int, mask: Int32) throws(DNNLError) {
        guard count >= 0 else {
            throw DNNLError(status: dnnl_invalid_arguments, call: "dnnl_primitive_attr_set_output_scales", context: "runtime \(count) scales")
        }
        let values = [Float](repeating: cdnnl_runtime_f32_val(), count: count)
        try check(
            dnnl_primitive_attr_set_output_scales(handle, dnnl_dim_t(count), mask, values),
            "dnnl_primitive_attr_set_output_scales", "runtime \(count) scales mask \(mask)")
    }

    /// Scales of one source argument (binary `src0`/`src1` only in 2.6, mask 0, and not
    /// together with output scales).
    /// - Throws: `DNNLError` from `dnnl_primitive_attr_set_scales`.
    public func setScales(_ scales: [Float], for arg: ExecArg, mask: Int32 = 0) throws(DNNLError) {
        try check(
            dnnl_primitive_attr_set_scales(handle, arg.rawValue, dnnl_dim_t(scales.count), mask, scales),
            "dnnl_primitive_attr_set_scales", "\(arg) \(scales.count) scales mask \(mask)")
    }

    /// Zero points of `arg`: the real value is `scale * (q - zeroPoint)`. Conv src/dst
    /// (mask 0), matmul src/weights/dst, reorder.
    /// - Throws: `DNNLError` from `dnnl_primitive_attr_set_zero_points`.
    public func setZeroPoints(
        _ zeroPoints: [Int32], for arg: ExecArg,
        mask: Int32 = 0
    ) throws(DNNLError) {
        try check(
            dnnl_primitive_attr_set_zero_points(
                handle, arg.rawValue, dnnl_dim_t(zeroPoints.count),
                mask, zeroPoints),
            "dnnl_primitive_attr_set_zero_points",
            "\(arg) \(zeroPoints.count) zero points mask \(mask)")
    }

    /// Zero points given at execution time (`DNNL_RUNTIME_S32_VAL`), passed as
    /// `ExecArg.attrZeroPoints(arg)` (s32 memory).
    public func setRuntimeZeroPoints(
        for arg: ExecArg, count: Int = 1,
        mask: Int32 = 0
    ) throws(DNNLError) {
        guard count >= 0 else {
            throw DNNLError(status: dnnl_invalid_arguments, call: "dnnl_primitive_attr_set_zero_points", context: "runtime \(count) zero points")
        }
        let values = [Int32](repeating: cdnnl_runtime_s32_val(), count: count)
        try check(
            dnnl_primitive_attr_set_zero_points(handle, arg.rawValue, dnnl_dim_t(count), mask, values),
            "dnnl_primitive_attr_set_zero_points", "runtime \(arg)")
    }

    /// Sets the post-op chain.
    /// - Throws: `DNNLError` from `dnnl_primitive_attr_set_post_ops`.
    public func setPostOps(_ postOps: PostOps) throws(DNNLError) {
        try check(
            dnnl_primitive_attr_set_post_ops(handle, postOps.handle),
            "dnnl_primitive_attr_set_post_ops", "\(postOps.count) post-ops")
        self.postOps = postOps
    }

    /// RNN data quantization: `u8 = scale * x + shift` for src/dst layer and iter (one pair).
    /// - Throws: `DNNLError` from `dnnl_primitive_attr_set_rnn_data_qparams`.
    public func setRNNDataQuantization(scale: Float, shift: Float) throws(DNNLError) {
        try check(
            dnnl_primitive_attr_set_rnn_data_qparams(handle, scale, shift),
            "dnnl_primitive_attr_set_rnn_data_qparams", "scale \(scale) shift \(shift)")
    }

    /// RNN weight scales over `ldigo`: mask 0 (one scale) or 24 (per gate x output channel).
    /// Both the primitive and the weights reorder need these attributes.
    /// - Throws: `DNNLError` from `dnnl_primitive_attr_set_rnn_weights_qparams`.
    public func setRNNWeightsQuantization(scales: [Float], mask: Int32) throws(DNNLError) {
        try check(
            dnnl_primitive_attr_set_rnn_weights_qparams(handle, dnnl_dim_t(scales.count), mask, scales),
            "dnnl_primitive_attr_set_rnn_weights_qparams",
            "\(scales.count) scales mask \(mask)")
    }
}

extension Optional where Wrapped == PrimitiveAttributes {
    /// The given attributes, or new default ones (user scratchpad mode).
    func orDefault() throws(DNNLError) -> PrimitiveAttributes {
        if let self { return self }
        return try PrimitiveAttributes()
    }
}
