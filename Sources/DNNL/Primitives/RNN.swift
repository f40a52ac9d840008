import CDNNL

/// Direction of a recurrent primitive (`dnnl_rnn_direction_t`).
public enum RNNDirection: Sendable, Hashable {
    case leftToRight, rightToLeft
    /// Both directions, outputs concatenated along channels (`dst_layer` `[T, N, 2*C]`).
    case bidirectionalConcat
    /// Both directions, outputs summed.
    case bidirectionalSum

    var raw: dnnl_rnn_direction_t {
        switch self {
        case .leftToRight: dnnl_unidirectional_left2right
        case .rightToLeft: dnnl_unidirectional_right2left
        case .bidirectionalConcat: dnnl_bidirectional_concat
        case .bidirectionalSum: dnnl_bidirectional_sum
        }
    }

    /// Number of directions `D` in the `ldigo`/`ldnc` descriptors.
    public var count: Int { (self == .leftToRight || self == .rightToLeft) ? 1 : 2 }
}

/// Memory descriptors of a recurrent primitive (oneDNN doc primitives/rnn.md).
/// `T` time steps, `N` batch, `L` layers, `D` directions, `G` gates, `C` channels.
public struct RNNDescriptors {
    /// `[T, N, SLC]` (tnc): f32, or u8 for INT8.
    public var srcLayer: MemoryDescriptor
    /// `[L, D, N, SIC]` (ldnc) initial hidden state, or nil for zeros.
    public var srcIter: MemoryDescriptor?
    /// `[L, D, N, DHC]` initial cell state (LSTM only), f32, or nil for zeros.
    public var srcIterC: MemoryDescriptor?
    /// `[L, D, SLC, G, DHC]` (ldigo, use tag any and reorder into the pd's): f32 or s8.
    public var weightsLayer: MemoryDescriptor
    /// `[L, D, SIC, G, DHC]`.
    public var weightsIter: MemoryDescriptor
    /// `[L, D, G, DHC]` (ldgo) f32; LBR GRU has 4 bias gates (u, r, o, and o's recurrent part).
    public var bias: MemoryDescriptor?
    /// `[T, N, DHC]` (`2*DHC` for `bidirectionalConcat`).
    public var dstLayer: MemoryDescriptor
    /// `[L, D, N, DHC]` final hidden state, or nil when not needed.
    public var dstIter: MemoryDescriptor?
    /// `[L, D, N, DHC]` final cell state (LSTM only), or nil.
    public var dstIterC: MemoryDescriptor?

    public init(
        srcLayer: MemoryDescriptor, srcIter: MemoryDescriptor? = nil,
        srcIterC: MemoryDescriptor? = nil, weightsLayer: MemoryDescriptor,
        weightsIter: MemoryDescriptor, bias: MemoryDescriptor?,
        dstLayer: MemoryDescriptor, dstIter: MemoryDescriptor? = nil,
        dstIterC: MemoryDescriptor? = nil
    ) {
        self.srcLayer = srcLayer; self.srcIter = srcIter; self.srcIterC = srcIterC
        self.weightsLayer = weightsLayer; self.weightsIter = weightsIter; self.bias = bias
        self.dstLayer = dstLayer; self.dstIter = dstIter; self.dstIterC = dstIterC
    }

    var summaryParts: [(String, MemoryDescriptor?)] {
        [
            ("src_layer", srcLayer), ("src_iter", srcIter), ("src_iter_c", srcIterC),
            ("weights_layer", weightsLayer), ("weights_iter", weightsIter), ("bias", bias),
            ("dst_layer", dstLayer), ("dst_iter", dstIter), ("dst_iter_c", dstIterC),
        ]
    }
}

/// Recurrent cell kinds this project runs.
public enum RNNCell: Sendable, Hashable {
    /// LSTM without peepholes; gates in oneDNN order i, f, c~, o (ONNX: i, o, f, c).
    case lstm
    /// GRU; gates u (update), r (reset), o (candidate) (ONNX: z, r, h), `linear_before_reset=0`.
    case gru
    /// Linear-before-reset GRU (ONNX `linear_before_reset=1`, PyTorch's GRU).
    case linearBeforeResetGRU
}

extension PrimitiveDescriptor {
    /// Forward-inference LSTM, GRU or linear-before-reset GRU (`dnnl_lstm_forward_desc_init`,
    /// `dnnl_gru_forward_desc_init`, `dnnl_lbr_gru_forward_desc_init`). Activations are the
    /// standard sigmoid/tanh. INT8 (2.6): LSTM and GRU only, u8 `src_layer`, s8 weights, with
    /// `setRNNDataQuantization` and `setRNNWeightsQuantization` on the attributes.
    /// - Throws: `DNNLError` naming the call and all shapes.
    public static func rnn(
        _ cell: RNNCell, direction: RNNDirection, _ mds: RNNDescriptors,
        attributes: PrimitiveAttributes? = nil, engine: Engine = .cpu
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let summary = summarize("rnn \(cell) \(direction)", mds.summaryParts)
        var desc = dnnl_rnn_desc_t()
        var sl = mds.srcLayer.raw, wl = mds.weightsLayer.raw, wi = mds.weightsIter.raw
        var dl = mds.dstLayer.raw
        let prop = dnnl_forward_inference, dir = direction.raw
        let call: String
        let status: dnnl_status_t
        switch cell {
        case .lstm:
            call = "dnnl_lstm_forward_desc_init"
            status = withOptionalPointer(mds.srcIter) { si in
                withOptionalPointer(mds.srcIterC) { sic in
                    withOptionalPointer(mds.bias) { b in
                        withOptionalPointer(mds.dstIter) { di in
                            withOptionalPointer(mds.dstIterC) { dic in
                                dnnl_lstm_forward_desc_init(
                                    &desc, prop, dir, &sl, si, sic, &wl,
                                    &wi, b, &dl, di, dic, 0)
                            }
                        }
                    }
                }
            }
        case .gru, .linearBeforeResetGRU:
            let lbr = cell == .linearBeforeResetGRU
            call = lbr ? "dnnl_lbr_gru_forward_desc_init" : "dnnl_gru_forward_desc_init"
            status = withOptionalPointer(mds.srcIter) { si in
                withOptionalPointer(mds.bias) { b in
                    withOptionalPointer(mds.dstIter) { di in
                        lbr
                            ? dnnl_lbr_gru_forward_desc_init(
                                &desc, prop, dir, &sl, si, &wl, &wi,
                                b, &dl, di, 0)
                            : dnnl_gru_forward_desc_init(
                                &desc, prop, dir, &sl, si, &wl, &wi, b,
                                &dl, di, 0)
                    }
                }
            }
        }
        try check(status, call, summary)
        return try create(&desc, attributes: attributes, engine: engine, summary: summary)
    }
}
