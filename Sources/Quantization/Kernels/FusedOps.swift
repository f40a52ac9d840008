import DNNL

/// The library's own fused operators (domain `dnnl`), written by the fusion passes and run by
/// the kernels, in the style of onnxruntime's `com.microsoft` FusedConv:
/// - `FusedConv`, `FusedConvTranspose`, `FusedMatMul`, `FusedGemm`: the ONNX op's three inputs
///   (`X, W, B` / `A, B, C`; MatMul's third is a bias), then optionally a residual `Z` (input 3),
///   with a `PostOpChain` in attributes: oneDNN sum and eltwise post-ops.
/// - `Swish`: `x * sigmoid(alpha x)`.
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

}

/// The post-ops of a fused node, in order: eltwise functions and at most one sum of the
/// residual input `Z` (input 3). Stored as node attributes `post_ops` (names; `"sum"` for the
/// sum) and `post_op_params` (alpha, beta per entry); `sum_inplace` = 1 when `Z` has no other
/// reader, so the result may be written into its buffer.
struct PostOpChain: Equatable {
    enum Op: Equatable {
        case sum
        case eltwise(Activation)
    }

    var ops: [Op] = []
    var sumInPlace = false

    var hasSum: Bool { ops.contains(.sum) }
    var isEmpty: Bool { ops.isEmpty }

    static let algorithms: [EltwiseAlgorithm] = [
        .relu, .tanh, .elu, .square, .abs, .sqrt, .linear, .boundedRelu, .softRelu, .logistic, .exp,
        .geluTanh, .swish, .log, .clip, .clipV2, .pow, .geluErf, .round, .logsigmoid, .mish, .hardswish]

    var attributes: [String: AttributeValue] {
        var names: [String] = [], params: [Float] = []
        for op in ops {
            switch op {
            case .sum: names.append("sum"); params += [1, 0]
            case .eltwise(let a): names.append("\(a.algorithm)"); params += [a.alpha, a.beta]
            }
        }
        return ["post_ops": .strings(names), "post_op_params": .floats(params), "sum_inplace": .int(sumInPlace ? 1 : 0)]
    }

    init(ops: [Op] = [], sumInPlace: Bool = false) {
        self.ops = ops
        self.sumInPlace = sumInPlace
    }

    /// Decodes a fused node's chain (empty for plain ONNX ops).
    init(_ node: Node) {
        let names = node.strings("post_ops") ?? []
        let params = node.floats("post_op_params") ?? []
        sumInPlace = node.int("sum_inplace") == 1
        for (i, n) in names.enumerated() {
            if n == "sum" { ops.append(.sum); continue }
            guard let alg = Self.algorithms.first(where: { "\($0)" == n }) else { continue }
            ops.append(.eltwise(Activation(algorithm: alg, alpha: params.count > 2 * i ? params[2 * i] : 0,
                                           beta: params.count > 2 * i + 1 ? params[2 * i + 1] : 0)))
        }
    }

    /// Primitive attributes carrying this chain as post-ops (none when empty).
    func primitiveAttributes() throws(DNNLError) -> PrimitiveAttributes {
        let attr = try PrimitiveAttributes()
        if !isEmpty {
            let po = try PostOps()
            try append(to: po)
            try attr.setPostOps(po)
        }
        return attr
    }

    /// Appends the chain to oneDNN post-ops.
    func append(to po: PostOps) throws(DNNLError) {
        for op in ops {
            switch op {
            case .sum: try po.appendSum()
            case .eltwise(let a): try po.appendEltwise(a.algorithm, alpha: a.alpha, beta: a.beta)
            }
        }
    }

    /// `"+sum+relu"`, for notes.
    var summary: String {
        ops.map { op -> String in
            switch op {
            case .sum: "+sum"
            case .eltwise(let a): "+\(a.algorithm)"
            }
        }.joined()
    }
}

extension Lowering {
    /// Lowers a fused node. When its residual `Z` cannot be summed by oneDNN (its shape differs
    /// from the result: broadcasting), the chain is split: the op with the post-ops before the
    /// sum, a binary Add, then the remaining eltwise functions.
    func lowerFused(_ node: Node, chain: PostOpChain,
                    _ body: (PostOpChain, String) throws -> Void) throws {
        do {
            try body(chain, node.outputs[0])
            return
        } catch is ResidualShapeMismatch {}
        guard let sumIndex = chain.ops.firstIndex(of: .sum), let z = node.input(3) else { return }
        let out = node.outputs[0]
        let pre = out + ".before_sum"
        try body(PostOpChain(ops: Array(chain.ops[..<sumIndex])), pre)
        let rest = chain.ops[(sumIndex + 1)...].compactMap { op -> Activation? in
            if case .eltwise(let a) = op { return a } else { return nil }
        }
        let added = rest.isEmpty ? out : out + ".sum"
        try BinaryKernels.binary(Node(name: node.name + ".sum", opType: "Add", inputs: [pre, z], outputs: [added]), self)
        if !rest.isEmpty {
            define(out, .slot(try ActivationKernels.apply(rest, to: try slot(added), name: out, self)))
        }
        note("residual \(z) broadcast: binary add after the primitive")
    }

    /// Thrown by a kernel, before it emits anything, when its residual's shape differs from
    /// its result's.
    struct ResidualShapeMismatch: Error {}

    /// Checks a residual's shape against the result's (see `lowerFused`).
    func checkResidual(_ z: String?, elementCount: Int, shape outShape: [Int]) throws {
        guard let z else { return }
        let s = try shape(z)
        if s != outShape && !(s.reduce(1, *) == elementCount && outShape.count != s.count) { throw ResidualShapeMismatch() }
    }

    /// Whether a sum post-op may write into residual slot `r`: the chain allows it (nothing
    /// else reads the residual) and `r` is a buffer of its own (no view, constant or input).
    func canSumInPlace(into r: Int, _ chain: PostOpChain) -> Bool {
        chain.sumInPlace && slots[r].aliasOf == nil && !slots[r].persistent && !isGraphInput(r)
    }

    /// The destination of a primitive with a sum post-op: the residual's own buffer when the
    /// chain allows it in place and the layouts agree, else a copy of the residual.
    func sumDestination(residual r: Int, chain: PostOpChain, name: String, shape: [Int],
                        _ descriptor: MemoryDescriptor) throws(GraphError) -> Int {
        let owned = canSumInPlace(into: r, chain)
        if owned && slots[r].descriptor == descriptor {
            return alias(of: r, name: name, shape: shape, descriptor)
        }
        let dst = newSlot(name, shape: shape, descriptor)
        try reorder(from: r, to: dst, label: "\(where_()) residual copy")
        return dst
    }
}
