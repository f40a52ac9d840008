/// A fused unit: an anchor (Conv, MatMul, Gemm) and the nodes after it that oneDNN runs in the
/// same primitive (oneDNN doc: primitive attributes, post-ops): a MatMul's constant bias Add,
/// activations and scalar affine ops as eltwise post-ops, and at most one residual Add (or a
/// Sub of the residual from the unit's value: a sum post-op of scale -1) as a sum post-op.
/// Paddle fuses the same (conv_elementwise_add_mkldnn_fuse_pass,
/// conv_activation_mkldnn_fuse_pass, fc_fuse_pass).
struct Unit: Sendable {
    /// Node index of the anchor.
    var anchor: Int
    /// Node indices absorbed after the anchor, in graph order.
    var absorbed: [Int] = []
    /// A MatMul's bias: the constant f32 operand (`[N]` or `[1, N]`) of the Add right after it.
    var bias: String?
    var chain = PostOpChain()
    /// The other operand of the residual Add (the sum post-op), and that Add's node index.
    var residual: String?
    var residualAdd: Int?
    /// The unit's result: the last absorbed node's output (or the anchor's).
    var output: String
    /// The result is >= 0 by construction (the chain ends in a non-negative activation), so
    /// it is quantized to u8.
    var nonNegative = false
}

/// The one place that decides what fuses with an anchor. FP32 post-op fusion, PTQ placement
/// and QDQ fusion call it, each saying only which residuals it can sum and which nodes it
/// must not absorb, so that what the quantizer places is what the engine runs.
struct UnitMatcher {
    /// Whether `other` may be the residual summed into the unit's value `current`; nil
    /// rejects it, else whether the sum may write into the residual's buffer (in place).
    var residual: (_ other: String, _ current: String) -> Bool?
    /// Nodes (by index) the unit must not absorb: excluded by the user, or taken by another unit.
    var excluded: (_ index: Int) -> Bool = { _ in false }
    /// The columns `N` of a MatMul's `[K, N]` weights, when its bias Add may be absorbed.
    var matmulColumns: Int?
    /// The output channels and output rank of a Conv without a bias, when a per-channel
    /// constant Add after it (`[OC, 1, 1]` or `[1, OC, 1, 1]`: paddle2onnx writes every Conv
    /// bias so) may be absorbed as its bias.
    var convChannels: (channels: Int, rank: Int)?

    /// The unit anchored at node `i` (possibly with nothing absorbed).
    func match(_ i: Int, _ e: GraphEditor) -> Unit {
        var unit = Unit(anchor: i, output: e.nodes[i].outputs[0])
        while let ci = e.soleConsumer(unit.output), !excluded(ci), absorb(ci, into: &unit, e) {
            unit.absorbed.append(ci)
            unit.output = e.nodes[ci].outputs[0]
        }
        return unit
    }

    /// Adds node `ci` (the sole reader of the unit's current value) to the unit if it fuses.
    private func absorb(_ ci: Int, into unit: inout Unit, _ e: GraphEditor) -> Bool {
        let n = e.nodes[ci], cur = unit.output
        if let columns = matmulColumns, unit.absorbed.isEmpty, n.opType == "Add",
            let (other, c, _) = e.constantOperand(n), other == cur, c.elementType == .f32,
            c.count == columns, c.shape.last == columns
        {
            unit.bias = n.inputs.first { $0 != cur }
            return true
        }
        if let (channels, rank) = convChannels, unit.absorbed.isEmpty, n.opType == "Add",
            let (other, c, _) = e.constantOperand(n), other == cur, c.elementType == .f32, c.count == channels,
            c.shape.count <= rank, Self.isChannelVector(c.shape, channels: channels, rank: rank)
        {
            unit.bias = n.inputs.first { $0 != cur }
            return true
        }
        if let acts = Self.eltwise(n, applyingTo: cur, e) {
            guard unit.chain.append(acts) else { return false }
            unit.nonNegative = OpTraits.of(n, constants: e.constant).contains(.nonNegative)
            return true
        }
        if n.opType == "Add" || (n.opType == "Sub" && n.inputs.first == cur), unit.residual == nil, n.inputs.count == 2,
            n.inputs[0] != n.inputs[1], let other = n.inputs.first(where: { $0 != cur }), e.constant(other) == nil,
            let inPlace = residual(other, cur)
        {
            unit.residual = other
            unit.residualAdd = ci
            unit.chain.ops.append(.sum)
            unit.chain.sumInPlace = inPlace
            unit.chain.sumScale = n.opType == "Sub" ? -1 : 1
            unit.nonNegative = false
            return true
        }
        return false
    }

    /// Whether `shape`, right-aligned to `rank` dims, is `[1, channels, 1, ...]`.
    static func isChannelVector(_ shape: [Int], channels: Int, rank: Int) -> Bool {
        let padded = [Int](repeating: 1, count: rank - shape.count) + shape
        return rank >= 2 && padded.enumerated().allSatisfy { $0.offset == 1 ? $0.element == channels : $0.element == 1 }
    }

    /// The eltwise functions a node applies to `value`: an activation, or Add/Sub/Mul/Div by a
    /// scalar constant (`linear`). Nil when it is neither.
    static func eltwise(_ n: Node, applyingTo value: String, _ e: GraphEditor) -> [Activation]? {
        if n.inputs.first == value, let acts = Activation.of(n, constants: e.constant) { return acts }
        if let (other, c, first) = e.constantOperand(n), other == value, c.count == 1,
            ["Add", "Sub", "Mul", "Div"].contains(n.opType),
            let act = Activation.scalarForm(n.opType, c.floatValues()[0], constantFirst: first)
        {
            return [act]
        }
        return nil
    }
}
