/// Pattern-matching help for graph passes: who produces and consumes each value, constant
/// look-ups, and a batch of node replacements and removals applied at the end.
struct GraphEditor {
    private(set) var graph: Graph
    let producers: [String: Int]
    let consumers: [String: [Int]]
    let graphOutputs: Set<String>
    private var replaced: [Int: Node] = [:]
    private var removed: Set<Int> = []
    private var insertedBefore: [Int: [Node]] = [:]
    private var insertedAfter: [Int: [Node]] = [:]

    init(_ graph: Graph) {
        self.graph = graph
        producers = graph.producers()
        consumers = graph.consumers()
        graphOutputs = Set(graph.outputs.map(\.name))
    }

    var nodes: [Node] { graph.nodes }

    /// True when a node has been replaced or removed in this batch.
    func touched(_ i: Int) -> Bool { replaced[i] != nil || removed.contains(i) }

    /// The single node reading `value`, when exactly one does and it is not a graph output.
    func soleConsumer(_ value: String) -> Int? {
        guard !graphOutputs.contains(value), let c = consumers[value], c.count == 1, !touched(c[0]) else { return nil }
        return c[0]
    }

    /// The producer of `value`, if a node (not an input or initializer).
    func producer(_ value: String) -> Int? { producers[value] }

    func constant(_ value: String?) -> Tensor? { value.flatMap { graph.initializers[$0] } }

    /// A scalar constant's value.
    func scalar(_ value: String?) -> Float? {
        guard let t = constant(value), t.count == 1 else { return nil }
        return t.floatValues()[0]
    }

    /// For a binary node with one constant operand: (other operand, constant, constant first).
    func constantOperand(_ node: Node) -> (other: String, constant: Tensor, constantFirst: Bool)? {
        guard node.inputs.count == 2 else { return nil }
        if let c = constant(node.inputs[1]), constant(node.inputs[0]) == nil { return (node.inputs[0], c, false) }
        if let c = constant(node.inputs[0]), constant(node.inputs[1]) == nil { return (node.inputs[1], c, true) }
        return nil
    }

    /// The nodes (indices of the graph as given) that node `i` depends on, directly or not.
    func ancestors(of i: Int) -> Set<Int> {
        var seen: Set<Int> = []
        var stack = nodes[i].inputs.compactMap { producers[$0] }
        while let n = stack.popLast() {
            guard seen.insert(n).inserted else { continue }
            stack += nodes[n].inputs.compactMap { producers[$0] }
        }
        return seen
    }

    mutating func replace(_ i: Int, with node: Node) { replaced[i] = node }
    mutating func remove(_ i: Int) { removed.insert(i) }
    /// Adds `node` right before node `i` (which it may feed) when the batch is applied.
    mutating func insert(_ node: Node, before i: Int) { insertedBefore[i, default: []].append(node) }
    /// Adds `node` right after node `i` (which may feed it) when the batch is applied.
    mutating func insert(_ node: Node, after i: Int) { insertedAfter[i, default: []].append(node) }
    mutating func addInitializer(_ name: String, _ t: Tensor) { graph.initializers[name] = t }

    /// A fresh initializer name based on `base`.
    func freshName(_ base: String) -> String {
        var name = base
        var k = 1
        while graph.initializers[name] != nil || producers[name] != nil { name = "\(base)_\(k)"; k += 1 }
        return name
    }

    /// The graph with the batch applied (node order kept).
    func finish() -> Graph {
        var g = graph
        g.nodes = graph.nodes.indices.flatMap { i in
            (insertedBefore[i] ?? []) + (removed.contains(i) ? [] : [replaced[i] ?? graph.nodes[i]]) + (insertedAfter[i] ?? [])
        }
        let used = Set(g.nodes.flatMap(\.inputs)).union(g.outputs.map(\.name))
        g.initializers = g.initializers.filter { used.contains($0.key) }
        return g
    }
}
