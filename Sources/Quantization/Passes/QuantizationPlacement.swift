/// Decides which nodes of an FP32 graph run in INT8 and which tensors get quantized
/// (Paddle's cpu_quantize_placement + compute_propagate_scales passes):
/// - a *unit* is a Conv (constant weights) or a MatMul/Gemm with constant 2-D weights, plus
///   the activations, scalar affine ops and at most one residual Add (another tensor of the
///   same shape) that follow it; it becomes one INT8 primitive with post-ops. Its input, its
///   residual and its output are quantized; the output is u8 when the unit ends in an op that
///   is non-negative by construction (Relu, Clip(0, ..), HardSigmoid, Sigmoid), else s8;
/// - scale-invariant ops (MaxPool, Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Slice,
///   Resize, Concat) whose input is quantized pass int8 through: their output shares the
///   input's parameters (a Concat's inputs share its output's). Average pools are not
///   scale-invariant in practice (a global average has a much narrower range): they stay FP32
///   and their output is quantized with its own range where an INT8 node reads it;
/// - an Add or Mul of two quantized tensors runs as an INT8 binary;
/// - everything else stays FP32, with the reason recorded.
struct QuantizationPlacement {
    struct Unit {
        var anchor: String
        var opType: String
        var input: String
        var output: String
        var residual: String?
        var nodes: [String]
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
    /// Nodes that pass int8 through, and Add/Mul nodes that run in INT8.
    var passThrough: [String] = []
    var binaries: [String] = []
    /// Why each FP32 node (of the analysed graph) stays FP32, by node label.
    var fp32Reasons: [String: String] = [:]

    static let nonNegativeOps: Set<String> = ["Relu", "HardSigmoid", "Sigmoid", "Softmax"]

    /// - Parameters:
    ///   - graph: the graph analysed (activation patterns fused, e.g. HardSwish as one node).
    ///   - shapes: value shapes for one input set (residual shapes must match).
    init(_ graph: Graph, shapes: [String: [Int]], excludeNodes: Set<String>, excludeOpTypes: Set<String>) {
        let e = GraphEditor(graph)
        var quantized: Set<String> = []
        var absorbed: Set<Int> = []
        func addTensor(_ t: String) { if quantized.insert(t).inserted { tensors.append(t) } }
        func nonNegative(_ n: Node) -> Bool {
            if Self.nonNegativeOps.contains(n.opType) { return true }
            if n.opType == "Clip", let acts = Activation.of(n, constants: e.constant), acts[0].alpha >= 0 { return true }
            return false
        }
        for (i, n) in e.nodes.enumerated() where !absorbed.contains(i) {
            if excludeNodes.contains(n.name) || excludeOpTypes.contains(n.opType) {
                fp32Reasons[n.label] = "excluded by the user"
                continue
            }
            switch n.opType {
            case "Conv", "MatMul", "Gemm":
                guard let w = e.constant(n.input(1)) else {
                    fp32Reasons[n.label] = "weights are computed at run time"; continue
                }
                if n.opType != "Conv" {
                    guard w.shape.count == 2 else { fp32Reasons[n.label] = "weights are not 2-D"; continue }
                    if n.opType == "Gemm" && (n.int("transA") == 1 || (n.float("alpha") ?? 1) != 1 || (n.float("beta") ?? 1) != 1) {
                        fp32Reasons[n.label] = "Gemm with transA, alpha or beta"; continue
                    }
                    guard let a = shapes[n.inputs[0]], a.count >= 2 else { fp32Reasons[n.label] = "input rank below 2"; continue }
                }
                var unit = Unit(anchor: n.name, opType: n.opType, input: n.inputs[0], output: n.outputs[0], residual: nil, nodes: [n.name])
                var chain = PostOpChain()
                var cur = n.outputs[0]
                var lastUnsigned = false
                while let ci = e.soleConsumer(cur) {
                    let c = e.nodes[ci]
                    if excludeNodes.contains(c.name) || excludeOpTypes.contains(c.opType) { break }
                    if n.opType == "MatMul", chain.isEmpty, unit.nodes.count == 1, c.opType == "Add",
                       let (other, bt, _) = e.constantOperand(c), other == cur, bt.count == w.shape[1], bt.shape.last == w.shape[1] {
                        // The MatMul's bias: added by the primitive.
                    } else if let acts = PostOpFusion.eltwise(c, applyingTo: cur, e), PostOpFusion.append(acts, to: &chain) {
                        lastUnsigned = nonNegative(c)
                    } else if c.opType == "Add", unit.residual == nil, c.inputs.count == 2,
                              let other = c.inputs.first(where: { $0 != cur }), e.constant(other) == nil,
                              shapes[other] != nil, shapes[other] == shapes[cur] {
                        unit.residual = other
                        chain.ops.append(.sum)
                        lastUnsigned = false
                    } else { break }
                    absorbed.insert(ci)
                    unit.nodes.append(c.name)
                    cur = c.outputs[0]
                }
                unit.output = cur
                units.append(unit)
                addTensor(unit.input)
                if let r = unit.residual { addTensor(r) }
                addTensor(cur)
                if lastUnsigned { unsigned.insert(cur) }
            case "MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Resize", "Identity":
                guard quantized.contains(n.inputs[0]), n.outputs.count == 1 else {
                    fp32Reasons[n.label] = "its input is FP32"; continue
                }
                if n.opType == "Resize", (n.string("mode") ?? "nearest") != "nearest" {
                    fp32Reasons[n.label] = "only nearest Resize passes int8"; continue
                }
                addTensor(n.outputs[0])
                sharesWith[n.outputs[0]] = root(n.inputs[0])
                if unsigned.contains(n.inputs[0]) { unsigned.insert(n.outputs[0]) }
                passThrough.append(n.name)
            case "Concat":
                let ins = n.inputs.filter { !$0.isEmpty }
                guard ins.allSatisfy({ quantized.contains($0) }) else { fp32Reasons[n.label] = "an input is FP32"; continue }
                addTensor(n.outputs[0])
                concatInputs[n.outputs[0]] = ins
                for t in ins { let r = root(t); if r != n.outputs[0] { sharesWith[r] = n.outputs[0] } }
                if ins.allSatisfy({ unsigned.contains($0) }) { unsigned.insert(n.outputs[0]) }
                passThrough.append(n.name)
            case "Add", "Mul":
                guard n.inputs.count == 2, n.inputs.allSatisfy({ quantized.contains($0) }) else {
                    fp32Reasons[n.label] = "an input is FP32 or constant"; continue
                }
                addTensor(n.outputs[0])
                binaries.append(n.name)
            default:
                if nonNegative(n) && n.outputs.count == 1 { unsigned.insert(n.outputs[0]) }
                fp32Reasons[n.label] = "no INT8 kernel for \(n.opType)"
            }
        }
        // Inputs of units that are FP32 tensors are quantized too; non-negative producers -> u8.
        for t in tensors where !unsigned.contains(t) {
            if let p = e.producer(t), nonNegative(e.nodes[p]) { unsigned.insert(t) }
        }
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
