import XCTest

@testable import Quantization

/// The topological sort keeps file order when it is already topological, reorders any other
/// order in O(E log N) (a 30,000-node chain stored backwards took minutes with the old
/// quadratic sort), and names the nodes of a cycle.
final class TopologyTests: XCTestCase {
    typealias K = PassKit

    private func chain(_ n: Int) -> [Node] {
        (0..<n).map { Node(name: "n\($0)", opType: "Relu", inputs: ["t\($0)"], outputs: ["t\($0 + 1)"]) }
    }

    func testReversedLongChainIsSorted() throws {
        let n = 30_000
        var g = Graph(name: "chain", nodes: chain(n).reversed(), inputs: [K.f32("t0", [1])], outputs: [K.f32("t\(n)", [1])])
        try g.sortTopologically()
        XCTAssertEqual(g.nodes.map(\.name), (0..<n).map { "n\($0)" })
    }

    func testFileOrderIsKeptWhenValid() throws {
        // Two independent branches interleaved in the file: the order is already topological.
        let nodes = [
            Node(name: "b1", opType: "Relu", inputs: ["x"], outputs: ["b"]),
            Node(name: "a1", opType: "Neg", inputs: ["x"], outputs: ["a"]),
            Node(name: "b2", opType: "Relu", inputs: ["b"], outputs: ["bb"]),
            Node(name: "sum", opType: "Add", inputs: ["a", "bb"], outputs: ["y"]),
            Node(name: "a2", opType: "Neg", inputs: ["a"], outputs: ["aa"]),
        ]
        var g = Graph(name: "g", nodes: nodes, inputs: [K.f32("x", [1])], outputs: [K.f32("y", [1]), K.f32("aa", [1])])
        try g.sortTopologically()
        XCTAssertEqual(g.nodes.map(\.name), ["b1", "a1", "b2", "sum", "a2"])
        // Out of order: each node comes as early as its inputs allow, ties by file position.
        g.nodes = [nodes[3], nodes[4], nodes[2], nodes[1], nodes[0]]
        try g.sortTopologically()
        XCTAssertEqual(g.nodes.map(\.name), ["a1", "a2", "b1", "b2", "sum"])
    }

    func testCycleIsNamed() {
        var g = Graph(
            name: "cycle",
            nodes: [
                Node(name: "p", opType: "Add", inputs: ["x", "r"], outputs: ["q"]),
                Node(name: "s", opType: "Relu", inputs: ["q"], outputs: ["r"]),
            ], inputs: [K.f32("x", [1])], outputs: [K.f32("r", [1])])
        XCTAssertThrowsError(try g.sortTopologically()) { error in
            XCTAssertEqual((error as? GraphError)?.kind, .cycle)
            XCTAssertTrue("\(error)".contains("'p'") && "\(error)".contains("'s'"), "\(error)")
        }
    }
}
