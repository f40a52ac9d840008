/// What a graph pass did, and why it did not do more.
public struct PassReport: Sendable, CustomStringConvertible {
    public var pass: String
    /// One line per rewrite: `"folded BatchNormalization 'bn1' into Conv 'c1'"`.
    public var applied: [String] = []
    /// One line per candidate left alone, with the reason.
    public var skipped: [String] = []

    public init(pass: String) { self.pass = pass }

    public var description: String {
        "\(pass): \(applied.count) applied, \(skipped.count) skipped"
    }
}

/// A rewrite of the graph.
public protocol GraphPass: Sendable {
    var name: String { get }
    func apply(_ graph: inout Graph) throws(GraphError) -> PassReport
}
