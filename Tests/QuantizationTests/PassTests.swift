import Foundation
import TestSupport
import XCTest

@testable import Quantization

// MARK: - helpers shared by PassTests and QuantizerTests

extension Node {
    /// The fused node's post-ops by oneDNN algorithm name (`"sum"` for the sum), from its
    /// typed payload.
    var postOpNames: [String] {
        postOps.ops.map { if case .eltwise(let a) = $0 { "\(a.algorithm)" } else { "sum" } }
    }
    /// alpha, beta of each post-op (1, 0 for the sum).
    var postOpParams: [Float] {
        postOps.ops.flatMap { op -> [Float] in if case .eltwise(let a) = op { [a.alpha, a.beta] } else { [1, 0] } }
    }
    var int8: Int8Operands? { fused?.int8 }
}

/// Small graph-building and running helpers for the graph pass tests.
enum PassKit {
    /// `DequantizeLinear(q, s, z) -> out` (per-axis when `axis` is given).
    static func dq(_ name: String, _ q: String, _ s: String, _ z: String, _ out: String, axis: Int? = nil) -> Node {
        Node(name: name, opType: "DequantizeLinear", inputs: [q, s, z], outputs: [out], attributes: axis.map { ["axis": .int($0)] } ?? [:])
    }

    /// `QuantizeLinear(x, s, z) -> out`.
    static func q(_ name: String, _ x: String, _ s: String, _ z: String, _ out: String) -> Node {
        Node(name: name, opType: "QuantizeLinear", inputs: [x, s, z], outputs: [out])
    }

    static func f32(_ name: String, _ shape: [Int]) -> ValueInfo {
        ValueInfo(name: name, elementType: .f32, shape: shape.map { .fixed($0) })
    }

    static func value(_ name: String, _ type: ElementType, _ shape: [Int]) -> ValueInfo {
        ValueInfo(name: name, elementType: type, shape: shape.map { .fixed($0) })
    }

    static func scalar(_ v: Float) -> Tensor { Tensor(shape: [], scalars: [v]) }
    static func floats(_ shape: [Int], _ v: [Float]) -> Tensor { Tensor(shape: shape, scalars: v) }
    static func i64(_ v: [Int]) -> Tensor { Tensor(shape: [v.count], scalars: v.map { Int64($0) }) }
    static func s8(_ shape: [Int], _ v: [Int]) -> Tensor { Tensor(shape: shape, scalars: v.map { Int8($0) }) }
    static func u8(_ shape: [Int], _ v: [Int]) -> Tensor { Tensor(shape: shape, scalars: v.map { UInt8($0) }) }
    static func s32(_ shape: [Int], _ v: [Int]) -> Tensor { Tensor(shape: shape, scalars: v.map { Int32($0) }) }

    static func random(_ shape: [Int], seed: UInt64, in range: ClosedRange<Float> = -1...1) -> Tensor {
        var r = SeededRandom(seed: seed)
        return Tensor(shape: shape, scalars: r.floats(shape.reduce(1, *), in: range))
    }

    static func session(
        _ g: Graph, opset: Int = 13, optimize: Bool = false,
        disabled: Set<String> = []
    ) throws -> InferenceSession {
        try InferenceSession(
            model: Model(graph: g, opsetVersion: opset),
            options: SessionOptions(optimize: optimize, disabledPasses: disabled))
    }

    /// Runs `g` as it is (no optimization passes) unless `optimize`.
    static func run(_ g: Graph, opset: Int = 13, _ feeds: [String: Tensor], optimize: Bool = false) throws -> [String: Tensor] {
        try session(g, opset: opset, optimize: optimize).run(feeds)
    }

    static func node(_ g: Graph, _ name: String) -> Node? { g.nodes.first { $0.name == name } }
    static func count(_ g: Graph, _ opType: String) -> Int { g.nodes.filter { $0.opType == opType }.count }
    static func opTypes(_ g: Graph) -> [String] { g.nodes.map(\.opType) }

    static func conv(
        _ name: String, _ x: String, _ w: String, _ b: String? = nil, _ out: String,
        pad: Int = 1, group: Int = 1, transposed: Bool = false, strides: Int = 1
    ) -> Node {
        var attrs: [String: AttributeValue] = ["pads": .ints([pad, pad, pad, pad]), "strides": .ints([strides, strides])]
        if group != 1 { attrs["group"] = .int(group) }
        return Node(
            name: name, opType: transposed ? "ConvTranspose" : "Conv", inputs: [x, w] + (b.map { [$0] } ?? []),
            outputs: [out], attributes: attrs)
    }

    /// Integer convolution (NCHW, OIHW, stride 1, zero padding of `x - zx` i.e. of the real 0):
    /// `acc[n, o, h, w] = sum (x - zx) * w`.
    static func intConv(_ x: [Int], _ xs: [Int], _ w: [Int], _ ws: [Int], pad: Int, zx: Int = 0) -> (acc: [Int], shape: [Int]) {
        let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3])
        let (oc, kh, kw) = (ws[0], ws[2], ws[3])
        precondition(ws[1] == c)
        let oh = h + 2 * pad - kh + 1, ow = wd + 2 * pad - kw + 1
        var out = [Int](repeating: 0, count: n * oc * oh * ow)
        for b in 0..<n {
            for o in 0..<oc {
                for y in 0..<oh {
                    for xx in 0..<ow {
                        var acc = 0
                        for ci in 0..<c {
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    let iy = y + ky - pad, ix = xx + kx - pad
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    acc += (x[((b * c + ci) * h + iy) * wd + ix] - zx) * w[((o * c + ci) * kh + ky) * kw + kx]
                                }
                            }
                        }
                        out[((b * oc + o) * oh + y) * ow + xx] = acc
                    }
                }
            }
        }
        return (out, [n, oc, oh, ow])
    }

    /// A power of two `s` with `maxValue / s` in (target / 2, target]: keeps every scaled value
    /// exact in binary floating point.
    static func powerOfTwoScale(covering maxValue: Double, target: Double) -> Float {
        var s = 1.0
        while maxValue / s > target { s *= 2 }
        while maxValue / s <= target / 2 { s /= 2 }
        return Float(s)
    }
}

/// Runs `before` and `after` without optimization passes on `feeds` and compares every output
/// of `before` (`|after - before| <= atol + rtol |before|`).
func assertSameOutputs(
    _ before: Graph, _ after: Graph, _ feeds: [String: Tensor],
    opsetBefore: Int = 13, opsetAfter: Int = 13, rtol: Double = 1e-5, atol: Double = 1e-6,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    let a = try PassKit.run(before, opset: opsetBefore, feeds)
    let b = try PassKit.run(after, opset: opsetAfter, feeds)
    for o in before.outputs {
        guard let x = a[o.name], let y = b[o.name] else {
            XCTFail("output \(o.name) missing", file: file, line: line); continue
        }
        XCTAssertEqual(x.shape, y.shape, "output \(o.name)", file: file, line: line)
        let xv = x.floatValues()
        XCTAssertGreaterThan(
            Set(xv).count, min(3, xv.count - 1), "output \(o.name) is degenerate: the comparison proves nothing",
            file: file, line: line)
        assertClose(y.floatValues(), xv.map(Double.init), atol: atol, rtol: rtol, "output \(o.name)", file: file, line: line)
    }
}

/// Checks int8 results against exact real values in output units (before rounding): equal to
/// `sat(round_half_even(v))`, or one step off only where `v` is an exact .5 tie.
func assertQuantized(
    _ got: [Int], _ exact: [Double], range: ClosedRange<Int>, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard got.count == exact.count else {
        XCTFail("count \(got.count) != expected \(exact.count). \(message)", file: file, line: line); return
    }
    let expected = exact.map { Int(min(max($0.rounded(.toNearestOrEven), Double(range.lowerBound)), Double(range.upperBound))) }
    var bad: [Int] = []
    for i in got.indices where got[i] != expected[i] {
        let tie = abs(exact[i] - exact[i].rounded(.down) - 0.5) < 1e-9
        if !(tie && abs(got[i] - expected[i]) == 1) { bad.append(i) }
    }
    if let i = bad.first {
        XCTFail(
            "\(bad.count) of \(got.count) differ; first at \(i): got \(got[i]), expected \(expected[i]) (exact \(exact[i])). \(message)",
            file: file, line: line)
    }
    assertInformative(expected, range: range, maxFraction: 0.45, file: file, line: line)
}

// MARK: - FP32 passes

final class PassTests: XCTestCase {
    typealias K = PassKit

    // MARK: ConstantFolding

