import XCTest

@testable import Quantization

/// The residual sum of a ResNet identity block is written in place into the block input's
/// buffer when its other readers are convolutions that ran before (no copy of the residual per
/// block), and not when a later node still reads it; results equal the unfused graph.
final class ResidualInPlaceTests: XCTestCase {
    typealias K = PassKit

    /// stem Conv -> x; branch Conv -> Relu -> Conv; Add(branch, x) -> Relu; optionally a later
    /// reader of x (`tail = Neg(x)`, a graph output).
    private func block(laterReader: Bool) -> Graph {
        var nodes = [
            K.conv("stem", "in", "W0", nil, "x"),
            K.conv("c1", "x", "W1", nil, "t1"),
            Node(name: "r1", opType: "Relu", inputs: ["t1"], outputs: ["a1"]),
            K.conv("c2", "a1", "W2", nil, "t2"),
            Node(name: "add", opType: "Add", inputs: ["t2", "x"], outputs: ["s"]),
            Node(name: "r2", opType: "Relu", inputs: ["s"], outputs: ["y"]),
        ]
        var outputs = [K.f32("y", [1, 8, 6, 6])]
        if laterReader {
            nodes.append(Node(name: "tail", opType: "Neg", inputs: ["x"], outputs: ["z"]))
            outputs.append(K.f32("z", [1, 8, 6, 6]))
        }
        return Graph(
            name: "block", nodes: nodes, inputs: [K.f32("in", [1, 3, 6, 6])], outputs: outputs,
            initializers: [
                "W0": K.random([8, 3, 3, 3], seed: 31), "W1": K.random([8, 8, 3, 3], seed: 32, in: -0.2...0.2),
                "W2": K.random([8, 8, 3, 3], seed: 33, in: -0.2...0.2),
            ])
    }

