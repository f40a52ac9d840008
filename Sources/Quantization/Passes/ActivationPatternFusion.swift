/// Recognizes activations that exporters write out as several nodes and replaces them with the
/// single ONNX operator oneDNN runs in one primitive or post-op:
/// - HardSwish: `x * Clip(x + 3, 0, 6) / 6` (or `* (1/6)`), and `x * HardSigmoid(x; 1/6, 0.5)`
/// - Swish (SiLU): `x * Sigmoid(x)` becomes the internal `dnnl.Swish`
struct ActivationPatternFusion: GraphPass {
    let name = "activation-pattern-fusion"

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        var e = GraphEditor(graph)
        // The patterns index inputs and outputs: a node without them (refused at import and
        // session creation; a caller's graph may still have one) matches nothing.
        for (i, node) in e.nodes.enumerated() where !e.touched(i) && !node.inputs.isEmpty && !node.outputs.isEmpty {
            switch node.opType {
            case "Add": matchHardSwishFromClip(i, &e, &report)
            case "HardSigmoid": matchHardSwishFromHardSigmoid(i, &e, &report)
            case "Sigmoid": matchSwish(i, &e, &report)
            default: break
            }
        }
        graph = e.finish()
        return report
    }

    /// The index of a Mul reading both `x` and `y`, consuming `y` alone.
    private func mulOf(_ x: String, _ y: String, _ e: GraphEditor) -> Int? {
        guard let m = e.soleConsumer(y), e.nodes[m].opType == "Mul", Set(e.nodes[m].inputs) == Set([x, y]), !e.nodes[m].outputs.isEmpty
        else { return nil }
        return m
    }

    /// `Mul` then `Div(., 6)` or `Mul(., 1/6)`: the index of that final scaling node.
    private func divideBySix(_ value: String, _ e: GraphEditor) -> Int? {
        guard let d = e.soleConsumer(value), !e.nodes[d].outputs.isEmpty else { return nil }
        let n = e.nodes[d]
        if n.opType == "Div", n.inputs.count == 2, n.inputs[0] == value, let c = e.scalar(n.inputs[1]), c == 6 { return d }
        if n.opType == "Mul", let (_, c, _) = e.constantOperand(n), c.count == 1, abs(c.floatValues()[0] - 1 / 6) < 1e-6 { return d }
        return nil
    }

    private func matchHardSwishFromClip(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport) {
        let add = e.nodes[i]
        guard let (x, c, _) = e.constantOperand(add), c.count == 1, c.floatValues()[0] == 3,
            let ci = e.soleConsumer(add.outputs[0]), e.nodes[ci].opType == "Clip", !e.nodes[ci].outputs.isEmpty
        else { return }
        let clip = e.nodes[ci]
        let lo = clip.float("min") ?? e.scalar(clip.input(1)), hi = clip.float("max") ?? e.scalar(clip.input(2))
        guard lo == 0, hi == 6, let mi = mulOf(x, clip.outputs[0], e) else { return }
        guard let di = divideBySix(e.nodes[mi].outputs[0], e) else {
            r.skipped.append("\(add.label): x * Clip(x + 3, 0, 6) is not divided by 6")
            return
        }
        let out = e.nodes[di].outputs[0]
        e.replace(di, with: Node(name: e.nodes[di].name, opType: "HardSwish", inputs: [x], outputs: [out]))
        for k in [i, ci, mi] { e.remove(k) }
        r.applied.append("HardSwish from \(add.label), \(clip.label), \(e.nodes[mi].label), \(e.nodes[di].label)")
    }

    private func matchHardSwishFromHardSigmoid(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport) {
        let hs = e.nodes[i]
        let alpha = hs.float("alpha") ?? 0.2, beta = hs.float("beta") ?? 0.5
        guard abs(alpha - 1 / 6) < 1e-6, beta == 0.5, let mi = mulOf(hs.inputs[0], hs.outputs[0], e) else { return }
        let mul = e.nodes[mi]
        e.replace(mi, with: Node(name: mul.name, opType: "HardSwish", inputs: [hs.inputs[0]], outputs: mul.outputs))
        e.remove(i)
        r.applied.append("HardSwish from \(hs.label), \(mul.label)")
    }

    private func matchSwish(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport) {
        let sig = e.nodes[i]
        guard let mi = mulOf(sig.inputs[0], sig.outputs[0], e) else { return }
        let mul = e.nodes[mi]
        e.replace(
            mi,
            with: Node(
                name: mul.name, opType: "Swish", domain: FusedOps.domain, inputs: [sig.inputs[0]],
                outputs: mul.outputs, attributes: ["alpha": .float(1)]))
        e.remove(i)
        r.applied.append("Swish from \(sig.label), \(mul.label)")
    }
}