    /// `Reshape(const, const shape)` becomes an initializer (read by the Add); Q/DQ of constants
    /// stay for the QDQ fusion; a foldable node whose output is a graph output stays.
    func testConstantFoldingFoldsReshapeButNotQDQ() throws {
        var rng = SeededRandom(seed: 1)
        let b0 = rng.floats(4)
        var g = Graph(
            name: "cf",
            nodes: [
                Node(name: "rb", opType: "Reshape", inputs: ["b0", "shape"], outputs: ["b"]),
                Node(name: "qw", opType: "QuantizeLinear", inputs: ["wf", "ws1", "wz1"], outputs: ["wq1"]),
                Node(name: "dqw1", opType: "DequantizeLinear", inputs: ["wq1", "ws1", "wz1"], outputs: ["wd1"]),
                Node(name: "dqw", opType: "DequantizeLinear", inputs: ["wq", "ws", "wz"], outputs: ["w"], attributes: ["axis": .int(0)]),
                K.conv("conv", "x", "w", nil, "c"),
                Node(name: "add", opType: "Add", inputs: ["c", "b"], outputs: ["y0"]),
                Node(name: "add1", opType: "Add", inputs: ["y0", "wd1"], outputs: ["y"]),
                Node(name: "neg", opType: "Neg", inputs: ["k"], outputs: ["kout"]),
            ], inputs: [K.f32("x", [1, 2, 5, 5])], outputs: [K.f32("y", [1, 4, 5, 5]), K.f32("kout", [2])],
            initializers: [
                "b0": K.floats([4], b0), "shape": K.i64([1, 4, 1, 1]),
                "wf": K.floats([1, 1, 1, 5], rng.floats(5)), "ws1": K.scalar(0.01), "wz1": K.s8([], [0]),
                "wq": K.s8([4, 2, 3, 3], rng.ints(72, in: -100...100)), "ws": K.floats([4], [0.01, 0.02, 0.005, 0.03]),
                "wz": K.s8([4], [0, 0, 0, 0]), "k": K.floats([2], [1, -2]),
            ])
        let before = g
        let report = try ConstantFolding(opset: 13).apply(&g)
        XCTAssertEqual(report.applied, ["Reshape 'rb'"])
        XCTAssertEqual(K.opTypes(g), ["QuantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv", "Add", "Add", "Neg"])
        XCTAssertEqual(g.initializers["b"], K.floats([1, 4, 1, 1], b0))
        XCTAssertNil(g.initializers["b0"], "unused constants are dropped")
        XCTAssertNil(g.initializers["shape"])
        XCTAssertEqual(K.node(g, "neg"), K.node(before, "neg"), "a graph output is not folded")
        for name in ["qw", "dqw1", "dqw", "conv", "add", "add1"] {
            XCTAssertEqual(K.node(g, name), K.node(before, name), "\(name) untouched")
        }
        try assertSameOutputs(before, g, ["x": K.random([1, 2, 5, 5], seed: 2)], rtol: 0, atol: 0)
    }

    // MARK: ActivationPatternFusion

    private func hardSwishGraph(divisor: Float = 6, extraOutput: String? = nil) -> Graph {
        Graph(
            name: "hs",
            nodes: [
                Node(name: "a", opType: "Add", inputs: ["x", "three"], outputs: ["t1"]),
                Node(name: "c", opType: "Clip", inputs: ["t1", "zero", "six"], outputs: ["t2"]),
                Node(name: "m", opType: "Mul", inputs: ["x", "t2"], outputs: ["t3"]),
                Node(name: "d", opType: "Div", inputs: ["t3", "div"], outputs: ["y"]),
                Node(name: "other", opType: "Relu", inputs: ["x"], outputs: ["z"]),
            ], inputs: [K.f32("x", [2, 3, 4, 5])],
            outputs: [K.f32("y", [2, 3, 4, 5]), K.f32("z", [2, 3, 4, 5])] + (extraOutput.map { [K.f32($0, [2, 3, 4, 5])] } ?? []),
            initializers: ["three": K.scalar(3), "zero": K.scalar(0), "six": K.scalar(6), "div": K.scalar(divisor)])
    }

    func testHardSwishFromClipDividedBySix() throws {
        var g = hardSwishGraph()
        let before = g
        let report = try ActivationPatternFusion().apply(&g)
        XCTAssertEqual(g.nodes, [Node(name: "d", opType: "HardSwish", inputs: ["x"], outputs: ["y"]), before.nodes[4]])
        XCTAssertEqual(report.applied, ["HardSwish from Add 'a', Clip 'c', Mul 'm', Div 'd'"])
        XCTAssertEqual(report.skipped, [])
        XCTAssertTrue(g.initializers.isEmpty, "the pattern's constants are dropped: \(g.initializers.keys)")
        try assertSameOutputs(before, g, ["x": K.random([2, 3, 4, 5], seed: 3, in: -5...5)])
    }

    /// `Add(3, x)`, `Mul(Clip, x)`, `Mul(1/6, .)`: operand order does not matter.
    func testHardSwishFromClipTimesOneSixthWithConstantFirst() throws {
        var g = Graph(
            name: "hs2",
            nodes: [
                Node(name: "a", opType: "Add", inputs: ["three", "x"], outputs: ["t1"]),
                Node(name: "c", opType: "Clip", inputs: ["t1", "zero", "six"], outputs: ["t2"]),
                Node(name: "m", opType: "Mul", inputs: ["t2", "x"], outputs: ["t3"]),
                Node(name: "s", opType: "Mul", inputs: ["sixth", "t3"], outputs: ["y"]),
            ], inputs: [K.f32("x", [4, 16])], outputs: [K.f32("y", [4, 16])],
            initializers: ["three": K.scalar(3), "zero": K.scalar(0), "six": K.scalar(6), "sixth": K.scalar(1 / 6)])
        let before = g
        let report = try ActivationPatternFusion().apply(&g)
        XCTAssertEqual(g.nodes, [Node(name: "s", opType: "HardSwish", inputs: ["x"], outputs: ["y"])])
        XCTAssertEqual(report.applied.count, 1)
        try assertSameOutputs(before, g, ["x": K.random([4, 16], seed: 4, in: -5...5)])
    }

    func testHardSwishNotFusedWhenDividedByFive() throws {
        var g = hardSwishGraph(divisor: 5)
        let before = g
        let report = try ActivationPatternFusion().apply(&g)
        XCTAssertEqual(g.nodes, before.nodes)
        XCTAssertEqual(report.applied, [])
        XCTAssertEqual(report.skipped, ["Add 'a': x * Clip(x + 3, 0, 6) is not divided by 6"])
    }

    func testHardSwishNotFusedWhenAnIntermediateIsAGraphOutput() throws {
        var g = hardSwishGraph(extraOutput: "t1")
        let before = g
        let report = try ActivationPatternFusion().apply(&g)
        XCTAssertEqual(g.nodes, before.nodes)
        XCTAssertEqual(report.applied, [])
        try assertSameOutputs(before, g, ["x": K.random([2, 3, 4, 5], seed: 5, in: -5...5)], rtol: 0, atol: 0)
    }

    func testHardSwishFromHardSigmoid() throws {
        func graph(alpha: Float?) -> Graph {
            Graph(
                name: "hsg",
                nodes: [
                    Node(
                        name: "h", opType: "HardSigmoid", inputs: ["x"], outputs: ["s"],
                        attributes: alpha.map { ["alpha": .float($0), "beta": .float(0.5)] } ?? [:]),
                    Node(name: "m", opType: "Mul", inputs: ["x", "s"], outputs: ["y"]),
                ], inputs: [K.f32("x", [3, 7])], outputs: [K.f32("y", [3, 7])])
        }
        var g = graph(alpha: 1 / 6)
        let before = g
        let report = try ActivationPatternFusion().apply(&g)
        XCTAssertEqual(g.nodes, [Node(name: "m", opType: "HardSwish", inputs: ["x"], outputs: ["y"])])
        XCTAssertEqual(report.applied, ["HardSwish from HardSigmoid 'h', Mul 'm'"])
        try assertSameOutputs(before, g, ["x": K.random([3, 7], seed: 6, in: -5...5)])

        // The default HardSigmoid (alpha 0.2) is not HardSwish's.
        var g2 = graph(alpha: nil)
        let r2 = try ActivationPatternFusion().apply(&g2)
        XCTAssertEqual(g2.nodes, graph(alpha: nil).nodes)
        XCTAssertEqual(r2.applied, [])
    }

    func testSwishFromSigmoidTimesX() throws {
        var g = Graph(
            name: "swish",
            nodes: [
                Node(name: "s", opType: "Sigmoid", inputs: ["x"], outputs: ["sg"]),
                Node(name: "m", opType: "Mul", inputs: ["sg", "x"], outputs: ["y"]),
            ], inputs: [K.f32("x", [2, 8, 3])], outputs: [K.f32("y", [2, 8, 3])])
        let before = g
        let report = try ActivationPatternFusion().apply(&g)
        XCTAssertEqual(
            g.nodes,
            [
                Node(
                    name: "m", opType: "Swish", domain: "dnnl", inputs: ["x"], outputs: ["y"],
                    attributes: ["alpha": .float(1)])
            ])
        XCTAssertEqual(report.applied, ["Swish from Sigmoid 's', Mul 'm'"])
        try assertSameOutputs(before, g, ["x": K.random([2, 8, 3], seed: 7, in: -6...6)])

        // The sigmoid read a second time: no fusion.
        var g2 = Graph(
            name: "swish2", nodes: before.nodes + [Node(name: "r", opType: "Relu", inputs: ["sg"], outputs: ["z"])],
            inputs: before.inputs, outputs: before.outputs + [K.f32("z", [2, 8, 3])])
        let nodes2 = g2.nodes
        let r2 = try ActivationPatternFusion().apply(&g2)
        XCTAssertEqual(g2.nodes, nodes2)
        XCTAssertEqual(r2.applied, [])
    }

    // MARK: LayerNormFusion

    /// `d = x - mean(x); y = d / sqrt(mean(d^2) + eps) [* gamma [+ beta]]` over axis `axis`.
    private func layerNormGraph(
        axes: [Int] = [-1], affine: Bool = true, gamma: Tensor? = nil,
        dIsOutput: Bool = false
    ) -> Graph {
        let shape = [2, 3, 8]
        var nodes = [
            Node(name: "rm1", opType: "ReduceMean", inputs: ["x"], outputs: ["m"], attributes: ["axes": .ints(axes)]),
            Node(name: "sub", opType: "Sub", inputs: ["x", "m"], outputs: ["d"]),
            Node(name: "pow", opType: "Pow", inputs: ["d", "two"], outputs: ["d2"]),
            Node(name: "rm2", opType: "ReduceMean", inputs: ["d2"], outputs: ["v"], attributes: ["axes": .ints(axes)]),
            Node(name: "addeps", opType: "Add", inputs: ["v", "eps"], outputs: ["ve"]),
            Node(name: "sqrt", opType: "Sqrt", inputs: ["ve"], outputs: ["s"]),
            Node(name: "div", opType: "Div", inputs: ["d", "s"], outputs: [affine ? "n" : "y"]),
        ]
        var inits: [String: Tensor] = ["two": K.scalar(2), "eps": K.scalar(1e-5)]
        if affine {
            nodes.append(Node(name: "mulg", opType: "Mul", inputs: ["n", "gamma"], outputs: ["g"]))
            nodes.append(Node(name: "addb", opType: "Add", inputs: ["g", "beta"], outputs: ["y"]))
            inits["gamma"] = gamma ?? K.random([8], seed: 8, in: 0.5...1.5)
            inits["beta"] = K.random([8], seed: 9)
        }
        return Graph(
            name: "ln", nodes: nodes, inputs: [K.f32("x", shape)],
            outputs: [K.f32("y", shape)] + (dIsOutput ? [K.f32("d", shape)] : []), initializers: inits)
    }

