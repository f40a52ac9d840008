import CDNNL

/// An execution argument index (`DNNL_ARG_*`): which role a memory plays in a primitive.
public struct ExecArg: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let src = ExecArg(rawValue: DNNL_ARG_SRC)
    public static let src1 = ExecArg(rawValue: DNNL_ARG_SRC_1)
    public static let src2 = ExecArg(rawValue: DNNL_ARG_SRC_2)
    public static let dst = ExecArg(rawValue: DNNL_ARG_DST)
    public static let weights = ExecArg(rawValue: DNNL_ARG_WEIGHTS)
    public static let bias = ExecArg(rawValue: DNNL_ARG_BIAS)
    public static let scratchpad = ExecArg(rawValue: DNNL_ARG_SCRATCHPAD)
    public static let mean = ExecArg(rawValue: DNNL_ARG_MEAN)
    public static let variance = ExecArg(rawValue: DNNL_ARG_VARIANCE)
    public static let scale = ExecArg(rawValue: DNNL_ARG_SCALE)
    public static let shift = ExecArg(rawValue: DNNL_ARG_SHIFT)
    /// RNN: `src_layer` `[T, N, C]`.
    public static let srcLayer = ExecArg(rawValue: DNNL_ARG_SRC_LAYER)
    /// RNN: `src_iter` `[L, D, N, C]` (initial hidden state).
    public static let srcIter = ExecArg(rawValue: DNNL_ARG_SRC_ITER)
    /// LSTM: `src_iter_c` `[L, D, N, C]` (initial cell state).
    public static let srcIterC = ExecArg(rawValue: DNNL_ARG_SRC_ITER_C)
    public static let weightsLayer = ExecArg(rawValue: DNNL_ARG_WEIGHTS_LAYER)
    public static let weightsIter = ExecArg(rawValue: DNNL_ARG_WEIGHTS_ITER)
    public static let dstLayer = ExecArg(rawValue: DNNL_ARG_DST_LAYER)
    public static let dstIter = ExecArg(rawValue: DNNL_ARG_DST_ITER)
    public static let dstIterC = ExecArg(rawValue: DNNL_ARG_DST_ITER_C)
    public static let workspace = ExecArg(rawValue: DNNL_ARG_WORKSPACE)

    /// The i-th source of concat or sum (`DNNL_ARG_MULTIPLE_SRC + i`).
    public static func multipleSrc(_ i: Int) -> ExecArg {
        ExecArg(rawValue: DNNL_ARG_MULTIPLE_SRC + Int32(i))
    }
    /// Runtime output scales (`DNNL_ARG_ATTR_OUTPUT_SCALES`).
    public static let attrOutputScales = ExecArg(rawValue: DNNL_ARG_ATTR_OUTPUT_SCALES)
    /// Runtime zero points of an argument (`DNNL_ARG_ATTR_ZERO_POINTS | arg`).
    public static func attrZeroPoints(_ arg: ExecArg) -> ExecArg {
        ExecArg(rawValue: DNNL_ARG_ATTR_ZERO_POINTS | arg.rawValue)
    }
    /// The second source of the `index`-th post-op when it is a binary post-op
    /// (`DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1`).
    public static func postOpBinarySrc1(_ index: Int) -> ExecArg {
        ExecArg(rawValue: cdnnl_arg_attr_multiple_post_op(Int32(index)) | DNNL_ARG_SRC_1)
    }

    public var description: String {
        let names: [Int32: String] = [
            DNNL_ARG_SRC: "src", DNNL_ARG_SRC_1: "src1/src_iter", DNNL_ARG_SRC_2: "src2/src_iter_c",
            DNNL_ARG_DST: "dst", DNNL_ARG_DST_1: "dst_iter", DNNL_ARG_DST_2: "dst_iter_c",
            DNNL_ARG_WEIGHTS: "weights", DNNL_ARG_WEIGHTS_1: "weights_iter", DNNL_ARG_BIAS: "bias",
            DNNL_ARG_MEAN: "mean", DNNL_ARG_VARIANCE: "variance", DNNL_ARG_SCALE: "scale",
            DNNL_ARG_SHIFT: "shift", DNNL_ARG_SCRATCHPAD: "scratchpad",
            DNNL_ARG_WORKSPACE: "workspace", DNNL_ARG_ATTR_OUTPUT_SCALES: "output_scales",
        ]
        if let name = names[rawValue] { return name }
        if rawValue >= DNNL_ARG_MULTIPLE_SRC && rawValue < DNNL_ARG_MULTIPLE_DST {
            return "src[\(rawValue - DNNL_ARG_MULTIPLE_SRC)]"
        }
        if rawValue >= DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE {
            return "post_op[\(rawValue / DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE - 1)].src1"
        }
        if rawValue & DNNL_ARG_ATTR_ZERO_POINTS != 0 {
            return "zero_points(\(ExecArg(rawValue: rawValue & ~DNNL_ARG_ATTR_ZERO_POINTS)))"
        }
        return "arg(\(rawValue))"
    }
}
