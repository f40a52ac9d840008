/// Runs last in the engine pipeline: removes nodes none of whose outputs is read by a later
/// node or is a graph output (ONNX inference nodes have no side effects), e.g. a
/// `DequantizeLinear` left behind when its only reader needs just the shape (`paddle.PriorBox`,
/// which canonicalization points at the int8 tensor instead). One backward sweep: O(nodes + edges).
struct DeadNodeElimination: GraphPass {
    let name = "dead-node-elimination"

    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport {
        var report = PassReport(pass: name)
        var live = Set(graph.outputs.map(\.name))
        var keep = [Bool](repeating: false, count: graph.nodes.count)
        for i in graph.nodes.indices.reversed() {
            let n = graph.nodes[i]
            guard n.outputs.contains(where: { !$0.isEmpty && live.contains($0) }) else {
                report.applied.append("removed \(n.label): no node or graph output reads its outputs")
                continue
            }
            keep[i] = true
            for v in n.inputs where !v.isEmpty { live.insert(v) }
        }
        if report.applied.isEmpty { return report }
        graph.nodes = graph.nodes.indices.filter { keep[$0] }.map { graph.nodes[$0] }
        return report
    }
}