    func testLayerNormFusionWithGammaAndBeta() throws {
        var g = layerNormGraph()
        let before = g
        let report = try LayerNormFusion().apply(&g)
        XCTAssertEqual(
            g.nodes,
            [
                Node(
                    name: "addb", opType: "LayerNormalization", inputs: ["x", "gamma", "beta"], outputs: ["y"],
                    attributes: ["axis": .int(-1), "epsilon": .float(1e-5)])
            ])
        XCTAssertEqual(report.applied, ["LayerNormalization from 9 nodes starting at ReduceMean 'rm1'"])
        XCTAssertEqual(Set(g.initializers.keys), ["gamma", "beta"])
        try assertSameOutputs(before, g, ["x": K.random([2, 3, 8], seed: 10, in: -3...3)], rtol: 1e-5, atol: 1e-5)
    }

    func testLayerNormFusionWithoutAffine() throws {
        var g = layerNormGraph(affine: false)
        let before = g
        let report = try LayerNormFusion().apply(&g)
        XCTAssertEqual(
            g.nodes,
            [
                Node(
                    name: "div", opType: "LayerNormalization", inputs: ["x"], outputs: ["y"],
                    attributes: ["axis": .int(-1), "epsilon": .float(1e-5)])
            ])
        XCTAssertEqual(report.applied, ["LayerNormalization from 7 nodes starting at ReduceMean 'rm1'"])
        try assertSameOutputs(before, g, ["x": K.random([2, 3, 8], seed: 11, in: -3...3)], rtol: 1e-5, atol: 1e-5)
    }

    func testLayerNormNotFusedOverANonLastAxis() throws {
        var g = layerNormGraph(axes: [1])
        let before = g
        let report = try LayerNormFusion().apply(&g)
        XCTAssertEqual(g.nodes, before.nodes)
        XCTAssertEqual(report.applied, [])
    }

    func testLayerNormNotFusedWhenTheCenteredValueIsAGraphOutput() throws {
        var g = layerNormGraph(dIsOutput: true)
        let before = g
        let report = try LayerNormFusion().apply(&g)
        XCTAssertEqual(g.nodes, before.nodes)
        XCTAssertEqual(report.skipped, ["ReduceMean 'rm1': ReduceMean/Sub not followed by the variance and division of a layer norm"])
        try assertSameOutputs(before, g, ["x": K.random([2, 3, 8], seed: 12)], rtol: 0, atol: 0)
    }

    /// `norm * 2` (a scalar "gamma"): LayerNormalization's scale must have the normalized
    /// axis' size, so the pass must either leave the Mul alone or broadcast the constant.
    /// (Were a 1-element gamma fused, the kernel would reshape it to [8] and trap, so the
    /// numeric comparison only runs when the structure is sound.)
    func testLayerNormScalarGammaIsNotTakenAsAPerChannelScale() throws {
        var g = layerNormGraph(gamma: K.scalar(2))
        let before = g
        _ = try LayerNormFusion().apply(&g)
        var sound = true
        for n in g.nodes where n.opType == "LayerNormalization" {
            for i in [1, 2] {
                if let name = n.input(i), let t = g.initializers[name], t.count != 8 {
                    XCTFail("LayerNormalization '\(n.name)' input \(i) '\(name)' has \(t.count) values for a normalized axis of 8 (shape \(t.shape))")
                    sound = false
                }
            }
        }
        if sound { try assertSameOutputs(before, g, ["x": K.random([2, 3, 8], seed: 13, in: -3...3)], rtol: 1e-5, atol: 1e-5) }
    }

    // MARK: ConvScaleShiftFolding

    private struct BN { var g, b, m, v: Tensor }
    private func bn(_ c: Int, seed: UInt64) -> BN {
        BN(
            g: K.random([c], seed: seed, in: 0.5...1.5), b: K.random([c], seed: seed + 1),
            m: K.random([c], seed: seed + 2), v: K.random([c], seed: seed + 3, in: 0.2...1))
    }

    func testBatchNormFoldsIntoConv() throws {
        let w = K.random([4, 3, 3, 3], seed: 20, in: -0.5...0.5), b = K.random([4], seed: 21), p = bn(4, seed: 22)
        let eps: Float = 1e-3
        var g = Graph(
            name: "bn",
            nodes: [
                K.conv("c", "x", "W", "B", "c_out"),
                Node(
                    name: "bn", opType: "BatchNormalization", inputs: ["c_out", "g", "b", "m", "v"], outputs: ["y"],
                    attributes: ["epsilon": .float(eps)]),
                Node(name: "other", opType: "Relu", inputs: ["x"], outputs: ["z"]),
            ], inputs: [K.f32("x", [1, 3, 6, 6])], outputs: [K.f32("y", [1, 4, 6, 6]), K.f32("z", [1, 3, 6, 6])],
            initializers: ["W": w, "B": b, "g": p.g, "b": p.b, "m": p.m, "v": p.v])
        let before = g
        let report = try ConvScaleShiftFolding().apply(&g)
        XCTAssertEqual(report.applied, ["folded BatchNormalization 'bn' into Conv 'c'"])
        XCTAssertEqual(K.opTypes(g), ["Conv", "Relu"])
        XCTAssertEqual(g.nodes[1], before.nodes[2], "the unrelated node is untouched")
        let conv = g.nodes[0]
        XCTAssertEqual(conv.name, "c")
        XCTAssertEqual(conv.outputs, ["y"])
        XCTAssertEqual(conv.inputs, ["x", "W.folded", "c.bias.folded"])
        XCTAssertEqual(conv.attributes, before.nodes[0].attributes)
        // s = gamma / sqrt(var + eps), w' = s w, b' = s (b - mean) + beta
        let gv = p.g.floatValues(), bv = p.b.floatValues(), mv = p.m.floatValues(), vv = p.v.floatValues(), b0 = b.floatValues()
        let s = (0..<4).map { Double(gv[$0]) / (Double(vv[$0]) + Double(eps)).squareRoot() }
        let wRef = w.floatValues().enumerated().map { Double($0.element) * s[$0.offset / 27] }
        let bRef = (0..<4).map { s[$0] * (Double(b0[$0]) - Double(mv[$0])) + Double(bv[$0]) }
        assertClose(try XCTUnwrap(g.initializers["W.folded"]).floatValues(), wRef, atol: 1e-6, rtol: 1e-5)
        assertClose(try XCTUnwrap(g.initializers["c.bias.folded"]).floatValues(), bRef, atol: 1e-6, rtol: 1e-5)
        XCTAssertEqual(Set(g.initializers.keys), ["W.folded", "c.bias.folded"])
        try assertSameOutputs(before, g, ["x": K.random([1, 3, 6, 6], seed: 23)], rtol: 1e-5, atol: 1e-5)
    }

    /// Mul by [1, C, 1, 1], Add of a constant-first [C, 1, 1], Sub and Div by scalars: all fold,
    /// and a bias appears where the conv had none.
    func testAffineChainFoldsIntoConvWithoutBias() throws {
        var g = Graph(
            name: "affine",
            nodes: [
                K.conv("c", "x", "W", nil, "c_out"),
                Node(name: "mul", opType: "Mul", inputs: ["c_out", "scale"], outputs: ["t1"]),
                Node(name: "add", opType: "Add", inputs: ["shift", "t1"], outputs: ["t2"]),
                Node(name: "sub", opType: "Sub", inputs: ["t2", "q"], outputs: ["t3"]),
                Node(name: "div", opType: "Div", inputs: ["t3", "two"], outputs: ["y"]),
            ], inputs: [K.f32("x", [2, 3, 5, 5])], outputs: [K.f32("y", [2, 4, 5, 5])],
            initializers: [
                "W": K.random([4, 3, 3, 3], seed: 30), "scale": K.random([1, 4, 1, 1], seed: 31, in: 0.5...2),
                "shift": K.random([4, 1, 1], seed: 32), "q": K.scalar(0.25), "two": K.scalar(2),
            ])
        let before = g
        let report = try ConvScaleShiftFolding().apply(&g)
        XCTAssertEqual(report.applied, ["folded Mul 'mul', Add 'add', Sub 'sub', Div 'div' into Conv 'c'"])
        XCTAssertEqual(K.opTypes(g), ["Conv"])
        XCTAssertEqual(g.nodes[0].inputs.count, 3)
        XCTAssertEqual(g.nodes[0].outputs, ["y"])
        try assertSameOutputs(before, g, ["x": K.random([2, 3, 5, 5], seed: 33)], rtol: 1e-5, atol: 1e-5)
    }

