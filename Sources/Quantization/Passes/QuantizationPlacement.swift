/// Decides which nodes of an FP32 graph run in INT8 and which tensors get quantized
/// (Paddle's cpu_quantize_placement + compute_propagate_scales passes):
/// - a *unit* is a Conv (constant weights) or a MatMul/Gemm with constant 2-D weights, plus
///   the activations, scalar affine ops and at most one residual Add (another tensor of the
///   same shape) that follow it; it becomes one INT8 primitive with post-ops. Its input, its
///   residual and its output are quantized; the output is u8 when the unit ends in an op that
///   is non-negative by construction (Relu, Clip(0, ..), HardSigmoid, Sigmoid), else s8;
/// - scale-invariant ops (MaxPool, Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Slice,
///   Split, Gather, Resize, Concat) whose input is quantized pass int8 through: their outputs
///   share the input's parameters (a Concat's inputs share its output's);
/// - average pools narrow the range (a global average much more): each runs in INT8 (sharing
///   its input's scale) only where the calibration-time SQNR measurement says so
///   (`AveragePoolPrecision`), else stays FP32 and its output is quantized with its own range
///   where an INT8 node reads it;
/// - an Add, Sub or Mul of two quantized tensors runs as an INT8 binary;
/// - everything else stays FP32, with the reason recorded.
struct QuantizationPlacement {
    struct Unit {
        var anchor: String
        var opType: String
        var input: String
        var output: String
        var residual: String?
        /// The Add that sums the residual (it reads the residual's dequantized value).
        var residualAdd: String?
        var nodes: [String]
        /// The weights as the INT8 primitive sees them: Conv `[OC, IC/g, k...]`, MatMul and
        /// Gemm `[K, N]`.
        var weightShape: [Int]
    }

    /// Quantized units by anchor name, in graph order.
    var units: [Unit] = []
    /// Activation tensors to quantize, in graph order.
    var tensors: [String] = []
    /// Tensors whose parameters are another tensor's (pass-through ops, Concat inputs).
    var sharesWith: [String: String] = [:]
    /// Concat outputs whose range is the union of their inputs'.
    var concatInputs: [String: [String]] = [:]
    /// Tensors that are non-negative by construction (quantized to u8).
    var unsigned: Set<String> = []
    /// Nodes that pass int8 through, and Add/Sub/Mul nodes that run in INT8.
    var passThrough: [String] = []
    var binaries: [String] = []
    /// Outputs of INT8 binaries: oneDNN's binary has no zero points, so they are quantized
    /// symmetrically (s8/u8 with zero point 0) even when their range is skewed.
    var zeroPointFree: Set<String> = []
    /// Outputs of INT8 average pools (and of pass-through ops after them): they take their
    /// input's parameters without widening them (an average lies within its inputs' range; a
    /// clipping calibration method may give the output a wider range than the input's, which
    /// would coarsen the input's scale).
    var rangeFollowers: Set<String> = []
    /// Why each FP32 node (of the analysed graph) stays FP32, by node label.
    var fp32Reasons: [String: String] = [:]
    /// Average pools that may run in INT8 (their input is quantized, no zero-point hazard),
    /// placed as pass-through when `averagePools` allows them.
    var averagePoolCandidates: [String] = []
    /// Why each INT8 node runs INT8 where more than "passes int8 through" is known (the SQNR
    /// measurement of an average pool), by node name.
    var int8Reasons: [String: String] = [:]
    /// The members of `tensors`, for look-up.
    private var quantized: Set<String> = []

    private mutating func addTensor(_ t: String) { if quantized.insert(t).inserted { tensors.append(t) } }

