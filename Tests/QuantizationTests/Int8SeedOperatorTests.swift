import Foundation
import TestSupport
import XCTest

@testable import Quantization

/// The seed's data-movement and element-wise operators between two convolutions after PTQ
/// (conv -> op -> conv, u8 and s8 inputs, broadcast shapes, odd sizes): the op runs on a u8/s8
/// oneDNN primitive or passes int8 through, no Q/DQ reorder is left between the convolutions,
/// the op's output is within one quantization step of the QDQ reference (the same QDQ model
/// with QDQ fusion disabled) and the model outputs within `QuantizerTests.stepBound` steps.
final class Int8SeedOperatorTests: XCTestCase {
    typealias K = PassKit

    /// `x -> c1 Conv [-> Relu] -> a` (u8 when `relu`, else s8), channels `c`.
    private func head(_ c: Int, relu: Bool, input: String = "x", prefix: String = "c1") -> ([Node], String) {
        let conv = K.conv(prefix, input, "W_\(prefix)", "B_\(prefix)", relu ? "\(prefix)_t" : "\(prefix)_a")
        return relu
            ? ([conv, Node(name: "\(prefix)_relu", opType: "Relu", inputs: ["\(prefix)_t"], outputs: ["\(prefix)_a"])], "\(prefix)_a")
            : ([conv], "\(prefix)_a")
    }