    /// ConvTranspose with groups (weights [IC, OC/g, kh, kw]), then BN and a constant-first Sub.
    func testBatchNormAndSubFoldIntoGroupedConvTranspose() throws {
        let p = bn(6, seed: 40)
        var g = Graph(
            name: "deconv",
            nodes: [
                K.conv("ct", "x", "W", "B", "c_out", pad: 0, group: 2, transposed: true, strides: 2),
                Node(name: "bn", opType: "BatchNormalization", inputs: ["c_out", "g", "b", "m", "v"], outputs: ["t"]),
                Node(name: "neg", opType: "Sub", inputs: ["k", "t"], outputs: ["y"]),
            ], inputs: [K.f32("x", [1, 4, 5, 5])], outputs: [K.f32("y", [1, 6, 11, 11])],
            initializers: [
                "W": K.random([4, 3, 3, 3], seed: 41), "B": K.random([6], seed: 42), "g": p.g, "b": p.b, "m": p.m, "v": p.v,
                "k": K.random([1, 6, 1, 1], seed: 43),
            ])
        let before = g
        let report = try ConvScaleShiftFolding().apply(&g)
        XCTAssertEqual(report.applied, ["folded BatchNormalization 'bn', Sub 'neg' into ConvTranspose 'ct'"])
        XCTAssertEqual(K.opTypes(g), ["ConvTranspose"])
        XCTAssertEqual(g.nodes[0].attributes["group"], .int(2))
        try assertSameOutputs(before, g, ["x": K.random([1, 4, 5, 5], seed: 44)], rtol: 1e-5, atol: 1e-5)
    }

    func testNothingFoldsWhenNotConstantPerChannelOrSoleReader() throws {
        let p = bn(4, seed: 50)
        let x = K.f32("x", [1, 3, 6, 6]), out = [1, 4, 4, 4]
        let w = K.random([4, 3, 3, 3], seed: 51)
        func check(
            _ name: String, _ nodes: [Node], inputs: [ValueInfo] = [], outputs: [String] = ["y"],
            _ inits: [String: Tensor], run: Bool = true, file: StaticString = #filePath, line: UInt = #line
        ) throws {
            var g = Graph(
                name: name, nodes: [K.conv("c", "x", "W", "B", "c_out", pad: 0)] + nodes, inputs: [x] + inputs,
                outputs: outputs.map { K.f32($0, out) }, initializers: inits.merging(["W": w, "B": K.random([4], seed: 52)]) { a, _ in a })
            let before = g
            let report = try ConvScaleShiftFolding().apply(&g)
            XCTAssertEqual(g.nodes, before.nodes, name, file: file, line: line)
            XCTAssertEqual(report.applied, [], name, file: file, line: line)
            if run {
                var feeds = ["x": K.random([1, 3, 6, 6], seed: 53)]
                for i in inputs { feeds[i.name] = K.random(out, seed: 54) }
                try assertSameOutputs(before, g, feeds, rtol: 0, atol: 0, file: file, line: line)
            }
        }
        // A BatchNormalization whose mean is a run-time input (not constant).
        try check(
            "bn-runtime-mean", [Node(name: "bn", opType: "BatchNormalization", inputs: ["c_out", "g", "b", "mean", "v"], outputs: ["y"])],
            inputs: [K.f32("mean", [4])], ["g": p.g, "b": p.b, "v": p.v], run: false)
        // Mul by a [4] constant: broadcasts along W (whose size happens to be 4), not channels.
        try check(
            "mul-last-axis", [Node(name: "mul", opType: "Mul", inputs: ["c_out", "s"], outputs: ["y"])],
            ["s": K.floats([4], [1, 2, 3, 4])])
        // Div with the constant first (2 / conv) is not affine.
        try check(
            "div-constant-first", [Node(name: "div", opType: "Div", inputs: ["two", "c_out"], outputs: ["y"])],
            ["two": K.scalar(2)])
        // The conv result read twice.
        try check(
            "two-readers",
            [
                Node(name: "mul", opType: "Mul", inputs: ["c_out", "two"], outputs: ["y"]),
                Node(name: "r", opType: "Relu", inputs: ["c_out"], outputs: ["z"]),
            ],
            outputs: ["y", "z"], ["two": K.scalar(2)])
        // The conv result is a graph output.
        try check(
            "graph-output", [Node(name: "mul", opType: "Mul", inputs: ["c_out", "two"], outputs: ["y"])],
            outputs: ["y", "c_out"], ["two": K.scalar(2)])
    }

    /// A Conv whose bias is computed (here `DequantizeLinear` of an int32 constant, which
    /// ConstantFolding keeps by design and the conv kernel evaluates at plan time) followed by
    /// a per-channel Mul: folding must keep the bias (or not fold at all), never drop it.
    func testFoldingKeepsABiasThatIsNotAnInitializer() throws {
        let bq = [100, -200, 300, 50]
        var g = Graph(
            name: "dqbias",
            nodes: [
                Node(name: "dqb", opType: "DequantizeLinear", inputs: ["bq", "bs", "bz"], outputs: ["bias"]),
                K.conv("c", "x", "W", "bias", "c_out"),
                Node(name: "mul", opType: "Mul", inputs: ["c_out", "s"], outputs: ["y"]),
            ], inputs: [K.f32("x", [1, 3, 6, 6])], outputs: [K.f32("y", [1, 4, 6, 6])],
            initializers: [
                "W": K.random([4, 3, 3, 3], seed: 60), "bq": K.s32([4], bq), "bs": K.scalar(0.01), "bz": K.s32([], [0]),
                "s": K.floats([1, 4, 1, 1], [1, 2, 0.5, -1]),
            ])
        let before = g
        _ = try ConvScaleShiftFolding().apply(&g)
        let x = K.random([1, 3, 6, 6], seed: 61)
        try assertSameOutputs(before, g, ["x": x], rtol: 1e-5, atol: 1e-5)
        // What a user sees: the default session (every pass) against the graph as written.
        let reference = try XCTUnwrap(K.run(before, ["x": x])["y"]).floatValues()
        let optimized = try XCTUnwrap(K.run(before, ["x": x], optimize: true)["y"]).floatValues()
        assertClose(optimized, reference.map(Double.init), atol: 1e-5, rtol: 1e-5, "default session vs optimize: false")
    }

    // MARK: PostOpFusion

    private func convGraph(
        _ tail: [Node], outputs: [ValueInfo], extraInputs: [ValueInfo] = [],
        inits: [String: Tensor] = [:]
    ) -> Graph {
        Graph(
            name: "post", nodes: [K.conv("c", "x", "W", "B", "c_out")] + tail, inputs: [K.f32("x", [1, 3, 6, 6])] + extraInputs,
            outputs: outputs, initializers: inits.merging(["W": K.random([4, 3, 3, 3], seed: 70), "B": K.random([4], seed: 71)]) { a, _ in a })
    }

    func testPostOpFusionMergesConsecutiveLinearsThenRelu() throws {
        var g = convGraph(
            [
                Node(name: "m", opType: "Mul", inputs: ["c_out", "k1"], outputs: ["t1"]),
                Node(name: "a", opType: "Add", inputs: ["t1", "k2"], outputs: ["t2"]),
                Node(name: "r", opType: "Relu", inputs: ["t2"], outputs: ["y"]),
                Node(name: "other", opType: "Tanh", inputs: ["x"], outputs: ["z"]),
            ], outputs: [K.f32("y", [1, 4, 6, 6]), K.f32("z", [1, 3, 6, 6])], inits: ["k1": K.scalar(1.5), "k2": K.scalar(-0.5)])
        let before = g
        let report = try PostOpFusion().apply(&g)
        XCTAssertEqual(report.applied, ["Conv 'c'+linear+relu (3 nodes)"])
        XCTAssertEqual(g.nodes.count, 2)
        let f = g.nodes[0]
        XCTAssertEqual(f.opType, "FusedConv")
        XCTAssertEqual(f.domain, "dnnl")
        XCTAssertEqual(f.name, "c")
        XCTAssertEqual(f.inputs, ["x", "W", "B"])
        XCTAssertEqual(f.outputs, ["y"])
        XCTAssertEqual(f.postOpNames, ["linear", "relu"])
        XCTAssertEqual(f.postOpParams, [1.5, -0.5, 0, 0])
        XCTAssertEqual(f.postOps.sumInPlace, false)
        XCTAssertEqual(f.ints("pads"), [1, 1, 1, 1], "the anchor's attributes are kept")
        XCTAssertEqual(g.nodes[1], before.nodes[4])
        try assertSameOutputs(before, g, ["x": K.random([1, 3, 6, 6], seed: 72)], rtol: 1e-5, atol: 1e-5)
    }

    /// relu + linear(1.5) + linear(1, 0.3) would repeat `linear` with other parameters (which
    /// oneDNN 2.6 gets wrong): the chain stops before the second linear.
    func testPostOpChainStopsBeforeARepeatedEltwiseWithOtherParameters() throws {
        var g = convGraph(
            [
                Node(name: "m", opType: "Mul", inputs: ["c_out", "k1"], outputs: ["t1"]),
                Node(name: "r", opType: "Relu", inputs: ["t1"], outputs: ["t2"]),
                Node(name: "a", opType: "Add", inputs: ["t2", "k2"], outputs: ["y"]),
            ], outputs: [K.f32("y", [1, 4, 6, 6])], inits: ["k1": K.scalar(1.5), "k2": K.scalar(0.3)])
        let before = g
        let report = try PostOpFusion().apply(&g)
        XCTAssertEqual(report.applied, ["Conv 'c'+linear+relu (2 nodes)"])
        XCTAssertEqual(K.opTypes(g), ["FusedConv", "Add"])
        XCTAssertEqual(g.nodes[0].outputs, ["t2"])
        XCTAssertEqual(g.nodes[0].postOpNames, ["linear", "relu"])
        XCTAssertEqual(g.nodes[1], before.nodes[3])
        try assertSameOutputs(before, g, ["x": K.random([1, 3, 6, 6], seed: 73)], rtol: 1e-5, atol: 1e-5)

        // Relu then LeakyRelu (relu with alpha 0.1), and Clip(0, 6) then HardSigmoid (whose
        // clip(0, 1) repeats clip): each stops, appending nothing of the clashing node.
        var g2 = convGraph(
            [
                Node(name: "r", opType: "Relu", inputs: ["c_out"], outputs: ["t1"]),
                Node(name: "l", opType: "LeakyRelu", inputs: ["t1"], outputs: ["y"], attributes: ["alpha": .float(0.1)]),
            ], outputs: [K.f32("y", [1, 4, 6, 6])])
        let before2 = g2
        _ = try PostOpFusion().apply(&g2)
        XCTAssertEqual(K.opTypes(g2), ["FusedConv", "LeakyRelu"])
        XCTAssertEqual(g2.nodes[0].postOpNames, ["relu"])
        try assertSameOutputs(before2, g2, ["x": K.random([1, 3, 6, 6], seed: 74)], rtol: 1e-5, atol: 1e-5)

        var g3 = convGraph(
            [
                Node(name: "cl", opType: "Clip", inputs: ["c_out", "lo", "hi"], outputs: ["t1"]),
                Node(name: "hs", opType: "HardSigmoid", inputs: ["t1"], outputs: ["y"]),
            ], outputs: [K.f32("y", [1, 4, 6, 6])], inits: ["lo": K.scalar(0), "hi": K.scalar(6)])
        let before3 = g3
        _ = try PostOpFusion().apply(&g3)
        XCTAssertEqual(K.opTypes(g3), ["FusedConv", "HardSigmoid"])
        XCTAssertEqual(g3.nodes[0].postOpNames, ["clip"])
        XCTAssertEqual(g3.nodes[0].postOpParams, [0, 6])
        try assertSameOutputs(before3, g3, ["x": K.random([1, 3, 6, 6], seed: 75, in: -3...3)], rtol: 1e-5, atol: 1e-5)
    }

