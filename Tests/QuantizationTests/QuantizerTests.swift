import DNNL
import Foundation
import TestSupport
import XCTest

@testable import Quantization

/// QuantizationPlacement, QDQInsertion and PostTrainingQuantizer end to end on tiny models.
final class QuantizerTests: XCTestCase {
    typealias K = PassKit

    /// INT8 vs FP32 bound, in steps of the output's quantization scale: 4 with 8-bit weights
    /// (VNNI); 8 where `Int8Rule` requantizes weights to 7 bits (|q| <= 63, twice the step).
    static let stepBound: Float = Int8Rule().weightMax == 127 ? 4 : 8

    // MARK: models

    /// x [1,3,8,8] -> c1 Conv 3->8 -> r1 Relu -> c2 Conv 8->3 -> add (+ x) -> r2 Relu
    /// -> mp MaxPool 2x2 -> fl Flatten -> fc Gemm (transB) 48->10 -> logits.
    /// `zeroChannel`: c1's weights of channel 2 are all zero.
    static func residualGraph(seed: UInt64 = 200, zeroChannel: Bool = false, zeroBias: Bool = false) -> Graph {
        var w1 = K.random([8, 3, 3, 3], seed: seed, in: -0.5...0.5).floatValues()
        if zeroChannel { for i in 54..<81 { w1[i] = 0 } }
        func bias(_ n: Int, _ s: UInt64) -> Tensor {
            zeroBias ? K.floats([n], [Float](repeating: 0, count: n)) : K.random([n], seed: s, in: -0.2...0.2)
        }
        return Graph(
            name: "residual",
            nodes: [
                K.conv("c1", "x", "W1", "B1", "t1"),
                Node(name: "r1", opType: "Relu", inputs: ["t1"], outputs: ["a1"]),
                K.conv("c2", "a1", "W2", "B2", "t2"),
                Node(name: "add", opType: "Add", inputs: ["t2", "x"], outputs: ["s"]),
                Node(name: "r2", opType: "Relu", inputs: ["s"], outputs: ["a2"]),
                Node(
                    name: "mp", opType: "MaxPool", inputs: ["a2"], outputs: ["p"],
                    attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
                Node(name: "fl", opType: "Flatten", inputs: ["p"], outputs: ["f"]),
                Node(name: "fc", opType: "Gemm", inputs: ["f", "Wfc", "Bfc"], outputs: ["logits"], attributes: ["transB": .int(1)]),
            ], inputs: [K.f32("x", [1, 3, 8, 8])], outputs: [K.f32("logits", [1, 10])],
            initializers: [
                "W1": K.floats([8, 3, 3, 3], w1), "B1": bias(8, seed + 1),
                "W2": K.random([3, 8, 3, 3], seed: seed + 2, in: -0.3...0.3), "B2": bias(3, seed + 3),
                "Wfc": K.random([10, 48], seed: seed + 4, in: -0.3...0.3), "Bfc": bias(10, seed + 5),
            ])
    }

    static func samples(_ n: Int, seed: UInt64 = 300, shape: [Int] = [1, 3, 8, 8]) -> [[String: Tensor]] {
        (0..<n).map { ["x": K.random(shape, seed: seed + UInt64($0))] }
    }

    private func shapes(_ g: Graph, _ sample: [String: Tensor]) throws -> [String: [Int]] {
        try K.session(g).valueShapes(for: sample)
    }

    private func placement(_ g: Graph, excludeNodes: Set<String> = [], excludeOpTypes: Set<String> = []) throws -> QuantizationPlacement {
        let sample = g.inputs.reduce(into: [String: Tensor]()) { d, i in
            d[i.name] = K.random(i.shape!.map { $0.value! }, seed: 1)
        }
        return QuantizationPlacement(g, shapes: try shapes(g, sample), excludeNodes: excludeNodes, excludeOpTypes: excludeOpTypes)
    }

    // MARK: QuantizationPlacement

    func testPlacementFindsUnitsSignsAndSharedParameters() throws {
        let p = try placement(Self.residualGraph())
        XCTAssertEqual(p.units.map(\.anchor), ["c1", "c2", "fc"])
        XCTAssertEqual(p.units.map(\.nodes), [["c1", "r1"], ["c2", "add", "r2"], ["fc"]])
        XCTAssertEqual(p.units.map(\.input), ["x", "a1", "f"])
        XCTAssertEqual(p.units.map(\.output), ["a1", "a2", "logits"])
        XCTAssertEqual(p.units.map(\.residual), [nil, "x", nil])
        XCTAssertEqual(p.tensors, ["x", "a1", "a2", "p", "f", "logits"])
        // u8 after Relu (and through MaxPool/Flatten), s8 for the graph input and the logits.
        XCTAssertEqual(p.unsigned.intersection(p.tensors), ["a1", "a2", "p", "f"])
        XCTAssertEqual(p.passThrough, ["mp", "fl"])
        XCTAssertEqual(p.binaries, [])
        XCTAssertEqual(p.root("p"), "a2")
        XCTAssertEqual(p.root("f"), "a2")
        XCTAssertEqual(p.groups.mapValues { Set($0) }, ["x": ["x"], "a1": ["a1"], "a2": ["a2", "p", "f"], "logits": ["logits"]])
        XCTAssertEqual(p.fp32Reasons, [:])
    }

    func testPlacementConcatInputsShareTheOutputsParameters() throws {
        let g = Graph(
            name: "concat",
            nodes: [
                K.conv("ca", "x", "Wa", nil, "ta"),
                Node(name: "ra", opType: "Relu", inputs: ["ta"], outputs: ["ua"]),
                K.conv("cb", "x", "Wb", nil, "vb"),
                Node(name: "cat", opType: "Concat", inputs: ["ua", "vb"], outputs: ["cc"], attributes: ["axis": .int(1)]),
                K.conv("cd", "cc", "Wd", nil, "out"),
            ], inputs: [K.f32("x", [1, 3, 6, 6])], outputs: [K.f32("out", [1, 2, 6, 6])],
            initializers: [
                "Wa": K.random([4, 3, 3, 3], seed: 210), "Wb": K.random([4, 3, 3, 3], seed: 211), "Wd": K.random([2, 8, 3, 3], seed: 212),
            ])
        let p = try placement(g)
        XCTAssertEqual(p.units.map(\.anchor), ["ca", "cb", "cd"])
        XCTAssertEqual(p.passThrough, ["cat"])
        XCTAssertEqual(p.concatInputs["cc"], ["ua", "vb"])
        XCTAssertEqual(p.root("ua"), "cc")
        XCTAssertEqual(p.root("vb"), "cc")
        XCTAssertEqual(Set(p.groups["cc"] ?? []), ["ua", "vb", "cc"])
        XCTAssertTrue(p.unsigned.contains("ua"))
        XCTAssertFalse(p.unsigned.contains("cc"), "one input is signed: the Concat is s8")

        // In the written model the three share one s8 scale (the union of their ranges).
        let model = Model(graph: g, opsetVersion: 13)
        let r = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(model, calibrationData: Self.samples(4, shape: [1, 3, 6, 6]))
        let entries = Dictionary(uniqueKeysWithValues: r.report.tensors.map { ($0.tensor, $0) })
        let ua = try XCTUnwrap(entries["ua"]), vb = try XCTUnwrap(entries["vb"]), cc = try XCTUnwrap(entries["cc"])
        XCTAssertEqual([ua.type, vb.type, cc.type], ["s8", "s8", "s8"])
        XCTAssertEqual(ua.scale, cc.scale)
        XCTAssertEqual(vb.scale, cc.scale)
        let hi = max(try XCTUnwrap(r.table.ranges["ua"]).max, abs(try XCTUnwrap(r.table.ranges["vb"]).min), try XCTUnwrap(r.table.ranges["vb"]).max)
        XCTAssertEqual(cc.scale, hi / 127, accuracy: hi / 127 * 1e-6)
    }

    func testPlacementRecordsExclusionsAndUnsupportedOps() throws {
        // Excluded by name (c2) and by op type (Gemm).
        let p = try placement(Self.residualGraph(), excludeNodes: ["c2"], excludeOpTypes: ["Gemm"])
        XCTAssertEqual(p.units.map(\.anchor), ["c1"])
        XCTAssertEqual(p.fp32Reasons["Conv 'c2'"], "excluded by the user")
        XCTAssertEqual(p.fp32Reasons["Gemm 'fc'"], "excluded by the user")
        XCTAssertEqual(p.fp32Reasons["Add 'add'"], "an input is FP32 or constant")
        XCTAssertEqual(p.fp32Reasons["Relu 'r2'"], "no INT8 kernel for Relu")
        XCTAssertEqual(p.fp32Reasons["MaxPool 'mp'"], "its input is FP32")
        XCTAssertEqual(p.fp32Reasons["Flatten 'fl'"], "its input is FP32")
        XCTAssertEqual(p.tensors, ["x", "a1"])

        // Excluding a node inside a chain ends the unit before it.
        let p2 = try placement(Self.residualGraph(), excludeNodes: ["r2"])
        XCTAssertEqual(p2.units.map(\.nodes), [["c1", "r1"], ["c2", "add"], ["fc"]])
        XCTAssertEqual(p2.units[1].output, "s")
        XCTAssertFalse(p2.unsigned.contains("s"), "a sum without a following Relu is signed")
        XCTAssertEqual(p2.fp32Reasons["Relu 'r2'"], "excluded by the user")
        XCTAssertEqual(p2.fp32Reasons["MaxPool 'mp'"], "its input is FP32")

        // Ops without INT8 kernels, run-time weights, Gemm with alpha.
        let g = Graph(
            name: "misc",
            nodes: [
                Node(name: "mm", opType: "MatMul", inputs: ["a", "b"], outputs: ["m"]),
                Node(name: "gm", opType: "Gemm", inputs: ["a", "W"], outputs: ["gout"], attributes: ["alpha": .float(0.5)]),
                Node(name: "sm", opType: "Softmax", inputs: ["m"], outputs: ["y1"]),
                Node(name: "th", opType: "Tanh", inputs: ["gout"], outputs: ["y2"]),
            ], inputs: [K.f32("a", [2, 8]), K.f32("b", [8, 3])], outputs: [K.f32("y1", [2, 3]), K.f32("y2", [2, 4])],
            initializers: ["W": K.random([8, 4], seed: 220)])
        let p3 = try placement(g)
        XCTAssertEqual(p3.units.count, 0)
        XCTAssertEqual(
            p3.fp32Reasons,
            [
                "MatMul 'mm'": "weights are computed at run time",
                "Gemm 'gm'": "Gemm with transA, alpha or beta",
                "Softmax 'sm'": "no INT8 kernel for Softmax",
                "Tanh 'th'": "no INT8 kernel for Tanh",
            ])
    }

    // MARK: QDQInsertion + PostTrainingQuantizer

    private func scale(_ g: Graph, _ tensor: String) throws -> (scale: Float, zp: Tensor) {
        let q = try XCTUnwrap(K.node(g, tensor + "_QuantizeLinear"), "no QuantizeLinear for \(tensor)")
        let s = try XCTUnwrap(g.initializers[q.inputs[1]])
        XCTAssertEqual(s.count, 1)
        return (s.floatValues()[0], try XCTUnwrap(g.initializers[q.inputs[2]]))
    }

    func testQuantizerWritesQDQAndItsInt8OutputIsCloseToFP32() throws {
        let fp32 = Self.residualGraph()
        let model = Model(graph: fp32, opsetVersion: 13)
        let samples = Self.samples(8)
        let result = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(model, calibrationData: samples)
        let q = result.model.graph
        XCTAssertEqual(result.model.opsetVersion, 13)

        // One QuantizeLinear -> DequantizeLinear pair per quantized activation.
        for (t, type) in [("x", ElementType.s8), ("a1", .u8), ("a2", .u8), ("p", .u8), ("f", .u8), ("logits", .s8)] {
            let qn = try XCTUnwrap(K.node(q, t + "_QuantizeLinear"), t)
            let dn = try XCTUnwrap(K.node(q, t + "_DequantizeLinear"), t)
            XCTAssertEqual(qn.inputs[0], t)
            XCTAssertEqual(dn.inputs, [qn.outputs[0], qn.inputs[1], qn.inputs[2]])
            XCTAssertEqual(dn.outputs, [t + "_dequantized"])
            let (s, zp) = try scale(q, t)
            XCTAssertEqual(zp.elementType, type, t)
            XCTAssertEqual(zp.intValues(), [0], t)
            XCTAssertTrue(s > 0 && s.isFinite, "\(t): scale \(s)")
        }
        XCTAssertEqual(K.count(q, "QuantizeLinear"), 6)
        // minmax: x is s8 over max |x|; MaxPool and Flatten share a2's parameters.
        let maxAbsX = samples.flatMap { $0["x"]!.floatValues() }.map(abs).max()!
        XCTAssertEqual(try scale(q, "x").scale, maxAbsX / 127, accuracy: maxAbsX / 127 * 1e-6)
        XCTAssertEqual(try scale(q, "p").scale, try scale(q, "a2").scale)
        XCTAssertEqual(try scale(q, "f").scale, try scale(q, "a2").scale)

        // INT8 readers read the dequantized tensors; the rest keep the FP32 ones.
        XCTAssertEqual(K.node(q, "c1")?.inputs[0], "x_dequantized")
        XCTAssertEqual(K.node(q, "c2")?.inputs[0], "a1_dequantized")
        XCTAssertEqual(K.node(q, "add")?.inputs, ["t2", "x_dequantized"])
        XCTAssertEqual(K.node(q, "r1")?.inputs, ["t1"])
        XCTAssertEqual(K.node(q, "mp")?.inputs, ["a2_dequantized"])
        XCTAssertEqual(K.node(q, "fl")?.inputs, ["p_dequantized"])
        XCTAssertEqual(K.node(q, "fc")?.inputs[0], "f_dequantized")

        // Weights: s8 per output channel (axis 0 for Conv and the transposed Gemm), |q| max 127
        // per channel; biases int32 with scale sx * sw[oc].
        for (anchor, w, b, xTensor) in [("c1", "W1", "B1", "x"), ("c2", "W2", "B2", "a1"), ("fc", "Wfc", "Bfc", "f")] {
            let wf = try XCTUnwrap(fp32.initializers[w]), bf = try XCTUnwrap(fp32.initializers[b])
            let node = try XCTUnwrap(K.node(q, anchor))
            let wdq = try XCTUnwrap(K.node(q, anchor + "_weights_DequantizeLinear"))
            XCTAssertEqual(node.inputs[1], wdq.outputs[0])
            XCTAssertEqual(wdq.int("axis"), 0, anchor)
            let wq = try XCTUnwrap(q.initializers[wdq.inputs[0]]), ws = try XCTUnwrap(q.initializers[wdq.inputs[1]])
            let wz = try XCTUnwrap(q.initializers[wdq.inputs[2]])
            let oc = wf.shape[0], inner = wf.count / oc
            XCTAssertEqual(wq.elementType, .s8)
            XCTAssertEqual(wq.shape, wf.shape)
            XCTAssertEqual(ws.shape, [oc])
            XCTAssertEqual(wz.elementType, .s8)
            XCTAssertEqual(wz.intValues(), [Int](repeating: 0, count: oc))
            let qv = wq.intValues(), sv = ws.floatValues(), fv = wf.floatValues()
            for c in 0..<oc {
                let row = (c * inner)..<((c + 1) * inner)
                XCTAssertEqual(row.map { abs(qv[$0]) }.max(), 127, "\(anchor) channel \(c)")
                let maxAbs = row.map { abs(fv[$0]) }.max()!
                XCTAssertEqual(sv[c], maxAbs / 127, accuracy: maxAbs / 127 * 1e-6)
                for i in row { XCTAssertLessThanOrEqual(abs(Float(qv[i]) * sv[c] - fv[i]), sv[c] / 2 * 1.0001) }
            }
            let bdq = try XCTUnwrap(K.node(q, anchor + "_bias_DequantizeLinear"))
            XCTAssertEqual(node.inputs[2], bdq.outputs[0])
            XCTAssertEqual(bdq.int("axis"), 0)
            let bq = try XCTUnwrap(q.initializers[bdq.inputs[0]]), bs = try XCTUnwrap(q.initializers[bdq.inputs[1]])
            XCTAssertEqual(bq.elementType, .s32)
            XCTAssertEqual(bq.shape, [oc])
            XCTAssertEqual(q.initializers[bdq.inputs[2]]?.elementType, .s32)
            let sx = try scale(q, xTensor).scale
            XCTAssertEqual(bs.floatValues(), sv.map { $0 * sx }, anchor)
            XCTAssertEqual(
                bq.intValues(), zip(bf.floatValues(), bs.floatValues()).map { Int((Double($0) / Double($1)).rounded(.toNearestOrEven)) }, anchor)
        }
        // The report: what ran INT8, and the insertion pass' lines.
        let insertion = try XCTUnwrap(result.report.passes.first { $0.pass == "qdq-insertion" })
        XCTAssertEqual(
            insertion.applied,
            [
                "Conv 'c1': s8 weights per channel, s8 input", "Conv 'c2': s8 weights per channel, u8 input",
                "Gemm 'fc': s8 weights per channel, u8 input", "6 activation tensors quantized",
            ])
        XCTAssertEqual(result.report.nodes.filter { $0.precision == "int8" }.map(\.node), ["c1", "c2", "fc", "mp", "fl"])

        // The written model reads back identically.
        let url = try makeTemporaryFolder(for: self).appendingPathComponent("q.onnx")
        try result.model.write(to: url)
        let reread = try Model(contentsOf: url)
        XCTAssertEqual(reread.graph.nodes, q.nodes)
        XCTAssertEqual(reread.opsetVersion, 13)

        // This library runs it on INT8 kernels: QConv, QConv (+sum+relu), MaxPool and Flatten on
        // u8, QMatMul; only the input's QuantizeLinear is left.
        let s8 = try InferenceSession(model: reread)
        XCTAssertEqual(K.count(s8.graph, "QConv"), 2, "\(K.opTypes(s8.graph))")
        XCTAssertEqual(K.count(s8.graph, "QMatMul"), 1)
        XCTAssertEqual(K.count(s8.graph, "DequantizeLinear"), 0)
        XCTAssertEqual(K.count(s8.graph, "QuantizeLinear"), 1)
        XCTAssertEqual(K.node(s8.graph, "c2")?.postOpNames, ["sum", "relu"])
        XCTAssertEqual(K.node(s8.graph, "c2")?.int8?.residual?.type, .s8)
        XCTAssertEqual(K.node(s8.graph, "c2")?.int8?.dst?.type, .u8)

        // Accuracy: within `stepBound` (4 with VNNI; measured 3.2) steps of the logits' own
        // quantization scale (s_logits = max|logits| / 127 over calibration) on every calibration
        // sample and on 4 unseen ones.
        let s32 = try InferenceSession(model: model)
        let sy = try scale(q, "logits").scale
        var worst: Float = 0
        for sample in samples + Self.samples(4, seed: 900) {
            let y32 = try XCTUnwrap(s32.run(sample)["logits"]).floatValues()
            let y8 = try XCTUnwrap(s8.run(sample)["logits"]).floatValues()
            XCTAssertEqual(y8.count, 10)
            worst = max(worst, zip(y8, y32).map { abs($0 - $1) }.max()!)
        }
        XCTAssertLessThanOrEqual(worst / sy, Self.stepBound, "INT8 logits differ from FP32 by \(worst / sy) output steps (scale \(sy))")
        XCTAssertGreaterThan(worst, 0, "identical outputs: the model did not run INT8")
    }

    /// `weights: .perTensor`: one s8 scale per weight tensor (max |w| / 127, scalar, no axis);
    /// the INT8 engine runs it and stays within the same output-step bound of FP32.
    func testPerTensorWeightScales() throws {
        let fp32 = Self.residualGraph()
        let model = Model(graph: fp32, opsetVersion: 13)
        let samples = Self.samples(8)
        let result = try PostTrainingQuantizer(.init(calibration: .minMax, weights: .perTensor)).quantize(model, calibrationData: samples)
        let q = result.model.graph
        for (anchor, w) in [("c1", "W1"), ("c2", "W2"), ("fc", "Wfc")] {
            let wdq = try XCTUnwrap(K.node(q, anchor + "_weights_DequantizeLinear"))
            XCTAssertNil(wdq.attributes["axis"], anchor)
            let ws = try XCTUnwrap(q.initializers[wdq.inputs[1]]), wq = try XCTUnwrap(q.initializers[wdq.inputs[0]])
            XCTAssertEqual(ws.shape, [], anchor)
            let maxAbs = try XCTUnwrap(fp32.initializers[w]).floatValues().map(abs).max()!
            XCTAssertEqual(ws.floatValues()[0], maxAbs / 127, accuracy: maxAbs / 127 * 1e-6)
            XCTAssertEqual(wq.intValues().map(abs).max(), 127, anchor)
        }
        let s8 = try InferenceSession(model: result.model)
        XCTAssertEqual(K.count(s8.graph, "QConv"), 2, "\(K.opTypes(s8.graph))")
        XCTAssertEqual(K.count(s8.graph, "QMatMul"), 1)
        let s32 = try InferenceSession(model: model)
        let sy = try scale(q, "logits").scale
        var worst: Float = 0
        for sample in samples {
            let y32 = try XCTUnwrap(s32.run(sample)["logits"]).floatValues()
            let y8 = try XCTUnwrap(s8.run(sample)["logits"]).floatValues()
            worst = max(worst, zip(y8, y32).map { abs($0 - $1) }.max()!)
        }
        XCTAssertLessThanOrEqual(worst / sy, 2 * Self.stepBound, "per-tensor INT8 logits vs FP32: \(worst / sy) output steps")
        XCTAssertGreaterThan(worst, 0, "identical outputs: the model did not run INT8")
    }

    /// `relu(conv(a) + a)` (the residual is the conv's own input, as in RepVGG-style identity
    /// branches): quantized, `a` has one QuantizeLinear/DequantizeLinear read by both the conv
    /// and the Add, and the INT8 model must still match FP32 (the same `stepBound` as above).
    func testQuantizedConvPlusItsOwnInputStaysCloseToFP32() throws {
        let g = Graph(
            name: "selfres",
            nodes: [
                K.conv("c1", "x", "W1", "B1", "t1"),
                Node(name: "r1", opType: "Relu", inputs: ["t1"], outputs: ["a1"]),
                K.conv("c2", "a1", "W2", "B2", "t2"),
                Node(name: "add", opType: "Add", inputs: ["t2", "a1"], outputs: ["s"]),
                Node(name: "r2", opType: "Relu", inputs: ["s"], outputs: ["a2"]),
                Node(
                    name: "mp", opType: "MaxPool", inputs: ["a2"], outputs: ["y"],
                    attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
            ], inputs: [K.f32("x", [1, 4, 8, 8])], outputs: [K.f32("y", [1, 4, 4, 4])],
            initializers: [
                "W1": K.random([4, 4, 3, 3], seed: 230, in: -0.5...0.5), "B1": K.random([4], seed: 231, in: 0...0.2),
                "W2": K.random([4, 4, 3, 3], seed: 232, in: -0.3...0.3), "B2": K.random([4], seed: 233, in: -0.1...0.1),
            ])
        let model = Model(graph: g, opsetVersion: 13)
        let samples = Self.samples(8, shape: [1, 4, 8, 8])
        let result = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(model, calibrationData: samples)
        XCTAssertEqual(result.report.nodes.first { $0.node == "c2" }?.reason, "fused with add, r2")
        let s8 = try InferenceSession(model: result.model), s32 = try InferenceSession(model: model)
        XCTAssertEqual(K.count(s8.graph, "QConv"), 2)
        let sy = try scale(result.model.graph, "a2").scale
        var worst: Float = 0
        for sample in samples {
            let y32 = try XCTUnwrap(s32.run(sample)["y"]).floatValues(), y8 = try XCTUnwrap(s8.run(sample)["y"]).floatValues()
            worst = max(worst, zip(y8, y32).map { abs($0 - $1) }.max()!)
        }
        XCTAssertLessThanOrEqual(worst / sy, Self.stepBound, "INT8 differs from FP32 by \(worst / sy) output steps (scale \(sy))")

        // The cause: the fused c2 sums in place into a1's int8 buffer, which is also its source;
        // the same graph with the sum out of place is within the bound.
        XCTAssertEqual(K.node(s8.graph, "c2")?.inputs[0], K.node(s8.graph, "c2")?.inputs[3])
        var outOfPlace = s8.graph
        for i in outOfPlace.nodes.indices where outOfPlace.nodes[i].opType == "QConv" {
            outOfPlace.nodes[i].fused?.chain.sumInPlace = false
        }
        var worst2: Float = 0
        for sample in samples {
            let y32 = try XCTUnwrap(s32.run(sample)["y"]).floatValues(), y8 = try XCTUnwrap(K.run(outOfPlace, sample)["y"]).floatValues()
            worst2 = max(worst2, zip(y8, y32).map { abs($0 - $1) }.max()!)
        }
        XCTAssertLessThanOrEqual(worst2 / sy, Self.stepBound, "out of place: \(worst2 / sy) output steps")
    }

    /// A Conv output channel whose weights are all zero gets weight scale 1, and its INT8 output
    /// is its bias (to half a step of the input scale, the bias' int32 quantization step).
    func testAllZeroWeightChannelOutputsItsBias() throws {
        let g = Graph(
            name: "zero", nodes: [K.conv("c1", "x", "W1", "B1", "y")], inputs: [K.f32("x", [1, 3, 8, 8])],
            outputs: [K.f32("y", [1, 8, 8, 8])], initializers: Self.residualGraph(zeroChannel: true).initializers.filter { $0.key.hasSuffix("1") })
        let model = Model(graph: g, opsetVersion: 13)
        let result = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(model, calibrationData: Self.samples(8))
        let q = result.model.graph
        let wdq = try XCTUnwrap(K.node(q, "c1_weights_DequantizeLinear"))
        XCTAssertEqual(q.initializers[wdq.inputs[1]]?.floatValues()[2], 1)
        XCTAssertEqual(Array(try XCTUnwrap(q.initializers[wdq.inputs[0]]).intValues()[54..<81]), [Int](repeating: 0, count: 27))
        let sx = try scale(q, "x").scale
        let b = try XCTUnwrap(g.initializers["B1"]).floatValues()[2]
        let session = try InferenceSession(model: result.model)
        XCTAssertEqual(K.count(session.graph, "QConv"), 1)
        let y = try XCTUnwrap(session.run(Self.samples(1, seed: 901)[0])["y"]).floatValues()
        let channel = Array(y[128..<192])
        for v in channel { XCTAssertEqual(v, b, accuracy: sx / 2 * 1.0001) }
        XCTAssertEqual(Set(channel).count, 1, "one value over the whole channel")
    }

    /// All-zero and constant calibration activations get finite positive scales, for every
    /// calibration method, and the quantized model runs.
    func testConstantAndZeroActivationsGetFinitePositiveScales() throws {
        let g = Graph(
            name: "flat", nodes: Array(Self.residualGraph(zeroBias: true).nodes.prefix(3)), inputs: [K.f32("x", [1, 3, 8, 8])],
            outputs: [K.f32("t2", [1, 3, 8, 8])],
            initializers: Self.residualGraph(zeroBias: true).initializers.filter { $0.key.hasSuffix("2") || $0.key.hasSuffix("1") })
        let model = Model(graph: g, opsetVersion: 13)
        for value: Float in [0, 0.5] {
            let samples = (0..<4).map { _ in ["x": K.floats([1, 3, 8, 8], [Float](repeating: value, count: 192))] }
            for method in [CalibrationMethod.minMax, .absMax, .mse, .entropy, .percentile(99.99)] {
                let r = try PostTrainingQuantizer(.init(calibration: method)).quantize(model, calibrationData: samples)
                XCTAssertEqual(Set(r.report.tensors.map(\.tensor)), ["x", "a1", "t2"], "\(method)")
                for t in r.report.tensors {
                    XCTAssertTrue(t.scale > 0 && t.scale.isFinite, "x = \(value), \(method): \(t.tensor) scale \(t.scale)")
                }
                if value == 0.5, method == .minMax {
                    let x = try XCTUnwrap(r.report.tensors.first { $0.tensor == "x" })
                    XCTAssertEqual(x.scale, 0.5 / 127, accuracy: 1e-9)
                }
                let y = try XCTUnwrap(InferenceSession(model: r.model).run(samples[0])["t2"]).floatValues()
                XCTAssertTrue(y.allSatisfy(\.isFinite), "x = \(value), \(method): non-finite output")
                if value == 0 { XCTAssertEqual(Set(y), [0], "\(method)") }
            }
        }
    }

    func testQuantizerErrors() throws {
        let model = Model(graph: Self.residualGraph(), opsetVersion: 13)
        let quantizer = PostTrainingQuantizer(.init(calibration: .minMax))
        func message(_ samples: [[String: Tensor]], _ m: Model? = nil, file: StaticString = #filePath, line: UInt = #line) -> String {
            do {
                _ = try quantizer.quantize(m ?? model, calibrationData: samples)
                XCTFail("expected an error", file: file, line: line)
                return ""
            } catch { return "\(error)" }
        }
        let good = Self.samples(2)
        // An already quantized model.
        let quantized = try quantizer.quantize(model, calibrationData: good).model
        let already = message(good, quantized)
        XCTAssertTrue(already.contains("already quantized") && already.contains("give the FP32 model"), already)
        // No samples.
        XCTAssertTrue(message([]).contains("no calibration samples"), message([]))
        // Wrong shape, wrong type, missing input: the message names the input.
        let shape = message([["x": K.random([1, 3, 4, 4], seed: 1)]])
        XCTAssertTrue(shape.contains("'x'") && shape.contains("dim 2"), shape)
        let type = message([["x": K.u8([1, 3, 8, 8], [Int](repeating: 1, count: 192))]])
        XCTAssertTrue(type.contains("'x'") && type.contains("u8"), type)
        let missing = message([["input": K.random([1, 3, 8, 8], seed: 1)]])
        XCTAssertTrue(missing.contains("'input'"), missing)
        // A later sample with the wrong shape: named by its position too.
        let later = message([good[0], ["x": K.random([1, 3, 8, 4], seed: 2)]])
        XCTAssertTrue(later.contains("calibration sample 2") && later.contains("'x'"), later)
    }

    func testSamplesWithNaNOrInfAreLeftOutAndAllBadIsAnError() throws {
        let model = Model(graph: Self.residualGraph(), opsetVersion: 13)
        let quantizer = PostTrainingQuantizer(.init(calibration: .minMax))
        var good = Self.samples(3)
        var bad = good[1]["x"]!
        bad.withUnsafeMutableBytes { $0.bindMemory(to: Float.self)[5] = .nan }
        good[1]["x"] = bad
        let result = try quantizer.quantize(model, calibrationData: good)
        XCTAssertTrue(
            result.report.warnings.contains { $0.contains("calibration sample 2") && $0.contains("'x'") && $0.contains("NaN") },
            "\(result.report.warnings)")
        XCTAssertEqual(result.table.sampleCount, 2, "the NaN sample must not be observed")
        XCTAssertTrue(result.table.ranges.values.allSatisfy { $0.min.isFinite && $0.max.isFinite })
        var inf = Self.samples(1)[0]["x"]!
        inf.withUnsafeMutableBytes { $0.bindMemory(to: Float.self)[0] = .infinity }
        do {
            _ = try quantizer.quantize(model, calibrationData: [["x": bad], ["x": inf]])
            XCTFail("all samples non-finite must be an error")
        } catch {
            XCTAssertTrue("\(error)".contains("no usable calibration samples") && "\(error)".contains("'x'"), "\(error)")
        }
    }

    func testAccuracyBudgetKeepsTheMostLossyUnitsFP32() throws {
        let model = Model(graph: Self.residualGraph(), opsetVersion: 13)
        let plain = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(model, calibrationData: Self.samples(4))
        XCTAssertTrue(plain.report.fallbacks.isEmpty)
        XCTAssertFalse(plain.report.outputSQNR.isEmpty, "the report measures output SQNR on the calibration samples")
        // An unreachable budget: every allowed fallback is taken, each recorded and kept FP32.
        let strict = try PostTrainingQuantizer(.init(calibration: .minMax, accuracyBudget: 199, maxFallbacks: 2))
            .quantize(model, calibrationData: Self.samples(4))
        XCTAssertEqual(strict.report.fallbacks.count, 2, "\(strict.report.fallbacks)")
        let int8Before = plain.report.nodes.filter { $0.precision == "int8" }.count
        let int8After = strict.report.nodes.filter { $0.precision == "int8" }.count
        XCTAssertLessThan(int8After, int8Before)
        for f in strict.report.fallbacks {
            let anchor = String(f.split(separator: " ")[0])
            XCTAssertTrue(strict.report.nodes.contains { $0.node.contains(anchor) && $0.precision == "fp32" }, "\(anchor) must be FP32")
        }
    }
}
