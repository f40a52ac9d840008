/// Writes the quantization decided by `QuantizationPlacement` as standard ONNX QDQ (opset 13):
/// each quantized activation `T` becomes `DequantizeLinear(QuantizeLinear(T))` for the INT8
/// readers (FP32 readers keep `T`); unit weights become s8 initializers with per-channel
/// scales and a `DequantizeLinear` (axis 0 for Conv and transposed-Gemm weights, 1 for
/// MatMul `[K, N]`); Conv/Gemm biases become int32 with scale `sx * sw[oc]` (onnxruntime's
/// QDQ format). onnxruntime runs the result; this library's QDQ fusion turns it into INT8
/// kernels.
struct QDQInsertion: GraphPass {
    let name = "qdq-insertion"
    let placement: QuantizationPlacement
    /// Parameters of every quantized activation tensor.
    let params: [String: QuantParams]
    /// One s8 scale per output channel (default), or one for the whole weight tensor.
    var perChannelWeights = true

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        var dq: [String: String] = [:]  // tensor -> its dequantized name
        var newNodes: [String: [Node]] = [:]  // inserted after the producer of the key ("" = at the start)
        let producers = graph.producers()
        func unique(_ base: String) -> String {
            var n = base, k = 1
            while graph.initializers[n] != nil || producers[n] != nil || dq.values.contains(n) { n = "\(base)_\(k)"; k += 1 }
            return n
        }
        for t in placement.tensors {
            guard let p = params[t] else { continue }
            let s = unique(t + "_scale"), z = unique(t + "_zero_point"), q = unique(t + "_quantized"), d = unique(t + "_dequantized")
            graph.initializers[s] = Tensor(shape: [], scalars: [p.scale])
            graph.initializers[z] = p.type == .u8 ? Tensor(shape: [], scalars: [UInt8(p.zeroPoint)]) : Tensor(shape: [], scalars: [Int8(p.zeroPoint)])
            let at = producers[t].map { graph.nodes[$0].name } ?? ""
            newNodes[at, default: []] += [
                Node(name: t + "_QuantizeLinear", opType: "QuantizeLinear", inputs: [t, s, z], outputs: [q]),
                Node(name: t + "_DequantizeLinear", opType: "DequantizeLinear", inputs: [q, s, z], outputs: [d]),
            ]
            dq[t] = d
        }
        // Readers that run in INT8 read the dequantized tensors.
        var int8Readers: [String: Set<String>] = [:]  // node name -> inputs to rewire
        for u in placement.units {
            int8Readers[u.anchor, default: []].insert(u.input)
            if let r = u.residual, let add = u.residualAdd { int8Readers[add, default: []].insert(r) }
        }
        for n in placement.passThrough + placement.binaries {
            guard let node = graph.nodes.first(where: { $0.name == n }) else { continue }
            for i in node.inputs where dq[i] != nil { int8Readers[n, default: []].insert(i) }
        }
        var weightNodes: [Node] = []
        let unitsByAnchor = Dictionary(placement.units.map { ($0.anchor, $0) }, uniquingKeysWith: { a, _ in a })
        for k in graph.nodes.indices {
            var n = graph.nodes[k]
            if let rewire = int8Readers[n.name] {
                n.inputs = n.inputs.map { rewire.contains($0) ? (dq[$0] ?? $0) : $0 }
            }
            if let u = unitsByAnchor[n.name], let xp = params[u.input] {
                try quantizeWeights(&n, input: xp, graph: &graph, nodes: &weightNodes)
                report.applied.append("\(n.label): s8 weights \(perChannelWeights ? "per channel" : "per tensor"), \(xp.type) input")
            }
            graph.nodes[k] = n
        }
        var out: [Node] = weightNodes + (newNodes[""] ?? [])
        for n in graph.nodes {
            out.append(n)
            out += newNodes[n.name] ?? []
        }
        graph.nodes = out
        // The FP32 weights the quantized ones replace are no longer read.
        let used = Set(out.flatMap(\.inputs)).union(graph.outputs.map(\.name))
        graph.initializers = graph.initializers.filter { used.contains($0.key) }
        try graph.sortTopologically()
        report.applied.append("\(dq.count) activation tensors quantized")
        return report
    }

    /// Replaces a unit anchor's weights (and bias) by quantized initializers and DequantizeLinear.
    private func quantizeWeights(_ n: inout Node, input xp: QuantParams, graph: inout Graph, nodes: inout [Node]) throws(GraphError) {
        func unique(_ base: String) -> String {
            var name = base, k = 1
            while graph.initializers[name] != nil { name = "\(base)_\(k)"; k += 1 }
            return name
        }
        guard let w = graph.initializers[n.inputs[1]] else { return }
        // Channel axis of the weights: Conv [OC, ...] 0; MatMul [K, N] 1; Gemm transB [N, K] 0.
        let axis = n.opType == "Conv" || (n.opType == "Gemm" && n.int("transB") == 1) ? 0 : 1
        let channels = w.shape[axis]
        let inner = w.shape[(axis + 1)...].reduce(1, *)
        let values = w.floatValues()
        guard values.allSatisfy({ $0.isFinite }) else {
            throw GraphError(.invalidModel, "node \(n.label): weights '\(n.inputs[1])' contain NaN or Inf; they cannot be quantized")
        }
        var maxAbs = [Float](repeating: 0, count: channels)
        for (i, v) in values.enumerated() { let c = (i / inner) % channels; maxAbs[c] = max(maxAbs[c], abs(v)) }
        if !perChannelWeights { maxAbs = [Float](repeating: maxAbs.max() ?? 0, count: channels) }
        // An all-zero channel gets scale 1: its outputs are its bias (ONEDNN_INT8_NOTES C4). So
        // does a channel of negligible weights (|w| < 127e-30, e.g. denormals in trained
        // models): their scale would be too small for the INT8 kernel's output scale
        // (QDQFusion keeps such nodes FP32), and rounding them to 0 changes outputs by < 1e-27.
        let scales = maxAbs.map { $0 / 127 >= QDQFusion.smallestWeightScale ? $0 / 127 : 1 }
        let q = values.enumerated().map { i, v in
            Int8(clamping: Int((v / scales[(i / inner) % channels]).rounded(.toNearestOrEven)))
        }
        let wq = unique(n.inputs[1] + "_quantized"), ws = unique(n.inputs[1] + "_scale")
        let wz = unique(n.inputs[1] + "_zero_point"), wd = unique(n.inputs[1] + "_dequantized")
        graph.initializers[wq] = Tensor(shape: w.shape, scalars: q)
        if perChannelWeights {
            graph.initializers[ws] = Tensor(shape: [channels], scalars: scales)
            graph.initializers[wz] = Tensor(shape: [channels], scalars: [Int8](repeating: 0, count: channels))
        } else {
            graph.initializers[ws] = Tensor(shape: [], scalars: [scales[0]])
            graph.initializers[wz] = Tensor(shape: [], scalars: [Int8(0)])
        }
        nodes.append(
            Node(
                name: n.name + "_weights_DequantizeLinear", opType: "DequantizeLinear",
                inputs: [wq, ws, wz], outputs: [wd], attributes: perChannelWeights ? ["axis": .int(axis)] : [:]))
        n.inputs[1] = wd
        if n.opType != "MatMul", let b = n.input(2), let bt = graph.initializers[b], bt.count == channels,
            bt.floatValues().allSatisfy({ $0.isFinite })
        {
            let bs = scales.map { $0 * xp.scale }
            // Saturating: a bias beyond the int32 accumulator range (a tiny input scale) clamps.
            let bq = zip(bt.floatValues(), bs).map { b, s -> Int32 in
                let v = (Double(b) / Double(s)).rounded(.toNearestOrEven)
                return v.isNaN ? 0 : Int32(max(min(v, Double(Int32.max)), Double(Int32.min)))
            }
            let bqn = unique(b + "_quantized"), bsn = unique(b + "_scale"), bzn = unique(b + "_zero_point"), bdn = unique(b + "_dequantized")
            graph.initializers[bqn] = Tensor(shape: [channels], scalars: bq)
            graph.initializers[bsn] = Tensor(shape: [channels], scalars: bs)
            graph.initializers[bzn] = Tensor(shape: [channels], scalars: [Int32](repeating: 0, count: channels))
            nodes.append(
                Node(
                    name: n.name + "_bias_DequantizeLinear", opType: "DequantizeLinear",
                    inputs: [bqn, bsn, bzn], outputs: [bdn], attributes: ["axis": .int(0)]))
            n.inputs[2] = bdn
        }
    }
}