    /// HardSigmoid after a Mul: its linear merges with the Mul's (0.2 (2x) + 0.5 = 0.4x + 0.5).
    func testHardSigmoidLinearMergesWithAPrecedingMul() throws {
        var g = convGraph(
            [
                Node(name: "m", opType: "Mul", inputs: ["c_out", "two"], outputs: ["t1"]),
                Node(name: "hs", opType: "HardSigmoid", inputs: ["t1"], outputs: ["y"]),
            ], outputs: [K.f32("y", [1, 4, 6, 6])], inits: ["two": K.scalar(2)])
        let before = g
        _ = try PostOpFusion().apply(&g)
        XCTAssertEqual(K.opTypes(g), ["FusedConv"])
        XCTAssertEqual(g.nodes[0].postOpNames, ["linear", "clip"])
        let p = g.nodes[0].postOpParams
        XCTAssertEqual(p[0], 0.4, accuracy: 1e-6)
        XCTAssertEqual(p[1], 0.5, accuracy: 1e-6)
        XCTAssertEqual(Array(p[2...]), [0, 1])
        try assertSameOutputs(before, g, ["x": K.random([1, 3, 6, 6], seed: 76)], rtol: 1e-5, atol: 1e-5)
    }

    /// Add of another run-time tensor: a sum post-op, in place when nothing else reads it.
    func testResidualAddBecomesSumPostOp() throws {
        for zIsOutput in [false, true] {
            var g = convGraph(
                [
                    Node(name: "t", opType: "Tanh", inputs: ["u"], outputs: ["zz"]),
                    Node(name: "add", opType: "Add", inputs: ["c_out", "zz"], outputs: ["s"]),
                    Node(name: "r", opType: "Relu", inputs: ["s"], outputs: ["y"]),
                ], outputs: [K.f32("y", [1, 4, 6, 6])] + (zIsOutput ? [K.f32("zz", [1, 4, 6, 6])] : []),
                extraInputs: [K.f32("u", [1, 4, 6, 6])])
            let before = g
            let report = try PostOpFusion().apply(&g)
            XCTAssertEqual(report.applied, ["Conv 'c'+sum+relu (2 nodes)"])
            XCTAssertEqual(K.opTypes(g), ["Tanh", "FusedConv"])
            let f = g.nodes[1]
            XCTAssertEqual(f.inputs, ["x", "W", "B", "zz"])
            XCTAssertEqual(f.outputs, ["y"])
            XCTAssertEqual(f.postOpNames, ["sum", "relu"])
            XCTAssertEqual(f.postOps.sumInPlace, !zIsOutput)
            try assertSameOutputs(
                before, g, ["x": K.random([1, 3, 6, 6], seed: 77), "u": K.random([1, 4, 6, 6], seed: 78, in: -2...2)],
                rtol: 1e-5, atol: 1e-5)
        }
    }

    func testMatMulBiasAddBecomesThePrimitiveBias() throws {
        var g = Graph(
            name: "mm",
            nodes: [
                Node(name: "mm", opType: "MatMul", inputs: ["a", "B"], outputs: ["m"]),
                Node(name: "add", opType: "Add", inputs: ["m", "bias"], outputs: ["t"]),
                Node(name: "r", opType: "Relu", inputs: ["t"], outputs: ["y"]),
            ], inputs: [K.f32("a", [2, 3, 5])], outputs: [K.f32("y", [2, 3, 4])],
            initializers: [
                "B": K.random([5, 4], seed: 80), "bias": K.random([4], seed: 81),
            ])
        let before = g
        let report = try PostOpFusion().apply(&g)
        XCTAssertEqual(report.applied, ["MatMul 'mm' +bias+relu (2 nodes)"])
        XCTAssertEqual(g.nodes.count, 1)
        XCTAssertEqual(g.nodes[0].opType, "FusedMatMul")
        XCTAssertEqual(g.nodes[0].inputs, ["a", "B", "bias"])
        XCTAssertEqual(g.nodes[0].postOpNames, ["relu"])
        try assertSameOutputs(before, g, ["a": K.random([2, 3, 5], seed: 82)], rtol: 1e-5, atol: 1e-5)

        // A bias Add after the activation is not the primitive's bias: the chain stops there.
        var g2 = Graph(
            name: "mm2",
            nodes: [
                Node(name: "mm", opType: "MatMul", inputs: ["a", "B"], outputs: ["m"]),
                Node(name: "r", opType: "Relu", inputs: ["m"], outputs: ["t"]),
                Node(name: "add", opType: "Add", inputs: ["t", "bias"], outputs: ["y"]),
            ], inputs: before.inputs, outputs: before.outputs, initializers: before.initializers)
        let before2 = g2
        _ = try PostOpFusion().apply(&g2)
        XCTAssertEqual(K.opTypes(g2), ["FusedMatMul", "Add"])
        XCTAssertEqual(g2.nodes[0].inputs, ["a", "B", ""])
        try assertSameOutputs(before2, g2, ["a": K.random([2, 3, 5], seed: 83)], rtol: 1e-5, atol: 1e-5)
    }

    func testGemmKeepsItsAttributesWhenFused() throws {
        var g = Graph(
            name: "gemm",
            nodes: [
                Node(name: "gm", opType: "Gemm", inputs: ["a", "W", "C"], outputs: ["t"], attributes: ["transB": .int(1)]),
                Node(name: "s", opType: "Sigmoid", inputs: ["t"], outputs: ["y"]),
            ], inputs: [K.f32("a", [3, 6])], outputs: [K.f32("y", [3, 5])],
            initializers: [
                "W": K.random([5, 6], seed: 84), "C": K.random([5], seed: 85),
            ])
        let before = g
        _ = try PostOpFusion().apply(&g)
        XCTAssertEqual(K.opTypes(g), ["FusedGemm"])
        XCTAssertEqual(g.nodes[0].int("transB"), 1)
        XCTAssertEqual(g.nodes[0].postOpNames, ["logistic"])
        try assertSameOutputs(before, g, ["a": K.random([3, 6], seed: 86, in: -2...2)], rtol: 1e-5, atol: 1e-6)
    }

    func testPostOpFusionLeavesSharedOrOutputResultsAndConvTranspose() throws {
        // The conv result is a graph output, or read twice: nothing fuses.
        for extra in [[Node](), [Node(name: "t", opType: "Tanh", inputs: ["c_out"], outputs: ["z"])]] {
            var g = convGraph(
                [Node(name: "r", opType: "Relu", inputs: ["c_out"], outputs: ["y"])] + extra,
                outputs: [K.f32("y", [1, 4, 6, 6])] + (extra.isEmpty ? [K.f32("c_out", [1, 4, 6, 6])] : [K.f32("z", [1, 4, 6, 6])]))
            let nodes = g.nodes
            let report = try PostOpFusion().apply(&g)
            XCTAssertEqual(g.nodes, nodes)
            XCTAssertEqual(report.applied, [])
        }
        // ConvTranspose is not an anchor.
        var g = Graph(
            name: "ct",
            nodes: [
                K.conv("ct", "x", "W", nil, "c_out", transposed: true),
                Node(name: "r", opType: "Relu", inputs: ["c_out"], outputs: ["y"]),
            ], inputs: [K.f32("x", [1, 3, 6, 6])], outputs: [K.f32("y", [1, 4, 6, 6])], initializers: ["W": K.random([3, 4, 3, 3], seed: 87)])
        let nodes = g.nodes
        _ = try PostOpFusion().apply(&g)
        XCTAssertEqual(g.nodes, nodes)
    }

    // MARK: OpsetUpgrade

    private func opset11Graph() -> Graph {
        Graph(
            name: "o11",
            nodes: [
                Node(name: "unsq", opType: "Unsqueeze", inputs: ["x"], outputs: ["u"], attributes: ["axes": .ints([0])]),
                Node(name: "sq", opType: "Squeeze", inputs: ["u"], outputs: ["s"], attributes: ["axes": .ints([0])]),
                Node(name: "sp", opType: "Split", inputs: ["s"], outputs: ["s1", "s2"], attributes: ["axis": .int(2), "split": .ints([1, 3])]),
                Node(name: "rs", opType: "ReduceSum", inputs: ["s2"], outputs: ["r"], attributes: ["axes": .ints([2]), "keepdims": .int(1)]),
                Node(name: "add", opType: "Add", inputs: ["s1", "r"], outputs: ["o1"]),
                Node(name: "sm1", opType: "Softmax", inputs: ["x"], outputs: ["o2"], attributes: ["axis": .int(1)]),
                Node(name: "sm2", opType: "Softmax", inputs: ["x"], outputs: ["o3"], attributes: ["axis": .int(-1)]),
                Node(name: "lsm", opType: "LogSoftmax", inputs: ["x"], outputs: ["o4"], attributes: ["axis": .int(2)]),
            ], inputs: [K.f32("x", [2, 3, 4])],
            outputs: [K.f32("o1", [2, 3, 1]), K.f32("o2", [2, 3, 4]), K.f32("o3", [2, 3, 4]), K.f32("o4", [2, 3, 4])])
    }

