/// Brings the QDQ forms that QAT exporters and other quantizers write into the one form
/// ``QDQFusion`` matches, without changing any value the model computes (ONNX
/// QuantizeLinear/DequantizeLinear semantics, `real = scale * (q - zero_point)`):
/// 0. **Quantized constants.** `QuantizeLinear(W f32 constant)` (NNCF writes weights so) is
///    evaluated into its int8 constant.
/// 1. **Weights through layout ops.** `DQ(w_q) -> Transpose/Reshape/Flatten/Squeeze/Unsqueeze
///    -> Conv/MatMul/Gemm` (PyTorch's Linear exports `DQ(W[N, K]) -> Transpose -> MatMul`):
///    the layout op is applied to the int8 constant and the DequantizeLinear moved after it,
///    its per-channel `axis` following the permutation or reshape. When the axis cannot be
///    followed (a reshape that splits or merges the quantized axis), the weights stay as
///    written and the node stays FP32 with the reason.
/// 2. **Weights with zero points, or u8.** A weight DequantizeLinear with a nonzero zero point
///    or u8 values becomes symmetric s8 (`q - zp`, zero point 0) when every `q - zp` fits in
///    -128...127 (onnxruntime's u8 weights with zero point 128 do); otherwise the node stays
///    FP32 (the INT8 kernels take no weight zero points, oneDNN 2.6 `set_zero_points` rejects
///    weights for convolution).
/// 3. **Dequantized activations through data movement** (``sinkDequantizers(_:_:)``): a
///    Concat/Reshape/Transpose/MaxPool... of dequantized int8 tensors whose output is not
///    quantized again runs on the int8 values, dequantized after it.
/// 4. **Activation-only fake quantization.** A Conv/MatMul/Gemm whose source is dequantized
///    but whose weights are an FP32 constant gets s8 weights per output channel when they lie
///    on an 8-bit grid (`w = s[oc] * k`, integer `|k| <= 127`, `s[oc] = max|w[oc]| / 127`),
///    as QAT exporters that store fake-quantized weights as floats write them; such weights
///    are exact in s8, so the INT8 node computes what the QDQ graph computes. Weights off the
///    grid are FP32 on purpose (a node a quantizer excluded): the node stays FP32.
struct QDQNormalization: GraphPass {
    let name = "qdq-normalization"

