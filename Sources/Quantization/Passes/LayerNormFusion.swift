/// Recognizes layer normalization written out as
/// `d = x - ReduceMean(x); y = d / Sqrt(ReduceMean(Pow(d, 2)) + eps) [* gamma] [+ beta]`
/// (paddle2onnx, older PyTorch exports) over the last axis, and replaces it with one
/// `LayerNormalization(x, gamma, beta; axis -1, epsilon)` (a oneDNN primitive).
struct LayerNormFusion: GraphPass {
    let name = "layer-norm-fusion"

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        var e = GraphEditor(graph)
        for (i, node) in e.nodes.enumerated() where node.opType == "ReduceMean" && !e.touched(i) {
            match(i, &e, &report)
        }
        graph = e.finish()
        return report
    }

    private func lastAxis(_ n: Node, _ e: GraphEditor) -> Bool {
        let axes = n.ints("axes") ?? e.constant(n.input(1))?.intValues()
        return axes == [-1] && (n.int("keepdims") ?? 1) == 1
    }

    private func match(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport) {
        let mean = e.nodes[i]
        guard lastAxis(mean, e) else { return }
        let x = mean.inputs[0]
        guard let si = e.soleConsumer(mean.outputs[0]), e.nodes[si].opType == "Sub",
            e.nodes[si].inputs == [x, mean.outputs[0]]
        else { return }
        let d = e.nodes[si].outputs[0]
        guard let uses = e.consumers[d], uses.count == 2, !e.graphOutputs.contains(d),
            let pi = uses.first(where: { e.nodes[$0].opType == "Pow" }),
            let di = uses.first(where: { e.nodes[$0].opType == "Div" }),
            e.scalar(e.nodes[pi].input(1)) == 2,
            let vi = e.soleConsumer(e.nodes[pi].outputs[0]), e.nodes[vi].opType == "ReduceMean", lastAxis(e.nodes[vi], e),
            let ai = e.soleConsumer(e.nodes[vi].outputs[0]), e.nodes[ai].opType == "Add",
            let (_, epsT, _) = e.constantOperand(e.nodes[ai]), epsT.count == 1,
            let qi = e.soleConsumer(e.nodes[ai].outputs[0]), e.nodes[qi].opType == "Sqrt",
            let dq = e.soleConsumer(e.nodes[qi].outputs[0]), dq == di, e.nodes[di].inputs == [d, e.nodes[qi].outputs[0]]
        else {
            r.skipped.append("\(mean.label): ReduceMean/Sub not followed by the variance and division of a layer norm")
            return
        }
        var chain = [i, si, pi, vi, ai, qi, di]
        var out = e.nodes[di].outputs[0]
        var gamma = "", beta = ""
        // gamma and beta must be per element (a scalar Mul/Add stays a node of its own).
        if let mi = e.soleConsumer(out), e.nodes[mi].opType == "Mul", let (other, gt, _) = e.constantOperand(e.nodes[mi]),
            other == out, gt.count > 1
        {
            gamma = e.nodes[mi].inputs.first { $0 != out }!
            chain.append(mi)
            out = e.nodes[mi].outputs[0]
            if let bi = e.soleConsumer(out), e.nodes[bi].opType == "Add", let (other2, bt, _) = e.constantOperand(e.nodes[bi]),
                other2 == out, bt.count > 1
            {
                beta = e.nodes[bi].inputs.first { $0 != out }!
                chain.append(bi)
                out = e.nodes[bi].outputs[0]
            }
        }
        let last = chain.last!
        var inputs = [x]
        if !gamma.isEmpty { inputs.append(gamma) }
        if !beta.isEmpty { inputs.append(beta) }
        e.replace(
            last,
            with: Node(
                name: e.nodes[last].name, opType: "LayerNormalization", inputs: inputs, outputs: [out],
                attributes: ["axis": .int(-1), "epsilon": .float(epsT.floatValues()[0])]))
        for k in chain.dropLast() { e.remove(k) }
        r.applied.append("LayerNormalization from \(chain.count) nodes starting at \(mean.label)")
    }
}