    func testOpsetUpgradeMovesAttributesToInputsAndKeepsOldSoftmaxSemantics() throws {
        var g = opset11Graph()
        let before = g
        let x = K.random([2, 3, 4], seed: 90, in: -3...3)
        let shapes = try K.session(before, opset: 11).valueShapes(for: ["x": x])
        let report = try OpsetUpgrade(from: 11, shapes: shapes).apply(&g)
        XCTAssertEqual(report.applied.count, 7, "\(report.applied)")
        func constInput(_ name: String) -> [Int]? {
            guard let n = K.node(g, name), n.inputs.count == 2, let t = g.initializers[n.inputs[1]] else { return nil }
            XCTAssertEqual(t.elementType, .i64, name)
            return t.intValues()
        }
        XCTAssertEqual(constInput("unsq"), [0])
        XCTAssertEqual(constInput("sq"), [0])
        XCTAssertEqual(constInput("sp"), [1, 3])
        XCTAssertEqual(constInput("rs"), [2])
        XCTAssertNil(K.node(g, "unsq")?.attributes["axes"])
        XCTAssertNil(K.node(g, "sq")?.attributes["axes"])
        XCTAssertNil(K.node(g, "sp")?.attributes["split"])
        XCTAssertEqual(K.node(g, "sp")?.int("axis"), 2)
        XCTAssertNil(K.node(g, "rs")?.attributes["axes"])
        XCTAssertEqual(K.node(g, "rs")?.int("keepdims"), 1)
        // Softmax over the last axis: axis -1; over axis 1 of a rank-3 input: Flatten, 2-D Softmax, Reshape.
        XCTAssertEqual(K.node(g, "sm2")?.attributes, ["axis": .int(-1)])
        XCTAssertEqual(K.node(g, "lsm")?.attributes, ["axis": .int(-1)])
        XCTAssertEqual(K.node(g, "sm1.flatten")?.opType, "Flatten")
        XCTAssertEqual(K.node(g, "sm1.flatten")?.int("axis"), 1)
        XCTAssertEqual(K.node(g, "sm1")?.inputs, [try XCTUnwrap(K.node(g, "sm1.flatten")).outputs[0]])
        XCTAssertEqual(K.node(g, "sm1.reshape")?.opType, "Reshape")
        XCTAssertEqual(K.node(g, "sm1.reshape")?.outputs, ["o2"])
        XCTAssertEqual(K.node(g, "add"), K.node(before, "add"))

        try assertSameOutputs(before, g, ["x": x], opsetBefore: 11, opsetAfter: 13, rtol: 1e-6, atol: 1e-7)
        // And the old semantics are what both compute: softmax over the 12 values of each batch item.
        let o2 = try XCTUnwrap(K.run(g, opset: 13, ["x": x])["o2"]).floatValues()
        let xv = x.floatValues().map(Double.init)
        var ref: [Double] = []
        for b in 0..<2 {
            let row = xv[(b * 12)..<(b * 12 + 12)]
            let m = row.max()!
            let e = row.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            ref += e.map { $0 / s }
        }
        assertClose(o2, ref, atol: 1e-6, rtol: 1e-5)
    }

    func testOpsetUpgradeLeavesOpset13AloneAndNeedsRanks() throws {
        var g = opset11Graph()
        let report = try OpsetUpgrade(from: 13, shapes: [:]).apply(&g)
        XCTAssertEqual(g.nodes, opset11Graph().nodes)
        XCTAssertEqual(report.applied, [])
        var g2 = opset11Graph()
        XCTAssertThrowsError(try OpsetUpgrade(from: 11, shapes: [:]).apply(&g2)) { error in
            XCTAssertEqual((error as? GraphError)?.kind, .unsupportedAttribute)
            XCTAssertTrue("\(error)".contains("Softmax 'sm1'"), "\(error)")
        }
    }
}

// MARK: - QDQFusion (INT8) against independently computed integers

final class QDQFusionTests: XCTestCase {
    typealias K = PassKit

    /// Runs the graph with every pass (QDQ fusion on) and returns the session's graph and outputs.
    private func runFused(_ g: Graph, _ feeds: [String: Tensor]) throws -> (Graph, [String: Tensor]) {
        let s = try K.session(g, optimize: true)
        return (s.graph, try s.run(feeds))
    }

    /// DQ(x_q) -> Conv(DQ(w_q) per channel, DQ(b_q) int32) -> Relu -> Q: one dnnl.QConv, and
    /// `y_q = sat(round_half_even(relu(sx sw[oc] (acc + b_q)) / sy))` exactly (power-of-two scales).
    func testConvReluQDQBecomesOneQConvWithExactOutput() throws {
        var rng = SeededRandom(seed: 100)
        let xs = [1, 3, 6, 6], ws = [4, 3, 3, 3]
        let xq = rng.ints(108, in: 0...200), wq = rng.ints(108, in: -30...63), bq = rng.ints(4, in: -3000...3000)
        let sx: Float = 0.5, sw: [Float] = [0.125, 0.0625, 0.25, 0.03125]
        let (acc, ys) = K.intConv(xq, xs, wq, ws, pad: 1)
        let per = ys[2] * ys[3]
        let real = acc.indices.map { i -> Double in
            let o = (i / per) % 4
            return max(0, Double(sx) * Double(sw[o]) * Double(acc[i] + bq[o]))
        }
        let sy = K.powerOfTwoScale(covering: real.max()!, target: 250)
        let g = Graph(
            name: "qconv",
            nodes: [
                K.dq("dqx", "x_q", "sx", "zx", "x"),
                K.dq("dqw", "wq", "ws", "wz", "w", axis: 0),
                K.dq("dqb", "bq", "bs", "bz", "b", axis: 0),
                K.conv("conv", "x", "w", "b", "c"),
                Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
                K.q("q", "r", "sy", "zy", "y_q"),
            ], inputs: [K.value("x_q", .u8, xs)], outputs: [K.value("y_q", .u8, ys)],
            initializers: [
                "sx": K.scalar(sx), "zx": K.u8([], [0]), "wq": K.s8(ws, wq), "ws": K.floats([4], sw), "wz": K.s8([4], [0, 0, 0, 0]),
                "bq": K.s32([4], bq), "bs": K.floats([4], sw.map { $0 * sx }), "bz": K.s32([4], [0, 0, 0, 0]),
                "sy": K.scalar(sy), "zy": K.u8([], [0]),
            ])
        var fused = g
        let report = try QDQFusion().apply(&fused)
        XCTAssertEqual(report.applied, ["Conv 'conv' -> QConv u8 input, u8 output+relu"])
        XCTAssertEqual(fused.nodes.count, 1, "\(K.opTypes(fused))")
        let n = fused.nodes[0]
        XCTAssertEqual(n.opType, "QConv")
        XCTAssertEqual(n.domain, "dnnl")
        XCTAssertEqual(n.name, "conv")
        XCTAssertEqual(n.inputs, ["x_q", "w.q", "conv.bias"])
        XCTAssertEqual(n.outputs, ["y_q"])
        XCTAssertEqual(n.int8?.weights?.scales, sw)
        XCTAssertEqual(n.int8?.src.scale, sx)
        XCTAssertEqual(n.int8?.src.type, .u8)
        XCTAssertEqual(n.int8?.dst?.scale, sy)
        XCTAssertEqual(n.int8?.dst?.type, .u8)
        XCTAssertEqual(n.postOpNames, ["relu"])
        XCTAssertEqual(n.ints("pads"), [1, 1, 1, 1])
        XCTAssertEqual(fused.initializers["w.q"], K.s8(ws, wq))
        XCTAssertEqual(fused.initializers["conv.bias"]?.floatValues(), (0..<4).map { Float(bq[$0]) * sx * sw[$0] })
        XCTAssertEqual(Set(fused.initializers.keys), ["w.q", "conv.bias"])

        let x = K.u8(xs, xq)
        let (sg, out) = try runFused(g, ["x_q": x])
        XCTAssertEqual(K.opTypes(sg), ["QConv"])
        let y = try XCTUnwrap(out["y_q"])
        XCTAssertEqual(y.elementType, .u8)
        assertQuantized(y.intValues(), real.map { $0 / Double(sy) }, range: 0...255, "QConv")
        // The unfused QDQ graph (FP32 conv between reorders) agrees within one step.
        let plain = try XCTUnwrap(K.session(g, optimize: true, disabled: ["qdq-fusion"]).run(["x_q": x])["y_q"]).intValues()
        assertClose(plain.map(Float.init), y.intValues().map(Double.init), atol: 1)
    }

