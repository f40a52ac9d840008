import Foundation
import TestSupport
import XCTest

@testable import Quantization

/// The canonicalization pass on the forms exporters write (paddle2onnx's Identity wrappers,
/// inference Dropout, no-op Cast/Transpose/Reshape, Clip as ReLU), and the engine pipeline's
/// fusions behind it. Real paddle2onnx exports are checked in PaddleExportTests.
final class CanonicalizationTests: XCTestCase {
    private typealias K = PassKit

    private func bn(_ name: String, _ x: String, _ out: String, prefix p: String) -> Node {
        Node(
            name: name, opType: "BatchNormalization", inputs: [x, p + ".g", p + ".b", p + ".m", p + ".v"], outputs: [out],
            attributes: ["epsilon": .float(1e-5)])
    }

    private func bnParams(_ p: String, _ c: Int, seed: UInt64) -> [String: Tensor] {
        [
            p + ".g": K.random([c], seed: seed, in: 0.5...1.5), p + ".b": K.random([c], seed: seed + 1),
            p + ".m": K.random([c], seed: seed + 2), p + ".v": K.random([c], seed: seed + 3, in: 0.5...2),
        ]
    }

    /// paddle2onnx's ResNet residual: `Conv -> BN -> Add(shortcut) -> Identity -> Relu`.
    private func resnetBlock() -> Graph {
        var inits = bnParams("bn", 4, seed: 10)
        inits["W0"] = K.random([4, 3, 3, 3], seed: 1)
        inits["W1"] = K.random([4, 4, 3, 3], seed: 2)
        return Graph(
            name: "resnet",
            nodes: [
                K.conv("c0", "x", "W0", nil, "a"),
                Node(name: "r0", opType: "Relu", inputs: ["a"], outputs: ["a_r"]),
                Node(name: "id0", opType: "Identity", inputs: ["a_r"], outputs: ["s"]),
                K.conv("c1", "s", "W1", nil, "b"),
                bn("bn1", "b", "b_bn", prefix: "bn"),
                Node(name: "add", opType: "Add", inputs: ["b_bn", "s"], outputs: ["sum"]),
                Node(name: "id1", opType: "Identity", inputs: ["sum"], outputs: ["sum_id"]),
                Node(name: "relu", opType: "Relu", inputs: ["sum_id"], outputs: ["y"]),
            ], inputs: [K.f32("x", [1, 3, 8, 8])], outputs: [K.f32("y", [1, 4, 8, 8])], initializers: inits)
    }

    func testIdentityBetweenResidualAddAndReluNoLongerBlocksTheFusion() throws {
        let g = resnetBlock()
        let session = try K.session(g, optimize: true)
        XCTAssertEqual(K.opTypes(session.graph), ["FusedConv", "FusedConv"], "\(K.opTypes(session.graph))")
        let last = session.graph.nodes[1]
        XCTAssertEqual(last.postOpNames, ["sum", "relu"])
        XCTAssertEqual(last.outputs, ["y"])
        let feeds = ["x": K.random([1, 3, 8, 8], seed: 3)]
        let ref = try K.run(g, feeds)["y"]!.floatValues()
        assertClose(try session.run(feeds)["y"]!.floatValues(), ref.map(Double.init), atol: 1e-5, rtol: 1e-5, "fused vs plain")
    }

    /// MobileNet-V2 as paddle2onnx writes it: `Conv -> BN -> Identity -> Clip(0, 6) -> Identity`.
    func testReLU6WrappedInIdentitiesFusesIntoTheConvolution() throws {
        var inits = bnParams("bn", 4, seed: 20)
        inits["W"] = K.random([4, 3, 3, 3], seed: 4)
        inits["W2"] = K.random([4, 4, 1, 1], seed: 5)
        inits["lo"] = K.scalar(0)
        inits["hi"] = K.scalar(6)
        let g = Graph(
            name: "mbv2",
            nodes: [
                K.conv("c", "x", "W", nil, "a"),
                bn("bn", "a", "a_bn", prefix: "bn"),
                Node(name: "i1", opType: "Identity", inputs: ["a_bn"], outputs: ["a_id"]),
                Node(name: "clip", opType: "Clip", inputs: ["a_id", "lo", "hi"], outputs: ["a6"]),
                Node(name: "i2", opType: "Identity", inputs: ["a6"], outputs: ["a6_id"]),
                K.conv("c2", "a6_id", "W2", nil, "y", pad: 0),
            ], inputs: [K.f32("x", [1, 3, 8, 8])], outputs: [K.f32("y", [1, 4, 8, 8])], initializers: inits)
        let session = try K.session(g, optimize: true)
        XCTAssertEqual(K.opTypes(session.graph), ["FusedConv", "Conv"])
        XCTAssertEqual(session.graph.nodes[0].postOpNames, ["clip"])
        XCTAssertEqual(session.graph.nodes[0].postOpParams, [0, 6])
        let feeds = ["x": K.random([1, 3, 8, 8], seed: 6, in: -3...3)]
        assertClose(
            try session.run(feeds)["y"]!.floatValues(), try K.run(g, feeds)["y"]!.floatValues().map(Double.init),
            atol: 1e-5, rtol: 1e-5, "fused vs plain")
    }

