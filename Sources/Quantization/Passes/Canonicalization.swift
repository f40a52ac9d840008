/// Runs first in every pipeline: removes what exporters write that does nothing at inference,
/// so that later passes see one form of each idiom (a new exporter quirk is handled here once):
/// - `Identity` (paddle2onnx wraps many ops in them: ResNet `Add -> Identity -> Relu`,
///   MobileNet-V2 `BN -> Identity -> Clip -> Identity`), and `Dropout` whose mask is unused
///   and that does not run in training mode (ONNX: inference-mode Dropout is the identity);
/// - `Cast` to the element type its input already has, `Transpose` with the identity
///   permutation, `Reshape` to the shape its input is declared with (all dims fixed),
///   `AveragePool`/`MaxPool` with a 1x1 window, stride 1 and no padding;
/// - `Clip(x, 0, +inf)` (a ReLU spelled as Clip) becomes `Relu`;
/// - variadic `Max`/`Min`/`Sum`/`Mean` become chains of binary nodes;
/// - nodes without a name, or with the name of an earlier node, get a unique one
///   (`<opType>_<index>`): placement, exclusions and reports name nodes.
/// A removed node's output is renamed to its input; when that output is a graph output, the
/// input is renamed instead (when it is not an input or output of the graph itself).
struct Canonicalization: GraphPass {
    let name = "canonicalization"
    /// Operators this pass rewrites into others (they have no kernel of their own).
    static let rewrittenOperators: Set<String> = ["Sum", "Mean"]

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        let graphOutputs = Set(graph.outputs.map(\.name))
        let graphInputs = Set(graph.inputs.map(\.name))
        let declared = declaredTypes(graph)
        let consumers = graph.consumers()
        let producers = graph.producers()
        var rename: [String: String] = [:]
        func resolve(_ v: String) -> String {
            var r = v
            while let next = rename[r] { r = next }
            return r
        }
        // The output of a QuantizeLinear of `v` (named `name` before renaming) among the nodes before `index`.
        func quantized(_ v: String, _ name: String, before index: Int) -> String? {
            let readers = Set((consumers[name] ?? []) + (consumers[v] ?? [])).sorted().filter { $0 < index }
            let q = readers.first { graph.nodes[$0].opType == "QuantizeLinear" && graph.nodes[$0].input(0).map(resolve) == v }
            return q.flatMap { graph.nodes[$0].outputs.first }.flatMap { $0.isEmpty ? nil : $0 }
        }
        var kept: [Node] = []
        kept.reserveCapacity(graph.nodes.count)
        var produced: Set<String> = []  // outputs of the kept nodes
        var names = Set<String>()
        let given = Set(graph.nodes.map(\.name))
        for (index, original) in graph.nodes.enumerated() {
            var n = original
            if n.name.isEmpty || names.contains(n.name) {
                var name = "\(n.opType)_\(index)", k = 1
                while names.contains(name) || given.contains(name) { name = "\(n.opType)_\(index)_\(k)"; k += 1 }
                report.applied.append("named \(n.label) '\(name)'")
                n.name = name
            }
            names.insert(n.name)
            n.inputs = n.inputs.map { $0.isEmpty ? $0 : resolve($0) }
            if PriorBoxKernels.isPriorBox(n) {
                // PriorBox reads only shapes: point it at the int8 tensor, not its dequantized copy,
                // nor the FP32 tensor that an earlier QuantizeLinear quantizes (a PTQ model's
                // feature map: read as FP32 it keeps the producing Conv's output FP32 plus a
                // quantize step).
                for (k, v) in n.inputs.enumerated() where !v.isEmpty {
                    if let p = producers[v], graph.nodes[p].opType == "DequantizeLinear", let q = graph.nodes[p].input(0) {
                        n.inputs[k] = q
                        report.applied.append("\(n.label): reads the shape of '\(q)' instead of its dequantized '\(v)'")
                    } else if !graphInputs.contains(v), let q = quantized(v, original.inputs[k], before: index) {
                        n.inputs[k] = q
                        report.applied.append("\(n.label): reads the shape of '\(q)' instead of '\(v)', which it quantizes")
                    }
                }
            }
            if n.opType == "Clip", n.domain.isEmpty, isReluClip(n, graph) {
                n = Node(name: n.name, opType: "Relu", inputs: [n.inputs[0]], outputs: n.outputs)
                report.applied.append("\(n.label): Clip(0, inf) is Relu")
            }
            if ["Max", "Min", "Sum", "Mean"].contains(n.opType), n.domain.isEmpty, n.outputs.count == 1,
                let chain = binaryChain(n, &graph, names: &names)
            {
                report.applied.append("\(n.label): \(n.opType) of \(n.inputs.count) inputs as \(chain.count) binary node(s)")
                if chain.count == 1 && chain[0].opType == "Identity" {
                    n = chain[0]
                } else {
                    kept.append(contentsOf: chain)
                    for c in chain { produced.formUnion(c.outputs) }
                    continue
                }
            }
            guard let why = noOpReason(n, graph, declared, consumers) else {
                kept.append(n)
                produced.formUnion(n.outputs)
                continue
            }
            let x = n.inputs[0], y = n.outputs[0]
            if !graphOutputs.contains(y) {
                rename[y] = x
            } else if !graphOutputs.contains(x), !graphInputs.contains(x), graph.initializers[x] == nil,
                produced.contains(x)
            {
                rename[x] = y
            } else {
                report.skipped.append("\(n.label): \(why), kept (it copies graph input or output '\(x)' to output '\(y)')")
                kept.append(n)
                produced.formUnion(n.outputs)
                continue
            }
            report.applied.append("removed \(n.label): \(why)")
        }
        guard !rename.isEmpty else { graph.nodes = kept; return report }
        for k in kept.indices {
            kept[k].inputs = kept[k].inputs.map { $0.isEmpty ? $0 : resolve($0) }
            kept[k].outputs = kept[k].outputs.map { $0.isEmpty ? $0 : resolve($0) }
        }
        graph.nodes = kept
        return report
    }

    /// Why node `n` does nothing at inference, or nil when it does something.
    private func noOpReason(
        _ n: Node, _ g: Graph, _ declared: [String: ElementType],
        _ consumers: [String: [Int]]
    ) -> String? {
        guard n.domain.isEmpty || n.domain == "ai.onnx", n.outputs.count >= 1, !n.outputs[0].isEmpty,
            let x = n.input(0)
        else { return nil }
        let onlyFirstOutputUsed = n.outputs.dropFirst().allSatisfy { $0.isEmpty || consumers[$0] == nil }
        switch n.opType {
        case "Identity" where n.outputs.count == 1:
            return "Identity"
        case "Dropout" where onlyFirstOutputUsed && !g.outputs.contains(where: { n.outputs.dropFirst().contains($0.name) }):
            if let t = n.input(2) {  // training_mode: absent or a constant false
                guard let c = g.initializers[t], c.count == 1, c.intValues()[0] == 0 else { return nil }
            }
            return "inference-mode Dropout"
        case "Cast" where n.outputs.count == 1:
            guard let to = n.int("to").flatMap(Onnx_TensorProto.DataType.init(rawValue:)).flatMap(ONNXImporter.nativeElementType), declared[x] == to
            else { return nil }
            return "Cast to \(to), which '\(x)' already is"
        case "Transpose" where n.outputs.count == 1:
            guard let perm = n.ints("perm"), perm == Array(perm.indices) else { return nil }
            return "identity Transpose"
        case "AveragePool", "MaxPool":
            // A 1x1 window with stride 1 and no padding returns its input (Paddle's VGG:
            // AdaptiveAvgPool2D(7) on a 7x7 map). MaxPool's Indices output must be unused.
            guard onlyFirstOutputUsed, !g.outputs.contains(where: { n.outputs.dropFirst().contains($0.name) }),
                let kernel = n.ints("kernel_shape"), !kernel.isEmpty, kernel.allSatisfy({ $0 == 1 }),
                (n.ints("strides") ?? []).allSatisfy({ $0 == 1 }), (n.ints("pads") ?? []).allSatisfy({ $0 == 0 }),
                (n.ints("dilations") ?? []).allSatisfy({ $0 == 1 }), ["NOTSET", "VALID"].contains(n.string("auto_pad") ?? "NOTSET")
            else { return nil }
            return "\(n.opType) with a 1x1 window, stride 1 and no padding"
        case "Reshape" where n.outputs.count == 1:
            guard let target = n.input(1).flatMap({ g.initializers[$0] })?.intValues(), !target.contains(where: { $0 <= 0 }),
                let shape = declaredShape(x, g), shape == target
            else { return nil }
            return "Reshape to the shape \(target) '\(x)' already has"
        default:
            return nil
        }
    }

    /// Variadic `Max`/`Min`/`Sum`/`Mean` (ONNX: 1 to 2^31 inputs, broadcasting) as a chain of
    /// binary `Max`/`Min`/`Add` (one input: `Identity`), `Mean` divided by the input count at
    /// the end; nil for a binary `Max`/`Min`, which the kernels run as is.
    private func binaryChain(_ n: Node, _ g: inout Graph, names: inout Set<String>) -> [Node]? {
        let xs = n.inputs.filter { !$0.isEmpty }
        guard !xs.isEmpty, !(xs.count == 2 && (n.opType == "Max" || n.opType == "Min")) else { return nil }
        if xs.count == 1 { return [Node(name: n.name, opType: "Identity", inputs: xs, outputs: n.outputs)] }
        let op = n.opType == "Max" || n.opType == "Min" ? n.opType : "Add"
        func fresh(_ base: String) -> String {
            var name = base, k = 1
            while names.contains(name) || g.initializers[name] != nil { name = "\(base)_\(k)"; k += 1 }
            names.insert(name)
            return name
        }
        var chain: [Node] = []
        var acc = xs[0]
        for (i, x) in xs.dropFirst().enumerated() {
            let last = i == xs.count - 2 && n.opType != "Mean"
            let out = last ? n.outputs[0] : fresh("\(n.name)/\(op)_\(i)")
            chain.append(Node(name: chain.isEmpty ? n.name : fresh("\(n.name)/\(op)_\(i)"), opType: op, inputs: [acc, x], outputs: [out]))
            acc = out
        }
        if n.opType == "Mean" {
            let count = fresh("\(n.name)/count")
            g.initializers[count] = Tensor(shape: [], scalars: [Float(xs.count)])
            chain.append(Node(name: fresh("\(n.name)/Div"), opType: "Div", inputs: [acc, count], outputs: n.outputs))
        }
        return chain
    }

    /// `Clip(x, 0)` with no upper bound (attributes before opset 11, inputs after).
    private func isReluClip(_ n: Node, _ g: Graph) -> Bool {
        guard n.outputs.count == 1, n.input(0) != nil else { return false }
        let lo: Float? =
            n.input(1).map { name in g.initializers[name].flatMap { $0.count == 1 ? $0.floatValues()[0] : nil } ?? .nan }
            ?? n.float("min")
        let hiGiven = n.input(2) != nil || n.attributes["max"] != nil
        return lo == 0 && !hiGiven
    }

    /// Element types declared for graph inputs and intermediate values.
    private func declaredTypes(_ g: Graph) -> [String: ElementType] {
        var d: [String: ElementType] = [:]
        for v in g.valueInfo.values { if let t = v.elementType { d[v.name] = t } }
        for v in g.inputs { if let t = v.elementType { d[v.name] = t } }
        for (name, t) in g.initializers { d[name] = t.elementType }
        return d
    }

    /// A value's declared shape when every dim is fixed.
    private func declaredShape(_ v: String, _ g: Graph) -> [Int]? {
        let info = g.inputs.first { $0.name == v } ?? g.valueInfo[v]
        guard let dims = info?.shape else { return nil }
        let fixed = dims.compactMap(\.value)
        return fixed.count == dims.count ? fixed : nil
    }
}