    func testIdentityBlockSumsInPlaceOnlyWhenSafe() throws {
        let feeds = ["in": K.random([1, 3, 6, 6], seed: 34)]
        for later in [false, true] {
            let g = block(laterReader: later)
            let reference = try K.session(g, optimize: false).run(feeds)
            let session = try K.session(g, optimize: true)
            let fused = try XCTUnwrap(
                session.graph.nodes.first { $0.fused?.chain.ops.isEmpty == false && $0.inputs.contains("x") && $0.name != "c1" && $0.name != "r1" })
            XCTAssertEqual(fused.postOps.sumInPlace, !later, "later reader: \(later), node \(fused.label)")
            let got = try session.run(feeds)
            for name in reference.keys {
                let a = try XCTUnwrap(got[name]).floatValues(), b = try XCTUnwrap(reference[name]).floatValues()
                for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-4, "\(name), later reader: \(later)") }
            }
        }
    }

    /// stem Conv -> x0, then three identity blocks `x(b+1) = Relu(Conv(Relu(Conv(x(b)))) + x(b))`.
    private func chain(seed: UInt64) -> Graph {
        var nodes = [K.conv("stem", "in", "W0", nil, "x0")]
        var initializers: [String: Tensor] = ["W0": K.random([8, 3, 3, 3], seed: seed)]
        for b in 0..<3 {
            nodes += [
                K.conv("b\(b)c1", "x\(b)", "W\(b)1", nil, "b\(b)t1"),
                Node(name: "b\(b)r1", opType: "Relu", inputs: ["b\(b)t1"], outputs: ["b\(b)a1"]),
                K.conv("b\(b)c2", "b\(b)a1", "W\(b)2", nil, "b\(b)t2"),
                Node(name: "b\(b)add", opType: "Add", inputs: ["b\(b)t2", "x\(b)"], outputs: ["b\(b)s"]),
                Node(name: "b\(b)r2", opType: "Relu", inputs: ["b\(b)s"], outputs: ["x\(b + 1)"]),
            ]
            initializers["W\(b)1"] = K.random([8, 8, 3, 3], seed: seed + 1 + UInt64(b), in: -0.2...0.2)
            initializers["W\(b)2"] = K.random([8, 8, 3, 3], seed: seed + 11 + UInt64(b), in: -0.2...0.2)
        }
        return Graph(
            name: "chain", nodes: nodes, inputs: [K.f32("in", [1, 3, 6, 6])], outputs: [K.f32("x3", [1, 8, 6, 6])], initializers: initializers)
    }

    /// Three chained identity blocks (each block's input is the previous block's in-place sum,
    /// a view owning its buffer): every sum stays in place and the result equals the unfused
    /// graph, at batch 1 and 3.
    func testChainedIdentityBlocksMatchTheUnfusedGraph() throws {
        var g = chain(seed: 41)
        g.inputs[0].shape![0] = .symbolic("N")
        g.outputs[0].shape![0] = .symbolic("N")
        let session = try K.session(g, optimize: true)
        XCTAssertEqual(session.graph.nodes.filter { $0.postOps.sumInPlace }.count, 3)
        for batch in [1, 3] {
            let feeds = ["in": K.random([batch, 3, 6, 6], seed: 60 + UInt64(batch))]
            let reference = try XCTUnwrap(try K.session(g, optimize: false).run(feeds)["x3"]).floatValues()
            let got = try XCTUnwrap(try session.run(feeds)["x3"]).floatValues()
            XCTAssertEqual(got.count, reference.count)
            for (u, v) in zip(got, reference) { XCTAssertEqual(u, v, accuracy: 1e-4, "batch \(batch)") }
        }
    }

    /// The same chain after PTQ (u8 activations, s8 weights): each INT8 block's sum is written in
    /// place into the block input's u8 buffer (no residual copy step), except where a later node
    /// still reads the block input; results stay within 3 output steps of the QDQ reference
    /// (each block may requantize one step apart).
    func testInt8ChainedIdentityBlocksSumInPlace() throws {
        for later in [false, true] {
            var g = chain(seed: 71)
            if later {
                g.nodes.append(Node(name: "tail", opType: "Conv", inputs: ["x1", "W9"], outputs: ["z"], attributes: ["pads": .ints([1, 1, 1, 1])]))
                g.initializers["W9"] = K.random([8, 8, 3, 3], seed: 99, in: -0.2...0.2)
                g.outputs.append(K.f32("z", [1, 8, 6, 6]))
            }
            let model = Model(graph: g, opsetVersion: 13, source: "chain")
            let samples = (0..<4).map { ["in": K.random([1, 3, 6, 6], seed: 90 + UInt64($0))] }
            let q = try PostTrainingQuantizer().quantize(model, calibrationData: samples).model
            let session = try InferenceSession(model: q)
            let inPlace = session.graph.nodes.filter { $0.postOps.sumInPlace }.map(\.name)
            XCTAssertEqual(inPlace.count, later ? 2 : 3, "later reader of x1: \(later); in place: \(inPlace)")
            let feeds = ["in": K.random([1, 3, 6, 6], seed: 95)]
            let report = try session.nodeReport(for: feeds)
            XCTAssertEqual(
                report.filter { $0.precision == .int8 && $0.node.hasPrefix("QConv") }.count, later ? 8 : 7,
                "\(report.map { "\($0.node) \($0.detail)" })")
            let copies = try session.stepLabels(for: feeds).filter { $0.contains("residual copy") }
            XCTAssertEqual(copies.count, later ? 1 : 0, "\(copies)")
            let reference = try InferenceSession(model: q, options: .init(disabledPasses: ["qdq-fusion"])).run(feeds)
            let got = try session.run(feeds)
            // The quantization step: the largest activation scale (the outputs are f32 results
            // of convolutions whose int8 inputs may be one step apart).
            let step =
                q.graph.nodes.filter { $0.opType == "DequantizeLinear" && q.graph.initializers[$0.inputs[0]] == nil }
                .compactMap { q.graph.initializers[$0.inputs[1]]?.floatValues().max() }.max() ?? 0
            XCTAssertGreaterThan(step, 0)
            for name in reference.keys {
                let a = try XCTUnwrap(got[name]).floatValues(), b = try XCTUnwrap(reference[name]).floatValues()
                let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 3 * step, "\(name), later reader: \(later)")
                XCTAssertGreaterThan(Set(b).count, 20, "\(name): the reference is degenerate")
            }
        }
    }
}