    func testIdentityThatWritesAGraphOutputRenamesItsProducer() throws {
        var g = Graph(
            name: "out",
            nodes: [
                Node(name: "t", opType: "Tanh", inputs: ["x"], outputs: ["a"]),
                Node(name: "id", opType: "Identity", inputs: ["a"], outputs: ["y"]),
                Node(name: "keep", opType: "Identity", inputs: ["x"], outputs: ["z"]),
            ], inputs: [K.f32("x", [2, 3])], outputs: [K.f32("y", [2, 3]), K.f32("z", [2, 3])])
        let before = g
        let report = try Canonicalization().apply(&g)
        XCTAssertEqual(g.nodes.map(\.name), ["t", "keep"], "the Identity of a graph input to a graph output stays")
        XCTAssertEqual(g.nodes[0].outputs, ["y"])
        XCTAssertEqual(report.applied.count, 1)
        XCTAssertEqual(report.skipped.count, 1)
        try assertSameOutputs(before, g, ["x": K.random([2, 3], seed: 7)])
    }

    func testDropoutCastTransposeAndReshapeThatDoNothingAreRemoved() throws {
        var g = Graph(
            name: "noops",
            nodes: [
                Node(name: "d", opType: "Dropout", inputs: ["x", "ratio"], outputs: ["a", ""]),
                Node(name: "cast", opType: "Cast", inputs: ["a"], outputs: ["b"], attributes: ["to": .int(1)]),
                Node(name: "tr", opType: "Transpose", inputs: ["b"], outputs: ["c"], attributes: ["perm": .ints([0, 1])]),
                Node(name: "rs", opType: "Reshape", inputs: ["c", "shape"], outputs: ["d"]),
                Node(name: "t", opType: "Tanh", inputs: ["d"], outputs: ["y"]),
                // Not no-ops: a real transpose, a training-mode Dropout, a Cast to another type.
                Node(name: "tr2", opType: "Transpose", inputs: ["x"], outputs: ["e"], attributes: ["perm": .ints([1, 0])]),
                Node(name: "d2", opType: "Dropout", inputs: ["e", "ratio", "train"], outputs: ["f"]),
                Node(name: "cast2", opType: "Cast", inputs: ["f"], outputs: ["z"], attributes: ["to": .int(6)]),
            ], inputs: [K.f32("x", [2, 3])], outputs: [K.f32("y", [2, 3]), K.value("z", .s32, [3, 2])],
            initializers: ["ratio": K.scalar(0.5), "shape": K.i64([2, 3]), "train": Tensor(shape: [], scalars: [Int32(1)])])
        let report = try Canonicalization().apply(&g)
        XCTAssertEqual(g.nodes.map(\.name), ["t", "tr2", "d2", "cast2"], "\(report.applied)")
        XCTAssertEqual(g.nodes[0].inputs, ["x"])
    }

    /// Paddle's VGG ends its features with AdaptiveAvgPool2D(7) on a 7x7 map: AveragePool with a
    /// 1x1 window. It and a 1x1 MaxPool are removed; windows, strides or pads that do something stay.
    func testPoolingWithAOneByOneWindowIsRemoved() throws {
        func pool(_ name: String, _ op: String, _ x: String, _ y: String, _ attrs: [String: AttributeValue]) -> Node {
            Node(name: name, opType: op, inputs: [x], outputs: [y], attributes: attrs)
        }
        var g = Graph(
            name: "pools",
            nodes: [
                pool("avg1", "AveragePool", "x", "a", ["kernel_shape": .ints([1, 1]), "strides": .ints([1, 1])]),
                pool("max1", "MaxPool", "a", "b", ["kernel_shape": .ints([1, 1]), "pads": .ints([0, 0, 0, 0])]),
                pool("avg2", "AveragePool", "b", "c", ["kernel_shape": .ints([2, 2])]),
                pool("max2", "MaxPool", "c", "d", ["kernel_shape": .ints([1, 1]), "strides": .ints([2, 2])]),
                pool("avg3", "AveragePool", "d", "y", ["kernel_shape": .ints([1, 2])]),
            ], inputs: [K.f32("x", [1, 2, 8, 8])], outputs: [K.f32("y", [1, 2, 4, 3])], initializers: [:])
        let feeds = ["x": K.random([1, 2, 8, 8], seed: 5)]
        let reference = try XCTUnwrap(try K.run(g, feeds)["y"]).floatValues()
        let report = try Canonicalization().apply(&g)
        XCTAssertEqual(g.nodes.map(\.name), ["avg2", "max2", "avg3"], "\(report.applied)")
        XCTAssertEqual(g.nodes[0].inputs, ["x"])
        XCTAssertEqual(try XCTUnwrap(try K.run(g, feeds)["y"]).floatValues(), reference)
    }

