/// Evaluates nodes whose inputs are all constants (initializers) and replaces them with
/// initializers: exporters compute biases and shapes from constants (`Reshape(bias, shape)`),
/// which later passes must see as constants to fold them into convolutions. Shape-dependent
/// arithmetic (Shape of a run-time input) is folded later, at plan time. QuantizeLinear and
/// DequantizeLinear stay: the QDQ fusion reads quantized weights through them.
struct ConstantFolding: GraphPass {
    let name = "constant-folding"
    let opset: Int

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        let outputs = Set(graph.outputs.map(\.name))
        var kept: [Node] = []
        for n in graph.nodes {
            // Q/DQ of constants (quantized weights and biases) are the QDQ fusion's to read.
            if n.opType == "QuantizeLinear" || n.opType == "DequantizeLinear" { kept.append(n); continue }
            let present = n.inputs.filter { !$0.isEmpty }
            guard !present.isEmpty, present.allSatisfy({ graph.initializers[$0] != nil }),
                !n.outputs.contains(where: outputs.contains),
                let evaluate = ConstantEvaluation.evaluators[n.opType],
                let results = try? evaluate(n, n.inputs.map { $0.isEmpty ? nil : graph.initializers[$0] }, opset),
                results.count >= n.outputs.filter({ !$0.isEmpty }).count,
                results.allSatisfy({ $0.count <= 1 << 24 })
            else {
                kept.append(n)
                continue
            }
            for (name, t) in zip(n.outputs, results) where !name.isEmpty { graph.initializers[name] = t }
            report.applied.append("\(n.label)")
        }
        graph.nodes = kept
        let used = Set(kept.flatMap(\.inputs)).union(outputs)
        graph.initializers = graph.initializers.filter { used.contains($0.key) }
        return report
    }
}
