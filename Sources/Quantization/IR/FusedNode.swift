import DNNL

/// What a fusion pass decided for one of the library's own nodes (domain `dnnl`), as a typed
/// payload on the node (`Node.fused`), read by the kernels:
/// - `FusedConv`, `FusedConvTranspose`, `FusedMatMul`, `FusedGemm` (FP32): the ONNX op's
///   inputs (`X, W, B`; MatMul's third is a bias), then optionally the residual `Z` (input 3);
///   `chain` holds the eltwise and sum post-ops.
/// - `QConv`, `QMatMul` (INT8): inputs `X_q, W_q (s8), B (f32, real units), Z_q`; `int8`
///   holds the parameters of each int8 operand, `nil` `dst` meaning an f32 result.
/// - `QAdd`, `QSub`, `QMul` (INT8 binary): inputs `A_q, B_q`.
/// - `Swish`: `x * sigmoid(alpha x)` (no payload).
struct FusedNode: Equatable, Sendable {
    var chain = PostOpChain()
    var int8: Int8Operands?
}

/// The quantization of an INT8 node's operands (`real = scale * (q - zeroPoint)` each).
struct Int8Operands: Equatable, Sendable {
    /// The source (input 0).
    var src: QuantParams
    /// The second source of a binary (input 1).
    var src1: QuantParams?
    /// The s8 weights (input 1 of QConv/QMatMul).
    var weights: WeightScales?
    /// The residual of the sum post-op (input 3).
    var residual: QuantParams?
    /// The destination; nil when the node writes f32.
    var dst: QuantParams?
}

/// How a node runs in the engine: INT8 primitives, FP32 oneDNN primitives, or the library's
/// own Swift kernels (shape arithmetic, index copies).
public enum Precision: String, Sendable, CaseIterable, Codable {
    case int8
    case fp32
    case swift

    /// `.int8` for u8/s8 data, else `.fp32`.
    init(_ dataType: DataType) { self = dataType == .u8 || dataType == .s8 ? .int8 : .fp32 }
}

/// How one node of a session's plan runs: what `InferenceSession.nodeReport(for:)` returns
/// and `dnnl-quant inspect` prints.
public struct NodeExecution: Sendable, Equatable {
    /// `"FusedConv 'conv1'"`.
    public let node: String
    /// The oneDNN implementation or Swift kernel, element types and fused post-ops.
    public let detail: String
    public let precision: Precision
}

extension Node {
    /// The post-op chain of a fused node (empty for ONNX nodes).
    var postOps: PostOpChain { fused?.chain ?? PostOpChain() }
}
