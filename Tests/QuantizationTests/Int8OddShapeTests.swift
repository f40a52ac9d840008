import Foundation
import TestSupport
import XCTest

@testable import Quantization

/// Every INT8 primitive against the QDQ reference (the same graph with QDQ fusion disabled:
/// dequantize, FP32 kernel, quantize) on shapes that are not multiples of the kernels' blocks
/// (4, 16, 64: rows, columns, channels, spatial sizes), one element, and zero points 0, 1, 127,
/// 128, 255. The INT8 result must be within one quantization step of the reference on every
/// element (rounding of exact ties may differ), and the node must run on an INT8 primitive.
final class Int8OddShapeTests: XCTestCase {
    typealias K = PassKit

    /// Runs `g` fused and as the QDQ reference; checks |fused - reference| <= 1 on the u8
    /// output `y_q`, that the reference is not degenerate, and that `anchor` ran INT8.
    private func check(_ g: Graph, _ feeds: [String: Tensor], anchor: String, _ label: String, file: StaticString = #filePath, line: UInt = #line)
        throws
    {
        let reference = try XCTUnwrap(try K.session(g, optimize: true, disabled: ["qdq-fusion"]).run(feeds)["y_q"], file: file, line: line)
        let session = try K.session(g, optimize: true)
        let got = try XCTUnwrap(try session.run(feeds)["y_q"], file: file, line: line)
        let report = try session.nodeReport(for: feeds)
        XCTAssertTrue(
            report.contains { $0.precision == .int8 && $0.node.contains(anchor) },
            "\(label): \(anchor) did not run INT8: \(report.map { "\($0.node) \($0.detail)" })", file: file, line: line)
        let a = got.intValues(), b = reference.intValues()
        XCTAssertEqual(a.count, b.count, label, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        let bad = zip(a, b).enumerated().filter { abs($0.element.0 - $0.element.1) > 1 }.map(\.offset)
        XCTAssertLessThanOrEqual(
            worst, 1, "\(label): \(bad.count) elements differ by more than 1 step, first at \(bad.prefix(8))", file: file, line: line)
        XCTAssertGreaterThan(Set(b).count, min(8, b.count / 2), "\(label): the reference is degenerate", file: file, line: line)
    }

    /// The output scale that maps the FP32 range of `preQ` on `feeds` to about 250 steps.
    private func outputScale(_ g: Graph, preQ: String, _ feeds: [String: Tensor]) throws -> Float {
        var probe = g
        probe.nodes.removeAll { $0.opType == "QuantizeLinear" && $0.inputs[0] == preQ }
        probe.outputs = [ValueInfo(name: preQ, elementType: .f32, shape: nil)]
        let v = try XCTUnwrap(try K.session(probe, optimize: true, disabled: ["qdq-fusion"]).run(feeds)[preQ]).floatValues()
        return max(v.map(abs).max() ?? 1, 1e-3) / 120
    }

    /// MatMul [B.., M, K] x [K, N] with u8 input zero points and per-column s8 weights, s8 zero
    /// point output shifted to u8 128 (the transformer case: token counts like 17, 19, 21, 37).
    func testQMatMulOddShapesAndZeroPoints() throws {
        var rng = SeededRandom(seed: 1100)
        let cases: [(batch: [Int], m: Int, k: Int, n: Int, zp: Int)] = [
            ([], 1, 1, 1, 0), ([], 3, 5, 3, 1), ([1], 17, 16, 17, 127), ([1], 19, 67, 5, 128), ([2], 21, 33, 65, 255),
            ([1], 37, 64, 16, 3), ([], 65, 129, 7, 100), ([3], 6, 17, 64, 128), ([1], 129, 48, 33, 0), ([], 18, 1536, 12, 128),
        ]
        for c in cases {
            let xs = c.batch + [c.m, c.k], ys = c.batch + [c.m, c.n]
            var g = Graph(
                name: "qmatmul",
                nodes: [
                    K.dq("dqx", "x_q", "sx", "zx", "x"),
                    K.dq("dqw", "wq", "ws", "wz", "w", axis: 1),
                    Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["m"]),
                    Node(name: "add", opType: "Add", inputs: ["m", "bias"], outputs: ["t"]),
                    K.q("q", "t", "sy", "zy", "y_q"),
                ], inputs: [K.value("x_q", .u8, xs)], outputs: [K.value("y_q", .u8, ys)],
                initializers: [
                    "sx": K.scalar(0.03), "zx": K.u8([], [c.zp]), "wq": K.s8([c.k, c.n], rng.ints(c.k * c.n, in: -127...127)),
                    "ws": K.floats([c.n], rng.floats(c.n, in: 0.001...0.01)), "wz": K.s8([c.n], [Int](repeating: 0, count: c.n)),
                    "bias": K.floats([c.n], rng.floats(c.n, in: -0.3...0.3)), "sy": K.scalar(1), "zy": K.u8([], [128]),
                ])
            let feeds = ["x_q": K.u8(xs, rng.ints(xs.reduce(1, *), in: 0...255))]
            g.initializers["sy"] = K.scalar(try outputScale(g, preQ: "t", feeds))
            try check(g, feeds, anchor: "mm", "MatMul \(xs) x [\(c.k), \(c.n)] zp \(c.zp)")
        }
    }

    /// Conv (plain, grouped, depthwise) with channel counts and spatial sizes off the 16-blocks,
    /// 1x1 inputs, u8 inputs with every zero point, per-channel s8 weights, bias, ReLU.
    func testQConvOddShapesAndZeroPoints() throws {
        var rng = SeededRandom(seed: 1200)
        let cases: [(c: Int, oc: Int, h: Int, w: Int, k: Int, group: Int, zp: Int)] = [
            (1, 1, 1, 1, 1, 1, 0), (3, 5, 7, 5, 3, 1, 1), (17, 19, 9, 3, 3, 1, 127), (5, 65, 1, 1, 1, 1, 128),
            (16, 16, 11, 13, 3, 16, 255), (18, 6, 6, 7, 3, 3, 100), (67, 3, 4, 4, 1, 1, 128), (33, 33, 5, 5, 5, 33, 0),
        ]
        for c in cases {
            let xs = [1, c.c, c.h, c.w], ws = [c.oc, c.c / c.group, c.k, c.k], ys = [1, c.oc, c.h, c.w]
            var attributes: [String: AttributeValue] = ["pads": .ints([c.k / 2, c.k / 2, c.k / 2, c.k / 2])]
            if c.group != 1 { attributes["group"] = .int(c.group) }
            var g = Graph(
                name: "qconv",
                nodes: [
                    K.dq("dqx", "x_q", "sx", "zx", "x"),
                    K.dq("dqw", "wq", "ws", "wz", "w", axis: 0),
                    Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["cv"], attributes: attributes),
                    Node(name: "relu", opType: "Relu", inputs: ["cv"], outputs: ["r"]),
                    K.q("q", "r", "sy", "zy", "y_q"),
                ], inputs: [K.value("x_q", .u8, xs)], outputs: [K.value("y_q", .u8, ys)],
                initializers: [
                    "sx": K.scalar(0.02), "zx": K.u8([], [c.zp]), "wq": K.s8(ws, rng.ints(ws.reduce(1, *), in: -127...127)),
                    "ws": K.floats([c.oc], rng.floats(c.oc, in: 0.002...0.02)), "wz": K.s8([c.oc], [Int](repeating: 0, count: c.oc)),
                    "b": K.floats([c.oc], rng.floats(c.oc, in: -0.5...0.5)), "sy": K.scalar(1), "zy": K.u8([], [0]),
                ])
            let feeds = ["x_q": K.u8(xs, rng.ints(xs.reduce(1, *), in: 0...255))]
            g.initializers["sy"] = K.scalar(try outputScale(g, preQ: "r", feeds) / 2)
            try check(g, feeds, anchor: "conv", "Conv x \(xs) w \(ws) group \(c.group) zp \(c.zp)")
        }
    }
}
