import DNNL

/// The library's own fused operators (domain `dnnl`), written by the fusion passes and run by
/// the kernels, in the style of onnxruntime's `com.microsoft` FusedConv:
/// - `FusedConv`, `FusedConvTranspose`, `FusedMatMul`, `FusedGemm`: the ONNX op's inputs, then
///   optionally a residual `Z` (input index 3 for Conv/Gemm, 2 for MatMul) added to the result,
///   then `activations` (strings) applied in order with `activation_params` (alpha, beta per
///   activation). oneDNN post-ops: sum, then eltwise.
enum FusedOps {
    static let domain = "dnnl"
}

/// An element-wise function applied by an eltwise primitive or post-op.
struct Activation: Equatable {
    var algorithm: EltwiseAlgorithm
    var alpha: Float = 0
    var beta: Float = 0

    /// The eltwise functions of an ONNX activation node (constant parameters only), or nil.
    /// HardSigmoid is two: linear then clip (oneDNN 2.6 has no hardsigmoid).
    static func of(_ node: Node, constants: (String?) -> Tensor?) -> [Activation]? {
        switch node.opType {
        case "Relu": return [Activation(algorithm: .relu)]
        case "LeakyRelu": return [Activation(algorithm: .relu, alpha: node.float("alpha") ?? 0.01)]
        case "Sigmoid": return [Activation(algorithm: .logistic)]
        case "Tanh": return [Activation(algorithm: .tanh)]
        case "HardSwish": return [Activation(algorithm: .hardswish)]
        case "Elu": return [Activation(algorithm: .elu, alpha: node.float("alpha") ?? 1)]
        case "Softplus": return [Activation(algorithm: .softRelu)]
        case "Exp": return [Activation(algorithm: .exp)]
        case "Abs": return [Activation(algorithm: .abs)]
        case "Sqrt": return [Activation(algorithm: .sqrt)]
        case "Log": return [Activation(algorithm: .log)]
        case "Neg": return [Activation(algorithm: .linear, alpha: -1, beta: 0)]
        case "Gelu" where (node.string("approximate") ?? "none") == "none":
            return [Activation(algorithm: .geluErf)]
        case "HardSigmoid":
            return [Activation(algorithm: .linear, alpha: node.float("alpha") ?? 0.2, beta: node.float("beta") ?? 0.5),
                    Activation(algorithm: .clip, alpha: 0, beta: 1)]
        case "Clip":
            var lo = node.float("min") ?? -Float.greatestFiniteMagnitude
            var hi = node.float("max") ?? Float.greatestFiniteMagnitude
            if let n = node.input(1) { guard let t = constants(n) else { return nil }; lo = t.floatValues().first ?? lo }
            if let n = node.input(2) { guard let t = constants(n) else { return nil }; hi = t.floatValues().first ?? hi }
            return [Activation(algorithm: .clip, alpha: lo, beta: hi)]
        default: return nil
        }
    }

    /// Encodes activations as a fused node's attributes.
    static func attributes(_ acts: [Activation]) -> [String: AttributeValue] {
        ["activations": .strings(acts.map { "\($0.algorithm)" }),
         "activation_params": .floats(acts.flatMap { [$0.alpha, $0.beta] })]
    }

    /// Decodes a fused node's activations.
    static func decode(_ node: Node) -> [Activation] {
        let names = node.strings("activations") ?? []
        let params = node.floats("activation_params") ?? []
        let all: [EltwiseAlgorithm] = [.relu, .tanh, .elu, .square, .abs, .sqrt, .linear, .boundedRelu,
                                       .softRelu, .logistic, .exp, .geluTanh, .swish, .log, .clip, .clipV2,
                                       .pow, .geluErf, .round, .logsigmoid, .mish, .hardswish]
        return names.enumerated().compactMap { i, n in
            all.first { "\($0)" == n }.map {
                Activation(algorithm: $0, alpha: params.count > 2 * i ? params[2 * i] : 0,
                           beta: params.count > 2 * i + 1 ? params[2 * i + 1] : 0)
            }
        }
    }
}
