import Foundation
import TestSupport
import XCTest

@testable import Quantization

/// The seed's operator list, each in a small graph (mostly conv -> op -> conv) quantized by PTQ:
/// what the operator's node runs in FP32 and after PTQ (the oneDNN implementation the plan
/// reports, as `ONEDNN_VERBOSE=1` names it), written as the table in README.md between
/// `<!-- seed-operator-table:begin -->` and `<!-- seed-operator-table:end -->`. The test fails
/// when the table there differs (ISA names aside: `avx512_core_vnni` on one machine is `avx2`
/// on another) or when an operator listed as INT8 no longer runs INT8; `UPDATE_README_TABLE=1`
/// rewrites it.
final class SeedOperatorCoverageTests: XCTestCase {
    typealias K = PassKit

    private struct Case {
        var seed: String
        var onnx: String
        var graph: Graph
        /// Expected INT8 (nil: FP32 for the reason given).
        var fp32Reason: String? = nil
        var test: String
        var smooth = false
        /// The average pool rule's limit; `measured`: INT8 or FP32 as the rule decides.
        var maxLoss: Double? = AveragePoolPrecision.defaultMaxLoss
        var measured = false
    }

    private struct Row {
        var seed, onnx, fp32, int8, primitive, test: String
        var line: String { "| \(seed) | \(onnx) | \(fp32) | \(int8) | \(primitive) | \(test) |" }
    }

    // MARK: graphs

    private static func conv(_ name: String, _ x: String, _ w: String, _ out: String, rank: Int = 2, group: Int = 1) -> Node {
        var attrs: [String: AttributeValue] = ["pads": .ints([Int](repeating: 1, count: 2 * rank))]
        if group != 1 { attrs["group"] = .int(group) }
        return Node(name: name, opType: "Conv", inputs: [x, w], outputs: [out], attributes: attrs)
    }

    /// `x [1,3,8,8] -> c1 Conv 3->8 -> Relu -> a (u8)`, then `op` nodes (reading `a`, and `b`: a
    /// second conv branch 3->8 without activation, s8; `z`: a [1,8,1,1] s8 branch from a 1x1
    /// input), then `c2` Conv reading `o` (`tailChannels` channels) unless `tail` is false.
    private static func sandwich(
        _ op: [Node], tailChannels: Int = 8, tail: Bool = true, initializers: [String: Tensor] = [:],
        extraInputs: [ValueInfo] = []
    ) -> Graph {
        let reads = Set(op.flatMap(\.inputs))
        var nodes = [conv("c1", "x", "W1", "t1"), Node(name: "r1", opType: "Relu", inputs: ["t1"], outputs: ["a"])]
        var inputs = [K.f32("x", [1, 3, 8, 8])]
        if reads.contains("b") { nodes.append(conv("cb", "x", "Wb", "b")) }
        if reads.contains("z") {
            nodes.append(Node(name: "cz", opType: "Conv", inputs: ["xz", "Wz"], outputs: ["z"]))
            inputs.append(K.f32("xz", [1, 3, 1, 1]))
        }
        nodes += op
        if tail { nodes.append(conv("c2", "o", "W2", "y")) }
        var inits: [String: Tensor] = [
            "W1": K.random([8, 3, 3, 3], seed: 1, in: -0.5...0.5), "Wb": K.random([8, 3, 3, 3], seed: 2, in: -0.5...0.5),
            "Wz": K.random([8, 3, 1, 1], seed: 3, in: -0.5...0.5), "W2": K.random([4, tailChannels, 3, 3], seed: 4, in: -0.3...0.3),
        ]
        inits.merge(initializers) { $1 }
        let used = Set(nodes.flatMap(\.inputs))
        return Graph(
            name: "seed", nodes: nodes, inputs: inputs + extraInputs,
            outputs: [ValueInfo(name: tail ? "y" : "o", elementType: .f32, shape: nil)], initializers: inits.filter { used.contains($0.key) })
    }