    /// MatMul with per-column weight scales, u8 input with zero point 3 and a constant bias Add
    /// (the primitive's bias), s8 output: `y = sat(rhe((sx sw[n] sum (x - 3) w + b[n]) / sy))`.
    func testMatMulPerColumnScalesAndBiasBecomesQMatMul() throws {
        var rng = SeededRandom(seed: 101)
        let (rows, k, n) = (6, 8, 5)
        let xq = rng.ints(rows * k, in: 0...255), wq = rng.ints(k * n, in: -63...63), bk = rng.ints(n, in: -4000...4000)
        let sx: Float = 0.25, zx = 3, sw: [Float] = [0.5, 0.25, 0.125, 1, 0.0625]
        let bias = (0..<n).map { Float(bk[$0]) * sx * sw[$0] }
        var real: [Double] = []
        for r in 0..<rows {
            for j in 0..<n {
                var acc = 0
                for i in 0..<k { acc += (xq[r * k + i] - zx) * wq[i * n + j] }
                real.append(Double(sx) * Double(sw[j]) * Double(acc) + Double(bias[j]))
            }
        }
        let sy = K.powerOfTwoScale(covering: real.map(abs).max()!, target: 120)
        let g = Graph(
            name: "qmm",
            nodes: [
                K.dq("dqx", "x_q", "sx", "zx", "x"),
                K.dq("dqw", "wq", "ws", "wz", "w", axis: 1),
                Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["m"]),
                Node(name: "add", opType: "Add", inputs: ["m", "bias"], outputs: ["t"]),
                K.q("q", "t", "sy", "zy", "y_q"),
            ], inputs: [K.value("x_q", .u8, [2, 3, k])], outputs: [K.value("y_q", .s8, [2, 3, n])],
            initializers: [
                "sx": K.scalar(sx), "zx": K.u8([], [zx]), "wq": K.s8([k, n], wq), "ws": K.floats([n], sw),
                "wz": K.s8([n], [Int](repeating: 0, count: n)),
                "bias": K.floats([n], bias), "sy": K.scalar(sy), "zy": K.s8([], [0]),
            ])
        var fused = g
        let report = try QDQFusion().apply(&fused)
        XCTAssertEqual(report.applied, ["MatMul 'mm' -> QMatMul u8 input, s8 output"])
        XCTAssertEqual(K.opTypes(fused), ["QMatMul"])
        let node = fused.nodes[0]
        XCTAssertEqual(node.inputs, ["x_q", "w.q", "mm.bias"])
        XCTAssertEqual(node.int8?.src.zeroPoint, zx)
        XCTAssertEqual(node.int8?.weights?.scales, sw)
        XCTAssertEqual(node.int8?.dst?.type, .s8)
        XCTAssertEqual(fused.initializers["mm.bias"]?.floatValues(), bias)