    func testClipWithOnlyALowerBoundOfZeroIsRelu() throws {
        var g = Graph(
            name: "clip",
            nodes: [
                Node(name: "c", opType: "Clip", inputs: ["x", "zero"], outputs: ["y"]),
                Node(name: "c2", opType: "Clip", inputs: ["x", "zero", "six"], outputs: ["z"]),
            ], inputs: [K.f32("x", [4])], outputs: [K.f32("y", [4]), K.f32("z", [4])],
            initializers: ["zero": K.scalar(0), "six": K.scalar(6)])
        _ = try Canonicalization().apply(&g)
        XCTAssertEqual(K.opTypes(g), ["Relu", "Clip"])
        XCTAssertEqual(g.nodes[0].inputs, ["x"])
    }

    /// PTQ sees the same units as the engine: with the Identity gone, the residual block's
    /// second conv absorbs the sum and the ReLU, and the INT8 engine runs both convs in u8/s8
    /// with nothing FP32 between them.
    func testQuantizedResidualBlockRunsWithoutFP32NodesBetweenConvolutions() throws {
        let g = resnetBlock()
        let model = Model(graph: g, opsetVersion: 13)
        let samples = (0..<4).map { ["x": K.random([1, 3, 8, 8], seed: 100 + UInt64($0))] }
        let q = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(model, calibrationData: samples)
        XCTAssertFalse(q.model.graph.nodes.contains { $0.opType == "Identity" })
        let units = q.report.nodes.filter { $0.precision == "int8" && $0.reason?.hasPrefix("fused") == true }
        XCTAssertEqual(units.map(\.node), ["c0", "c1"])
        XCTAssertEqual(units.last?.reason, "fused with add, relu")
        let session = try InferenceSession(model: q.model)
        XCTAssertEqual(K.opTypes(session.graph), ["QuantizeLinear", "QConv", "QConv"])
        let report = try session.nodeReport(for: samples[0])
        XCTAssertEqual(report.filter { $0.node.hasPrefix("QConv") }.map(\.precision), [.int8, .int8])
    }
}

extension CanonicalizationTests {
    /// Exporters may leave node names empty or repeated; placement, exclusions and reports
    /// name nodes, so every node gets a unique name, and PTQ of such a graph works.
    func testNodesWithoutOrWithRepeatedNamesGetUniqueNames() throws {
        var inits = ["W0": PassKit.random([4, 3, 3, 3], seed: 1), "W1": PassKit.random([4, 4, 3, 3], seed: 2)]
        inits["W2"] = PassKit.random([4, 4, 3, 3], seed: 3)
        var g = Graph(
            name: "names",
            nodes: [
                PassKit.conv("", "x", "W0", nil, "a"), Node(name: "", opType: "Relu", inputs: ["a"], outputs: ["b"]),
                PassKit.conv("c", "b", "W1", nil, "d"), PassKit.conv("c", "d", "W2", nil, "y"),
            ], inputs: [PassKit.f32("x", [1, 3, 8, 8])], outputs: [PassKit.f32("y", [1, 4, 8, 8])], initializers: inits)
        let before = g
        _ = try Canonicalization().apply(&g)
        XCTAssertEqual(g.nodes.map(\.name), ["Conv_0", "Relu_1", "c", "Conv_3"])
        try assertSameOutputs(before, g, ["x": PassKit.random([1, 3, 8, 8], seed: 4)])
        let samples = (0..<2).map { ["x": PassKit.random([1, 3, 8, 8], seed: 10 + UInt64($0))] }
        let q = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(Model(graph: before, opsetVersion: 13), calibrationData: samples)
        XCTAssertEqual(q.report.nodes.filter { $0.opType == "Conv" }.map(\.node), ["Conv_0", "c", "Conv_3"])
        XCTAssertEqual(try InferenceSession(model: q.model).graph.nodes.filter { $0.opType == "QConv" }.count, 3)
    }
}