    /// - Parameters:
    ///   - graph: the graph analysed (activation patterns fused, e.g. HardSwish as one node).
    ///   - shapes: value shapes for one input set (residual shapes must match).
    ///   - averagePools: average pools (by node name) placed in INT8 when their input is
    ///     quantized, with the reason for each decision (`AveragePoolPrecision`); nil places
    ///     every candidate in INT8 (to calibrate the superset).
    init(
        _ graph: Graph, shapes: [String: [Int]], excludeNodes: Set<String>, excludeOpTypes: Set<String>,
        averagePools: AveragePoolPrecision.Decisions? = AveragePoolPrecision.Decisions()
    ) {
        let e = GraphEditor(graph)
        var absorbed: Set<Int> = []
        func excluded(_ n: Node) -> Bool { excludeNodes.contains(n.name) || excludeOpTypes.contains(n.opType) }
        for (i, n) in e.nodes.enumerated() where !absorbed.contains(i) {
            if excluded(n) {
                fp32Reasons[n.label] = "excluded by the user"
                continue
            }
            let traits = OpTraits.of(n, constants: e.constant)
            if traits.contains(.unitAnchor) {
                if let why = Self.int8AnchorProblem(n, e, shapes) { fp32Reasons[n.label] = why; continue }
                // A node another unit absorbed is not absorbed again (the post-op fusion and QDQ
                // fusion passes see it as already rewritten): the first anchor in graph order
                // that reaches a residual Add takes it, as those passes do.
                let taken = absorbed
                let matcher = UnitMatcher(
                    residual: { other, current in shapes[other] != nil && shapes[other] == shapes[current] ? false : nil },
                    excluded: { excluded(e.nodes[$0]) || taken.contains($0) },
                    matmulColumns: n.opType == "MatMul" ? e.constant(n.input(1))?.shape[1] : nil)
                let u = matcher.match(i, e)
                absorbed.formUnion(u.absorbed)
                units.append(
                    Unit(
                        anchor: n.name, opType: n.opType, input: n.inputs[0], output: u.output,
                        residual: u.residual, residualAdd: u.residualAdd.map { e.nodes[$0].name },
                        nodes: [n.name] + u.absorbed.map { e.nodes[$0].name },
                        weightShape: Self.primitiveWeightShape(n, e)))
                addTensor(n.inputs[0])
                if let r = u.residual { addTensor(r) }
                addTensor(u.output)
                if u.nonNegative { unsigned.insert(u.output) }
            } else if AveragePoolPrecision.isAveragePool(n) {
                if let why = AveragePoolPrecision.int8Problem(n, inputQuantized: quantized.contains(n.inputs[0])) {
                    fp32Reasons[n.label] = why; continue
                }
                averagePoolCandidates.append(n.name)
                if let d = averagePools, d.int8[n.name] == nil {
                    fp32Reasons[n.label] = d.fp32[n.name] ?? "average pool: INT8 not measured (no calibration samples), kept FP32"
                    continue
                }
                if let why = averagePools?.int8[n.name] { int8Reasons[n.name] = why }
                placePassThrough(n)
                rangeFollowers.insert(n.outputs[0])
            } else if traits.contains(.scaleInvariant) {
                placePassThrough(n)
            } else if traits.contains(.int8Binary) {
                guard n.inputs.count == 2, n.inputs.allSatisfy({ quantized.contains($0) }) else {
                    fp32Reasons[n.label] = "an input is FP32 or constant"; continue
                }
                addTensor(n.outputs[0])
                zeroPointFree.insert(n.outputs[0])
                binaries.append(n.name)
            } else {
                if traits.contains(.nonNegative) && n.outputs.count == 1 { unsigned.insert(n.outputs[0]) }
                fp32Reasons[n.label] = n.opType == "Resize" ? "only nearest Resize passes int8" : "no INT8 kernel for \(n.opType)"
            }
        }
        // Inputs of units that are FP32 tensors are quantized too; non-negative producers -> u8.
        for t in tensors where !unsigned.contains(t) {
            if let p = e.producer(t), OpTraits.of(e.nodes[p], constants: e.constant).contains(.nonNegative) { unsigned.insert(t) }
        }
    }

    /// Why an anchor cannot run on INT8 kernels (nil when it can): weights computed at run
    /// time, MatMul/Gemm weights not 2-D, Gemm with transA/alpha/beta, an input of rank < 2.
    static func int8AnchorProblem(_ n: Node, _ e: GraphEditor, _ shapes: [String: [Int]]) -> String? {
        guard let w = e.constant(n.input(1)) else { return "weights are computed at run time" }
        guard n.opType != "Conv" else { return nil }
        guard w.shape.count == 2 else { return "weights are not 2-D" }
        if let why = OpTraits.int8GemmProblem(n) { return why }
        guard let a = shapes[n.inputs[0]], a.count >= 2 else { return "input rank below 2" }
        return nil
    }

    /// An anchor's weight shape in the primitive's terms (a transposed Gemm's `[N, K]` as `[K, N]`).
    static func primitiveWeightShape(_ n: Node, _ e: GraphEditor) -> [Int] {
        let s = e.constant(n.input(1))?.shape ?? []
        return n.opType == "Gemm" && n.int("transB") == 1 && s.count == 2 ? [s[1], s[0]] : s
    }

    /// A scale-invariant op whose inputs are quantized: its output shares their parameters
    /// (a Concat's inputs share its output's).
    private mutating func placePassThrough(_ n: Node) {
        let outs = n.outputs.filter { !$0.isEmpty }
        guard outs.count == 1 || n.opType == "Split" else { fp32Reasons[n.label] = "more than one output"; return }
        if n.opType == "Split" {
            // Every output shares the input's parameters (Paddle's split: scale copied in -> out).
            guard quantized.contains(n.inputs[0]) else { fp32Reasons[n.label] = "its input is FP32"; return }
            for o in outs {
                addTensor(o)
                sharesWith[o] = root(n.inputs[0])
                if unsigned.contains(n.inputs[0]) { unsigned.insert(o) }
                if rangeFollowers.contains(n.inputs[0]) { rangeFollowers.insert(o) }
            }
        } else if n.opType == "Concat" {
            let ins = n.inputs.filter { !$0.isEmpty }
            guard ins.allSatisfy({ quantized.contains($0) }) else { fp32Reasons[n.label] = "an input is FP32"; return }
            addTensor(n.outputs[0])
            concatInputs[n.outputs[0]] = ins
            for t in ins { let r = root(t); if r != n.outputs[0] { sharesWith[r] = n.outputs[0] } }
            if ins.allSatisfy({ unsigned.contains($0) }) { unsigned.insert(n.outputs[0]) }
        } else {
            guard quantized.contains(n.inputs[0]) else { fp32Reasons[n.label] = "its input is FP32"; return }
            addTensor(n.outputs[0])
            sharesWith[n.outputs[0]] = root(n.inputs[0])
            if unsigned.contains(n.inputs[0]) { unsigned.insert(n.outputs[0]) }
            if rangeFollowers.contains(n.inputs[0]) { rangeFollowers.insert(n.outputs[0]) }
        }
        passThrough.append(n.name)
    }

    /// Tensors grouped by the tensor whose parameters they use (scale propagation): one
    /// quantization range per group, the union of its members' observed ranges.
    var groups: [String: [String]] {
        Dictionary(grouping: tensors, by: root)
    }

    /// The tensor whose parameters `t` uses.
    func root(_ t: String) -> String {
        var r = t
        var seen: Set<String> = []
        while let next = sharesWith[r], seen.insert(r).inserted { r = next }
        return r
    }
}