        let (sg, out) = try runFused(g, ["x_q": K.u8([2, 3, k], xq)])
        XCTAssertEqual(K.opTypes(sg), ["QMatMul"])
        let y = try XCTUnwrap(out["y_q"])
        XCTAssertEqual(y.elementType, .s8)
        XCTAssertEqual(y.shape, [2, 3, n])
        assertQuantized(y.intValues(), real.map { $0 / Double(sy) }, range: -128...127, "QMatMul")
    }

    /// Conv -> Add(DQ(z_q) s8 with its own scale) -> Relu -> Q u8: a sum post-op, an s8
    /// residual into a u8 result: `y = sat(rhe(relu(sx sw (acc + b) + sz z) / sy))`.
    func testResidualAddBecomesSumPostOpWithItsOwnScale() throws {
        var rng = SeededRandom(seed: 102)
        let xs = [1, 3, 5, 5], ws = [4, 3, 3, 3], ys = [1, 4, 5, 5]
        let xq = rng.ints(75, in: 0...255), wq = rng.ints(108, in: -30...63), bq = rng.ints(4, in: -2000...2000)
        let zq = rng.ints(100, in: -128...127)
        let sx: Float = 0.25, sw: [Float] = [0.0625, 0.125, 0.03125, 0.0625], sz: Float = 8
        let (acc, _) = K.intConv(xq, xs, wq, ws, pad: 1)
        let real = acc.indices.map { i -> Double in
            let o = (i / 25) % 4
            return max(0, Double(sx) * Double(sw[o]) * Double(acc[i] + bq[o]) + Double(sz) * Double(zq[i]))
        }
        let sy = K.powerOfTwoScale(covering: real.max()!, target: 250)
        let g = Graph(
            name: "qres",
            nodes: [
                K.dq("dqx", "x_q", "sx", "zx", "x"),
                K.dq("dqw", "wq", "ws", "wz", "w", axis: 0),
                K.dq("dqb", "bq", "bs", "bz", "b", axis: 0),
                K.dq("dqz", "z_q", "sz", "zz", "z"),
                K.conv("conv", "x", "w", "b", "c"),
                Node(name: "add", opType: "Add", inputs: ["c", "z"], outputs: ["s"]),
                Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["r"]),
                K.q("q", "r", "sy", "zy", "y_q"),
            ], inputs: [K.value("x_q", .u8, xs), K.value("z_q", .s8, ys)], outputs: [K.value("y_q", .u8, ys)],
            initializers: [
                "sx": K.scalar(sx), "zx": K.u8([], [0]), "wq": K.s8(ws, wq), "ws": K.floats([4], sw), "wz": K.s8([4], [0, 0, 0, 0]),
                "bq": K.s32([4], bq), "bs": K.floats([4], sw.map { $0 * sx }), "bz": K.s32([4], [0, 0, 0, 0]),
                "sz": K.scalar(sz), "zz": K.s8([], [0]), "sy": K.scalar(sy), "zy": K.u8([], [0]),
            ])
        var fused = g
        let report = try QDQFusion().apply(&fused)
        XCTAssertEqual(report.applied, ["Conv 'conv' -> QConv u8 input, u8 output+sum+relu"])
        XCTAssertEqual(K.opTypes(fused), ["QConv"])
        let n = fused.nodes[0]
        XCTAssertEqual(n.inputs, ["x_q", "w.q", "conv.bias", "z_q"])
        XCTAssertEqual(n.postOpNames, ["sum", "relu"])
        XCTAssertEqual(n.int8?.residual?.scale, sz)
        XCTAssertEqual(n.int8?.residual?.type, .s8)

        let (sg, out) = try runFused(g, ["x_q": K.u8(xs, xq), "z_q": K.s8(ys, zq)])
        XCTAssertEqual(K.opTypes(sg), ["QConv"])
        assertQuantized(try XCTUnwrap(out["y_q"]).intValues(), real.map { $0 / Double(sy) }, range: 0...255, "QConv + sum")
    }

    /// `relu(conv(a) + a)` with `a` quantized once and read by both the conv and the Add: the
    /// residual buffer is the convolution's own source, so the sum must not be in place.
    func testResidualThatIsAlsoTheConvSourceIsNotSummedInPlace() throws {
        var rng = SeededRandom(seed: 103)
        let xs = [1, 4, 6, 6], ws = [4, 4, 3, 3]
        let xq = rng.ints(144, in: 0...200), wq = rng.ints(144, in: -30...63), bq = rng.ints(4, in: -2000...2000)
        let sx: Float = 0.25, sw: [Float] = [0.0625, 0.125, 0.03125, 0.0625]
        let (acc, _) = K.intConv(xq, xs, wq, ws, pad: 1)
        let real = acc.indices.map { i -> Double in
            let o = (i / 36) % 4
            return max(0, Double(sx) * Double(sw[o]) * Double(acc[i] + bq[o]) + Double(sx) * Double(xq[i]))
        }
        let sy = K.powerOfTwoScale(covering: real.max()!, target: 250)
        let g = Graph(
            name: "selfres",
            nodes: [
                K.q("qx", "x", "sx", "zx", "x_q"),
                K.dq("dqx", "x_q", "sx", "zx", "xd"),
                K.dq("dqw", "wq", "ws", "wz", "w", axis: 0),
                K.dq("dqb", "bq", "bs", "bz", "b", axis: 0),
                K.conv("conv", "xd", "w", "b", "c"),
                Node(name: "add", opType: "Add", inputs: ["c", "xd"], outputs: ["s"]),
                Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["r"]),
                K.q("q", "r", "sy", "zy", "y_q"),
            ], inputs: [K.f32("x", xs)], outputs: [K.value("y_q", .u8, xs)],
            initializers: [
                "sx": K.scalar(sx), "zx": K.u8([], [0]), "wq": K.s8(ws, wq), "ws": K.floats([4], sw), "wz": K.s8([4], [0, 0, 0, 0]),
                "bq": K.s32([4], bq), "bs": K.floats([4], sw.map { $0 * sx }), "bz": K.s32([4], [0, 0, 0, 0]),
                "sy": K.scalar(sy), "zy": K.u8([], [0]),
            ])
        var fused = g
        _ = try QDQFusion().apply(&fused)
        XCTAssertEqual(K.opTypes(fused), ["QuantizeLinear", "QConv"])
        let n = try XCTUnwrap(K.node(fused, "conv"))
        XCTAssertEqual(n.inputs[0], "x_q")
        XCTAssertEqual(n.inputs.count > 3 ? n.inputs[3] : nil, "x_q")
        XCTAssertEqual(n.postOps.sumInPlace, false, "x_q is the convolution's source too: an in-place sum overwrites it while it is read")

        let x = Tensor(shape: xs, scalars: xq.map { Float($0) * sx })  // exact multiples of sx
        let (_, out) = try runFused(g, ["x": x])
        assertQuantized(try XCTUnwrap(out["y_q"]).intValues(), real.map { $0 / Double(sy) }, range: 0...255, "conv(a) + a")

        // The cause: the same fused graph with the sum made out of place is exact.
        var outOfPlace = fused
        for i in outOfPlace.nodes.indices where outOfPlace.nodes[i].opType == "QConv" {
            outOfPlace.nodes[i].fused?.chain.sumInPlace = false
        }
        let y2 = try XCTUnwrap(K.run(outOfPlace, ["x": x])["y_q"]).intValues()
        assertQuantized(y2, real.map { $0 / Double(sy) }, range: 0...255, "conv(a) + a, sum out of place")
    }

    /// QAdd of two s8 tensors with different scales; QMul likewise.
    func testQAddAndQMulWithDifferentInputScales() throws {
        var rng = SeededRandom(seed: 104)
        let shape = [2, 3, 4]
        let a = rng.ints(24, in: -128...127), b = rng.ints(24, in: -128...127)
        let sa: Float = 0.25, sb: Float = 0.125
        for (op, sy, f) in [
            ("Add", Float(0.5), { (x: Double, y: Double) in x + y }),
            ("Mul", Float(64), { (x: Double, y: Double) in x * y }),
        ] {
            let g = Graph(
                name: "q" + op,
                nodes: [
                    K.dq("dqa", "a_q", "sa", "za", "a"),
                    K.dq("dqb", "b_q", "sb", "zb", "b"),
                    Node(name: "op", opType: op, inputs: ["a", "b"], outputs: ["t"]),
                    K.q("q", "t", "sy", "zy", "y_q"),
                ], inputs: [K.value("a_q", .s8, shape), K.value("b_q", .s8, shape)], outputs: [K.value("y_q", .s8, shape)],
                initializers: [
                    "sa": K.scalar(sa), "za": K.s8([], [0]), "sb": K.scalar(sb), "zb": K.s8([], [0]), "sy": K.scalar(sy), "zy": K.s8([], [0]),
                ])
            var fused = g
            let report = try QDQFusion().apply(&fused)
            XCTAssertEqual(report.applied, ["\(op) 'op' -> Q\(op)"])
            XCTAssertEqual(
                fused.nodes,
                [
                    Node(
                        name: "op", fusedOp: "Q" + op, inputs: ["a_q", "b_q"], outputs: ["y_q"],
                        fused: FusedNode(
                            int8: Int8Operands(
                                src: QuantParams(scale: sa, zeroPoint: 0, type: .s8), src1: QuantParams(scale: sb, zeroPoint: 0, type: .s8),
                                dst: QuantParams(scale: sy, zeroPoint: 0, type: .s8))))
                ])
            let exact = (0..<24).map { f(Double(sa) * Double(a[$0]), Double(sb) * Double(b[$0])) / Double(sy) }
            let (sg, out) = try runFused(g, ["a_q": K.s8(shape, a), "b_q": K.s8(shape, b)])
            XCTAssertEqual(K.opTypes(sg), ["Q" + op])
            assertQuantized(try XCTUnwrap(out["y_q"]).intValues(), exact, range: -128...127, "Q\(op)")
        }
    }

    /// Add with zero points is an INT8 binary (the zero points folded into an eltwise linear
    /// post-op); Mul with zero points, whose cross terms oneDNN's binary cannot add, is a
    /// two-source lookup table. Both equal the integer reference.
    func testBinaryOpsWithZeroPointsRunInt8() throws {
        for (op, fused) in [("Add", "QAdd"), ("Mul", "QLookup")] {
            var g = Graph(
                name: "qbinzp",
                nodes: [
                    K.dq("dqa", "a_q", "s", "za", "a"), K.dq("dqb", "b_q", "s", "zb", "b"),
                    Node(name: "op", opType: op, inputs: ["a", "b"], outputs: ["t"]),
                    K.q("q", "t", "sy", "zb", "y_q"),
                ], inputs: [K.value("a_q", .u8, [4]), K.value("b_q", .u8, [4])], outputs: [K.value("y_q", .u8, [4])],
                initializers: ["s": K.scalar(0.1), "sy": K.scalar(op == "Add" ? 0.1 : 1.3), "za": K.u8([], [3]), "zb": K.u8([], [128])])
            let reference = g
            let report = try QDQFusion().apply(&g)
            XCTAssertEqual(K.opTypes(g), [fused], "\(op): \(report.applied) \(report.skipped)")
            let a = [0, 3, 100, 255], b = [128, 0, 200, 255]
            let out = try K.run(g, ["a_q": K.u8([4], a), "b_q": K.u8([4], b)])["y_q"]!.intValues()
            let want = try K.run(reference, ["a_q": K.u8([4], a), "b_q": K.u8([4], b)])["y_q"]!.intValues()
            let exact = (0..<4).map { k -> Int in
                let ra = 0.1 * Double(a[k] - 3), rb = 0.1 * Double(b[k] - 128)
                let v = op == "Add" ? (ra + rb) / 0.1 : ra * rb / Double(Float(1.3))
                return min(max(Int(v.rounded(.toNearestOrEven)) + 128, 0), 255)
            }
            XCTAssertEqual(out, exact, op)
            XCTAssertEqual(want, exact, "\(op): the QDQ graph itself")
        }
    }

    /// MaxPool, Reshape and Concat between DQ and Q of the same parameters run on the u8
    /// values: no Q/DQ remain, and the result is exactly the integer MaxPool/Reshape/Concat.
    func testPassThroughOpsRunOnInt8() throws {
        var rng = SeededRandom(seed: 105)
        let xq = rng.ints(32, in: 0...255), cq = rng.ints(4, in: 0...255)
        let g = Graph(
            name: "pass",
            nodes: [
                K.dq("dq0", "x_q", "s", "z", "d0"),
                Node(
                    name: "mp", opType: "MaxPool", inputs: ["d0"], outputs: ["p"],
                    attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
                K.q("q1", "p", "s", "z", "t1"),
                K.dq("dq1", "t1", "s", "z", "d1"),
                Node(name: "rs", opType: "Reshape", inputs: ["d1", "shape"], outputs: ["f"]),
                K.q("q2", "f", "s", "z", "t2"),
                K.dq("dq2", "t2", "s", "z", "d2"),
                K.dq("dq3", "c_q", "s", "z", "d3"),
                Node(name: "cat", opType: "Concat", inputs: ["d2", "d3"], outputs: ["cc"], attributes: ["axis": .int(1)]),
                K.q("q3", "cc", "s", "z", "y_q"),
            ], inputs: [K.value("x_q", .u8, [1, 2, 4, 4]), K.value("c_q", .u8, [1, 4])], outputs: [K.value("y_q", .u8, [1, 12])],
            initializers: ["s": K.scalar(0.1), "z": K.u8([], [5]), "shape": K.i64([1, 8])])
        var fused = g
        let report = try QDQFusion().apply(&fused)
        XCTAssertEqual(report.applied, ["MaxPool 'mp' runs on u8", "Reshape 'rs' runs on u8", "Concat 'cat' runs on u8"])
        XCTAssertEqual(K.opTypes(fused), ["MaxPool", "Reshape", "Concat"])
        XCTAssertEqual(K.node(fused, "mp")?.inputs, ["x_q"])
        XCTAssertEqual(K.node(fused, "rs")?.inputs, ["t1", "shape"])
        XCTAssertEqual(K.node(fused, "cat")?.inputs, ["t2", "c_q"])
        XCTAssertEqual(K.node(fused, "cat")?.outputs, ["y_q"])

        var expected: [Int] = []
        for c in 0..<2 {
            for oy in 0..<2 {
                for ox in 0..<2 {
                    var m = 0
                    for dy in 0..<2 { for dx in 0..<2 { m = max(m, xq[(c * 4 + oy * 2 + dy) * 4 + ox * 2 + dx]) } }
                    expected.append(m)
                }
            }
        }
        expected += cq
        let (sg, out) = try runFused(g, ["x_q": K.u8([1, 2, 4, 4], xq), "c_q": K.u8([1, 4], cq)])
        XCTAssertEqual(K.count(sg, "QuantizeLinear") + K.count(sg, "DequantizeLinear"), 0, "\(K.opTypes(sg))")
        let y = try XCTUnwrap(out["y_q"])
        XCTAssertEqual(y.elementType, .u8)
        assertExact(y.intValues(), expected)
    }

    func testPassThroughNeedsEqualParameters() throws {
        // MaxPool followed by a Q of another scale: stays FP32 between its Q/DQ.
        var g = Graph(
            name: "noPass",
            nodes: [
                K.dq("dq0", "x_q", "s", "z", "d0"),
                Node(name: "mp", opType: "MaxPool", inputs: ["d0"], outputs: ["p"], attributes: ["kernel_shape": .ints([2, 2])]),
                K.q("q1", "p", "s2", "z", "y_q"),
            ], inputs: [K.value("x_q", .u8, [1, 1, 4, 4])], outputs: [K.value("y_q", .u8, [1, 1, 3, 3])],
            initializers: ["s": K.scalar(0.1), "s2": K.scalar(0.2), "z": K.u8([], [0])])
        let nodes = g.nodes
        _ = try QDQFusion().apply(&g)
        XCTAssertEqual(g.nodes, nodes)

        // Concat of inputs with different scales.
        var g2 = Graph(
            name: "noConcat",
            nodes: [
                K.dq("dqa", "a_q", "s", "z", "a"), K.dq("dqb", "b_q", "s2", "z", "b"),
                Node(name: "cat", opType: "Concat", inputs: ["a", "b"], outputs: ["c"], attributes: ["axis": .int(0)]),
                K.q("q", "c", "s", "z", "y_q"),
            ], inputs: [K.value("a_q", .u8, [2]), K.value("b_q", .u8, [2])], outputs: [K.value("y_q", .u8, [4])],
            initializers: ["s": K.scalar(0.1), "s2": K.scalar(0.2), "z": K.u8([], [0])])
        let nodes2 = g2.nodes
        let r2 = try QDQFusion().apply(&g2)
        XCTAssertEqual(g2.nodes, nodes2)
        XCTAssertEqual(r2.skipped, ["Concat 'cat': inputs with different scales stay FP32"])
    }

    func testConvWithFloatWeightsIsSkipped() throws {
        var g = Graph(
            name: "fw",
            nodes: [
                K.dq("dqx", "x_q", "s", "z", "x"),
                K.conv("conv", "x", "W", nil, "y"),
            ], inputs: [K.value("x_q", .u8, [1, 2, 4, 4])], outputs: [K.f32("y", [1, 3, 4, 4])],
            initializers: ["s": K.scalar(0.1), "z": K.u8([], [0]), "W": K.random([3, 2, 3, 3], seed: 106)])
        let nodes = g.nodes
        let report = try QDQFusion().apply(&g)
        XCTAssertEqual(g.nodes, nodes)
        XCTAssertEqual(report.skipped, ["Conv 'conv': weights are not a dequantized s8 constant"])
    }
}