    /// Runs PTQ on `g` (random samples of the graph inputs), then checks the fused model
    /// against the QDQ reference: `probes` (the op's outputs) within one step, the graph
    /// outputs within `stepBound` steps; `op` runs INT8 with no Q/DQ node left between the
    /// graph input's quantizer and the outputs' dequantizers.
    private func check(
        _ g: Graph, op: String, probes: [String], _ label: String, seed: UInt64,
        options: PostTrainingQuantizer.Options = .init(calibration: .minMax),
        input: ([Int], UInt64) -> Tensor = { K.random($0, seed: $1) }, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        func sample(_ s: UInt64) -> [String: Tensor] {
            g.inputs.enumerated().reduce(into: [:]) { d, e in
                d[e.element.name] = input(e.element.shape!.map { $0.value! }, s + UInt64(e.offset) * 1000)
            }
        }
        let samples = (0..<6).map { sample(seed + UInt64($0)) }
        let r = try PostTrainingQuantizer(options).quantize(Model(graph: g, opsetVersion: 13), calibrationData: samples)
        let entry = try XCTUnwrap(
            r.report.nodes.first { $0.node.contains("'\(op)'") || $0.node == op }, "\(label): no report entry", file: file, line: line)
        XCTAssertEqual(entry.precision, "int8", "\(label): \(entry.reason)", file: file, line: line)
        let scales = Dictionary(r.report.tensors.map { ($0.tensor, $0.scale) }, uniquingKeysWith: { a, _ in a })
        // The probes are read through their DequantizeLinear outputs, added as graph outputs.
        var q = r.model.graph
        var probeOutputs: [String: String] = [:]
        for t in probes {
            let qn = try XCTUnwrap(
                q.nodes.first { $0.opType == "QuantizeLinear" && $0.inputs[0] == t }, "\(label): \(t) not quantized", file: file, line: line)
            let dq = try XCTUnwrap(q.nodes.first { $0.opType == "DequantizeLinear" && $0.inputs[0] == qn.outputs[0] }, file: file, line: line)
            probeOutputs[t] = dq.outputs[0]
            q.outputs.append(ValueInfo(name: dq.outputs[0], elementType: .f32, shape: nil))
        }
        let feeds = sample(seed + 100)
        let session = try K.session(q, optimize: true)
        let got = try session.run(feeds)
        let reference = try K.session(q, optimize: true, disabled: ["qdq-fusion"]).run(feeds)
        for (t, name) in probeOutputs {
            let s = try XCTUnwrap(scales[t], file: file, line: line)
            let a = try XCTUnwrap(got[name], file: file, line: line).floatValues(), b = try XCTUnwrap(reference[name]).floatValues()
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, s * 1.001, "\(label): \(t) differs from the QDQ reference by \(worst / s) steps", file: file, line: line)
            XCTAssertGreaterThan(Set(b).count, min(8, b.count / 2), "\(label): \(t) reference is degenerate", file: file, line: line)
        }
        for o in g.outputs {
            let s = try XCTUnwrap(scales[o.name], file: file, line: line)
            let a = try XCTUnwrap(got[o.name], file: file, line: line).floatValues(), b = try XCTUnwrap(reference[o.name]).floatValues()
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(
                worst, s * QuantizerTests.stepBound, "\(label): output \(o.name) off by \(worst / s) steps", file: file, line: line)
        }
        // Q nodes only quantize graph inputs, DQ nodes only dequantize graph outputs.
        let fused = session.graph
        let inputs = Set(g.inputs.map(\.name)), outputs = Set(q.outputs.map(\.name))
        for n in fused.nodes where n.opType == "QuantizeLinear" {
            XCTAssertTrue(inputs.contains(n.inputs[0]), "\(label): \(n.label) quantizes \(n.inputs[0])", file: file, line: line)
        }
        for n in fused.nodes where n.opType == "DequantizeLinear" {
            XCTAssertTrue(outputs.contains(n.outputs[0]), "\(label): \(n.label) dequantizes into \(n.outputs[0])", file: file, line: line)
        }
        let report = try session.nodeReport(for: feeds)
        let steps = report.filter { $0.node.contains("'\(op)'") }
        XCTAssertFalse(steps.isEmpty, "\(label): \(op) not in the plan", file: file, line: line)
        for s in steps {
            XCTAssertTrue(
                s.precision == .int8 || s.detail.contains("u8") || s.detail.contains("s8"), "\(label): \(s.node) \(s.detail) \(s.precision)",
                file: file, line: line)
        }
    }

    /// Split (channel axis, odd sizes; and the spatial axis) of a u8 or s8 conv output into
    /// two convolutions: both outputs pass int8 through with the input's scale.
    func testSplitPassesInt8ToEveryOutput() throws {
        for (relu, axis) in [(true, 1), (false, 1), (true, 3)] {
            let (nodes, a) = head(8, relu: relu)
            let sizes = axis == 1 ? [3, 5] : [2, 5]
            let c2in = axis == 1 ? [3, 5] : [8, 8]
            let g = Graph(
                name: "split",
                nodes: nodes + [
                    Node(name: "split", opType: "Split", inputs: [a, "sizes"], outputs: ["s0", "s1"], attributes: ["axis": .int(axis)]),
                    K.conv("c2", "s0", "W2", "B2", "y0"), K.conv("c3", "s1", "W3", "B3", "y1"),
                ], inputs: [K.f32("x", [1, 3, 5, 7])], outputs: [K.f32("y0", [1, 4, 5, sizes[0]]), K.f32("y1", [1, 5, 5, sizes[1]])],
                initializers: [
                    "W_c1": K.random([8, 3, 3, 3], seed: 11, in: -0.5...0.5), "B_c1": K.random([8], seed: 12, in: -0.2...0.2),
                    "sizes": K.i64(sizes), "W2": K.random([4, c2in[0], 3, 3], seed: 13, in: -0.4...0.4), "B2": K.random([4], seed: 14),
                    "W3": K.random([5, c2in[1], 3, 3], seed: 15, in: -0.4...0.4), "B3": K.random([5], seed: 16),
                ])
            try check(g, op: "split", probes: ["s0", "s1"], "Split axis \(axis) relu \(relu)", seed: 100)
        }
    }

    /// Gather of constant channel indices, and Slice, of an int8 conv output into a conv.
    func testGatherAndSliceOnConstantIndicesPassInt8Through() throws {
        for relu in [true, false] {
            let (nodes, a) = head(7, relu: relu)
            let g = Graph(
                name: "gather",
                nodes: nodes + [
                    Node(name: "gather", opType: "Gather", inputs: [a, "idx"], outputs: ["gd"], attributes: ["axis": .int(1)]),
                    Node(name: "slice", opType: "Slice", inputs: [a, "st", "en", "ax"], outputs: ["sl"]),
                    K.conv("c2", "gd", "W2", nil, "y0"), K.conv("c3", "sl", "W3", nil, "y1"),
                ], inputs: [K.f32("x", [1, 3, 6, 5])], outputs: [K.f32("y0", [1, 3, 6, 5]), K.f32("y1", [1, 2, 6, 5])],
                initializers: [
                    "W_c1": K.random([7, 3, 3, 3], seed: 21, in: -0.5...0.5), "B_c1": K.random([7], seed: 22, in: -0.2...0.2),
                    "idx": K.i64([5, 0, 3]), "st": K.i64([2]), "en": K.i64([6]), "ax": K.i64([1]),
                    "W2": K.random([3, 3, 3, 3], seed: 23, in: -0.4...0.4), "W3": K.random([2, 4, 3, 3], seed: 24, in: -0.4...0.4),
                ])
            try check(g, op: "gather", probes: ["gd"], "Gather relu \(relu)", seed: 200)
            try check(g, op: "slice", probes: ["sl"], "Slice relu \(relu)", seed: 300)
        }
    }

    /// Sub of two conv outputs (u8 - s8, s8 - u8) with the second or the first operand
    /// broadcast ([1, C, 1, 1] from a 1x1 input): an INT8 oneDNN binary; with the same shapes
    /// the first operand's conv fuses it as a sum post-op of scale -1.
    func testSubRunsAsAnInt8Binary() throws {
        for (reluA, broadcast, bFirst) in [(true, false, false), (false, false, true), (true, true, false), (false, true, true)] {
            let (na, a) = head(5, relu: reluA)
            let (nb, b) = head(5, relu: !reluA, input: broadcast ? "z" : "x", prefix: "cb")
            let operands = bFirst ? [b, a] : [a, b]
            let g = Graph(
                name: "sub",
                nodes: na + nb + [
                    Node(name: "sub", opType: "Sub", inputs: operands, outputs: ["d"]),
                    K.conv("c2", "d", "W2", "B2", "y"),
                ], inputs: [K.f32("x", [1, 3, 7, 9]), K.f32("z", [1, 3, 1, 1])], outputs: [K.f32("y", [1, 3, 7, 9])],
                initializers: [
                    "W_c1": K.random([5, 3, 3, 3], seed: 31, in: -0.5...0.5), "B_c1": K.random([5], seed: 32, in: -0.2...0.2),
                    "W_cb": K.random([5, 3, 3, 3], seed: 33, in: -0.5...0.5), "B_cb": K.random([5], seed: 34, in: -0.2...0.2),
                    "W2": K.random([3, 5, 3, 3], seed: 35, in: -0.4...0.4), "B2": K.random([3], seed: 36),
                ])
            // Same shapes: the first operand's conv takes the Sub as a sum post-op of scale -1.
            let op = broadcast ? "sub" : (bFirst ? "cb" : "c1")
            try check(g, op: op, probes: ["d"], "Sub u8 first \(reluA) broadcast \(broadcast) swapped \(bFirst)", seed: 400)
        }
    }

    /// conv -> AveragePool (3x3, stride 2, pads, odd sizes) or GlobalAveragePool -> conv.
    private func poolGraph(global: Bool, relu: Bool, spatial: [Int]) -> (Graph, String) {
        let (nodes, a) = head(6, relu: relu)
        let pool =
            global
            ? Node(name: "pool", opType: "GlobalAveragePool", inputs: [a], outputs: ["p"])
            : Node(
                name: "pool", opType: "AveragePool", inputs: [a], outputs: ["p"],
                attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        let out = global ? [1, 1] : spatial.map { ($0 + 2 - 3) / 2 + 1 }
        let g = Graph(
            name: "pool", nodes: nodes + [pool, K.conv("c2", "p", "W2", "B2", "y", pad: global ? 0 : 1)],
            inputs: [K.f32("x", [1, 3] + spatial)], outputs: [K.f32("y", [1, 4] + out)],
            initializers: [
                "W_c1": K.random([6, 3, 3, 3], seed: 51, in: -0.5...0.5), "B_c1": K.random([6], seed: 52, in: -0.1...0.1),
                "W2": K.random([4, 6, global ? 1 : 3, global ? 1 : 3], seed: 53, in: -0.4...0.4), "B2": K.random([4], seed: 54),
            ])
        return (g, a)
    }

    /// A smooth image (as real feature maps are: neighbours correlate) `[1, 3, h, w]`.
    private static func smooth(_ shape: [Int], seed: UInt64) -> Tensor {
        var r = SeededRandom(seed: seed)
        let (c, h, w) = (shape[1], shape[2], shape[3])
        var v: [Float] = []
        for _ in 0..<c {
            let p = r.floats(4, in: 0...3)
            for y in 0..<h { for x in 0..<w { v.append(sin(0.2 * Float(y) + p[0]) * p[1] / 3 + cos(0.15 * Float(x) + p[2]) * p[3] / 3) } }
        }
        return Tensor(shape: shape, scalars: v)
    }

    /// A 3x3 average pool of a smooth feature map keeps most of its input's range: the SQNR
    /// rule runs it on u8/s8 (sharing the input's scale), within one step of the QDQ reference.
    func testAveragePoolRunsInt8WhereTheSQNRRuleAllowsIt() throws {
        for relu in [true, false] {
            let (g, _) = poolGraph(global: false, relu: relu, spatial: [9, 11])
            // A limit of one bit (6.02 dB): the pool runs INT8.
            let bit = PostTrainingQuantizer.Options(calibration: .minMax, averagePoolMaxSQNRLoss: 6.02)
            try check(g, op: "pool", probes: ["p"], "AveragePool relu \(relu)", seed: 500, options: bit, input: { Self.smooth($0, seed: $1) })
            // Each decision follows the measured numbers: INT8 iff its SQNR >= FP32's - limit.
            for limit in [6.02, AveragePoolPrecision.defaultMaxLoss] {
                let r = try PostTrainingQuantizer(.init(calibration: .minMax, averagePoolMaxSQNRLoss: limit)).quantize(
                    Model(graph: g, opsetVersion: 13), calibrationData: (0..<6).map { ["x": Self.smooth([1, 3, 9, 11], seed: 500 + UInt64($0))] })
                let entry = try XCTUnwrap(r.report.nodes.first { $0.node == "pool" || $0.node.hasSuffix("'pool'") })
                let reason = try XCTUnwrap(entry.reason)
                let numbers = reason.split(separator: " ").compactMap { Double($0) }
                XCTAssertEqual(entry.precision == "int8", numbers[0] >= numbers[1] - limit, reason)
            }
        }
    }

    /// A global average of a zero-mean conv output has a far narrower range than its input:
    /// INT8 (rounding on the input's grid) loses more than 1 dB against FP32 with its own
    /// scale, so the rule keeps it FP32 and says why; forced (a loss limit of 100 dB) it runs
    /// INT8 within one step of the QDQ reference.
    func testGlobalAveragePoolDecisionIsMeasured() throws {
        let (g, _) = poolGraph(global: true, relu: false, spatial: [15, 17])
        let samples = (0..<6).map { ["x": K.random([1, 3, 15, 17], seed: 600 + UInt64($0))] }
        let r = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(Model(graph: g, opsetVersion: 13), calibrationData: samples)
        let entry = try XCTUnwrap(r.report.nodes.first { $0.node.contains("'pool'") || $0.node == "pool" })
        XCTAssertEqual(entry.precision, "fp32", entry.reason ?? "")
        let reason = try XCTUnwrap(entry.reason)
        XCTAssertTrue(reason.contains("INT8 SQNR") && reason.contains("kept FP32"), reason)
        // The measured numbers: INT8 is more than 1 dB below FP32.
        let numbers = reason.split(separator: " ").compactMap { Double($0) }
        XCTAssertGreaterThan(numbers[1] - numbers[0], 1, reason)
        try check(
            g, op: "pool", probes: ["p"], "GlobalAveragePool forced INT8", seed: 600,
            options: .init(calibration: .minMax, averagePoolMaxSQNRLoss: 100))
        // Disabled: every average pool stays FP32.
        let off = try PostTrainingQuantizer(.init(calibration: .minMax, averagePoolMaxSQNRLoss: nil))
            .quantize(
                Model(graph: poolGraph(global: false, relu: true, spatial: [9, 11]).0, opsetVersion: 13),
                calibrationData: samples.map {
                    ["x": K.random([1, 3, 9, 11], seed: UInt64($0["x"]!.count))]
                })
        XCTAssertEqual(off.report.nodes.first { $0.node.contains("'pool'") || $0.node == "pool" }?.precision, "fp32")
    }

    /// A QDQ average pool with count_include_pad, padding and a nonzero zero point would
    /// average the padding as the zero point on int8 values: QDQ fusion keeps it FP32 (the
    /// result equals the QDQ reference); with zero point 0 it runs on u8.
    func testAveragePoolWithZeroPointAndIncludedPaddingStaysFP32() throws {
        for zp in [128, 0] {
            let g = Graph(
                name: "qdq_pool",
                nodes: [
                    K.dq("dq", "x_q", "s", "z", "x"),
                    Node(
                        name: "pool", opType: "AveragePool", inputs: ["x"], outputs: ["p"],
                        attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1]), "count_include_pad": .int(1)]),
                    K.q("q", "p", "s", "z", "y_q"),
                ], inputs: [K.value("x_q", .u8, [1, 2, 5, 7])], outputs: [K.value("y_q", .u8, [1, 2, 5, 7])],
                initializers: ["s": K.scalar(0.05), "z": K.u8([], [zp])])
            var rng = SeededRandom(seed: 77)
            let feeds = ["x_q": K.u8([1, 2, 5, 7], rng.ints(70, in: 0...255))]
            let session = try K.session(g, optimize: true)
            let got = try XCTUnwrap(try session.run(feeds)["y_q"]).intValues()
            let reference = try XCTUnwrap(try K.session(g, optimize: true, disabled: ["qdq-fusion"]).run(feeds)["y_q"]).intValues()
            XCTAssertLessThanOrEqual(zip(got, reference).map { abs($0 - $1) }.max() ?? 0, 1, "zero point \(zp)")
            let pool = try XCTUnwrap(session.graph.nodes.first { $0.name == "pool" })
            XCTAssertEqual(pool.inputs[0] == "x_q", zp == 0, "zero point \(zp): the pool reads \(pool.inputs[0])")
        }
    }

    /// `Sub(conv(a), z)` fuses as a sum post-op of scale -1 into the convolution, in FP32
    /// (equal to the unfused graph) and after PTQ (one INT8 primitive, within a step of the
    /// QDQ reference).
    func testSubtractedResidualIsASumPostOpOfScaleMinusOne() throws {
        let (nodes, a) = head(6, relu: true)
        let (nb, b) = head(6, relu: false, prefix: "cb")
        let g = Graph(
            name: "sub_residual",
            nodes: nodes + nb + [
                K.conv("cs", a, "Ws", "Bs", "t"), Node(name: "sub", opType: "Sub", inputs: ["t", b], outputs: ["d"]),
                K.conv("c2", "d", "W2", "B2", "y"),
            ], inputs: [K.f32("x", [1, 3, 7, 9])], outputs: [K.f32("y", [1, 3, 7, 9])],
            initializers: [
                "W_c1": K.random([6, 3, 3, 3], seed: 61, in: -0.5...0.5), "B_c1": K.random([6], seed: 62, in: -0.2...0.2),
                "W_cb": K.random([6, 3, 3, 3], seed: 63, in: -0.5...0.5), "B_cb": K.random([6], seed: 64, in: -0.2...0.2),
                "Ws": K.random([6, 6, 3, 3], seed: 65, in: -0.3...0.3), "Bs": K.random([6], seed: 66, in: -0.2...0.2),
                "W2": K.random([3, 6, 3, 3], seed: 67, in: -0.3...0.3), "B2": K.random([3], seed: 68),
            ])
        let feeds = ["x": K.random([1, 3, 7, 9], seed: 69)]
        let fused = try K.session(g, optimize: true)
        let node = try XCTUnwrap(fused.graph.nodes.first { $0.name == "cs" })
        XCTAssertEqual(node.postOps.sumScale, -1, "\(K.opTypes(fused.graph))")
        XCTAssertFalse(fused.graph.nodes.contains { $0.opType == "Sub" })
        let got = try XCTUnwrap(try fused.run(feeds)["y"]).floatValues()
        let want = try XCTUnwrap(try K.session(g, optimize: false).run(feeds)["y"]).floatValues()
        for (u, v) in zip(got, want) { XCTAssertEqual(u, v, accuracy: 1e-4) }
        try check(g, op: "cs", probes: ["d"], "conv - z", seed: 700)
        // `b - t`: cb (b's producer) takes it as its own residual; results still agree.
        var swapped = g
        swapped.nodes = swapped.nodes.map { n in
            var n = n
            if n.name == "sub" { n.inputs = [b, "t"] }
            return n
        }
        let got2 = try XCTUnwrap(try K.session(swapped, optimize: true).run(feeds)["y"]).floatValues()
        let want2 = try XCTUnwrap(try K.session(swapped, optimize: false).run(feeds)["y"]).floatValues()
        for (u, v) in zip(got2, want2) { XCTAssertEqual(u, v, accuracy: 1e-4) }
    }
}
