import Foundation
import XCTest

@testable import Quantization

/// Models the structured fuzzer (Tests/fuzz) found to crash the process or to give results
/// that differ from onnxruntime: each must now be a clean `GraphError` naming the node (or run
/// and give the spec's result). Without the fixes these trapped on integer overflow
/// (Reshape, Conv, ConvTranspose, AveragePool, the scale/shift folding), indexed `inputs[0]`
/// of nodes without inputs in the graph passes, ran a default for invalid attribute values, or
/// folded a denormal weight scale into a saturating INT8 kernel.
final class MalformedModelTests: XCTestCase {
    private func f32(_ name: String, _ shape: [Int]) -> ValueInfo {
        ValueInfo(name: name, elementType: .f32, shape: shape.map { .fixed($0) })
    }

    private func values(_ shape: [Int], scale: Float = 0.25) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { Float($0 % 11) * scale - 1 })
    }

    /// A one-output graph `nodes` reading `x` of `shape`, with `initializers`.
    private func model(
        _ nodes: [Node], x shape: [Int], initializers: [String: Tensor] = [:], output: String = "y", opset: Int = 17
    ) -> Model {
        Model(
            graph: Graph(
                name: "g", nodes: nodes, inputs: [f32("x", shape)], outputs: [ValueInfo(name: output, elementType: .f32, shape: nil)],
                initializers: initializers),
            opsetVersion: opset)
    }

    /// Creates a session on `m` and runs it on `x`: the error must be a GraphError of `kind`
    /// whose message contains every part.
    private func assertRefused(
        _ m: Model, x: Tensor, _ kind: GraphError.Kind? = nil, mentions parts: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let s = try InferenceSession(model: m)
            let out = try s.run(["x": x])
            XCTFail("expected an error mentioning \(parts), got outputs \(out.mapValues(\.shape))", file: file, line: line)
        } catch let error as GraphError {
            if let kind { XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line) }
            for p in parts where !error.message.contains(p) { XCTFail("'\(error)' does not mention '\(p)'", file: file, line: line) }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    // MARK: integer overflow guards

    func testReshapeTargetsNearInt64LimitsAreErrors() throws {
        let node = Node(name: "r", opType: "Reshape", inputs: ["x", "s"], outputs: ["y"])
        for target in [[1, Int.max, 4], [-1, Int.max / 2, 4], [Int.min, 2], [Int.max, Int.max], [-1, -1], [2, -2, -4]] {
            XCTAssertThrowsError(try ConstantEvaluation.reshapeShape(node, input: [1, 2, 4, 4], target: target), "\(target)") { e in
                XCTAssert("\(e)".contains("cannot reshape"), "\(e)")
            }
        }
        // Valid targets still resolve (0 copies, -1 inferred).
        XCTAssertEqual(try ConstantEvaluation.reshapeShape(node, input: [1, 2, 4, 4], target: [0, -1, 4]), [1, 8, 4])
        XCTAssertEqual(try ConstantEvaluation.reshapeShape(node, input: [0, 4], target: [-1, 2]), [0, 2])
        // An input shape whose product overflows is refused, not multiplied.
        XCTAssertThrowsError(try ConstantEvaluation.reshapeShape(node, input: [1 << 40, 1 << 40], target: [-1]))
        // Through a session (the fixture crash-reshape-shape-int64-overflow).
        let m = model(
            [node], x: [1, 2, 4, 4], initializers: ["s": Tensor(shape: [3], scalars: [Int64(1), Int64.max, Int64(4)])])
        assertRefused(m, x: values([1, 2, 4, 4]), .shapeMismatch, mentions: ["node Reshape 'r'", "cannot reshape"])
    }

    func testFlattenOfOverflowingShapeIsAnError() {
        let node = Node(name: "f", opType: "Flatten", inputs: ["x"], outputs: ["y"], attributes: ["axis": .int(1)])
        XCTAssertThrowsError(try ConstantEvaluation.flattenShape(node, [1 << 40, 1 << 30, 1 << 30, 1 << 10]))
        XCTAssertEqual(try ConstantEvaluation.flattenShape(node, [2, 3, 4]), [2, 12])
    }

    private func convModel(_ op: String, attributes: [String: AttributeValue], weights: [Int], extra: [Node] = [], extraInit: [String: Tensor] = [:])
        -> Model
    {
        let out = extra.isEmpty ? "y" : "c"
        return model(
            [Node(name: "conv", opType: op, inputs: ["x", "w"], outputs: [out], attributes: attributes)] + extra, x: [1, 4, 5, 5],
            initializers: ["w": values(weights)].merging(extraInit) { a, _ in a })
    }

    func testConvGroupNearInt64MaxIsAnError() {
        for g in [Int.max, 1 << 62, 5, -1] {
            assertRefused(
                convModel("Conv", attributes: ["group": .int(g)], weights: [4, 2, 3, 3]), x: values([1, 4, 5, 5]),
                mentions: ["node Conv 'conv'", "group"])
        }
    }

    func testConvTransposeGroupAndOutputShapeExtremesAreErrors() {
        for g in [Int.max, 1 << 62] {
            assertRefused(
                convModel("ConvTranspose", attributes: ["group": .int(g)], weights: [4, 2, 3, 3]), x: values([1, 4, 5, 5]),
                mentions: ["node ConvTranspose 'conv'", "group"])
        }
        // output_shape = Int64.min: abs() overflowed in the bounds check.
        assertRefused(
            convModel("ConvTranspose", attributes: ["output_shape": .ints([Int.min, Int.min])], weights: [4, 2, 3, 3]),
            x: values([1, 4, 5, 5]), .unsupportedAttribute, mentions: ["node ConvTranspose 'conv'", "output sizes"])
        // A huge group with a per-channel Mul after it: the scale/shift folding multiplied
        // `OC/G * G` before any check (fixture crash-convtranspose-group-huge-scaleshift-folding).
        let mul = Node(name: "mul", opType: "Mul", inputs: ["c", "m"], outputs: ["y"])
        assertRefused(
            convModel(
                "ConvTranspose", attributes: ["group": .int(1 << 62)], weights: [4, 2, 3, 3], extra: [mul],
                extraInit: ["m": values([1, 2, 1, 1])]),
            x: values([1, 4, 5, 5]), mentions: ["ConvTranspose 'conv'", "group"])
    }

    func testPoolingAttributesAreBounded() {
        for (name, value) in [("dilations", [1 << 62, 1000]), ("strides", [Int.max, 1]), ("pads", [0, 0, 1 << 40, 0])] {
            for op in ["AveragePool", "MaxPool"] {
                let node = Node(
                    name: "pool", opType: op, inputs: ["x"], outputs: ["y"],
                    attributes: ["kernel_shape": .ints([2, 2]), name: .ints(value)])
                assertRefused(model([node], x: [1, 2, 6, 6]), x: values([1, 2, 6, 6]), mentions: ["node \(op) 'pool'"])
            }
        }
    }

    // MARK: nodes without inputs or outputs

    func testNodesWithoutInputsAreRefusedAtImport() throws {
        let cases: [(Node, String)] = [
            (Node(name: "conv3", opType: "Conv", inputs: [], outputs: ["y"]), "Conv 'conv3'"),
            (Node(name: "t", opType: "Transpose", inputs: [], outputs: ["y"]), "Transpose 't'"),
            (Node(name: "sig", opType: "Sigmoid", inputs: [], outputs: ["y"]), "Sigmoid 'sig'"),
            (Node(name: "add", opType: "Add", inputs: ["x"], outputs: ["y"]), "Add 'add'"),
            (Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: []), "Relu 'relu'"),
        ]
        for (node, label) in cases {
            let relu = Node(name: "r0", opType: "Relu", inputs: ["x"], outputs: ["y0"])
            let m = Model(
                graph: Graph(name: "g", nodes: [relu, node], inputs: [f32("x", [1, 4])], outputs: [f32("y", [1, 4])]), opsetVersion: 17)
            let data = try m.serializedData()
            XCTAssertThrowsError(try Model(serializedData: data, source: "m.onnx"), label) { e in
                XCTAssert("\(e)".contains(label), "\(e)")
            }
            // A Graph built in memory reaches the session: refused there, before any pass.
            XCTAssertThrowsError(try InferenceSession(model: m), label) { e in XCTAssert("\(e)".contains(label), "\(e)") }
        }
    }

    func testGraphPassesSkipNodesWithoutInputs() throws {
        // x -> Q -> DQ -> Conv() (no inputs) / Transpose() / Sigmoid() * x: the passes used to
        // index inputs[0] before any check.
        let g = Graph(
            name: "g",
            nodes: [
                Node(name: "q", opType: "QuantizeLinear", inputs: ["x", "s", "z"], outputs: ["xq"]),
                Node(name: "dq", opType: "DequantizeLinear", inputs: ["xq", "s", "z"], outputs: ["xd"]),
                Node(name: "conv", opType: "Conv", inputs: [], outputs: ["c"]),
                Node(name: "t", opType: "Transpose", inputs: [], outputs: ["t"]),
                Node(name: "sig", opType: "Sigmoid", inputs: [], outputs: ["sg"]),
                Node(name: "mul", opType: "Mul", inputs: ["xd", "sg"], outputs: ["y"]),
            ],
            inputs: [f32("x", [1, 4])], outputs: [f32("y", [1, 4])],
            initializers: ["s": Tensor(shape: [], scalars: [Float(0.1)]), "z": Tensor(shape: [], scalars: [UInt8(0)])])
        var a = g, b = g
        _ = try QDQFusion().apply(&a)
        _ = try ActivationPatternFusion().apply(&b)
    }

    // MARK: attribute values and load-time checks

    func testInvalidBooleanAndEnumAttributesAreRefused() {
        let pool = Node(
            name: "ap", opType: "AveragePool", inputs: ["x"], outputs: ["y"],
            attributes: ["kernel_shape": .ints([2, 2]), "count_include_pad": .int(Int.min)])
        assertRefused(
            model([pool], x: [1, 1, 4, 4]), x: values([1, 1, 4, 4]), mentions: ["AveragePool 'ap'", "count_include_pad", "\(Int.min)", "0 or 1"])
        let cases: [(String, [String: AttributeValue], String)] = [
            ("MaxPool", ["kernel_shape": .ints([2, 2]), "ceil_mode": .int(2)], "ceil_mode"),
            ("AveragePool", ["kernel_shape": .ints([2, 2]), "auto_pad": .string("SAME")], "auto_pad"),
            ("Resize", ["mode": .string("bilinear")], "mode"),
            ("Resize", ["coordinate_transformation_mode": .string("half")], "coordinate_transformation_mode"),
            ("Resize", ["nearest_mode": .string("round")], "nearest_mode"),
            ("ReduceMean", ["keepdims": .int(-1)], "keepdims"),
            ("Pad", ["mode": .string("mirror")], "mode"),
            ("DepthToSpace", ["mode": .string("DRC"), "blocksize": .int(1)], "mode"),
            ("GRU", ["linear_before_reset": .int(2), "hidden_size": .int(1)], "linear_before_reset"),
            ("LSTM", ["direction": .string("sideways"), "hidden_size": .int(1)], "direction"),
            ("LSTM", ["activations": .strings(["Sigmoid", "tanh", "Tanh"]), "hidden_size": .int(1)], "activations"),
            ("AveragePool", ["kernel_shape": .ints([2, 2]), "count_include_pad": .float(1)], "count_include_pad"),
            ("BatchNormalization", ["epsilon": .float(-1)], "epsilon"),
            ("LayerNormalization", ["epsilon": .float(.nan)], "epsilon"),
        ]
        for (op, attributes, name) in cases {
            let inputs = ["GRU", "LSTM"].contains(op) ? ["x", "w", "r"] : op == "BatchNormalization" ? ["x", "s", "b", "m", "v"] : ["x", "s"]
            let node = Node(name: "n", opType: op, inputs: inputs, outputs: ["y"], attributes: attributes)
            let m = model([node], x: [1, 1, 4, 4])
            XCTAssertThrowsError(try InferenceSession(model: m), "\(op).\(name)") { e in
                XCTAssert("\(e)".contains("node \(op) 'n'") && "\(e)".contains("attribute '\(name)'"), "\(e)")
            }
        }
        // Valid values are accepted.
        let ok = Node(
            name: "ap", opType: "AveragePool", inputs: ["x"], outputs: ["y"],
            attributes: ["kernel_shape": .ints([2, 2]), "count_include_pad": .int(1), "auto_pad": .string("VALID")])
        XCTAssertNoThrow(try InferenceSession(model: model([ok], x: [1, 1, 4, 4])))
    }

    func testLoadRefusesGraphWithoutOutputsNewOpsetsAndDuplicateAttributes() throws {
        let relu = Node(name: "r", opType: "Relu", inputs: ["x"], outputs: ["y"])
        func load(_ m: Model, edit: (inout Onnx_ModelProto) -> Void = { _ in }) throws -> Model {
            var proto = ONNXExporter.modelProto(m)
            edit(&proto)
            return try Model(serializedData: try proto.serializedData(), source: "m.onnx")
        }
        let good = Model(graph: Graph(name: "g", nodes: [relu], inputs: [f32("x", [2])], outputs: [f32("y", [2])]), opsetVersion: 17)
        XCTAssertNoThrow(try load(good))
        XCTAssertThrowsError(try load(good) { $0.graph.output = [] }) { XCTAssert("\($0)".contains("no outputs"), "\($0)") }
        XCTAssertThrowsError(try load(Model(graph: good.graph, opsetVersion: 99))) {
            XCTAssert("\($0)".contains("the model's opset 99 is newer than this library supports (<= \(ONNXImporter.newestOpset))"), "\($0)")
        }
        XCTAssertNoThrow(try load(Model(graph: good.graph, opsetVersion: ONNXImporter.newestOpset)))
        XCTAssertThrowsError(
            try load(good) { p in
                var a = Onnx_AttributeProto()
                a.name = "alpha"
                a.type = .float
                a.f = 1
                p.graph.node[0].attribute = [a, a]
            }
        ) { XCTAssert("\($0)".contains("Relu 'r'") && "\($0)".contains("'alpha' twice"), "\($0)") }
    }

    // MARK: Q/DQ scales

    /// x -> Q -> DQ -> MatMul(DQ(w_s8, w_scale)) -> Q -> DQ (fixture mismatch-qdq-denormal-weight-scale).
    private func qdqMatMul(weightScale: Float, inputScale: Float = 0.02) -> (Model, [Float], [Int8]) {
        let w: [Int8] = (0..<12).map { Int8(($0 * 37) % 19 - 9) }
        let nodes = [
            Node(name: "q", opType: "QuantizeLinear", inputs: ["x", "xs", "xz"], outputs: ["xq"]),
            Node(name: "dq", opType: "DequantizeLinear", inputs: ["xq", "xs2", "xz"], outputs: ["xd"]),
            Node(name: "dqw", opType: "DequantizeLinear", inputs: ["w", "ws", "wz"], outputs: ["wd"]),
            Node(name: "mm", opType: "MatMul", inputs: ["xd", "wd"], outputs: ["y"]),
        ]
        let inits: [String: Tensor] = [
            "xs": Tensor(shape: [], scalars: [Float(0.02)]), "xs2": Tensor(shape: [], scalars: [inputScale]),
            "xz": Tensor(shape: [], scalars: [Int8(0)]), "w": Tensor(shape: [4, 3], scalars: w),
            "ws": Tensor(shape: [], scalars: [weightScale]), "wz": Tensor(shape: [], scalars: [Int8(0)]),
        ]
        let x: [Float] = [0.5, -0.3, 0.2, 0.9, -1, 0.1, 0.4, 0.7]
        return (model(nodes, x: [2, 4], initializers: inits), x, w)
    }

    func testDequantizeLinearRejectsNonFiniteAndNegativeScales() {
        for bad in [Float.infinity, -Float.infinity, Float.nan, -0.5] {
            let (m, x, _) = qdqMatMul(weightScale: 0.01, inputScale: bad)
            assertRefused(
                m, x: Tensor(shape: [2, 4], scalars: x), .unsupportedAttribute, mentions: ["DequantizeLinear 'dq'", "non-negative and finite"])
        }
    }

    func testZeroDequantizeScaleIsAnAllZeroChannel() throws {
        // ONNX and onnxruntime accept a DequantizeLinear scale of 0: the weights are zeros.
        let (m, x, _) = qdqMatMul(weightScale: 0)
        let y = try InferenceSession(model: m).run(["x": Tensor(shape: [2, 4], scalars: x)])["y"]!
        XCTAssertEqual(y.shape, [2, 3])
        XCTAssertEqual(y.floatValues(), [Float](repeating: 0, count: 6))
    }

    func testDenormalWeightScaleRunsInFP32() throws {
        let scale: Float = 1e-40
        let (m, x, w) = qdqMatMul(weightScale: scale)
        let y = try InferenceSession(model: m).run(["x": Tensor(shape: [2, 4], scalars: x)])["y"]!.floatValues()
        // Naive: xq = clamp(round(x / 0.02)) * 0.02; y = xq @ (w * scale), in Double.
        var expected = [Double](repeating: 0, count: 6)
        for i in 0..<2 {
            for j in 0..<3 {
                for k in 0..<4 {
                    let xq =
                        Swift.min(Swift.max((Double(x[i * 4 + k]) / Double(Float(0.02))).rounded(.toNearestOrEven), -128), 127)
                        * Double(Float(0.02))
                    expected[i * 3 + j] += xq * Double(w[k * 3 + j]) * Double(scale)
                }
            }
        }
        for (a, e) in zip(y, expected) { XCTAssertEqual(Double(a), e, accuracy: 1e-44, "\(y) vs \(expected)") }
        XCTAssert(y.allSatisfy { abs($0) < 1e-37 }, "a denormal weight scale gave \(y)")
    }

    // MARK: zero-element tensors

    func testSplitOfAnEmptyTensorRunsWithoutAPrimitive() throws {
        // Gather with empty indices -> [0, 4] -> Split into two [0, 2] (fixture crash-gather-empty-indices-split).
        let nodes = [
            Node(name: "g", opType: "Gather", inputs: ["x", "i"], outputs: ["e"], attributes: ["axis": .int(0)]),
            Node(name: "s", opType: "Split", inputs: ["e", "sizes"], outputs: ["y", "y2"], attributes: ["axis": .int(1)]),
        ]
        let m = model(
            nodes, x: [6, 4],
            initializers: ["i": Tensor(shape: [0], scalars: [Int64]()), "sizes": Tensor(shape: [2], scalars: [Int64(2), Int64(2)])])
        let out = try InferenceSession(model: m).run(["x": values([6, 4])])
        XCTAssertEqual(out["y"]?.shape, [0, 2])
    }
}
