/// Fuses what follows a Conv, ConvTranspose, MatMul or Gemm into its oneDNN post-ops
/// (oneDNN doc: primitive attributes, post-ops): activations and scalar affine ops become
/// eltwise post-ops, an Add of another run-time value of the result's shape becomes a sum
/// post-op (written in place into that value's buffer when nothing else reads it), and a
/// MatMul's constant bias Add becomes the primitive's bias. The result is a `dnnl.Fused*` node.
struct PostOpFusion: GraphPass {
    let name = "post-op-fusion"
    /// ConvTranspose is not an anchor: oneDNN 2.6 runs deconvolution post-ops on a slow path
    /// (measured: 24->1 channels at 320x320, 5.6 ms plain, 124 ms with a logistic post-op).
    static let anchors: Set<String> = ["Conv", "MatMul", "Gemm"]

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        var e = GraphEditor(graph)
        for (i, node) in e.nodes.enumerated() where Self.anchors.contains(node.opType) && node.domain.isEmpty && !e.touched(i) {
            fuse(i, &e, &report)
        }
        graph = e.finish()
        return report
    }

    private func fuse(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport) {
        let anchor = e.nodes[i]
        var chain = PostOpChain()
        var cur = anchor.outputs[0]
        var consumed: [Int] = []
        var bias: String? = nil
        var z: String? = nil
        let matmulColumns = anchor.opType == "MatMul" ? e.constant(anchor.input(1)).flatMap { $0.shape.count == 2 ? $0.shape[1] : nil } : nil
        while let ci = e.soleConsumer(cur) {
            let n = e.nodes[ci]
            if let columns = matmulColumns, chain.isEmpty, bias == nil, n.opType == "Add",
               let (other, c, _) = e.constantOperand(n), other == cur, c.count == columns, c.shape.last == columns {
                bias = n.inputs.first { $0 != cur }
            } else if let acts = Self.eltwise(n, applyingTo: cur, e) {
                guard Self.append(acts, to: &chain) else { break }
            } else if n.opType == "Add", z == nil, n.inputs.count == 2, n.inputs[0] != n.inputs[1],
                      let other = n.inputs.first(where: { $0 != cur }), e.constant(other) == nil {
                z = other
                chain.ops.append(.sum)
                chain.sumInPlace = (e.consumers[other]?.count ?? 0) == 1 && !e.graphOutputs.contains(other)
            } else {
                break
            }
            consumed.append(ci)
            cur = n.outputs[0]
        }
        guard let last = consumed.last else { return }
        var inputs = anchor.inputs + [String](repeating: "", count: max(0, 3 - anchor.inputs.count))
        if let bias { inputs[2] = bias }
        if let z { inputs.append(z) }
        var attrs = anchor.attributes
        for (k, v) in chain.attributes { attrs[k] = v }
        e.replace(last, with: Node(name: anchor.name, opType: "Fused" + anchor.opType, domain: FusedOps.domain,
                                   inputs: inputs, outputs: [cur], attributes: attrs))
        e.remove(i)
        for c in consumed.dropLast() { e.remove(c) }
        r.applied.append("\(anchor.label)\(bias != nil ? " +bias" : "")\(chain.summary) (\(consumed.count) nodes)")
    }

    /// The eltwise functions a node applies to `value`: an activation, or Add/Sub/Mul/Div by a
    /// scalar constant (`linear`). Nil when it is neither.
    static func eltwise(_ n: Node, applyingTo value: String, _ e: GraphEditor) -> [Activation]? {
        if n.inputs.first == value, let acts = Activation.of(n, constants: e.constant) { return acts }
        if let (other, c, first) = e.constantOperand(n), other == value, c.count == 1,
           ["Add", "Sub", "Mul", "Div"].contains(n.opType),
           let act = BinaryKernels.scalarForm(n.opType, c.floatValues()[0], constantFirst: first) {
            return [act]
        }
        return nil
    }

    /// Appends eltwise post-ops, merging consecutive `linear`s (`a2 (a1 x + b1) + b2`).
    /// Returns false, appending nothing, when an algorithm would appear twice with different
    /// parameters: oneDNN 2.6's jit eltwise injectors then apply the first one's parameters to
    /// both (measured here: relu + linear(1.5) + linear(1, 0.3) gave 2.25 relu(x) + 0.3).
    static func append(_ acts: [Activation], to chain: inout PostOpChain) -> Bool {
        var ops = chain.ops
        for a in acts {
            if a.algorithm == .linear, case .eltwise(let p)? = ops.last, p.algorithm == .linear {
                ops[ops.count - 1] = .eltwise(Activation(algorithm: .linear, alpha: a.alpha * p.alpha,
                                                         beta: a.alpha * p.beta + a.beta))
                continue
            }
            let clash = ops.contains { op in
                if case .eltwise(let p) = op { return p.algorithm == a.algorithm && p != a }
                return false
            }
            if clash { return false }
            ops.append(.eltwise(a))
        }
        chain.ops = ops
        return true
    }
}