    private static func recurrent(_ op: String, directions: Int) -> Graph {
        let gates = op == "GRU" ? 3 : 4, h = 6
        return Graph(
            name: "rnn",
            nodes: [
                Node(
                    name: "op", opType: op, inputs: ["x", "W", "R", "B"], outputs: ["o"],
                    attributes: ["hidden_size": .int(h), "direction": .string(directions == 2 ? "bidirectional" : "forward")])
            ], inputs: [K.f32("x", [5, 1, 8])], outputs: [ValueInfo(name: "o", elementType: .f32, shape: nil)],
            initializers: [
                "W": K.random([directions, gates * h, 8], seed: 5), "R": K.random([directions, gates * h, h], seed: 6),
                "B": K.random([directions, 2 * gates * h], seed: 7),
            ])
    }

    private static var cases: [Case] {
        let t = "Int8SeedOperatorTests."
        let avgPool = Node(
            name: "op", opType: "AveragePool", inputs: ["a"], outputs: ["o"],
            attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([1, 1]), "pads": .ints([1, 1, 1, 1])])
        let gap = Node(name: "op", opType: "GlobalAveragePool", inputs: ["a"], outputs: ["o"])
        let priorBox = Node(
            name: "op", opType: "PriorBox", domain: "paddle", inputs: ["a", "x"], outputs: ["o", "var"],
            attributes: [
                "min_sizes": .floats([2]), "max_sizes": .floats([4]), "aspect_ratios": .floats([2]), "variance": .floats([0.1, 0.1, 0.2, 0.2]),
                "flip": .int(1), "clip": .int(1), "steps": .floats([1, 1]), "offset": .float(0.5),
            ])
        let conv3d = Graph(
            name: "conv3d",
            nodes: [
                conv("c1", "x", "W1", "t1", rank: 3), Node(name: "r1", opType: "Relu", inputs: ["t1"], outputs: ["a"]),
                conv("op", "a", "W3", "t3", rank: 3), Node(name: "add", opType: "Add", inputs: ["t3", "a"], outputs: ["s"]),
                Node(name: "r3", opType: "Relu", inputs: ["s"], outputs: ["o"]), conv("c2", "o", "W2", "y", rank: 3),
            ], inputs: [K.f32("x", [1, 3, 4, 6, 6])], outputs: [ValueInfo(name: "y", elementType: .f32, shape: nil)],
            initializers: [
                "W1": K.random([8, 3, 3, 3, 3], seed: 1, in: -0.3...0.3), "W3": K.random([8, 8, 3, 3, 3], seed: 8, in: -0.2...0.2),
                "W2": K.random([4, 8, 3, 3, 3], seed: 4, in: -0.2...0.2),
            ])
        return [
            Case(
                seed: "concat", onnx: "Concat",
                graph: sandwich(
                    [Node(name: "op", opType: "Concat", inputs: ["a", "b"], outputs: ["o"], attributes: ["axis": .int(1)])], tailChannels: 16),
                test: "QuantizerTests.testPlacementConcatInputsShareTheOutputsParameters"),
            Case(
                seed: "conv2d", onnx: "Conv", graph: sandwich([conv("op", "a", "W3", "o")], initializers: ["W3": K.random([8, 8, 3, 3], seed: 8)]),
                test: "Int8OddShapeTests.testQConvOddShapesAndZeroPoints"),
            Case(
                seed: "depthwise_conv2d", onnx: "Conv (group = channels)",
                graph: sandwich([conv("op", "a", "W3", "o", group: 8)], initializers: ["W3": K.random([8, 1, 3, 3], seed: 8)]),
                test: "Int8OddShapeTests.testQConvOddShapesAndZeroPoints"),
            Case(
                seed: "fused_conv2d", onnx: "Conv + BatchNormalization + activation + Add (residual)",
                graph: sandwich(
                    [
                        conv("op", "a", "W3", "t3"), Node(name: "add", opType: "Add", inputs: ["t3", "a"], outputs: ["s"]),
                        Node(name: "r3", opType: "Relu", inputs: ["s"], outputs: ["o"]),
                    ], initializers: ["W3": K.random([8, 8, 3, 3], seed: 8, in: -0.3...0.3)]),
                test: "PaddleExportTests.testResNetBlockINT8RunsEveryConvolutionInINT8"),
            Case(
                seed: "fused_conv3d", onnx: "Conv (3-D kernel) + BatchNormalization + activation + Add", graph: conv3d,
                test: "PaddleExportTests.testConv3DBlockINT8RunsEveryConvolutionInINT8"),
            Case(
                seed: "fused_matmul", onnx: "MatMul of two activations (+ scale, transposes)",
                graph: sandwich([Node(name: "op", opType: "MatMul", inputs: ["a", "b"], outputs: ["o"])]),
                fp32Reason: "two run-time operands (issue 10)", test: "OperatorTests"),
            Case(
                seed: "elementwise_add", onnx: "Add (broadcast; a residual Add is a sum post-op)",
                graph: sandwich([Node(name: "op", opType: "Add", inputs: ["a", "z"], outputs: ["o"])]), test: "QuantizerTests"),
            Case(
                seed: "elementwise_mul", onnx: "Mul (broadcast)",
                graph: sandwich([Node(name: "op", opType: "Mul", inputs: ["a", "z"], outputs: ["o"])]),
                test: "QuantizerTests"),
            Case(
                seed: "elementwise_sub", onnx: "Sub (broadcast, either operand; `Sub(conv, z)` is a sum post-op of scale -1)",
                graph: sandwich([Node(name: "op", opType: "Sub", inputs: ["z", "a"], outputs: ["o"])]), test: t + "testSubRunsAsAnInt8Binary"),
            Case(
                seed: "fc", onnx: "Gemm / MatMul with constant weights",
                graph: sandwich(
                    [
                        Node(name: "fl", opType: "Flatten", inputs: ["a"], outputs: ["f"]),
                        Node(name: "op", opType: "Gemm", inputs: ["f", "Wf", "Bf"], outputs: ["o"], attributes: ["transB": .int(1)]),
                    ], tail: false, initializers: ["Wf": K.random([10, 512], seed: 9, in: -0.1...0.1), "Bf": K.random([10], seed: 10)]),
                test: "GemmTransBTests"),
            Case(
                seed: "matmul", onnx: "MatMul with constant [K, N] weights",
                graph: sandwich(
                    [Node(name: "op", opType: "MatMul", inputs: ["a", "Wm"], outputs: ["o"])], initializers: ["Wm": K.random([8, 6], seed: 11)]),
                test: "Int8OddShapeTests.testQMatMulOddShapesAndZeroPoints"),
            Case(
                seed: "matmul_v2", onnx: "Transpose + MatMul (trans_x / trans_y)",
                graph: sandwich(
                    [
                        Node(name: "tr", opType: "Transpose", inputs: ["a"], outputs: ["ta"], attributes: ["perm": .ints([0, 1, 3, 2])]),
                        Node(name: "op", opType: "MatMul", inputs: ["ta", "Wm"], outputs: ["o"]),
                    ], initializers: ["Wm": K.random([8, 6], seed: 11)]), test: "Int8OddShapeTests.testQMatMulOddShapesAndZeroPoints"),
            Case(
                seed: "nearest_interp", onnx: "Resize (nearest, scales)",
                graph: sandwich(
                    [Node(name: "op", opType: "Resize", inputs: ["a", "", "sc"], outputs: ["o"], attributes: ["mode": .string("nearest")])],
                    initializers: ["sc": K.floats([4], [1, 1, 2, 2])]), test: "QuantizerTests"),
            Case(
                seed: "nearest_interp_v2", onnx: "Resize (nearest, sizes)",
                graph: sandwich(
                    [Node(name: "op", opType: "Resize", inputs: ["a", "", "", "sz"], outputs: ["o"], attributes: ["mode": .string("nearest")])],
                    initializers: ["sz": K.i64([1, 8, 12, 12])]), test: "QuantizerTests"),
            Case(
                seed: "pool2d (max)", onnx: "MaxPool",
                graph: sandwich([
                    Node(
                        name: "op", opType: "MaxPool", inputs: ["a"], outputs: ["o"],
                        attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
                ]), test: "QuantizerTests.testPlacementFindsUnitsSignsAndSharedParameters"),
            Case(
                seed: "pool2d (avg)", onnx: "AveragePool, by the SQNR rule (INT8 where it loses nothing against FP32)",
                graph: sandwich([avgPool]), test: t + "testAveragePoolRunsInt8WhereTheSQNRRuleAllowsIt", smooth: true, measured: true),
            Case(
                seed: "pool2d (avg, INT8 forced)", onnx: "AveragePool (rule limit 100 dB)", graph: sandwich([avgPool]),
                test: t + "testAveragePoolRunsInt8WhereTheSQNRRuleAllowsIt", smooth: true, maxLoss: 100),
            Case(
                seed: "pool2d (global avg)", onnx: "GlobalAveragePool, by the SQNR rule", graph: sandwich([gap]),
                test: t + "testGlobalAveragePoolDecisionIsMeasured", smooth: true, measured: true),
            Case(
                seed: "pool2d (global avg, INT8 forced)", onnx: "GlobalAveragePool (rule limit 100 dB)", graph: sandwich([gap]),
                test: t + "testGlobalAveragePoolDecisionIsMeasured", smooth: true, maxLoss: 100),
            Case(
                seed: "prior_box", onnx: "PriorBox (paddle domain)", graph: sandwich([priorBox], tail: false),
                fp32Reason: "reads only the int8 feature map's shape: boxes are constants of the plan", test: "SSDTests"),
            Case(
                seed: "reshape2", onnx: "Reshape, Flatten, Squeeze, Unsqueeze",
                graph: sandwich(
                    [Node(name: "op", opType: "Reshape", inputs: ["a", "shape"], outputs: ["o"])], initializers: ["shape": K.i64([1, 8, 4, 16])]),
                test: "QuantizerTests.testPlacementFindsUnitsSignsAndSharedParameters"),
            Case(
                seed: "transpose2", onnx: "Transpose",
                graph: sandwich([Node(name: "op", opType: "Transpose", inputs: ["a"], outputs: ["o"], attributes: ["perm": .ints([0, 1, 3, 2])])]),
                test: "QuantizerTests"),
            Case(
                seed: "fusion_gru", onnx: "GRU", graph: recurrent("GRU", directions: 1), fp32Reason: "INT8 GRU is issue 11",
                test: "RealModelTests.testRecogniserV4MatchesOnnxRuntime"),
            Case(
                seed: "multi_gru", onnx: "GRU (bidirectional, stacked)", graph: recurrent("GRU", directions: 2),
                fp32Reason: "INT8 GRU is issue 11", test: "OperatorTests"),
            Case(
                seed: "fusion_lstm", onnx: "LSTM", graph: recurrent("LSTM", directions: 1), fp32Reason: "INT8 LSTM is issue 11",
                test: "RealModelTests.testRecogniserV2WithLSTMMatchesOnnxRuntime"),
            Case(
                seed: "slice", onnx: "Slice, Gather (constant indices)",
                graph: sandwich(
                    [Node(name: "op", opType: "Slice", inputs: ["a", "st", "en", "ax"], outputs: ["o"])], tailChannels: 5,
                    initializers: ["st": K.i64([2]), "en": K.i64([7]), "ax": K.i64([1])]),
                test: t + "testGatherAndSliceOnConstantIndicesPassInt8Through"),
            Case(
                seed: "split", onnx: "Split",
                graph: sandwich(
                    [Node(name: "op", opType: "Split", inputs: ["a", "sizes"], outputs: ["o", "o2"], attributes: ["axis": .int(1)])], tailChannels: 3,
                    initializers: ["sizes": K.i64([3, 5])]), test: t + "testSplitPassesInt8ToEveryOutput"),
        ]
    }

