import Foundation
import XCTest

@testable import Quantization

/// The normalization and neural evaluators (Kernels/Evaluators/NormalizationEvaluators.swift,
/// NeuralEvaluators.swift): sessions whose weights/scales are graph inputs run them at run time.
/// References are naive loops written here, or values printed by the ONNX reference
/// implementation (onnx 1.23.2, `onnx.reference.ReferenceEvaluator`) as the comments say.
final class NeuralEvaluatorTests: XCTestCase {
    typealias K = PassKit

    private func evaluate(_ node: Node, _ x: [Tensor?], opset: Int) throws -> [Tensor] {
        let f = try XCTUnwrap(ConstantEvaluation.evaluators[node.opType], "\(node.opType) has no evaluator")
        return try f(node, x, opset)
    }

    private func assertClose(_ a: [Float], _ b: [Float], accuracy: Float = 1e-4, _ message: String = "", line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, line: line)
        for (i, (u, v)) in zip(a, b).enumerated() where Swift.abs(u - v) > accuracy * Swift.max(1, Swift.abs(v)) {
            XCTFail("\(message) [\(i)]: \(u) != \(v)", line: line)
            return
        }
    }

    /// LayerNormalization with run-time Scale and B (the oneDNN lowering needs constants): Y,
    /// Mean and InvStdDev against a naive loop.
    func testLayerNormWithRunTimeScaleAndBias() throws {
        let g = Graph(
            name: "ln",
            nodes: [
                Node(
                    name: "ln", opType: "LayerNormalization", inputs: ["x", "s", "b"], outputs: ["y", "mean", "inv"],
                    attributes: ["axis": .int(1), "epsilon": .float(1e-3)])
            ], inputs: [K.f32("x", [2, 3, 4]), K.f32("s", [3, 4]), K.f32("b", [4])],
            outputs: [K.f32("y", [2, 3, 4]), K.f32("mean", [2, 1, 1]), K.f32("inv", [2, 1, 1])])
        let x = K.random([2, 3, 4], seed: 11), s = K.random([3, 4], seed: 12), b = K.random([4], seed: 13)
        let out = try K.run(g, opset: 17, ["x": x, "s": s, "b": b])
        let xv = x.floatValues(), sv = s.floatValues(), bv = b.floatValues()
        var y: [Float] = [], means: [Float] = [], invs: [Float] = []
        for row in 0..<2 {
            let r = Array(xv[row * 12..<(row + 1) * 12])
            let mean = r.reduce(0, +) / 12
            let variance = r.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 12
            let inv = 1 / (variance + 1e-3).squareRoot()
            means.append(mean)
            invs.append(inv)
            for (i, v) in r.enumerated() { y.append((v - mean) * inv * sv[i] + bv[i % 4]) }
        }
        assertClose(try XCTUnwrap(out["y"]).floatValues(), y, "Y")
        assertClose(try XCTUnwrap(out["mean"]).floatValues(), means, "Mean")
        assertClose(try XCTUnwrap(out["inv"]).floatValues(), invs, "InvStdDev")
        XCTAssertEqual(out["mean"]?.shape, [2, 1, 1])
    }

    /// Conv with run-time weights (group 2, stride 2, dilation 2, asymmetric pads, bias) and
    /// ConvTranspose (stride 2, output_padding) against naive loops.
    func testConvAndConvTransposeWithRunTimeWeights() throws {
        let x = K.random([1, 4, 7, 6], seed: 21), w = K.random([6, 2, 3, 2], seed: 22), bias = K.random([6], seed: 23)
        let conv = Node(
            name: "c", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
            attributes: ["group": .int(2), "strides": .ints([2, 1]), "dilations": .ints([2, 1]), "pads": .ints([1, 0, 2, 1])])
        let y = try evaluate(conv, [x, w, bias], opset: 13)[0]
        // Output: H = (7 + 3 - 5) / 2 + 1 = 3, W = (6 + 1 - 2) / 1 + 1 = 6.
        XCTAssertEqual(y.shape, [1, 6, 3, 6])
        let xv = x.floatValues(), wv = w.floatValues(), bv = bias.floatValues()
        var expected: [Float] = []
        for m in 0..<6 {
            for oh in 0..<3 {
                for ow in 0..<6 {
                    var acc = bv[m]
                    for c in 0..<2 {
                        for kh in 0..<3 {
                            for kw in 0..<2 {
                                let ih = oh * 2 - 1 + kh * 2, iw = ow - 0 + kw
                                guard ih >= 0, ih < 7, iw >= 0, iw < 6 else { continue }
                                acc += xv[((m / 3) * 2 + c) * 42 + ih * 6 + iw] * wv[((m * 2 + c) * 3 + kh) * 2 + kw]
                            }
                        }
                    }
                    expected.append(acc)
                }
            }
        }
        assertClose(y.floatValues(), expected, "Conv")

        let tx = K.random([1, 2, 3, 3], seed: 24), tw = K.random([2, 3, 2, 2], seed: 25)
        let ct = Node(
            name: "t", opType: "ConvTranspose", inputs: ["x", "w"], outputs: ["y"],
            attributes: ["strides": .ints([2, 2]), "output_padding": .ints([1, 0])])
        let ty = try evaluate(ct, [tx, tw], opset: 13)[0]
        // Output: 2 * (3 - 1) + 2 + output_padding = 7 x 6.
        XCTAssertEqual(ty.shape, [1, 3, 7, 6])
        var texp = [Float](repeating: 0, count: 3 * 7 * 6)
        let txv = tx.floatValues(), twv = tw.floatValues()
        for c in 0..<2 {
            for ih in 0..<3 {
                for iw in 0..<3 {
                    for m in 0..<3 {
                        for kh in 0..<2 {
                            for kw in 0..<2 {
                                texp[m * 42 + (ih * 2 + kh) * 6 + iw * 2 + kw] += txv[c * 9 + ih * 3 + iw] * twv[((c * 3 + m) * 2 + kh) * 2 + kw]
                            }
                        }
                    }
                }
            }
        }
        assertClose(ty.floatValues(), texp, "ConvTranspose")
    }

    /// Resize cubic (cubic_coeff_a -0.5, exclude_outside) and linear antialias downsampling.
    /// Expected values printed by the ONNX reference (Resize-19, scales [1, 1, 2, 1.5] on
    /// arange(1, 7) as [1, 1, 2, 3]; scales [1, 1, 0.6, 0.6] on arange(16) as [1, 1, 4, 4]).
    func testResizeCubicAndAntialiasMatchTheONNXReference() throws {
        let cubic = Node(
            name: "r", opType: "Resize", inputs: ["x", "", "scales"], outputs: ["y"],
            attributes: ["mode": .string("cubic"), "cubic_coeff_a": .float(-0.5), "exclude_outside": .int(1)])
        let y = try evaluate(cubic, [K.floats([1, 1, 2, 3], (1...6).map(Float.init)), nil, K.floats([4], [1, 1, 2, 1.5])], opset: 19)[0]
        XCTAssertEqual(y.shape, [1, 1, 4, 4])
        assertClose(
            y.floatValues(),
            [
                0.669505, 1.147059, 1.922937, 2.632450, 1.555639, 2.033193, 2.809071, 3.518584, 3.312782, 3.790336, 4.566214, 5.275728,
                4.198917, 4.676471, 5.452348, 6.161862,
            ], accuracy: 1e-5, "cubic")
        let linear = Node(
            name: "r", opType: "Resize", inputs: ["x", "", "scales"], outputs: ["y"], attributes: ["mode": .string("linear"), "antialias": .int(1)])
        let z = try evaluate(linear, [K.floats([1, 1, 4, 4], (0..<16).map(Float.init)), nil, K.floats([4], [1, 1, 0.6, 0.6])], opset: 19)[0]
        XCTAssertEqual(z.shape, [1, 1, 2, 2])
        assertClose(z.floatValues(), [1.875, 3.5, 8.375, 10.0], accuracy: 1e-5, "linear antialias")
    }

    /// Pad reflect / wrap / edge on s32 with a negative (cropping) pad, against an index rule
    /// written here: the output is the padded input cropped.
    func testPadModesWithNegativePads() throws {
        let x = K.s32([2, 4], Array(1...8))
        let pads = K.i64([1, 3, 0, -1])  // rows: 1 before; cols: 3 before, 1 cropped at the end
        for (mode, map): (String, (Int, Int) -> Int) in [
            (
                "reflect",
                { i, n in
                    let p = 2 * (n - 1), m = ((i % p) + p) % p; return m < n ? m : p - m
                }
            ),
            ("wrap", { i, n in ((i % n) + n) % n }), ("edge", { i, n in Swift.min(Swift.max(i, 0), n - 1) }),
        ] {
            let node = Node(name: "p", opType: "Pad", inputs: ["x", "pads"], outputs: ["y"], attributes: ["mode": .string(mode)])
            let y = try evaluate(node, [x, pads], opset: 18)[0]
            XCTAssertEqual(y.shape, [3, 6], mode)
            XCTAssertEqual(y.elementType, .s32)
            var expected: [Int] = []
            for r in 0..<3 { for c in 0..<6 { expected.append(map(r - 1, 2) * 4 + map(c - 3, 4) + 1) } }
            XCTAssertEqual(y.intValues(), expected, mode)
        }
    }

    /// QLinearMatMul and DynamicQuantizeLinear are exact integer operators (round half to even,
    /// saturation). Expected values printed by the ONNX reference (the QLinearMatMul example of
    /// onnx's backend test; DynamicQuantizeLinear of [0, 2, -3, -2.5, 1.34, 0.5]).
    func testQuantizedOperatorsAreExact() throws {
        let q = Node(name: "q", opType: "QLinearMatMul", inputs: ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], outputs: ["y"])
        let y = try evaluate(
            q,
            [
                K.u8([2, 4], [208, 236, 0, 238, 3, 214, 255, 29]), K.scalar(0.0066), K.u8([], [113]),
                K.u8([4, 3], [152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247]), K.scalar(0.00705), K.u8([], [114]), K.scalar(0.0107),
                K.u8([], [118]),
            ], opset: 21)[0]
        XCTAssertEqual(y.elementType, .u8)
        XCTAssertEqual(y.intValues(), [168, 115, 255, 1, 66, 151])
        let d = try evaluate(
            Node(name: "d", opType: "DynamicQuantizeLinear", inputs: ["x"], outputs: ["y", "s", "z"]), [K.floats([6], [0, 2, -3, -2.5, 1.34, 0.5])],
            opset: 11)
        XCTAssertEqual(d[0].intValues(), [153, 255, 0, 26, 221, 179])
        XCTAssertEqual(d[1].floatValues()[0], 0.019607844, accuracy: 1e-9)
        XCTAssertEqual(d[2].intValues(), [153])
        // All zeros (the run-time shape probe): no division by zero trap.
        XCTAssertEqual(
            try evaluate(Node(name: "d", opType: "DynamicQuantizeLinear", inputs: ["x"], outputs: ["y"]), [K.floats([3], [0, 0, 0])], opset: 11)[0]
                .intValues(), [0, 0, 0])
    }

    /// Einsum: batched diagonal with ellipsis and an implicit-output contraction, against loops.
    func testEinsumDiagonalEllipsisAndImplicitOutput() throws {
        let a = K.random([2, 3, 3], seed: 31), b = K.random([3, 4], seed: 32)
        let diag = try evaluate(
            Node(name: "e", opType: "Einsum", inputs: ["a"], outputs: ["y"], attributes: ["equation": .string("...ii->...i")]), [a], opset: 12)[0]
        let av = a.floatValues()
        XCTAssertEqual(diag.shape, [2, 3])
        assertClose(diag.floatValues(), (0..<2).flatMap { n in (0..<3).map { i in av[n * 9 + i * 4] } }, "diagonal")
        let mm = try evaluate(
            Node(name: "e", opType: "Einsum", inputs: ["a", "b"], outputs: ["y"], attributes: ["equation": .string("nij,jk")]), [a, b], opset: 12)[0]
        // Implicit output: labels seen once, alphabetical: i, k, n.
        XCTAssertEqual(mm.shape, [3, 4, 2])
        let bv = b.floatValues()
        var expected: [Float] = []
        for i in 0..<3 {
            for k in 0..<4 { for n in 0..<2 { expected.append((0..<3).map { j in av[n * 9 + i * 3 + j] * bv[j * 4 + k] }.reduce(0, +)) } }
        }
        assertClose(mm.floatValues(), expected, "implicit contraction")
    }
}
