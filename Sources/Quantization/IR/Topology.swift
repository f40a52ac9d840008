extension Graph {
    /// Checks that every node input is produced by an earlier node, an initializer or a graph
    /// input, and sorts the nodes topologically (stable: keeps file order where it can).
    /// - Throws: `GraphError.danglingInput` naming the node and value, or `.cycle` naming the
    ///   nodes on it.
    public mutating func sortTopologically() throws(GraphError) {
        var available = Set(initializers.keys).union(inputs.map(\.name))
        available.insert("")
        let producers = producers()
        for n in nodes {
            for v in n.inputs where !available.contains(v) && producers[v] == nil {
                throw GraphError(.danglingInput, "node \(n.label) reads '\(v)', which no node, initializer or graph input provides")
            }
        }
        var pending = Array(nodes.indices)
        var sorted: [Node] = []
        sorted.reserveCapacity(nodes.count)
        while !pending.isEmpty {
            var next: [Int] = []
            var progressed = false
            for i in pending {
                if nodes[i].inputs.allSatisfy({ available.contains($0) }) {
                    sorted.append(nodes[i])
                    available.formUnion(nodes[i].outputs)
                    progressed = true
                } else {
                    next.append(i)
                }
            }
            if !progressed {
                let names = next.prefix(5).map { nodes[$0].label }.joined(separator: ", ")
                throw GraphError(.cycle, "the graph has a cycle through \(names)")
            }
            pending = next
        }
        nodes = sorted
        for o in outputs where !available.contains(o.name) {
            throw GraphError(.danglingInput, "graph output '\(o.name)' is produced by no node, initializer or input")
        }
    }
}
