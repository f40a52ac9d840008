import Foundation

extension Graph {
    /// The graph in Graphviz DOT: one box per node (op type and name), edges labelled with the
    /// value names, constants left out. For `dnnl-quant quantize --dump-each-pass`.
    public func dot(title: String) -> String {
        func quote(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        var lines = ["digraph \(quote(title)) {", "  rankdir=TB;", "  node [shape=box, fontsize=10];"]
        let producers = producers()
        for i in inputs { lines.append("  \(quote("in:" + i.name)) [shape=ellipse, label=\(quote(i.name))];") }
        for o in outputs { lines.append("  \(quote("out:" + o.name)) [shape=ellipse, label=\(quote(o.name))];") }
        for (k, n) in nodes.enumerated() {
            let label = n.domain.isEmpty ? "\(n.opType)\\n\(n.name)" : "\(n.domain).\(n.opType)\\n\(n.name)"
            lines.append("  n\(k) [label=\(quote(label))];")
            for v in n.inputs where !v.isEmpty && initializers[v] == nil {
                let from = producers[v].map { "n\($0)" } ?? quote("in:" + v)
                lines.append("  \(from) -> n\(k) [label=\(quote(v)), fontsize=8];")
            }
        }
        for o in outputs {
            if let p = producers[o.name] { lines.append("  n\(p) -> \(quote("out:" + o.name));") }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}
