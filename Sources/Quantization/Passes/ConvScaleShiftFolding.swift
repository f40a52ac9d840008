/// Folds per-channel affine ops that directly follow a convolution (Conv or ConvTranspose)
/// into its weights and bias:
/// BatchNormalization (`s = gamma / sqrt(var + eps)`, `t = beta - mean * s`), and Mul / Div /
/// Add / Sub by a scalar or per-output-channel constant. `w'[oc] = s[oc] w[oc]`,
/// `b'[oc] = s[oc] b[oc] + t[oc]` (the standard BN folding; Paddle's conv_bn_fuse_pass).
struct ConvScaleShiftFolding: GraphPass {
    let name = "conv-scale-shift-folding"

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        var e = GraphEditor(graph)
        for (i, node) in e.nodes.enumerated() where (node.opType == "Conv" || node.opType == "ConvTranspose") && !e.touched(i) {
            fold(i, &e, &report)
        }
        graph = e.finish()
        return report
    }

    /// Per-channel (scale, shift) of a node applied to `value` with `oc` channels, or nil.
    private func affine(_ n: Node, of value: String, oc: Int, rank: Int, _ e: GraphEditor) -> (s: [Float], t: [Float])? {
        func perChannel(_ c: Tensor) -> [Float]? {
            if c.count == 1 { return [Float](repeating: c.floatValues()[0], count: oc) }
            let padded = Broadcast.padded(c.shape, to: rank)
            guard c.shape.count <= rank, padded.enumerated().allSatisfy({ $0.offset == 1 ? $0.element == oc : $0.element == 1 }) else { return nil }
            return c.floatValues()
        }
        switch n.opType {
        case "BatchNormalization":
            guard n.inputs[0] == value, n.outputs.count == 1 || n.outputs.dropFirst().allSatisfy(\.isEmpty),
                let g = e.constant(n.input(1)), let b = e.constant(n.input(2)), let m = e.constant(n.input(3)),
                let v = e.constant(n.input(4)), g.count == oc, b.count == oc, m.count == oc, v.count == oc
            else { return nil }
            let eps = n.float("epsilon") ?? 1e-5
            let gv = g.floatValues(), bv = b.floatValues(), mv = m.floatValues(), vv = v.floatValues()
            let s = (0..<oc).map { gv[$0] / (vv[$0] + eps).squareRoot() }
            return (s, (0..<oc).map { bv[$0] - mv[$0] * s[$0] })
        case "Mul", "Div", "Add", "Sub":
            guard let (other, c, first) = e.constantOperand(n), other == value, let pc = perChannel(c) else { return nil }
            let ones = [Float](repeating: 1, count: oc), zeros = [Float](repeating: 0, count: oc)
            switch (n.opType, first) {
            case ("Mul", _): return (pc, zeros)
            case ("Div", false): return pc.contains(0) ? nil : (pc.map { 1 / $0 }, zeros)
            case ("Add", _): return (ones, pc)
            case ("Sub", false): return (ones, pc.map { -$0 })
            case ("Sub", true): return (ones.map { -$0 }, pc)
            default: return nil
            }
        default: return nil
        }
    }

    private func fold(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport) {
        var conv = e.nodes[i]
        guard let w = e.constant(conv.input(1)), w.shape.count >= 3 else { return }
        let transposed = conv.opType == "ConvTranspose"
        let groups = conv.int("group") ?? 1
        // Groups that do not divide the weights' channels are left for the kernel to refuse
        // (and `w.shape[1] * groups` cannot overflow once groups <= w.shape[0]).
        guard groups > 0, w.count > 0, groups <= w.shape[0], w.shape[0] % groups == 0 else { return }
        // Output channel of each weight: Conv [OC, IC/g, k...]; ConvTranspose [IC, OC/g, k...].
        let oc = transposed ? w.shape[1] * groups : w.shape[0], rank = w.shape.count
        let kernelSize = w.shape[2...].reduce(1, *)
        let channelOf: (Int) -> Int =
            transposed
            ? { i in
                let ic = i / (w.shape[1] * kernelSize); return (ic / (w.shape[0] / groups)) * w.shape[1] + (i / kernelSize) % w.shape[1]
            }
            : { i in i / (w.count / w.shape[0]) }
        var wv = w.floatValues()
        // A bias computed at run time (or through a DequantizeLinear) cannot take the shift.
        if conv.input(2) != nil && e.constant(conv.input(2)) == nil { return }
        var bv = e.constant(conv.input(2))?.floatValues() ?? [Float](repeating: 0, count: oc)
        guard bv.count == oc else { return }
        var folded: [String] = []
        var chain: [Int] = []
        while let ci = e.soleConsumer(conv.outputs[0]), let (s, t) = affine(e.nodes[ci], of: conv.outputs[0], oc: oc, rank: rank, e) {
            for i in 0..<wv.count { wv[i] *= s[channelOf(i)] }
            for o in 0..<oc { bv[o] = bv[o] * s[o] + t[o] }
            folded.append(e.nodes[ci].label)
            conv.outputs = [e.nodes[ci].outputs[0]]
            chain.append(ci)
        }
        guard let last = chain.last else { return }
        let wName = e.freshName(conv.inputs[1] + ".folded"), bName = e.freshName(conv.name + ".bias.folded")
        e.addInitializer(wName, Tensor(shape: w.shape, scalars: wv))
        e.addInitializer(bName, Tensor(shape: [oc], scalars: bv))
        conv.inputs = [conv.inputs[0], wName, bName]
        // The conv moves to the last folded node's place (its output name is that node's).
        e.remove(i)
        for c in chain.dropLast() { e.remove(c) }
        e.replace(last, with: conv)
        r.applied.append("folded \(folded.joined(separator: ", ")) into \(conv.label)")
    }
}