    /// Layout ops a weight DequantizeLinear is moved across.
    static let layoutOps: Set<String> = ["Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze"]

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        guard graph.nodes.contains(where: { $0.opType == "DequantizeLinear" }) else { return report }
        foldConstantQuantizers(&graph, &report)
        // Each round moves every weight DQ one layout op further; chains are short.
        for _ in 0..<8 {
            var e = GraphEditor(graph)
            var moved = false
            for (i, n) in e.nodes.enumerated() where n.opType == "DequantizeLinear" && n.domain.isEmpty {
                guard let w = e.constant(n.input(0)), w.elementType == .s8 || w.elementType == .u8 else { continue }
                for c in e.consumers[n.outputs[0]] ?? [] where !e.touched(c) {
                    let op = e.nodes[c]
                    guard op.domain.isEmpty, Self.layoutOps.contains(op.opType), op.inputs.first == n.outputs[0],
                        op.outputs.count == 1, op.inputs.dropFirst().allSatisfy({ $0.isEmpty || e.constant($0) != nil })
                    else { continue }
                    if moveAcross(dq: i, layout: c, &e, &report) { moved = true }
                }
            }
            guard moved else { break }
            graph = e.finish()
        }
        for _ in 0..<8 {
            guard sinkDequantizers(&graph, &report) else { break }
        }
        var e = GraphEditor(graph)
        for (i, n) in e.nodes.enumerated() where OpTraits.of(n, constants: e.constant).contains(.unitAnchor) && n.inputs.count >= 2 {
            guard QDQFusion.dequantized(n.inputs[0], e) != nil else { continue }
            if let dq = e.producer(n.inputs[1]), e.nodes[dq].opType == "DequantizeLinear" {
                symmetricWeights(dq, for: n, &e, &report)
            } else if let w = e.constant(n.inputs[1]), w.elementType == .f32 {
                gridWeights(i, w, &e, &report)
            }
        }
        graph = e.finish()
        return report
    }

    /// Dequantized activations through data movement: `op(DQ(a), DQ(b))` for an op that passes
    /// int8 through with its input's parameters (`OpTraits.scaleInvariant`: Concat, Reshape,
    /// Transpose, MaxPool, nearest Resize, constant Slice/Split/Gather...), every data input
    /// dequantized with the same per-tensor parameters, and an output no QuantizeLinear of
    /// those parameters reads: the op runs on the int8 values and a DequantizeLinear follows
    /// each output (`DQ(op(a, b))`, the same values), so a Conv/MatMul after it reads a
    /// dequantized int8 tensor (onnxruntime leaves no Q after such a Concat; NNCF none after a
    /// Reshape/Transpose before a MatMul). Returns whether anything moved.
    private func sinkDequantizers(_ graph: inout Graph, _ r: inout PassReport) -> Bool {
        var e = GraphEditor(graph)
        var moved = false
        for (i, n) in e.nodes.enumerated() where !e.touched(i) && !n.outputs.isEmpty && !n.inputs.isEmpty {
            let traits = OpTraits.of(n, constants: e.constant)
            guard traits.contains(.int8PassThrough), traits.contains(.scaleInvariant), n.outputs.count == 1 || n.opType == "Split" else {
                continue
            }
            let dataInputs = n.opType == "Concat" ? Array(n.inputs.indices) : [0]
            var p: QuantParams? = nil
            var dqNode: Node? = nil
            var inputs = n.inputs
            var ok = true
            for k in dataInputs where !n.inputs[k].isEmpty {
                guard let d = QDQFusion.dequantized(n.inputs[k], e), p == nil || p == d.p else { ok = false; break }
                p = d.p
                dqNode = e.nodes[d.node]
                inputs[k] = d.q
            }
            guard ok, let p, let dqNode, n.outputs.allSatisfy({ !$0.isEmpty }) else { continue }
            if n.outputs.allSatisfy({ QDQFusion.quantizedBy($0, e)?.p == p }) { continue }  // QDQ fusion's own pattern
            var rewired = n
            rewired.inputs = inputs
            rewired.outputs = n.outputs.map { e.freshName($0 + ".q") }
            e.replace(i, with: rewired)
            for (k, o) in n.outputs.enumerated() {
                var dq = dqNode
                dq.name = n.name + "/dequantize" + (k == 0 ? "" : "_\(k)")
                dq.inputs[0] = rewired.outputs[k]
                dq.outputs = [o]
                e.insert(dq, after: i)
            }
            r.applied.append("\(n.label) runs on the \(p.type) values, dequantized after it")
            moved = true
        }
        if moved { graph = e.finish() }
        return moved
    }

    /// NNCF's weight form `QuantizeLinear(W f32 constant) -> DequantizeLinear`: the QuantizeLinear
    /// evaluated once into its int8 constant (ONNX QuantizeLinear, round half to even,
    /// saturation), so that the weights are a dequantized s8 constant like every other tool's.
    private func foldConstantQuantizers(_ graph: inout Graph, _ r: inout PassReport) {
        var e = GraphEditor(graph)
        var folded = false
        for (i, n) in e.nodes.enumerated() where n.opType == "QuantizeLinear" && n.domain.isEmpty {
            guard let w = e.constant(n.input(0)), w.elementType == .f32, n.outputs.count == 1,
                !e.graphOutputs.contains(n.outputs[0]),
                let q = try? QuantizeKernels.evaluate(n, n.inputs.map { e.constant($0) }, 13).first
            else { continue }
            e.addInitializer(n.outputs[0], q)
            e.remove(i)
            folded = true
            r.applied.append("\(n.label): constant \(w.shape) quantized once to \(q.elementType)")
        }
        if folded { graph = e.finish() }
    }

    /// The per-channel axis of a tensor of `shape` after a reshape to `reshaped`: the axis `b`
    /// with the same extent and the same number of elements before it; nil when the reshape
    /// splits or merges the axis.
    static func reshapedAxis(_ axis: Int, from shape: [Int], to reshaped: [Int]) -> Int? {
        let before = shape[..<axis].reduce(1, *)
        var product = 1
        for (b, d) in reshaped.enumerated() {
            if product == before && d == shape[axis] && (d != 1 || shape[axis] == 1) { return b }
            product *= d
        }
        return nil
    }

    /// `DQ(w_q) -> layout` as `DQ(layout(w_q))`: the layout op evaluated on the int8 constant.
    private func moveAcross(dq i: Int, layout c: Int, _ e: inout GraphEditor, _ r: inout PassReport) -> Bool {
        let dq = e.nodes[i], op = e.nodes[c]
        guard let w = e.constant(dq.input(0)), let evaluate = ConstantEvaluation.evaluators[op.opType],
            let scale = e.constant(dq.input(1))
        else { return false }
        var inputs: [Tensor?] = op.inputs.map { e.constant($0) }
        inputs[0] = w
        guard let moved = (try? evaluate(op, inputs, 13))?.first else { return false }
        var attributes = dq.attributes
        if scale.count > 1 {
            var axis = dq.int("axis") ?? 1
            if axis < 0 { axis += w.shape.count }
            guard axis >= 0, axis < w.shape.count else { return false }
            let newAxis: Int?
            if op.opType == "Transpose" {
                let perm = op.ints("perm") ?? Array((0..<w.shape.count).reversed())
                newAxis = perm.firstIndex(of: axis)
            } else {
                newAxis = Self.reshapedAxis(axis, from: w.shape, to: moved.shape)
            }
            guard let newAxis else {
                r.skipped.append(
                    "\(dq.label): its per-channel axis \(axis) of \(w.shape) does not survive \(op.label) to \(moved.shape): the weights stay FP32")
                return false
            }
            attributes["axis"] = .int(newAxis)
        }
        let name = e.freshName(dq.inputs[0] + "." + op.opType.lowercased())
        e.addInitializer(name, moved)
        var inputs2 = dq.inputs
        inputs2[0] = name
        e.replace(c, with: Node(name: op.name, opType: "DequantizeLinear", inputs: inputs2, outputs: op.outputs, attributes: attributes))
        r.applied.append("\(dq.label) moved after \(op.label) (weights \(w.shape) -> \(moved.shape))")
        return true
    }

    /// A weight DQ with u8 values or nonzero zero points as symmetric s8, when exact.
    private func symmetricWeights(_ dq: Int, for anchor: Node, _ e: inout GraphEditor, _ r: inout PassReport) {
        let n = e.nodes[dq]
        guard !e.touched(dq), let w = e.constant(n.input(0)), w.elementType == .s8 || w.elementType == .u8 else { return }
        let zp = e.constant(n.input(2))
        let zps = zp?.intValues() ?? [0]
        guard w.elementType == .u8 || zps.contains(where: { $0 != 0 }) else { return }
        guard let s = e.constant(n.input(1)), zps.count == 1 || zps.count == s.count else { return }
        var axis = n.int("axis") ?? 1
        if axis < 0 { axis += w.shape.count }
        let inner = s.count > 1 && axis >= 0 && axis < w.shape.count ? w.shape[(axis + 1)...].reduce(1, *) : 1
        let channels = s.count > 1 && axis >= 0 && axis < w.shape.count ? w.shape[axis] : 1
        let q = w.intValues()
        var shifted = [Int8](repeating: 0, count: q.count)
        for (k, v) in q.enumerated() {
            let d = v - zps[zps.count == 1 ? 0 : (k / inner) % channels]
            guard d >= -128, d <= 127 else {
                r.skipped.append(
                    "\(anchor.label): weights of \(n.label) minus their zero point reach \(d), outside s8 (no weight zero points in the INT8 kernels): stays FP32"
                )
                return
            }
            shifted[k] = Int8(d)
        }
        let name = e.freshName(n.inputs[0] + ".s8")
        e.addInitializer(name, Tensor(shape: w.shape, scalars: shifted))
        var inputs = n.inputs
        inputs[0] = name
        if inputs.count > 2 { inputs.removeLast() }
        e.replace(dq, with: Node(name: n.name, opType: n.opType, inputs: inputs, outputs: n.outputs, attributes: n.attributes))
        r.applied.append("\(n.label): \(w.elementType) weights with zero point(s) \(Set(zps).sorted()) as symmetric s8 (exact)")
    }

    /// The output-channel axis of an anchor's weights: Conv `[OC, ...]` 0, MatMul `[K, N]` 1,
    /// Gemm 0 with `transB` else 1.
    static func outputChannelAxis(_ anchor: Node) -> Int {
        switch anchor.opType {
        case "Conv": 0
        case "Gemm": anchor.int("transB") == 1 ? 0 : 1
        default: 1
        }
    }

    /// Activation-only fake quantization: FP32 weights on an 8-bit grid per output channel get
    /// an s8 constant and a DequantizeLinear.
    private func gridWeights(_ i: Int, _ w: Tensor, _ e: inout GraphEditor, _ r: inout PassReport) {
        let anchor = e.nodes[i]
        guard w.count > 0, (anchor.opType == "Conv" && w.shape.count >= 3) || (anchor.opType != "Conv" && w.shape.count == 2) else {
            return
        }
        let axis = Self.outputChannelAxis(anchor)
        let channels = w.shape[axis], inner = w.shape[(axis + 1)...].reduce(1, *)
        let v = w.floatValues()
        var maxAbs = [Float](repeating: 0, count: channels)
        for (k, x) in v.enumerated() { maxAbs[(k / inner) % channels] = max(maxAbs[(k / inner) % channels], abs(x)) }
        let scales = maxAbs.map { $0 > 0 ? $0 / 127 : 1 }
        var q = [Int8](repeating: 0, count: v.count)
        for (k, x) in v.enumerated() {
            let c = (k / inner) % channels
            let t = x / scales[c]
            let k8 = t.rounded(.toNearestOrEven)
            // Fake-quantized weights are `s * k` in f32: within float rounding of the grid.
            guard x.isFinite, abs(t - k8) <= 1e-3, abs(k8) <= 127 else {
                r.skipped.append(
                    "\(anchor.label): its source is dequantized but its FP32 weights are not on an 8-bit grid (activation-only fake quantization): stays FP32"
                )
                return
            }
            q[k] = Int8(k8)
        }
        let wName = e.freshName(anchor.inputs[1] + ".q"), sName = e.freshName(anchor.inputs[1] + ".scale")
        let out = e.freshName(anchor.name + "/" + anchor.inputs[1] + ".dequantized")
        e.addInitializer(wName, Tensor(shape: w.shape, scalars: q))
        e.addInitializer(sName, Tensor(shape: [channels], scalars: scales))
        var rewired = anchor
        rewired.inputs[1] = out
        e.replace(i, with: rewired)
        e.insert(
            Node(
                name: anchor.name + "/weights_dequantize", opType: "DequantizeLinear", inputs: [wName, sName],
                outputs: [out], attributes: ["axis": .int(axis)]), before: i)
        r.applied.append("\(anchor.label): FP32 weights on an 8-bit grid as s8 per channel (activation-only fake quantization)")
    }
}
