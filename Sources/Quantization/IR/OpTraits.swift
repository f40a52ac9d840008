/// What the passes need to know about an operator, in one table (the role of onnxruntime's
/// quantizer `registry.py` and of Paddle's per-op handlers): whether it anchors a fused unit,
/// passes int8 through, is non-negative by construction, or has an INT8 kernel. FP32 fusion,
/// PTQ placement and QDQ fusion all read it.
struct OpTraits: OptionSet, Sendable {
    let rawValue: Int

    /// Conv, MatMul, Gemm: a oneDNN primitive that takes a bias, eltwise post-ops and a sum
    /// post-op (`UnitMatcher`), in FP32 and in INT8.
    static let unitAnchor = OpTraits(rawValue: 1 << 0)
    /// Runs on int8 values when its input and output share parameters (QDQ fusion).
    static let int8PassThrough = OpTraits(rawValue: 1 << 1)
    /// Its output takes its input's parameters in PTQ (scale propagation, Paddle's
    /// compute_propagate_scales): max pooling and pure data movement. Average pools narrow the
    /// range (a global average much more), so they pass int8 through but get their own scale.
    static let scaleInvariant = OpTraits(rawValue: 1 << 2)
    /// Runs as an INT8 binary primitive when both operands are quantized.
    static let int8Binary = OpTraits(rawValue: 1 << 3)
    /// Output >= 0 whatever the input (quantized to u8).
    static let nonNegative = OpTraits(rawValue: 1 << 4)
    /// Removed by canonicalization when it does nothing at inference.
    static let inferenceNoOp = OpTraits(rawValue: 1 << 5)

    /// The traits of an operator of the default ONNX domain, by op type.
    static let table: [String: OpTraits] = [
        "Conv": .unitAnchor, "MatMul": .unitAnchor, "Gemm": .unitAnchor,
        "MaxPool": [.int8PassThrough, .scaleInvariant], "Reshape": [.int8PassThrough, .scaleInvariant],
        "Transpose": [.int8PassThrough, .scaleInvariant], "Flatten": [.int8PassThrough, .scaleInvariant],
        "Squeeze": [.int8PassThrough, .scaleInvariant], "Unsqueeze": [.int8PassThrough, .scaleInvariant],
        "Slice": [.int8PassThrough, .scaleInvariant], "Resize": [.int8PassThrough, .scaleInvariant],
        "Concat": [.int8PassThrough, .scaleInvariant], "Split": [.int8PassThrough, .scaleInvariant],
        "Gather": [.int8PassThrough, .scaleInvariant],
        "AveragePool": .int8PassThrough, "GlobalAveragePool": .int8PassThrough,
        "Add": .int8Binary, "Mul": .int8Binary, "Sub": .int8Binary,
        "Relu": .nonNegative, "HardSigmoid": .nonNegative, "Sigmoid": .nonNegative, "Softmax": .nonNegative,
        "Identity": [.inferenceNoOp, .int8PassThrough, .scaleInvariant], "Dropout": .inferenceNoOp,
    ]

    /// Why a Gemm cannot run as an INT8 matmul (nil when it can): `transA`, `alpha` or `beta`
    /// other than the defaults (the INT8 matmul computes `A B + C` only).
    static func int8GemmProblem(_ n: Node) -> String? {
        guard n.opType == "Gemm" else { return nil }
        let plain = n.int("transA") != 1 && (n.float("alpha") ?? 1) == 1 && (n.float("beta") ?? 1) == 1
        return plain ? nil : "Gemm with transA, alpha or beta"
    }

    /// The traits of `node` (none for other domains). A Clip is non-negative when its lower
    /// bound is >= 0; a Resize passes int8 through only in nearest mode; Slice, Split and
    /// Gather only with constant starts/ends/axes/steps, split sizes and indices (the int8
    /// kernels copy blocks or index maps computed at plan time).
    static func of(_ node: Node, constants: (String?) -> Tensor?) -> OpTraits {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return [] }
        var t = table[node.opType] ?? []
        if node.opType == "Clip", let acts = Activation.of(node, constants: constants), acts[0].alpha >= 0 {
            t.insert(.nonNegative)
        }
        if node.opType == "Resize", (node.string("mode") ?? "nearest") != "nearest" {
            t.subtract([.int8PassThrough, .scaleInvariant])
        }
        if ["Slice", "Split", "Gather"].contains(node.opType),
            node.inputs.dropFirst().contains(where: { !$0.isEmpty && constants($0) == nil })
        {
            t.subtract([.int8PassThrough, .scaleInvariant])
        }
        return t
    }
}

extension Activation {
    /// The eltwise functions of an ONNX activation node (constant parameters only), or nil.
    /// HardSigmoid is two: linear then clip (oneDNN 2.6 has no hardsigmoid).
    static func of(_ node: Node, constants: (String?) -> Tensor?) -> [Activation]? {
        switch node.opType {
        case "Relu": return [Activation(algorithm: .relu)]
        case "LeakyRelu": return [Activation(algorithm: .relu, alpha: node.float("alpha") ?? 0.01)]
        case "Sigmoid": return [Activation(algorithm: .logistic)]
        case "Tanh": return [Activation(algorithm: .tanh)]
        case "HardSwish": return [Activation(algorithm: .hardswish)]
        case "Swish": return [Activation(algorithm: .swish, alpha: node.float("alpha") ?? 1)]
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
            return [
                Activation(algorithm: .linear, alpha: node.float("alpha") ?? 0.2, beta: node.float("beta") ?? 0.5),
                Activation(algorithm: .clip, alpha: 0, beta: 1),
            ]
        case "Clip":
            var lo = node.float("min") ?? -Float.greatestFiniteMagnitude
            var hi = node.float("max") ?? Float.greatestFiniteMagnitude
            if let n = node.input(1) { guard let t = constants(n) else { return nil }; lo = t.floatValues().first ?? lo }
            if let n = node.input(2) { guard let t = constants(n) else { return nil }; hi = t.floatValues().first ?? hi }
            return [Activation(algorithm: .clip, alpha: lo, beta: hi)]
        default: return nil
        }
    }

    /// A binary op with a scalar constant operand `c` as an eltwise function of the other
    /// operand: Add/Sub/Mul/Div become `linear`, Pow `pow`/`square`, Max/Min `clip`.
    static func scalarForm(_ op: String, _ c: Float, constantFirst: Bool) -> Activation? {
        switch (op, constantFirst) {
        case ("Add", _): Activation(algorithm: .linear, alpha: 1, beta: c)
        case ("Mul", _): Activation(algorithm: .linear, alpha: c, beta: 0)
        case ("Sub", false): Activation(algorithm: .linear, alpha: 1, beta: -c)
        case ("Sub", true): Activation(algorithm: .linear, alpha: -1, beta: c)
        case ("Div", false) where c != 0: Activation(algorithm: .linear, alpha: 1 / c, beta: 0)
        case ("Div", true): Activation(algorithm: .pow, alpha: c, beta: -1)
        case ("Pow", false): c == 2 ? Activation(algorithm: .square) : Activation(algorithm: .pow, alpha: 1, beta: c)
        case ("Max", _): Activation(algorithm: .clip, alpha: c, beta: Float.greatestFiniteMagnitude)
        case ("Min", _): Activation(algorithm: .clip, alpha: -Float.greatestFiniteMagnitude, beta: c)
        default: nil
        }
    }
}
