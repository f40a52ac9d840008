/// Turns a QDQ graph (QuantizeLinear/DequantizeLinear pairs around float ops, as this library's
/// quantizer, onnxruntime and QAT exporters write them) into INT8 kernels:
/// - `DQ(x_q) -> Conv(DQ(w_q), b) [-> activations] [-> Add(., DQ(z_q))] [-> activations] -> Q`
///   becomes `dnnl.QConv(x_q, w_q, b, z_q)` with an int8 output (or f32 when no Q follows);
///   likewise MatMul/Gemm with constant weights (`dnnl.QMatMul`) and Add/Sub/Mul of two
///   quantized tensors (`dnnl.QAdd`, `dnnl.QSub`, `dnnl.QMul`);
/// - ops that pass int8 through (`OpTraits.int8PassThrough`: MaxPool, Reshape, Transpose,
///   Flatten, Squeeze, Unsqueeze, Slice, Split, Gather, Concat, nearest Resize, average pools)
///   between a DQ and Qs of the same parameters (on every output) run on the int8 values;
/// - the Q/DQ nodes left become quantize/dequantize reorders; a DQ feeding a Q directly is one
///   requantize.
/// Paddle's cpu_quantize_pass + cpu_quantize_squash_pass do the same on Paddle graphs.
struct QDQFusion: GraphPass {
    let name = "qdq-fusion"

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        var e = GraphEditor(graph)
        guard e.nodes.contains(where: { $0.opType == "DequantizeLinear" }) else { return report }
        // A node without its inputs or outputs (refused at import and session creation; a
        // caller's graph may still have one) is left alone rather than indexed.
        for (i, node) in e.nodes.enumerated() where !e.touched(i) && !node.inputs.isEmpty && !node.inputs[0].isEmpty && !node.outputs.isEmpty {
            let traits = OpTraits.of(node, constants: e.constant)
            let runTimeInputs = node.inputs.filter { !$0.isEmpty && Self.operandConstant($0, e) == nil }.count
            if Self.lookupOps.contains(node.opType) && runTimeInputs == 1 && node.domain.isEmpty {
                _ = fuseLookup(i, &e, &report)
            } else if Self.lookupOps.contains(node.opType) && runTimeInputs == 2 && node.domain.isEmpty && !traits.contains(.int8Binary) {
                _ = fuseLookup(i, &e, &report)
            } else if traits.contains(.unitAnchor) {
                fuseAnchor(i, &e, &report, kind: node.opType == "Conv" ? "QConv" : "QMatMul")
            } else if traits.contains(.int8Binary) {
                fuseBinary(i, &e, &report)
            } else if traits.contains(.int8PassThrough) {
                fusePassThrough(i, &e, &report)
            }
        }
        graph = e.finish()
        graph.removeDeadNodes()
        Self.composeLookups(&graph, &report)
        return report
    }

    /// Chains of single-source lookups (`Mul -> Add` of a BatchNorm, `Add -> Clip -> Div` of a
    /// HardSwish, each between its own DQ and Q) become one table, `T[c][x] = T2[c][T1[c][x]]`:
    /// the same values in one pass over memory. A lookup is merged into the next when that is
    /// its only reader and both are per-tensor, or they share the channel count and rank. A
    /// two-source lookup of one tensor is folded into a single-source one first
    /// (``foldTwoSourceLookup``).
    static func composeLookups(_ graph: inout Graph, _ r: inout PassReport) {
        func single(_ n: Node) -> Bool { n.opType == "QLookup" && n.domain == FusedOps.domain && n.inputs.count == 2 }
        var changed = true
        while changed {
            changed = false
            let e = GraphEditor(graph)
            if e.nodes.indices.contains(where: { foldTwoSourceLookup($0, e, &graph, &r) }) {
                graph.removeDeadNodes()
                changed = true
                continue
            }
            for (j, second) in e.nodes.enumerated() where single(second) {
                guard let i = e.producer(second.inputs[0]), single(e.nodes[i]), e.soleConsumer(second.inputs[0]) == j,
                    let t1 = e.constant(e.nodes[i].inputs[1]), let t2 = e.constant(second.inputs[1]),
                    let p1 = e.nodes[i].fused?.int8?.dst, let p2 = second.fused?.int8?.src, p1 == p2
                else { continue }
                let first = e.nodes[i]
                let c1 = t1.count / 256, c2 = t2.count / 256
                let rank1 = first.int("constant_rank"), rank2 = second.int("constant_rank")
                guard c1 == 1 || c2 == 1 || (c1 == c2 && rank1 == rank2) else { continue }
                let channels = max(c1, c2)
                let a = t1.scalars(as: UInt8.self), b = t2.scalars(as: UInt8.self)
                var table = [UInt8](repeating: 0, count: channels * 256)
                for c in 0..<channels {
                    for x in 0..<256 {
                        let mid = Int(a[(c1 == 1 ? 0 : c) << 8 | x])
                        table[c << 8 | x] = b[(c2 == 1 ? 0 : c) << 8 | mid]
                    }
                }
                var merged = second
                merged.inputs = [first.inputs[0], second.inputs[1] + ".composed"]
                graph.initializers[merged.inputs[1]] = Tensor(shape: [channels, 256], scalars: table)
                if channels > 1 { merged.attributes["constant_rank"] = .int(rank1 ?? rank2 ?? 0) }
                var operands = second.fused!.int8!
                operands.src = first.fused!.int8!.src
                merged.fused = FusedNode(int8: operands)
                graph.nodes[j] = merged
                graph.nodes.remove(at: i)
                r.applied.append("\(first.label) and \(second.label): one lookup table")
                changed = true
                break
            }
        }
        graph.removeDeadNodes()
    }

    /// A two-source lookup whose sources are one tensor `x`, or single-source lookups of it
    /// (HardSwish as `Mul(v, HardSigmoid(v))`, each between its own DQ and Q), becomes a
    /// single-source lookup of `x`: `T[c][x] = T2[A[c][x] << 8 | B[c][x]]` with `A`, `B` the
    /// identity or the sources' tables. Returns whether node `j` was rewritten (in `graph`;
    /// `e` indexes the graph before the change).
    static func foldTwoSourceLookup(_ j: Int, _ e: GraphEditor, _ graph: inout Graph, _ r: inout PassReport) -> Bool {
        let node = e.nodes[j]
        guard node.opType == "QLookup", node.domain == FusedOps.domain, node.inputs.count == 3,
            let operands = node.fused?.int8, let p1 = operands.src1, let pair = e.constant(node.inputs[2]), pair.count == 65536
        else { return false }
        /// A source read as itself, or through the single-source lookup that wrote it.
        struct Side {
            var root: String
            var params: QuantParams
            var table: [UInt8]?
            var channels = 1
            var rank: Int?
        }
        func sides(_ value: String, _ p: QuantParams) -> [Side] {
            var result = [Side(root: value, params: p)]
            if let i = e.producer(value), e.nodes[i].opType == "QLookup", e.nodes[i].domain == FusedOps.domain, e.nodes[i].inputs.count == 2,
                let t = e.constant(e.nodes[i].inputs[1]), t.count % 256 == 0, let lp = e.nodes[i].fused?.int8, lp.dst == p
            {
                result.append(
                    Side(
                        root: e.nodes[i].inputs[0], params: lp.src, table: t.scalars(as: UInt8.self), channels: t.count / 256,
                        rank: e.nodes[i].int("constant_rank")))
            }
            return result
        }
        var found: (a: Side, b: Side)?
        for a in sides(node.inputs[0], operands.src) {
            for b in sides(node.inputs[1], p1) where a.root == b.root && a.params == b.params {
                if a.channels > 1 && b.channels > 1 && (a.channels != b.channels || a.rank != b.rank) { continue }
                found = found ?? (a, b)
            }
        }
        guard let (a, b) = found else { return false }
        let t2 = pair.scalars(as: UInt8.self)
        let channels = max(a.channels, b.channels)
        var table = [UInt8](repeating: 0, count: channels * 256)
        for c in 0..<channels {
            for x in 0..<256 {
                let u = a.table.map { Int($0[(a.channels == 1 ? 0 : c) << 8 | x]) } ?? x
                let v = b.table.map { Int($0[(b.channels == 1 ? 0 : c) << 8 | x]) } ?? x
                table[c << 8 | x] = t2[u << 8 | v]
            }
        }
        var folded = node
        folded.inputs = [a.root, node.inputs[2] + ".folded"]
        graph.initializers[folded.inputs[1]] = Tensor(shape: [channels, 256], scalars: table)
        if channels > 1 { folded.attributes["constant_rank"] = .int(a.channels > 1 ? a.rank ?? 0 : b.rank ?? 0) }
        folded.fused = FusedNode(int8: Int8Operands(src: a.params, dst: operands.dst))
        graph.nodes[j] = folded
        r.applied.append("\(node.label): both sources are '\(a.root)' (through lookups): one 256-entry table")
        return true
    }

    // MARK: Q/DQ helpers

    /// The smallest weight scale an INT8 anchor takes (see ``fuseAnchor``).
    static let smallestWeightScale: Float = 1e-30

    /// Per-tensor parameters of a Q or DQ node with constant scale and zero point.
    static func params(_ n: Node, _ e: GraphEditor) -> QuantParams? {
        guard let s = e.constant(n.input(1)), s.count == 1, let scale = s.floatValues().first, scale.isFinite, scale > 0 else { return nil }
        let zp = e.constant(n.input(2))
        if n.input(2) != nil && zp == nil { return nil }
        let type = zp?.elementType ?? .u8
        guard type == .u8 || type == .s8 else { return nil }
        return QuantParams(scale: scale, zeroPoint: zp?.intValues().first ?? 0, type: type)
    }

    /// `value` = DQ(q) of a run-time int8 tensor: (q's name, parameters, DQ node index).
    static func dequantized(_ value: String, _ e: GraphEditor) -> (q: String, p: QuantParams, node: Int)? {
        guard let i = e.producer(value), e.nodes[i].opType == "DequantizeLinear", !e.touched(i),
            let q = e.nodes[i].inputs.first, !q.isEmpty, e.constant(q) == nil, let p = params(e.nodes[i], e)
        else { return nil }
        return (q, p, i)
    }

    /// `value` = DQ(w_q) of a constant: (w_q, per-channel scales, axis).
    static func dequantizedConstant(_ value: String, _ e: GraphEditor) -> (w: Tensor, scales: [Float], axis: Int)? {
        guard let i = e.producer(value), e.nodes[i].opType == "DequantizeLinear",
            let w = e.constant(e.nodes[i].input(0)), w.elementType == .s8,
            let s = e.constant(e.nodes[i].input(1))
        else { return nil }
        if let zp = e.constant(e.nodes[i].input(2)), zp.intValues().contains(where: { $0 != 0 }) { return nil }
        var axis = e.nodes[i].int("axis") ?? 1
        if axis < 0 { axis += w.shape.count }
        return (w, s.floatValues(), s.count == 1 ? -1 : axis)
    }

    /// The real value of a constant, or of DQ(constant) (a quantized bias).
    static func realConstant(_ value: String, _ e: GraphEditor) -> Tensor? {
        if let t = e.constant(value) { return t.elementType == .f32 ? t : nil }
        guard let i = e.producer(value), e.nodes[i].opType == "DequantizeLinear", let q = e.constant(e.nodes[i].input(0)),
            let t = try? QuantizeKernels.evaluate(e.nodes[i], e.nodes[i].inputs.map { e.constant($0) }, 13).first
        else { return nil }
        _ = q
        return t
    }

    /// When every reader of `value` is a Q node with the same parameters (and `value` is not a
    /// graph output): those Q nodes' indices and parameters.
    static func quantizedBy(_ value: String, _ e: GraphEditor) -> (nodes: [Int], p: QuantParams)? {
        guard !e.graphOutputs.contains(value), let readers = e.consumers[value], !readers.isEmpty else { return nil }
        var p: QuantParams? = nil
        for r in readers {
            guard e.nodes[r].opType == "QuantizeLinear", !e.touched(r), let rp = params(e.nodes[r], e) else { return nil }
            if let p, p != rp { return nil }
            p = rp
        }
        return (readers, p!)
    }

    /// Rewires: `replacement` takes the first Q's output; other Qs become Identity of it.
    static func absorbOutputQuantizers(_ qs: [Int], into replacementOutput: inout String, _ e: inout GraphEditor) {
        replacementOutput = e.nodes[qs[0]].outputs[0]
        for (k, q) in qs.enumerated() {
            if k == 0 {
                e.remove(q)
            } else {
                e.replace(q, with: Node(name: e.nodes[q].name, opType: "Identity", inputs: [replacementOutput], outputs: e.nodes[q].outputs))
            }
        }
    }

    // MARK: patterns

    private func fuseAnchor(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport, kind: String) {
        let anchor = e.nodes[i]
        guard anchor.inputs.count >= 2, let x = Self.dequantized(anchor.inputs[0], e) else { return }
        guard let w = Self.dequantizedConstant(anchor.inputs[1], e) else {
            r.skipped.append("\(anchor.label): weights are not a dequantized s8 constant")
            return
        }
        // A scale of exactly 0 is valid (an all-zero weight channel: its output is the bias). A
        // nonzero weight scale this small (onnxruntime writes 1e-34 for a channel of near-zero
        // weights; a denormal such as 1e-40) underflows the INT8 kernel's combined output scale
        // `src_scale * w_scale / dst_scale`: see `tinyChannels` below.
        if let bad = w.scales.first(where: { !$0.isFinite }) {
            r.skipped.append("\(anchor.label): weight scale \(bad) is not finite: stays FP32")
            return
        }
        guard let weights = int8Weights(anchor, w, kind: kind, &r) else { return }
        var bias: Tensor? = nil
        if let b = anchor.input(2) {
            guard let t = Self.realConstant(b, e) else { r.skipped.append("\(anchor.label): bias is not constant"); return }
            bias = t
        }
        // The same unit placement and FP32 fusion see; the residual must be a dequantized int8
        // tensor, summed in place (into its int8 buffer) when nothing reads it afterwards: every
        // reader of its int8 value is a DequantizeLinear whose readers are the sum's Add or
        // Conv/MatMul/Gemm nodes this anchor depends on (they have read it into buffers of their
        // own before the sum overwrites it: a ResNet identity block's input), and it is not
        // this anchor's own input.
        let editor = e
        let matcher = UnitMatcher(
            residual: { other, current in
                guard let dz = Self.dequantized(other, editor) else { return nil }
                guard dz.q != x.q, !editor.graphOutputs.contains(dz.q) else { return false }
                let add = editor.soleConsumer(current)
                var before: Set<Int>? = nil
                for r in editor.consumers[dz.q] ?? [] {
                    let dq = editor.nodes[r]
                    guard dq.opType == "DequantizeLinear", let out = dq.outputs.first, !editor.graphOutputs.contains(out) else { return false }
                    for c in editor.consumers[out] ?? [] where c != add {
                        if before == nil { before = editor.ancestors(of: i) }
                        guard before!.contains(c), OpTraits.of(editor.nodes[c], constants: editor.constant).contains(.unitAnchor) else {
                            return false
                        }
                    }
                }
                return true
            },
            matmulColumns: anchor.opType == "MatMul" && bias == nil ? weights.shape[1] : nil,
            convChannels: anchor.opType == "Conv" && bias == nil ? (weights.shape[0], weights.shape.count) : nil)
        let unit = matcher.match(i, e)
        if let b = unit.bias, let t = e.constant(b) { bias = Tensor(shape: [t.count], scalars: t.floatValues()) }
        var scales = w.scales
        let zq = unit.residual.flatMap { Self.dequantized($0, e) }
        let quantizedOutput = Self.quantizedBy(unit.output, e)
        let tiny = scales.indices.filter { scales[$0] != 0 && scales[$0] < Self.smallestWeightScale }
        if !tiny.isEmpty {
            // Such a channel's largest contribution, `sx * sw * sum |w_q| * 255`, is far below
            // half an output step: the channel computes its bias alone, as with scale 0, and the
            // quantized result is the same. Otherwise the node stays FP32.
            let bound = Self.largestContribution(weights, channels: tiny, scales: scales, kind: kind, sx: x.p.scale)
            guard let yp = quantizedOutput?.p, zq == nil, bound < 1e-3 * Double(yp.scale) else {
                r.skipped.append(
                    "\(anchor.label): weight scale \(scales[tiny[0]]) is below \(Self.smallestWeightScale) and the channel's contribution (up to \(bound)) is not negligible in the output: stays FP32"
                )
                return
            }
            for c in tiny { scales[c] = 0 }
            r.applied.append(
                "\(anchor.label): \(tiny.count) channel(s) with weight scales below \(Self.smallestWeightScale) contribute < 1e-3 output steps: bias only"
            )
        }
        var operands = Int8Operands(src: x.p, weights: WeightScales(scales: scales, axis: w.axis < 0 ? nil : w.axis))
        operands.residual = zq?.p
        var output = unit.output
        if let (qs, yp) = quantizedOutput {
            operands.dst = yp
            Self.absorbOutputQuantizers(qs, into: &output, &e)
        }
        var attrs = anchor.attributes
        attrs.removeValue(forKey: "transB")
        let wName = e.freshName(anchor.inputs[1] + ".q")
        e.addInitializer(wName, weights)
        var inputs = [x.q, wName, "", zq?.q ?? ""]
        if let bias {
            let biasName = e.freshName(anchor.name + ".bias")
            e.addInitializer(biasName, Tensor(shape: [bias.count], scalars: bias.floatValues()))
            inputs[2] = biasName
        }
        if zq == nil { inputs.removeLast() }
        let last = unit.absorbed.last ?? i
        e.replace(
            last,
            with: Node(
                name: anchor.name, fusedOp: kind, inputs: inputs, outputs: [output],
                attributes: attrs, fused: FusedNode(chain: unit.chain, int8: operands)))
        if last != i { e.remove(i) }
        for c in unit.absorbed.dropLast() { e.remove(c) }
        r.applied.append(
            "\(anchor.label) -> \(kind) \(x.p.type) input, \(operands.dst.map { "\($0.type) output" } ?? "f32 output")\(unit.chain.summary)")
    }

    /// The s8 weights an INT8 anchor reads, as `[OC, ...]` for Conv and `[K, N]` for
    /// MatMul/Gemm (a transposed Gemm's `[N, K]` is transposed), when their scales lie on the
    /// output-channel axis; nil (with a reason) otherwise.
    private func int8Weights(
        _ anchor: Node, _ w: (w: Tensor, scales: [Float], axis: Int), kind: String,
        _ r: inout PassReport
    ) -> Tensor? {
        let expectedAxis: Int
        if kind == "QConv" {
            expectedAxis = 0
        } else {
            guard w.w.shape.count == 2 else { return nil }
            if anchor.opType == "Gemm" {
                if let why = OpTraits.int8GemmProblem(anchor) {
                    r.skipped.append("\(anchor.label): \(why): stays FP32"); return nil
                }
            }
            // MatMul [K, N] per column (axis 1); Gemm with transB stores [N, K] per row (axis 0).
            expectedAxis = anchor.opType == "Gemm" && anchor.int("transB") == 1 ? 0 : 1
        }
        guard w.axis == -1 || w.axis == expectedAxis else {
            r.skipped.append("\(anchor.label): weight scales on axis \(w.axis)"); return nil
        }
        guard anchor.opType == "Gemm", anchor.int("transB") == 1 else { return w.w }
        return Self.transposed(w.w)
    }

    /// The largest real contribution of the weights of `channels` to a result:
    /// `sx * sw[c] * sum |w_q[c]| * 255` (255 bounds `|x_q - zx|`). Weights as `int8Weights`
    /// returns them: Conv `[OC, ...]`, MatMul/Gemm `[K, N]`.
    static func largestContribution(_ w: Tensor, channels: [Int], scales: [Float], kind: String, sx: Float) -> Double {
        let v = w.intValues()
        let oc = kind == "QConv" ? w.shape[0] : w.shape[1]
        let per = v.count / max(oc, 1)
        var sums = [Double](repeating: 0, count: oc)
        for (i, q) in v.enumerated() { sums[kind == "QConv" ? i / per : i % oc] += Double(abs(q)) }
        return channels.map { Double(sx) * Double(scales.count == 1 ? scales[0] : scales[$0]) * sums[$0] * 255 }.max() ?? 0
    }

    /// A 2-D tensor transposed (any element type), `[N, K]` -> `[K, N]`.
    static func transposed(_ t: Tensor) -> Tensor {
        let (n, k) = (t.shape[0], t.shape[1])
        let v = t.intValues()
        var out = [Double](repeating: 0, count: n * k)
        for row in 0..<n { for col in 0..<k { out[col * n + row] = Double(v[row * k + col]) } }
        return Tensor(shape: [k, n], values: out, elementType: t.elementType)
    }

    private func fuseBinary(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport) {
        let n = e.nodes[i]
        guard n.inputs.count == 2, let a = Self.dequantized(n.inputs[0], e), let b = Self.dequantized(n.inputs[1], e) else { return }
        // Add/Sub fold zero points into a constant offset (an eltwise linear post-op); a
        // product of two zero-pointed operands has cross terms oneDNN's binary cannot add.
        let linear = n.opType != "Mul"
        guard linear || (a.p.zeroPoint == 0 && b.p.zeroPoint == 0) else {
            // oneDNN's binary has no zero points and the product's cross terms are not linear:
            // a lookup table over both int8 values.
            if !fuseLookup(i, &e, &r) {
                r.skipped.append("\(n.label): Mul of operands with zero points (oneDNN binary has none): stays FP32")
            }
            return
        }
        var operands = Int8Operands(src: a.p, src1: b.p)
        var output = n.outputs[0]
        if let (qs, yp) = Self.quantizedBy(output, e), linear || yp.zeroPoint == 0 {
            operands.dst = yp
            Self.absorbOutputQuantizers(qs, into: &output, &e)
        }
        e.replace(
            i,
            with: Node(
                name: n.name, fusedOp: "Q" + n.opType, inputs: [a.q, b.q], outputs: [output],
                fused: FusedNode(int8: operands)))
        r.applied.append("\(n.label) -> Q\(n.opType)")
    }

    /// A constant operand's value: a constant, or a DequantizeLinear of one (onnxruntime
    /// quantizes the constant operands of element-wise ops too).
    static func operandConstant(_ value: String, _ e: GraphEditor) -> Tensor? {
        if let t = e.constant(value) { return t }
        guard let i = e.producer(value), e.nodes[i].opType == "DequantizeLinear", e.constant(e.nodes[i].input(0)) != nil else { return nil }
        return realConstant(value, e)
    }

    /// Element-wise functions that run as lookup tables between DQs and a Q.
    static let lookupOps: Set<String> = [
        "Relu", "LeakyRelu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "Exp", "Erf", "Neg", "Abs", "Sqrt", "Softplus",
        "Elu", "Selu", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min",
    ]

    /// `Q(f(DQ(x_q), c))` for an element-wise `f` of one int8 tensor and constants (scalars, or
    /// per-channel `[1, C, 1, ...]` as a BatchNorm written as Mul/Add is), and `Q(f(DQ(a_q),
    /// DQ(b_q)))` for a binary `f` of two int8 tensors (onnxruntime's QDQ files wrap each op of
    /// a decomposed BatchNorm and HardSwish so) become `dnnl.QLookup`: a table of
    /// `sat(round(f(real) / sy) + zy)` for every int8 value (per channel: `[C, 256]`; binary:
    /// every pair, `[65536]` indexed `a << 8 | b`), computed in Double by the op's evaluator:
    /// the QDQ graph's values, in one pass over int8 memory instead of dequantize, an FP32 op
    /// and quantize (onnxruntime's QLinear lookup kernels do the same).
    private func fuseLookup(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport) -> Bool {
        let n = e.nodes[i]
        guard n.outputs.count == 1, !n.outputs[0].isEmpty, let evaluate = ConstantEvaluation.evaluators[n.opType] else { return false }
        let runTime = n.inputs.indices.filter { !n.inputs[$0].isEmpty && Self.operandConstant(n.inputs[$0], e) == nil }
        guard (1...2).contains(runTime.count), let (qs, yp) = Self.quantizedBy(n.outputs[0], e) else { return false }
        let xs = runTime.compactMap { Self.dequantized(n.inputs[$0], e) }
        guard xs.count == runTime.count else { return false }
        // Constants: scalars, or one per channel (axis 1) for a unary op.
        var channels = 1
        for k in n.inputs.indices where !runTime.contains(k) && !n.inputs[k].isEmpty {
            guard let c = Self.operandConstant(n.inputs[k], e) else { return false }
            if c.count == 1 { continue }
            guard runTime.count == 1, channels == 1 || channels == c.count, c.shape.count >= 2,
                UnitMatcher.isChannelVector(c.shape, channels: c.count, rank: c.shape.count)
            else { return false }
            channels = c.count
        }
        func quantize(_ v: Double) -> UInt8 {
            let q = v.isNaN ? yp.zeroPoint : Int(min(max((v / Double(yp.scale)).rounded(.toNearestOrEven) + Double(yp.zeroPoint), -1e6), 1e6))
            return UInt8(truncatingIfNeeded: min(max(q, yp.range.lowerBound), yp.range.upperBound))
        }
        func reals(_ p: QuantParams) -> [Double] { p.range.map { Double(p.scale) * Double($0 - p.zeroPoint) } }
        func byte(_ code: Int) -> Int { Int(UInt8(truncatingIfNeeded: code)) }
        var inputs: [Tensor?] = n.inputs.map { Self.operandConstant($0, e) }
        var table: [UInt8]
        if runTime.count == 1 {
            // [C, 256]: the constants keep their shape; the input is [1, 256, 1, ...] against
            // [1, C, 1, ...] constants, so the result is [1, C, 256, ...] flattened channel-major.
            let p = xs[0].p, codes = Array(p.range)
            let rank = n.inputs.compactMap { Self.operandConstant($0, e) }.map(\.shape.count).max() ?? 1
            let shape = channels == 1 ? [256] : [1, 1, 256] + [Int](repeating: 1, count: max(rank - 3, 0))
            inputs[runTime[0]] = Tensor(shape: shape, values: reals(p), elementType: .f32)
            if channels > 1 {
                // Constants [1, C, 1, ...] to rank >= 3 with the values on axis 1.
                for k in inputs.indices where k != runTime[0] {
                    guard let c = inputs[k], c.count > 1 else { continue }
                    inputs[k] = Tensor(shape: [1, channels, 1] + [Int](repeating: 1, count: max(rank - 3, 0)), scalars: c.floatValues())
                }
            }
            guard let y = (try? evaluate(n, inputs, 13))?.first, y.count == 256 * channels else { return false }
            table = [UInt8](repeating: 0, count: 256 * channels)
            for (k, v) in y.doubleValues().enumerated() { table[(k / 256) * 256 + byte(codes[k % 256])] = quantize(v) }
        } else {
            guard n.inputs.indices.allSatisfy({ runTime.contains($0) || n.inputs[$0].isEmpty || Self.operandConstant(n.inputs[$0], e)?.count == 1 })
            else {
                return false
            }
            let (pa, pb) = (xs[0].p, xs[1].p)
            let (ca, cb) = (Array(pa.range), Array(pb.range))
            inputs[runTime[0]] = Tensor(shape: [256, 1], values: reals(pa), elementType: .f32)
            inputs[runTime[1]] = Tensor(shape: [1, 256], values: reals(pb), elementType: .f32)
            guard let y = (try? evaluate(n, inputs, 13))?.first, y.count == 65536 else { return false }
            table = [UInt8](repeating: 0, count: 65536)
            for (k, v) in y.doubleValues().enumerated() { table[byte(ca[k / 256]) << 8 | byte(cb[k % 256])] = quantize(v) }
        }
        var output = n.outputs[0]
        Self.absorbOutputQuantizers(qs, into: &output, &e)
        let tableName = e.freshName(n.name + ".table")
        e.addInitializer(tableName, Tensor(shape: [table.count / 256, 256], scalars: table))
        var operands = Int8Operands(src: xs[0].p, dst: yp)
        operands.src1 = xs.count == 2 ? xs[1].p : nil
        // The constants' rank places their channel axis in the input (right-aligned broadcast).
        let constantRank = n.inputs.compactMap { Self.operandConstant($0, e) }.filter { $0.count > 1 }.map(\.shape.count).max() ?? 0
        e.replace(
            i,
            with: Node(
                name: n.name, fusedOp: "QLookup", inputs: xs.map(\.q) + [tableName], outputs: [output],
                attributes: channels > 1 ? ["constant_rank": .int(constantRank)] : [:], fused: FusedNode(int8: operands)))
        let what = xs.count == 2 ? "65536-entry table" : channels > 1 ? "\(channels) per-channel 256-entry tables" : "256-entry table"
        r.applied.append("\(n.label) -> QLookup \(xs.map { "\($0.p.type)" }.joined(separator: ", ")) -> \(yp.type) (\(what))")
        return true
    }

    private func fusePassThrough(_ i: Int, _ e: inout GraphEditor, _ r: inout PassReport) {
        let n = e.nodes[i]
        var inputs = n.inputs
        var p: QuantParams? = nil
        let dataInputs = n.opType == "Concat" ? Array(n.inputs.indices) : [0]
        for k in dataInputs where !n.inputs[k].isEmpty {
            guard let d = Self.dequantized(n.inputs[k], e) else { return }
            if let p, p != d.p { r.skipped.append("\(n.label): inputs with different scales stay FP32"); return }
            p = d.p
            inputs[k] = d.q
        }
        // Every output (a Split has several) must be quantized with the input's parameters.
        guard let p, !n.outputs.isEmpty, n.outputs.count == 1 || n.opType == "Split" else { return }
        if AveragePoolPrecision.isAveragePool(n), let why = AveragePoolPrecision.int8Hazard(n, zeroPoint: p.zeroPoint) {
            r.skipped.append("\(n.label): \(why): stays FP32")
            return
        }
        var quantizers: [[Int]] = []
        for o in n.outputs {
            guard let (qs, yp) = Self.quantizedBy(o, e), yp == p else { return }
            quantizers.append(qs)
        }
        var outputs = n.outputs
        for k in outputs.indices { Self.absorbOutputQuantizers(quantizers[k], into: &outputs[k], &e) }
        var rewired = n
        rewired.inputs = inputs
        rewired.outputs = outputs
        e.replace(i, with: rewired)
        r.applied.append("\(n.label) runs on \(p.type)")
    }
}

extension Graph {
    /// Removes nodes none of whose outputs is read or is a graph output.
    mutating func removeDeadNodes() {
        var changed = true
        while changed {
            changed = false
            let used = Set(nodes.flatMap(\.inputs)).union(outputs.map(\.name))
            let before = nodes.count
            nodes.removeAll { n in !n.outputs.contains(where: { used.contains($0) }) }
            changed = nodes.count != before
        }
        let used = Set(nodes.flatMap(\.inputs)).union(outputs.map(\.name))
        initializers = initializers.filter { used.contains($0.key) }
    }
}
