/// Rewrites a graph of opset 11 or 12 into opset 13 form, the first opset with per-axis
/// QuantizeLinear/DequantizeLinear (ONNX Changelog): Squeeze, Unsqueeze and Split take their
/// `axes`/`split` as inputs, ReduceSum its `axes`, and Softmax/LogSoftmax/Hardmax normalize
/// along one axis instead of over the input coerced to 2-D (the same when `axis` is the last
/// axis; otherwise Flatten + op + Reshape keep the old meaning).
struct OpsetUpgrade: GraphPass {
    let name = "opset-upgrade-13"
    /// The model's current default-domain opset.
    let from: Int
    /// Value shapes for one set of input shapes (only ranks are used).
    let shapes: [String: [Int]]

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        guard from < 13 else { return report }
        var nodes: [Node] = []
        var counter = 0
        func constant(_ base: String, _ values: [Int]) -> String {
            counter += 1
            var name = "\(base).opset13.\(counter)"
            while graph.initializers[name] != nil { counter += 1; name = "\(base).opset13.\(counter)" }
            graph.initializers[name] = Tensor(shape: [values.count], scalars: values.map(Int64.init))
            return name
        }
        for var n in graph.nodes {
            switch n.opType {
            case "Squeeze", "Unsqueeze", "ReduceSum":
                if let axes = n.ints("axes") {
                    n.attributes["axes"] = nil
                    n.inputs = [n.inputs[0], constant(n.name + ".axes", axes)]
                    report.applied.append("\(n.label): axes attribute -> input")
                }
            case "Split":
                if let split = n.ints("split") {
                    n.attributes["split"] = nil
                    n.inputs = [n.inputs[0], constant(n.name + ".split", split)]
                    report.applied.append("\(n.label): split attribute -> input")
                }
            case "Softmax", "LogSoftmax", "Hardmax":
                let axis = n.int("axis") ?? 1
                guard let rank = shapes[n.inputs[0]]?.count else {
                    throw GraphError(.unsupportedAttribute, "node \(n.label): cannot upgrade to opset 13 without the input's rank")
                }
                let a = axis < 0 ? axis + rank : axis
                if a == rank - 1 {
                    n.attributes["axis"] = .int(-1)
                } else {
                    // Old semantics: flatten at `axis`, normalize rows, restore the shape.
                    let flat = n.outputs[0] + ".flat2d", out2d = n.outputs[0] + ".2d", shape = n.outputs[0] + ".shape"
                    nodes.append(
                        Node(name: n.name + ".flatten", opType: "Flatten", inputs: [n.inputs[0]], outputs: [flat], attributes: ["axis": .int(a)]))
                    nodes.append(Node(name: n.name + ".shape", opType: "Shape", inputs: [n.inputs[0]], outputs: [shape]))
                    nodes.append(Node(name: n.name, opType: n.opType, inputs: [flat], outputs: [out2d], attributes: ["axis": .int(1)]))
                    n = Node(name: n.name + ".reshape", opType: "Reshape", inputs: [out2d, shape], outputs: n.outputs)
                }
                report.applied.append("\(n.label): opset 13 axis semantics")
            default: break
            }
            nodes.append(n)
        }
        graph.nodes = nodes
        return report
    }
}