    // MARK: measurement

    /// A smooth feature-map-like input (neighbours correlate, as in images).
    private static func smooth(_ shape: [Int], seed: UInt64) -> Tensor {
        var r = SeededRandom(seed: seed)
        let c = shape[1], plane = shape.dropFirst(2).reduce(1, *), w = shape.last!
        var v: [Float] = []
        for _ in 0..<c {
            let p = r.floats(4, in: 0...3)
            for i in 0..<plane { v.append(sin(0.2 * Float(i / w) + p[0]) * p[1] / 3 + cos(0.15 * Float(i % w) + p[2]) * p[3] / 3) }
        }
        return Tensor(shape: shape, scalars: v)
    }

    private static func isa(_ s: String) -> String {
        s.replacingOccurrences(
            of: #"(avx512_core_amx|avx512_core_bf16|avx512_core_vnni|avx512_core|avx2_vnni|avx2|avx|sse41)"#, with: "<isa>",
            options: .regularExpression)
    }

    private func row(_ c: Case) throws -> Row {
        let shapeOf = { (v: ValueInfo) in v.shape!.map { $0.value! } }
        func sample(_ s: UInt64) -> [String: Tensor] {
            c.graph.inputs.enumerated().reduce(into: [:]) { d, e in
                let seed = s + UInt64(e.offset) * 100
                d[e.element.name] = c.smooth ? Self.smooth(shapeOf(e.element), seed: seed) : K.random(shapeOf(e.element), seed: seed)
            }
        }
        let opsets = c.graph.nodes.contains { $0.domain == "paddle" } ? ["paddle": 1] : [:]
        let model = Model(graph: c.graph, opsetVersion: 13, opsetImports: opsets)
        let feeds = sample(900)
        func steps(_ m: Model) throws -> [NodeExecution] {
            try InferenceSession(model: m).nodeReport(for: feeds).filter { $0.node.hasSuffix("'op'") }
        }
        func describe(_ s: [NodeExecution]) -> String {
            s.isEmpty
                ? "no step of its own (a view, or fused into a neighbour)"
                : s.map { $0.detail.replacingOccurrences(of: "|", with: "/") }.joined(separator: "; ")
        }
        let fp32 = try steps(model)
        let q = try PostTrainingQuantizer(.init(calibration: .minMax, averagePoolMaxSQNRLoss: c.maxLoss)).quantize(
            model, calibrationData: (0..<6).map { sample(800 + UInt64($0)) })
        let int8 = try steps(q.model)
        let entry = q.report.nodes.first { $0.node == "op" || $0.node.hasSuffix("'op'") }
        // A Reshape of an int8 tensor is a view of its buffer: no step, int8 in the report.
        let ranInt8 =
            int8.contains { $0.precision == .int8 || $0.detail.contains("u8") || $0.detail.contains("s8") }
            || (int8.isEmpty && entry?.precision == "int8")
        if c.measured {
            let how = ranInt8 ? "INT8 (the rule: it loses nothing here)" : "FP32 (the rule: INT8 would lose SQNR here)"
            return Row(seed: c.seed, onnx: c.onnx, fp32: describe(fp32), int8: how, primitive: describe(int8), test: c.test)
        }
        if let why = c.fp32Reason {
            XCTAssertFalse(ranInt8 && c.seed != "prior_box", "\(c.seed): listed FP32 (\(why)) but runs INT8: \(describe(int8))")
            return Row(
                seed: c.seed, onnx: c.onnx, fp32: describe(fp32), int8: "FP32: \(why)", primitive: describe(int8), test: c.test)
        }
        XCTAssertTrue(ranInt8, "\(c.seed): does not run INT8: \(describe(int8)); report: \(entry?.reason ?? "none")")
        let how = entry?.reason.map { $0.hasPrefix("average pool") ? "INT8 (SQNR rule)" : "INT8: \($0)" } ?? "INT8"
        return Row(seed: c.seed, onnx: c.onnx, fp32: describe(fp32), int8: how, primitive: describe(int8), test: c.test)
    }

    static let begin = "<!-- seed-operator-table:begin -->", end = "<!-- seed-operator-table:end -->"

    func testREADMETableMatchesWhatRuns() throws {
        var lines = [
            "| seed operator | ONNX ops | FP32 (implementation) | INT8 after PTQ | INT8 model's step (implementation) | test |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for c in Self.cases { lines.append(try row(c).line) }
        let table = lines.joined(separator: "\n")
        let readme = RealModelData.repository.appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        guard let b = text.range(of: Self.begin), let e = text.range(of: Self.end), b.upperBound <= e.lowerBound else {
            return XCTFail("README.md has no \(Self.begin) ... \(Self.end) section; the table:\n\(table)")
        }
        let current = text[b.upperBound..<e.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        if ProcessInfo.processInfo.environment["UPDATE_README_TABLE"] == "1" {
            try (String(text[..<b.upperBound]) + "\n" + table + "\n" + String(text[e.lowerBound...])).write(
                to: readme, atomically: true, encoding: .utf8)
            return
        }
        XCTAssertEqual(Self.isa(current), Self.isa(table), "README.md's seed operator table is stale: run with UPDATE_README_TABLE=1\n\(table)")
    }
}
