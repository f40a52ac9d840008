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
        // Kahn's algorithm, taking the ready node of lowest file index first (a binary heap):
        // O(E log N), and the file order when it is already topological.
        var waitingOn = [Int](repeating: 0, count: nodes.count)
        var dependents = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            var seen = Set<Int>()
            for v in n.inputs where !available.contains(v) {
                guard let p = producers[v], seen.insert(p).inserted else { continue }
                waitingOn[i] += 1
                dependents[p].append(i)
            }
        }
        var heap = MinHeap(nodes.indices.filter { waitingOn[$0] == 0 })
        var sorted: [Node] = []
        sorted.reserveCapacity(nodes.count)
        while let i = heap.pop() {
            sorted.append(nodes[i])
            available.formUnion(nodes[i].outputs)
            for d in dependents[i] {
                waitingOn[d] -= 1
                if waitingOn[d] == 0 { heap.push(d) }
            }
        }
        if sorted.count < nodes.count {
            let names = nodes.indices.filter { waitingOn[$0] > 0 }.prefix(5).map { nodes[$0].label }.joined(separator: ", ")
            throw GraphError(.cycle, "the graph has a cycle through \(names)")
        }
        nodes = sorted
        for o in outputs where !available.contains(o.name) {
            throw GraphError(.danglingInput, "graph output '\(o.name)' is produced by no node, initializer or input")
        }
    }
}

/// A binary min-heap of node indices (the ready set of the topological sort).
private struct MinHeap {
    private var items: [Int]

    init(_ items: [Int]) {
        self.items = []
        for i in items { push(i) }
    }

    mutating func push(_ x: Int) {
        items.append(x)
        var c = items.count - 1
        while c > 0, items[(c - 1) / 2] > items[c] {
            items.swapAt(c, (c - 1) / 2)
            c = (c - 1) / 2
        }
    }

    mutating func pop() -> Int? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return top }
        items[0] = last
        var p = 0
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < items.count, items[l] < items[m] { m = l }
            if r < items.count, items[r] < items[m] { m = r }
            if m == p { return top }
            items.swapAt(p, m)
            p = m
        }
    }
}
