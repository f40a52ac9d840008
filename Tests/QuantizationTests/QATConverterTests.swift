import DNNL
import Foundation
import TestSupport
import XCTest

@testable import Quantization

/// The QDQ forms QAT exporters and other quantizers write, each run on INT8 kernels and
/// checked against an integer reference computed here with naive loops:
/// `acc = sum (x_q - zx) * w_q` exactly (Double holds these integers exactly), then
/// `y_q = sat(round((sx * sw[oc] * acc + b) / sy) + zy)`. The engine's outputs must be within
/// one step of it everywhere (the f32 output scale may move a tie) and equal on >= 99% of the
/// elements; invalid files must be refused naming the node.
final class QATConverterTests: XCTestCase {
    typealias K = PassKit

    /// Quantization parameters of the source and the result of a case.
    struct Params {
        var sx: Float = 0.05, zx = 37, xType = ElementType.u8
        var sy: Float = 0.2, zy = 11, yType = ElementType.u8
        var range: ClosedRange<Int> { xType == .u8 ? 0...255 : -128...127 }
        var yRange: ClosedRange<Int> { yType == .u8 ? 0...255 : -128...127 }
    }

    /// An input whose quantized values are known: `x = sx * (q - zx + 0.25)` with random
    /// integers `q` over the whole range (no rounding tie), and those `q`.
    static func gridInput(_ shape: [Int], _ p: Params, seed: UInt64) -> (x: Tensor, q: [Int]) {
        var r = SeededRandom(seed: seed)
        let q = r.floats(shape.reduce(1, *), in: 0...1).map { p.range.lowerBound + Int($0 * Float(p.range.count - 1)) }
        return (Tensor(shape: shape, scalars: q.map { p.sx * (Float($0 - p.zx) + 0.25) }), q)
    }

    /// Random s8 weights over the full range, -128 and 127 included (with `bits` 7: over
    /// -63...63, which u8 x s8 kernels without VNNI compute exactly).
    static func fullRangeWeights(_ count: Int, seed: UInt64, bits: Int = 8) -> [Int] {
        var r = SeededRandom(seed: seed)
        let (lo, hi) = bits == 8 ? (-128, 127) : (-63, 63)
        var w = r.floats(count, in: 0...1).map { lo + Int($0 * (Float(hi - lo) + 0.99)) }
        w[0] = lo
        w[count - 1] = hi
        return w
    }

    /// `x -> Q -> DQ -> [core] -> Q -> DQ -> y` (or `-> y` when `quantizeOutput` is false).
    static func qdqGraph(
        _ p: Params, xShape: [Int], yShape: [Int], core: [Node], coreOutput: String, initializers: [String: Tensor],
        quantizeOutput: Bool = true
    ) -> Graph {
        var nodes = [K.q("qx", "x", "sx", "zx", "xq"), K.dq("dqx", "xq", "sx", "zx", "xd")] + core
        var inits = initializers
        inits["sx"] = inits["sx"] ?? K.scalar(p.sx)
        inits["zx"] = inits["zx"] ?? (p.xType == .u8 ? K.u8([], [p.zx]) : K.s8([], [p.zx]))
        if quantizeOutput {
            nodes += [K.q("qy", coreOutput, "sy", "zy", "yq"), K.dq("dqy", "yq", "sy", "zy", "y")]
            inits["sy"] = inits["sy"] ?? K.scalar(p.sy)
            inits["zy"] = inits["zy"] ?? (p.yType == .u8 ? K.u8([], [p.zy]) : K.s8([], [p.zy]))
        } else {
            nodes.append(Node(name: "out", opType: "Identity", inputs: [coreOutput], outputs: ["y"]))
        }
        return Graph(name: "qdq", nodes: nodes, inputs: [K.f32("x", xShape)], outputs: [K.f32("y", yShape)], initializers: inits)
    }

    /// The real result of the integer reference: `sy * (y_q - zy)` per element, from `acc` and
    /// the real scale and bias of each element's channel; the accumulators themselves when no
    /// output quantizer follows.
    static func expected(_ acc: [Double], channelOf: (Int) -> Int, realScale: [Double], bias: [Double], _ p: Params, quantized: Bool) -> [Double] {
        acc.enumerated().map { i, a in
            let real = realScale[channelOf(i)] * a + bias[channelOf(i)]
            guard quantized else { return real }
            let q = Reference.quantize(real, scale: 1 / Double(p.sy), zeroPoint: p.zy, range: p.yRange)
            return Double(p.sy) * Double(q - p.zy)
        }
    }

    /// Runs `g` on the engine and checks `y` against `want` (one step; >= 99% exact when
    /// quantized, 1e-4 relative when not) and that `anchors` ran on INT8 primitives. On a CPU
    /// without VNNI (`ONEDNN_MAX_CPU_ISA=AVX2`, `AVX512_CORE`: `QATISAMatrixTests`) an anchor
    /// with weights beyond 7 bits may instead run the exact FP32 path, reported as such;
    /// `int8Everywhere` anchors (7-bit weights) must be INT8 there too.
    func check(
        _ g: Graph, _ feeds: [String: Tensor], want: [Double], step: Double?, anchors: [String], _ label: String,
        opset: Int = 13, int8Everywhere: Bool = false, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let session = try K.session(g, opset: opset, optimize: true)
        let got = try XCTUnwrap(session.run(feeds)["y"], file: file, line: line).floatValues().map(Double.init)
        XCTAssertEqual(got.count, want.count, "\(label): element count", file: file, line: line)
        if let step {
            let off = zip(got, want).map { abs($0 - $1) / step }
            let worst = off.max() ?? 0
            let exact = Double(off.filter { $0 < 1e-3 }.count) / Double(max(off.count, 1))
            XCTAssertLessThanOrEqual(worst, 1.001, "\(label): \(worst) steps from the integer reference", file: file, line: line)
            XCTAssertGreaterThanOrEqual(exact, 0.99, "\(label): only \(exact * 100)% exact", file: file, line: line)
        } else {
            let scale = want.map(abs).max() ?? 1
            let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1e-4 * scale, "\(label): f32 output off by \(worst)", file: file, line: line)
        }
        let report = try session.nodeReport(for: feeds)
        let vnni = Int8Rule().weightMax == 127
        for a in anchors {
            let steps = report.filter { $0.node.contains("'\(a)'") }
            let int8 = steps.contains { $0.precision == .int8 && ($0.detail.contains("u8") || $0.detail.contains("s8")) }
            let exactFP32 = steps.contains { $0.isFP32Fallback && $0.detail.contains("no VNNI") }
            XCTAssertTrue(
                int8 || (!vnni && !int8Everywhere && exactFP32), "\(label): \(a) is not INT8: \(steps.map(\.detail))", file: file,
                line: line)
        }
        XCTAssertEqual(Set(Set(want).map { ($0 * 1e6).rounded() }).count > 8, true, "\(label): degenerate reference", file: file, line: line)
    }

    /// Integer accumulators of a convolution over `q - zx` (padding is the real 0).
    static func accumulators(_ xq: [Int], _ xShape: [Int], _ w: [Int], _ wShape: [Int], _ g: Conv2DGeometry, zx: Int) -> [Double] {
        Reference.convolution(
            src: xq.map { Double($0 - zx) }, n: xShape[0], c: xShape[1], h: xShape[2], w: xShape[3], weights: w.map(Double.init),
            oc: wShape[0], bias: nil, geometry: g)
    }

    // MARK: exact INT8 on each form

    /// Conv with asymmetric u8 (zero point 37) and s8 (zero point -5) sources, per-channel
    /// full-range s8 weights, an s32 bias DequantizeLinear (`sx * sw[oc]`), u8 and s8 results
    /// with zero points, asymmetric padding and stride 2, grouped and depthwise, and a float
    /// result after the last DequantizeLinear.
    func testConvolutionMatchesTheIntegerReference() throws {
        let shapes: [(Params, groups: Int, stride: Int, quantized: Bool)] = [
            (Params(), 1, 1, true),
            (Params(sx: 0.04, zx: -5, xType: .s8, sy: 0.3, zy: 3, yType: .s8), 1, 2, true),
            (Params(zx: 128), 2, 1, true),
            (Params(sx: 0.03, zx: 0, xType: .s8, sy: 0.1, zy: -7, yType: .s8), 6, 1, true),
            (Params(), 1, 1, false),
        ]
        let cases = [8, 7].flatMap { bits in shapes.map { (p: $0.0, groups: $0.groups, stride: $0.stride, quantized: $0.quantized, bits: bits) } }
        for (k, c) in cases.enumerated() {
            let p = c.p
            let bits = c.bits
            let (n, ic, h, w, oc) = (2, 6, 9, 11, c.groups == 6 ? 6 : 8)
            let wShape = [oc, ic / c.groups, 3, 3]
            let wq = Self.fullRangeWeights(wShape.reduce(1, *), seed: 40 + UInt64(k), bits: bits)
            let sw = (0..<oc).map { Float(0.002 + 0.0005 * Double($0)) }
            let biasQ = (0..<oc).map { ($0 % 3 - 1) * 5000 + $0 * 77 }
            let geometry = Conv2DGeometry(
                kernel: (3, 3), stride: (c.stride, c.stride), padBegin: (0, 1), padEnd: (1, 0), groups: c.groups)
            let (oh, ow) = geometry.convOutput(h: h, w: w)
            let (x, xq) = Self.gridInput([n, ic, h, w], p, seed: 10 + UInt64(k))
            let conv = Node(
                name: "conv", opType: "Conv", inputs: ["xd", "wd", "bd"], outputs: ["c"],
                attributes: [
                    "pads": .ints([0, 1, 1, 0]), "strides": .ints([c.stride, c.stride]), "group": .int(c.groups),
                    "kernel_shape": .ints([3, 3]),
                ])
            let biasScale = sw.map { p.sx * $0 }
            let g = Self.qdqGraph(
                p, xShape: [n, ic, h, w], yShape: [n, oc, oh, ow],
                core: [K.dq("dqw", "wq", "sw", "zw", "wd", axis: 0), K.dq("dqb", "bq", "sb", "zb", "bd", axis: 0), conv], coreOutput: "c",
                initializers: [
                    "wq": K.s8(wShape, wq), "sw": K.floats([oc], sw), "zw": K.s8([oc], [Int](repeating: 0, count: oc)),
                    "bq": K.s32([oc], biasQ), "sb": K.floats([oc], biasScale), "zb": K.s32([oc], [Int](repeating: 0, count: oc)),
                ], quantizeOutput: c.quantized)
            let acc = Self.accumulators(xq, [n, ic, h, w], wq, wShape, geometry, zx: p.zx)
            let per = oh * ow
            let realScale = sw.map { Double(p.sx) * Double($0) }
            let bias = zip(biasQ, biasScale).map { Double($0) * Double($1) }
            let want = Self.expected(acc, channelOf: { ($0 / per) % oc }, realScale: realScale, bias: bias, p, quantized: c.quantized)
            try check(
                g, ["x": x], want: want, step: c.quantized ? Double(p.sy) : nil, anchors: ["conv"], "conv case \(k) (\(bits)-bit weights)",
                int8Everywhere: bits == 7)
        }
    }

    /// PyTorch's Linear export: `DQ(W[N, K], axis 0) -> Transpose -> MatMul`; a Gemm with
    /// `transB` on `DQ(W[N, K], axis 0)`; and a per-axis DQ of `W[2, K/2, N]` (axis 2) reshaped
    /// to `[K, N]`: the weights are moved across the layout op and run INT8.
    func testWeightsThroughTransposeAndReshapeRunInt8() throws {
        for bits in [8, 7] { try weightsThroughLayoutOps(bits: bits) }
    }

    private func weightsThroughLayoutOps(bits: Int) throws {
        let p = Params(sx: 0.03, zx: 100)
        let (m, kk, n) = (5, 24, 10)
        let wq = Self.fullRangeWeights(n * kk, seed: 7, bits: bits)  // [N, K]
        let sw = (0..<n).map { Float(0.001 * Double($0 + 1)) }
        let (x, xq) = Self.gridInput([m, kk], p, seed: 8)
        // acc[m, n] = sum_k (x - zx) w[n, k]
        var acc = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for t in 0..<kk { acc[i * n + j] += Double(xq[i * kk + t] - p.zx) * Double(wq[j * kk + t]) } } }
        let want = Self.expected(
            acc, channelOf: { $0 % n }, realScale: sw.map { Double(p.sx) * Double($0) }, bias: [Double](repeating: 0, count: n), p, quantized: true)
        let base: [String: Tensor] = ["wq": K.s8([n, kk], wq), "sw": K.floats([n], sw)]
        let transpose = Self.qdqGraph(
            p, xShape: [m, kk], yShape: [m, n],
            core: [
                K.dq("dqw", "wq", "sw", "", "wd", axis: 0),
                Node(name: "t", opType: "Transpose", inputs: ["wd"], outputs: ["wt"], attributes: ["perm": .ints([1, 0])]),
                Node(name: "mm", opType: "MatMul", inputs: ["xd", "wt"], outputs: ["c"]),
            ], coreOutput: "c", initializers: base)
        try check(transpose, ["x": x], want: want, step: Double(p.sy), anchors: ["mm"], "DQ -> Transpose -> MatMul", int8Everywhere: bits == 7)
        let gemm = Self.qdqGraph(
            p, xShape: [m, kk], yShape: [m, n],
            core: [
                K.dq("dqw", "wq", "sw", "", "wd", axis: 0),
                Node(name: "gemm", opType: "Gemm", inputs: ["xd", "wd"], outputs: ["c"], attributes: ["transB": .int(1)]),
            ], coreOutput: "c", initializers: base)
        try check(gemm, ["x": x], want: want, step: Double(p.sy), anchors: ["gemm"], "Gemm transB", int8Everywhere: bits == 7)
        // [K, N] as [2, K/2, N] per axis 2, reshaped back.
        var wkn = [Int](repeating: 0, count: kk * n)
        for j in 0..<n { for t in 0..<kk { wkn[t * n + j] = wq[j * kk + t] } }
        let reshape = Self.qdqGraph(
            p, xShape: [m, kk], yShape: [m, n],
            core: [
                K.dq("dqw", "w3", "sw", "", "wd", axis: 2),
                Node(name: "r", opType: "Reshape", inputs: ["wd", "shape"], outputs: ["wr"]),
                Node(name: "mm", opType: "MatMul", inputs: ["xd", "wr"], outputs: ["c"]),
            ], coreOutput: "c", initializers: ["w3": K.s8([2, kk / 2, n], wkn), "sw": K.floats([n], sw), "shape": K.i64([kk, n])])
        try check(reshape, ["x": x], want: want, step: Double(p.sy), anchors: ["mm"], "DQ(axis 2) -> Reshape -> MatMul", int8Everywhere: bits == 7)
    }

    /// u8 weights with zero point 128 (exact as s8), and activation-only fake quantization
    /// (FP32 weights on an 8-bit grid): INT8, equal to the integer reference.
    func testU8WeightsAndGridWeightsRunInt8Exactly() throws {
        let p = Params()
        let (n, ic, h, w, oc) = (1, 4, 7, 7, 5)
        let wShape = [oc, ic, 3, 3]
        let wq = Self.fullRangeWeights(wShape.reduce(1, *), seed: 21)
        let sw = (0..<oc).map { Float(0.003 + 0.001 * Double($0)) }
        let geometry = Conv2DGeometry(kernel: (3, 3), padBegin: (1, 1), padEnd: (1, 1))
        let (x, xq) = Self.gridInput([n, ic, h, w], p, seed: 22)
        let acc = Self.accumulators(xq, [n, ic, h, w], wq, wShape, geometry, zx: p.zx)
        let want = Self.expected(
            acc, channelOf: { ($0 / (h * w)) % oc }, realScale: sw.map { Double(p.sx) * Double($0) }, bias: [Double](repeating: 0, count: oc),
            p, quantized: true)
        let conv = K.conv("conv", "xd", "wd", nil, "c")
        let u8 = Self.qdqGraph(
            p, xShape: [n, ic, h, w], yShape: [n, oc, h, w], core: [K.dq("dqw", "wq", "sw", "zw", "wd", axis: 0), conv], coreOutput: "c",
            initializers: [
                "wq": K.u8(wShape, wq.map { $0 + 128 }), "sw": K.floats([oc], sw), "zw": K.u8([oc], [Int](repeating: 128, count: oc)),
            ])
        try check(u8, ["x": x], want: want, step: Double(p.sy), anchors: ["conv"], "u8 weights, zero point 128")
        // The same weights stored as floats s * k, with no weight DequantizeLinear, as an
        // abs-max fake quantizer leaves them: |k| <= 127 and each channel reaches 127.
        let per = wShape.dropFirst().reduce(1, *)
        let wq127 = wq.enumerated().map { i, v in i % per == 0 ? 127 : max(v, -127) }
        let acc127 = Self.accumulators(xq, [n, ic, h, w], wq127, wShape, geometry, zx: p.zx)
        var maxK = [Int](repeating: 0, count: oc)
        for (i, v) in wq127.enumerated() { maxK[i / per] = max(maxK[i / per], abs(v)) }
        let floats = wq127.enumerated().map { i, v in sw[i / per] * Float(v) }
        let want127 = Self.expected(
            acc127, channelOf: { ($0 / (h * w)) % oc }, realScale: sw.map { Double(p.sx) * Double($0) },
            bias: [Double](repeating: 0, count: oc), p, quantized: true)
        let grid = Self.qdqGraph(
            p, xShape: [n, ic, h, w], yShape: [n, oc, h, w], core: [K.conv("conv", "xd", "wf", nil, "c")], coreOutput: "c",
            initializers: ["wf": K.floats(wShape, floats)])
        XCTAssertEqual(maxK, [Int](repeating: 127, count: oc))
        try check(grid, ["x": x], want: want127, step: Double(p.sy), anchors: ["conv"], "activation-only fake quantization")
    }

    /// NNCF's weights (`QuantizeLinear(W f32) -> DequantizeLinear`, per channel) and
    /// onnxruntime's 1e-34 scale of a near-zero weight channel: INT8, equal to the integer
    /// reference (the tiny channel's contribution is far below an output step: bias only).
    func testWeightQuantizerAndTinyScaleChannelRunInt8() throws {
        let p = Params()
        let (n, ic, h, w, oc) = (1, 3, 6, 6, 4)
        let wShape = [oc, ic, 3, 3]
        let per = wShape.dropFirst().reduce(1, *)
        let wq = Self.fullRangeWeights(wShape.reduce(1, *), seed: 111, bits: 7)
        var sw: [Float] = [0.004, 0.003, 0.002, 0.005]
        let floats = wq.enumerated().map { i, v in sw[i / per] * Float(v) }
        let (x, xq) = Self.gridInput([n, ic, h, w], p, seed: 112)
        let geometry = Conv2DGeometry(kernel: (3, 3), padBegin: (1, 1), padEnd: (1, 1))
        let acc = Self.accumulators(xq, [n, ic, h, w], wq, wShape, geometry, zx: p.zx)
        let bias: [Float] = [0.33, -0.71, 1.13, 0.07]  // no rounding ties at sy = 0.2
        func want(_ scales: [Float]) -> [Double] {
            Self.expected(
                acc, channelOf: { ($0 / (h * w)) % oc }, realScale: scales.map { Double(p.sx) * Double($0) }, bias: bias.map(Double.init), p,
                quantized: true)
        }
        let nncf = Self.qdqGraph(
            p, xShape: [n, ic, h, w], yShape: [n, oc, h, w],
            core: [
                Node(name: "qw", opType: "QuantizeLinear", inputs: ["wf", "sw", "zw"], outputs: ["wq"], attributes: ["axis": .int(0)]),
                K.dq("dqw", "wq", "sw", "zw", "wd", axis: 0), K.conv("conv", "xd", "wd", "b", "c"),
            ], coreOutput: "c",
            initializers: [
                "wf": K.floats(wShape, floats), "sw": K.floats([oc], sw), "zw": K.s8([oc], [0, 0, 0, 0]), "b": K.floats([oc], bias),
            ])
        try check(nncf, ["x": x], want: want(sw), step: Double(p.sy), anchors: ["conv"], "QuantizeLinear(W) -> DQ", int8Everywhere: true)
        sw[2] = 1.1106744e-34
        let tiny = Self.qdqGraph(
            p, xShape: [n, ic, h, w], yShape: [n, oc, h, w],
            core: [K.dq("dqw", "wq", "sw", "", "wd", axis: 0), K.conv("conv", "xd", "wd", "b", "c")], coreOutput: "c",
            initializers: ["wq": K.s8(wShape, wq), "sw": K.floats([oc], sw), "b": K.floats([oc], bias)])
        try check(tiny, ["x": x], want: want(sw), step: Double(p.sy), anchors: ["conv"], "1e-34 weight scale", int8Everywhere: true)
    }

    /// onnxruntime's `Concat(DQ(a), DQ(b)) -> Conv` with no QuantizeLinear after the Concat,
    /// and NNCF's `DQ(x) -> Reshape -> Transpose -> MatMul`: the data movement runs on the int8
    /// values and the Conv/MatMul on INT8, equal to the integer reference.
    func testDequantizedActivationsThroughDataMovementReachInt8() throws {
        let p = Params(sx: 0.05, zx: 0, xType: .s8, sy: 0.1, zy: 0, yType: .s8)
        let (n, c, h, w, oc) = (1, 3, 5, 5, 4)
        let wShape = [oc, 2 * c, 3, 3]
        let wq = Self.fullRangeWeights(wShape.reduce(1, *), seed: 121, bits: 7)
        let (x, xq) = Self.gridInput([n, c, h, w], p, seed: 122)
        let concat = Self.qdqGraph(
            p, xShape: [n, c, h, w], yShape: [n, oc, h, w],
            core: [
                K.dq("dqx2", "xq", "sx", "zx", "xd2"),
                Node(name: "cat", opType: "Concat", inputs: ["xd", "xd2"], outputs: ["cat_out"], attributes: ["axis": .int(1)]),
                K.dq("dqw", "wq", "sw", "", "wd"), K.conv("conv", "cat_out", "wd", nil, "c"),
            ], coreOutput: "c", initializers: ["wq": K.s8(wShape, wq), "sw": K.scalar(0.01)])
        let geometry = Conv2DGeometry(kernel: (3, 3), padBegin: (1, 1), padEnd: (1, 1))
        let acc = Self.accumulators(xq + xq, [n, 2 * c, h, w], wq, wShape, geometry, zx: p.zx)
        let zero = [Double](repeating: 0, count: oc)
        let want = Self.expected(
            acc, channelOf: { ($0 / (h * w)) % oc }, realScale: [Double](repeating: Double(p.sx) * 0.01, count: oc), bias: zero, p,
            quantized: true)
        try check(concat, ["x": x], want: want, step: Double(p.sy), anchors: ["conv"], "DQ -> Concat -> Conv", int8Everywhere: true)
        // [1, 3, 5, 5] -> Reshape [3, 25] -> Transpose [25, 3] -> MatMul [3, 4]
        let mw = Self.fullRangeWeights(c * oc, seed: 123, bits: 7)
        let matmul = Self.qdqGraph(
            p, xShape: [n, c, h, w], yShape: [h * w, oc],
            core: [
                Node(name: "r", opType: "Reshape", inputs: ["xd", "shape"], outputs: ["xr"]),
                Node(name: "t", opType: "Transpose", inputs: ["xr"], outputs: ["xt"], attributes: ["perm": .ints([1, 0])]),
                K.dq("dqw", "mw", "sw", "", "wd"), Node(name: "mm", opType: "MatMul", inputs: ["xt", "wd"], outputs: ["c"]),
            ], coreOutput: "c", initializers: ["mw": K.s8([c, oc], mw), "sw": K.scalar(0.02), "shape": K.i64([c, h * w])])
        var macc = [Double](repeating: 0, count: h * w * oc)
        for i in 0..<(h * w) { for j in 0..<oc { for k in 0..<c { macc[i * oc + j] += Double(xq[k * h * w + i] * mw[k * oc + j]) } } }
        let mwant = Self.expected(
            macc, channelOf: { $0 % oc }, realScale: [Double](repeating: Double(p.sx) * 0.02, count: oc), bias: zero, p, quantized: true)
        try check(matmul, ["x": x], want: mwant, step: Double(p.sy), anchors: ["mm"], "DQ -> Reshape -> Transpose -> MatMul", int8Everywhere: true)
    }

    /// Forms that must stay FP32, with the reason in the converter's decisions, and still
    /// compute what the QDQ graph computes (the engine with QDQ fusion off): weights whose
    /// zero point pushes them outside s8, FP32 weights off the 8-bit grid, and a reshape that
    /// splits the per-channel axis.
    func testFormsThatStayFP32SayWhy() throws {
        let p = Params()
        let (n, ic, h, w, oc) = (1, 3, 6, 6, 4)
        let wShape = [oc, ic, 3, 3]
        let count = wShape.reduce(1, *)
        let (x, _) = Self.gridInput([n, ic, h, w], p, seed: 31)
        let conv = K.conv("conv", "xd", "wd", nil, "c")
        var r = SeededRandom(seed: 32)
        let graphs: [(String, Graph, String)] = [
            (
                "zero point 10 on u8 weights up to 250",
                Self.qdqGraph(
                    p, xShape: [n, ic, h, w], yShape: [n, oc, h, w], core: [K.dq("dqw", "wq", "sw", "zw", "wd"), conv], coreOutput: "c",
                    initializers: ["wq": K.u8(wShape, (0..<count).map { $0 % 2 == 0 ? 250 : 3 }), "sw": K.scalar(0.01), "zw": K.u8([], [10])]),
                "outside s8"
            ),
            (
                "FP32 weights off the grid",
                Self.qdqGraph(
                    p, xShape: [n, ic, h, w], yShape: [n, oc, h, w], core: [K.conv("conv", "xd", "wf", nil, "c")], coreOutput: "c",
                    initializers: ["wf": K.floats(wShape, r.floats(count, in: -1...1))]),
                "not on an 8-bit grid"
            ),
            (
                "per-axis weights whose axis a Reshape splits",
                Self.qdqGraph(
                    p, xShape: [5, 12], yShape: [5, 2],
                    core: [
                        K.dq("dqw", "w6", "s6", "", "wd", axis: 1),
                        Node(name: "r", opType: "Reshape", inputs: ["wd", "shape"], outputs: ["wr"]),
                        Node(name: "mm", opType: "MatMul", inputs: ["xd", "wr"], outputs: ["c"]),
                    ], coreOutput: "c",
                    initializers: [
                        "w6": K.s8([4, 6], Self.fullRangeWeights(24, seed: 33)), "s6": K.floats([6], [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]),
                        "shape": K.i64([12, 2]),
                    ]),
                "does not survive"
            ),
        ]
        for (label, g, why) in graphs {
            let conversion = try QATConverter().convert(Model(graph: g, opsetVersion: 13))
            let anchor = try XCTUnwrap(conversion.nodes.first { $0.opType == "Conv" || $0.opType == "MatMul" }, label)
            XCTAssertEqual(anchor.precision, .fp32, "\(label): \(anchor)")
            let reasons = ([anchor.reason ?? ""] + conversion.passReports.flatMap(\.skipped)).joined(separator: " | ")
            XCTAssertTrue(reasons.contains(why), "\(label): reasons \(reasons)")
            let feeds = ["x": g.inputs[0].shape!.count == 4 ? x : Self.gridInput([5, 12], p, seed: 34).x]
            let got = try K.session(g, optimize: true).run(feeds)["y"]!.floatValues()
            let reference = try K.session(g, optimize: true, disabled: ["qdq-fusion", "qdq-normalization"]).run(feeds)["y"]!.floatValues()
            XCTAssertEqual(got, reference, "\(label): differs from the QDQ graph")
        }
    }

    /// One DequantizeLinear read by two convolutions and an FP32 Sigmoid, and one
    /// QuantizeLinear read by two DequantizeLinears: both convolutions INT8 and exact, the
    /// Sigmoid reads the dequantized values.
    func testSharedDequantizeAndQuantizeFeedEveryReader() throws {
        let p = Params()
        let (n, ic, h, w, oc) = (1, 3, 5, 5, 4)
        let wShape = [oc, ic, 3, 3]
        let wa = Self.fullRangeWeights(wShape.reduce(1, *), seed: 51), wb = Self.fullRangeWeights(wShape.reduce(1, *), seed: 52)
        let (x, xq) = Self.gridInput([n, ic, h, w], p, seed: 53)
        let g = Graph(
            name: "shared",
            nodes: [
                K.q("qx", "x", "sx", "zx", "xq"), K.dq("dqx", "xq", "sx", "zx", "xd"), K.dq("dqx2", "xq", "sx", "zx", "xd2"),
                K.dq("dqa", "wa", "sw", "", "wad"), K.dq("dqb", "wb", "sw", "", "wbd"),
                K.conv("ca", "xd", "wad", nil, "a"), K.conv("cb", "xd2", "wbd", nil, "b"), K.conv("cc", "xd", "wbd", nil, "cc_out"),
                Node(name: "sig", opType: "Sigmoid", inputs: ["xd"], outputs: ["s"]),
                K.q("qa", "a", "sy", "zy", "aq"), K.dq("dqa2", "aq", "sy", "zy", "y"),
                K.q("qb", "b", "sy", "zy", "bq"), K.dq("dqb2", "bq", "sy", "zy", "yb"),
            ],
            inputs: [K.f32("x", [n, ic, h, w])],
            outputs: [K.f32("y", [n, oc, h, w]), K.f32("yb", [n, oc, h, w]), K.f32("cc_out", [n, oc, h, w]), K.f32("s", [n, ic, h, w])],
            initializers: [
                "sx": K.scalar(p.sx), "zx": K.u8([], [p.zx]), "sy": K.scalar(p.sy), "zy": K.u8([], [p.zy]),
                "wa": K.s8(wShape, wa), "wb": K.s8(wShape, wb), "sw": K.scalar(0.004),
            ])
        let geometry = Conv2DGeometry(kernel: (3, 3), padBegin: (1, 1), padEnd: (1, 1))
        let scale = [Double](repeating: Double(p.sx) * 0.004, count: oc), zero = [Double](repeating: 0, count: oc)
        let channel: (Int) -> Int = { ($0 / (h * w)) % oc }
        let wantA = Self.expected(
            Self.accumulators(xq, [n, ic, h, w], wa, wShape, geometry, zx: p.zx), channelOf: channel, realScale: scale, bias: zero, p,
            quantized: true)
        let accB = Self.accumulators(xq, [n, ic, h, w], wb, wShape, geometry, zx: p.zx)
        let wantB = Self.expected(accB, channelOf: channel, realScale: scale, bias: zero, p, quantized: true)
        let wantC = Self.expected(accB, channelOf: channel, realScale: scale, bias: zero, p, quantized: false)
        let session = try K.session(g, optimize: true)
        let out = try session.run(["x": x])
        for (name, want, step) in [("y", wantA, Double(p.sy)), ("yb", wantB, Double(p.sy)), ("cc_out", wantC, 0)] {
            let got = out[name]!.floatValues().map(Double.init)
            let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, step > 0 ? step * 1.001 : 1e-4 * (want.map(abs).max() ?? 1), "\(name): off by \(worst)")
        }
        let sigmoid = out["s"]!.floatValues()
        for (i, q) in xq.enumerated() {
            let v = Double(p.sx) * Double(q - p.zx)
            XCTAssertEqual(Double(sigmoid[i]), 1 / (1 + exp(-v)), accuracy: 1e-6)
        }
        let report = try session.nodeReport(for: ["x": x])
        let vnni = Int8Rule().weightMax == 127
        for c in ["ca", "cb", "cc"] {
            let steps = report.filter { $0.node.contains("'\(c)'") }
            let ok = steps.contains { $0.precision == .int8 } || (!vnni && steps.contains { $0.isFP32Fallback && $0.detail.contains("no VNNI") })
            XCTAssertTrue(ok, "\(c): \(steps.map(\.detail))")
        }
    }

    /// A weight channel of scale 0 (its output is the bias) next to a denormal scale and a bias
    /// whose s32 form (`b / (sx * sw)`) overflows: the converter keeps each exact.
    func testZeroScaleChannelAndHugeBias() throws {
        let p = Params(sy: 40, zy: 0, yType: .s8)
        let (n, ic, h, w, oc) = (1, 2, 4, 4, 3)
        let wShape = [oc, ic, 3, 3]
        let wq = Self.fullRangeWeights(wShape.reduce(1, *), seed: 61)
        let sw: [Float] = [0, 1e-3, 2e-3]
        let bias: [Float] = [-1200, 3.5e3, 20]  // b / (sx * sw) for channel 1: 7e7; oversized for channel 0 (scale 0)
        let (x, xq) = Self.gridInput([n, ic, h, w], p, seed: 62)
        let g = Self.qdqGraph(
            p, xShape: [n, ic, h, w], yShape: [n, oc, h, w],
            core: [K.dq("dqw", "wq", "sw", "", "wd", axis: 0), K.conv("conv", "xd", "wd", "b", "c")], coreOutput: "c",
            initializers: ["wq": K.s8(wShape, wq), "sw": K.floats([oc], sw), "b": K.floats([oc], bias)])
        let geometry = Conv2DGeometry(kernel: (3, 3), padBegin: (1, 1), padEnd: (1, 1))
        let want = Self.expected(
            Self.accumulators(xq, [n, ic, h, w], wq, wShape, geometry, zx: p.zx), channelOf: { ($0 / (h * w)) % oc },
            realScale: sw.map { Double(p.sx) * Double($0) }, bias: bias.map(Double.init), p, quantized: true)
        let got = try K.session(g, optimize: true).run(["x": x])["y"]!.floatValues().map(Double.init)
        let worst = zip(got, want).map { abs($0 - $1) / Double(p.sy) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1.001, "off by \(worst) steps")
        // Channel 0 is its bias, quantized: round(-1200 / 40) = -30 steps.
        XCTAssertEqual(Set(got[0..<(h * w)]), [-1200])
    }

    /// paddle2onnx's Conv form: `Conv(x, DQ(w)) -> Add([1, OC, 1, 1] bias) -> Relu -> Q`: the
    /// bias Add and the Relu fuse into one INT8 convolution with a u8 result.
    func testConvolutionWithBiasAddFusesIntoOneInt8Primitive() throws {
        let p = Params(sx: 0.04, zx: 0, xType: .s8, sy: 0.1, zy: 0, yType: .s8)
        let (n, ic, h, w, oc) = (1, 3, 6, 6, 5)
        let wShape = [oc, ic, 3, 3]
        let wq = Self.fullRangeWeights(wShape.reduce(1, *), seed: 91, bits: 7)
        let bias: [Float] = [0.5, -0.25, 1.0, 0.0, -2.0]
        let (x, xq) = Self.gridInput([n, ic, h, w], p, seed: 92)
        let g = Self.qdqGraph(
            p, xShape: [n, ic, h, w], yShape: [n, oc, h, w],
            core: [
                K.dq("dqw", "wq", "sw", "", "wd"), K.conv("conv", "xd", "wd", nil, "c"),
                Node(name: "bias", opType: "Add", inputs: ["c", "b"], outputs: ["cb"]),
                Node(name: "bias_id", opType: "Identity", inputs: ["cb"], outputs: ["cbi"]),
                Node(name: "relu", opType: "Relu", inputs: ["cbi"], outputs: ["r"]),
            ], coreOutput: "r", initializers: ["wq": K.s8(wShape, wq), "sw": K.scalar(0.01), "b": K.floats([1, oc, 1, 1], bias)])
        let geometry = Conv2DGeometry(kernel: (3, 3), padBegin: (1, 1), padEnd: (1, 1))
        let acc = Self.accumulators(xq, [n, ic, h, w], wq, wShape, geometry, zx: p.zx)
        let real = acc.enumerated().map { i, a in max(0, Double(p.sx) * 0.01 * a + Double(bias[(i / (h * w)) % oc])) }
        let want = real.map { Double(p.sy) * Double(Reference.quantize($0, scale: 1 / Double(p.sy), range: -128...127)) }
        try check(g, ["x": x], want: want, step: Double(p.sy), anchors: ["conv"], "Conv + bias Add + Relu", int8Everywhere: true)
        let fused = try K.session(g, optimize: true).graph
        XCTAssertEqual(fused.nodes.filter { $0.opType == "QConv" }.count, 1, "\(fused.nodes.map(\.opType))")
        XCTAssertFalse(
            fused.nodes.contains { ["Add", "Relu", "QuantizeLinear"].contains($0.opType) && $0.name != "qx" }, "\(fused.nodes.map(\.label))")
    }

    /// Add and Sub of u8 tensors with zero points (onnxruntime's activations) into a u8 result
    /// with a zero point, broadcast and with the broadcasting operand first: an INT8 binary
    /// within one step of the integer reference.
    func testAddAndSubWithZeroPointsRunInt8() throws {
        let pa = Params(sx: 0.05, zx: 100), pb = Params(sx: 0.03, zx: 7)
        let sy: Float = 0.07, zy = 120  // (5 i + 3 j) / 7 steps: never a rounding tie
        for (op, aShape, bShape) in [
            ("Add", [2, 3, 4, 5], [2, 3, 4, 5]), ("Sub", [2, 3, 4, 5], [1, 3, 1, 1]), ("Sub", [1, 3, 1, 1], [2, 3, 4, 5]),
        ] {
            let (a, aq) = Self.gridInput(aShape, pa, seed: 101), (b, bq) = Self.gridInput(bShape, pb, seed: 102)
            let outShape = aShape.count == bShape.count ? zip(aShape, bShape).map { max($0, $1) } : aShape
            let g = Graph(
                name: "qbinary",
                nodes: [
                    K.q("qa", "a", "sa", "za", "aq"), K.dq("dqa", "aq", "sa", "za", "ad"),
                    K.q("qb", "b", "sb", "zb", "bq"), K.dq("dqb", "bq", "sb", "zb", "bd"),
                    Node(name: "op", opType: op, inputs: ["ad", "bd"], outputs: ["c"]),
                    K.q("qy", "c", "sy", "zy", "yq"), K.dq("dqy", "yq", "sy", "zy", "y"),
                ], inputs: [K.f32("a", aShape), K.f32("b", bShape)], outputs: [K.f32("y", outShape)],
                initializers: [
                    "sa": K.scalar(pa.sx), "za": K.u8([], [pa.zx]), "sb": K.scalar(pb.sx), "zb": K.u8([], [pb.zx]),
                    "sy": K.scalar(sy), "zy": K.u8([], [zy]),
                ])
            var want: [Double] = []
            Reference.forEachIndex(outShape) { c in
                func index(_ shape: [Int]) -> Int { zip(c, shape).reduce(0) { $0 * $1.1 + ($1.1 == 1 ? 0 : $1.0) } }
                let ra = Double(pa.sx) * Double(aq[index(aShape)] - pa.zx), rb = Double(pb.sx) * Double(bq[index(bShape)] - pb.zx)
                let q = Reference.quantize(op == "Add" ? ra + rb : ra - rb, scale: 1 / Double(sy), zeroPoint: zy, range: 0...255)
                want.append(Double(sy) * Double(q - zy))
            }
            let session = try K.session(g, optimize: true)
            let got = try session.run(["a": a, "b": b])["y"]!.floatValues().map(Double.init)
            let off = zip(got, want).map { abs($0 - $1) / Double(sy) }
            XCTAssertLessThanOrEqual(off.max() ?? 0, 1.001, "\(op) \(aShape) \(bShape)")
            XCTAssertGreaterThanOrEqual(Double(off.filter { $0 < 1e-3 }.count) / Double(off.count), 0.99, "\(op) \(aShape) \(bShape)")
            let steps = try session.nodeReport(for: ["a": a, "b": b]).filter { $0.node.contains("'op'") }
            XCTAssertTrue(steps.contains { $0.precision == .int8 && $0.detail.contains("binary") }, "\(op): \(steps.map(\.detail))")
        }
    }

    /// onnxruntime's QDQ around each element-wise op (`Q(Mul(DQ(x), 1/6))`, `Q(Add(DQ, 0.5))`,
    /// `Q(Clip(DQ))`, `Q(Sigmoid(DQ))`) with zero points: each runs as an int8 lookup table,
    /// equal to quantizing the float64 function step by step.
    func testElementwiseOpsBetweenQDQRunAsLookupTables() throws {
        let p = Params(sx: 0.05, zx: 100)
        let steps: [(op: String, constant: Float?, s: Float, z: Int)] = [
            ("Mul", 1 / 6, 0.01, 90), ("Add", 0.5, 0.008, 3), ("Clip", nil, 0.004, 0), ("Sigmoid", nil, 0.003, 2),
        ]
        var nodes = [K.q("qx", "x", "sx", "zx", "xq"), K.dq("dqx", "xq", "sx", "zx", "v0")]
        var inits: [String: Tensor] = ["sx": K.scalar(p.sx), "zx": K.u8([], [p.zx]), "lo": K.scalar(0), "hi": K.scalar(1)]
        for (k, st) in steps.enumerated() {
            var inputs = ["v\(k)"]
            if let c = st.constant {
                inits["c\(k)"] = K.scalar(c)
                inputs.append("c\(k)")
            }
            if st.op == "Clip" { inputs += ["lo", "hi"] }
            inits["s\(k)"] = K.scalar(st.s)
            inits["z\(k)"] = K.u8([], [st.z])
            nodes += [
                Node(name: "op\(k)", opType: st.op, inputs: inputs, outputs: ["f\(k)"]),
                K.q("q\(k)", "f\(k)", "s\(k)", "z\(k)", "q\(k)_out"),
                K.dq("dq\(k)", "q\(k)_out", "s\(k)", "z\(k)", k == steps.count - 1 ? "y" : "v\(k + 1)"),
            ]
        }
        let g = Graph(name: "lookup", nodes: nodes, inputs: [K.f32("x", [2, 3, 7, 5])], outputs: [K.f32("y", [2, 3, 7, 5])], initializers: inits)
        let (x, xq) = Self.gridInput([2, 3, 7, 5], p, seed: 131)
        let want = xq.map { q -> Double in
            var v = Double(p.sx) * Double(q - p.zx)
            for st in steps {
                switch st.op {
                case "Mul": v *= Double(Float(1) / 6)
                case "Add": v += 0.5
                case "Clip": v = min(max(v, 0), 1)
                default: v = 1 / (1 + exp(-v))
                }
                let k = Reference.quantize(v, scale: 1 / Double(st.s), zeroPoint: st.z, range: 0...255)
                v = Double(st.s) * Double(k - st.z)
            }
            return v
        }
        let session = try K.session(g, optimize: true)
        let got = try session.run(["x": x])["y"]!.floatValues().map(Double.init)
        let off = zip(got, want).map { abs($0 - $1) / Double(steps.last!.s) }
        // Each table entry is the op's f32 result quantized: a value within f32 rounding of a
        // quantization boundary may land one step away from the float64 chain.
        XCTAssertLessThanOrEqual(off.max() ?? 0, 1.001)
        XCTAssertGreaterThanOrEqual(Double(off.filter { $0 < 1e-3 }.count) / Double(off.count), 0.97)
        let report = try session.nodeReport(for: ["x": x])
        // The chain is one table: each lookup reads the previous one's output alone.
        let lookups = report.filter { $0.detail.contains("lookup") }
        XCTAssertEqual(lookups.map(\.node), ["QLookup 'op3'"], "\(report.map(\.detail))")
        XCTAssertTrue(lookups.allSatisfy { $0.precision == .int8 })
        XCTAssertEqual(
            report.filter { $0.node.hasPrefix("DequantizeLinear") || $0.node.hasPrefix("QuantizeLinear") }.count, 2, "\(report.map(\.node))")
    }

    /// onnxruntime's QDQ BatchNorm-as-affine and HardSwish: per-channel `Mul`/`Add` by
    /// `[1, C, 1, 1]` constants, then `Mul(v, HardSigmoid(v))` of two zero-pointed u8 tensors
    /// (and a broadcast `Mul` by a `[1, C, 1, 1]` int8 tensor): per-channel and two-source
    /// lookup tables, equal to quantizing the float64 chain step by step.
    func testPerChannelAndTwoSourceLookupTables() throws {
        let p = Params(sx: 0.05, zx: 100)
        let (n, c, h, w) = (2, 3, 4, 5)
        let scale: [Float] = [0.5, -1.25, 2.0], shift: [Float] = [0.1, 0.35, -0.2]
        let qp: [(s: Float, z: Int)] = [(0.031, 120), (0.029, 111), (0.0041, 0), (0.013, 37), (0.017, 60)]
        var inits: [String: Tensor] = [
            "sx": K.scalar(p.sx), "zx": K.u8([], [p.zx]), "scale": K.floats([1, c, 1, 1], scale), "shift": K.floats([1, c, 1, 1], shift),
        ]
        for (k, q) in qp.enumerated() {
            inits["s\(k)"] = K.scalar(q.s)
            inits["z\(k)"] = K.u8([], [q.z])
        }
        let g = Graph(
            name: "bn-hardswish",
            nodes: [
                K.q("qx", "x", "sx", "zx", "xq"), K.dq("dqx", "xq", "sx", "zx", "xd"),
                Node(name: "bn_mul", opType: "Mul", inputs: ["xd", "scale"], outputs: ["m"]),
                K.q("q0", "m", "s0", "z0", "mq"), K.dq("dq0", "mq", "s0", "z0", "md"),
                Node(name: "bn_add", opType: "Add", inputs: ["md", "shift"], outputs: ["a"]),
                K.q("q1", "a", "s1", "z1", "aq"), K.dq("dq1", "aq", "s1", "z1", "v"),
                Node(name: "hs", opType: "HardSigmoid", inputs: ["v"], outputs: ["hsv"], attributes: ["alpha": .float(1 / 6), "beta": .float(0.5)]),
                K.q("q2", "hsv", "s2", "z2", "hq"), K.dq("dq2", "hq", "s2", "z2", "hd"),
                Node(name: "swish", opType: "Mul", inputs: ["v", "hd"], outputs: ["sw"]),
                K.q("q3", "sw", "s3", "z3", "swq"), K.dq("dq3", "swq", "s3", "z3", "y"),
                K.q("qg", "g", "s2", "z2", "gq0"), K.dq("dqg", "gq0", "s2", "z2", "gd"),
                Node(name: "gate", opType: "Mul", inputs: ["v", "gd"], outputs: ["gm"]),
                K.q("q4", "gm", "s4", "z4", "gq"), K.dq("dq4", "gq", "s4", "z4", "y2"),
            ],
            inputs: [K.f32("x", [n, c, h, w]), K.f32("g", [1, c, 1, 1])], outputs: [K.f32("y", [n, c, h, w]), K.f32("y2", [n, c, h, w])],
            initializers: inits)
        let (x, xq) = Self.gridInput([n, c, h, w], p, seed: 141)
        let gate = K.floats([1, c, 1, 1], [0.2, 0.75, 0.9])
        func q(_ v: Double, _ k: Int) -> Double {
            let s = Double(qp[k].s), z = qp[k].z
            return s * Double(Reference.quantize(v, scale: 1 / s, zeroPoint: z, range: 0...255) - z)
        }
        var want: [Double] = [], want2: [Double] = []
        for (i, code) in xq.enumerated() {
            let ch = (i / (h * w)) % c
            let v = q(q(Double(p.sx) * Double(code - p.zx) * Double(scale[ch]), 0) + Double(shift[ch]), 1)
            let hsv = q(min(max(v * Double(Float(1) / 6) + 0.5, 0), 1), 2)
            want.append(q(v * hsv, 3))
            want2.append(q(v * q(Double(gate.floatValues()[ch]), 2), 4))
        }
        let session = try K.session(g, optimize: true)
        let out = try session.run(["x": x, "g": gate])
        for (name, wanted, k) in [("y", want, 3), ("y2", want2, 4)] {
            let got = out[name]!.floatValues().map(Double.init)
            let off = zip(got, wanted).map { abs($0 - $1) / Double(qp[k].s) }
            XCTAssertLessThanOrEqual(off.max() ?? 0, 1.001, name)
            XCTAssertGreaterThanOrEqual(Double(off.filter { $0 < 1e-3 }.count) / Double(off.count), 0.97, name)
        }
        let report = try session.nodeReport(for: ["x": x, "g": gate])
        // bn_mul and bn_add are one per-channel table (bn_add's); swish reads v and hs(v), so it
        // is one table of v with hs folded in; gate reads v and the broadcast g (two sources).
        for op in ["bn_mul", "hs"] {
            XCTAssertFalse(report.contains { $0.node.contains("'\(op)'") }, "\(op): \(report.map(\.node))")
        }
        XCTAssertTrue(report.contains { $0.node.contains("'swish'") && $0.detail == "Swift lookup table u8->u8" }, "\(report.map(\.detail))")
        XCTAssertTrue(report.contains { $0.node.contains("'gate'") && $0.detail.hasPrefix("Swift lookup table u8,u8") }, "\(report.map(\.detail))")
        for op in ["bn_add", "swish", "gate"] {
            XCTAssertTrue(
                report.contains { $0.node.contains("'\(op)'") && $0.precision == .int8 && $0.detail.contains("lookup") },
                "\(op): \(report.map(\.detail))")
        }
    }

    // MARK: invalid files

    /// Invalid Q/DQ parameters are refused at session creation and by the converter, naming
    /// the node: per-axis parameters before opset 13, zero, negative and NaN scales on a
    /// QuantizeLinear or an activation DequantizeLinear, zero points of another type than the
    /// weights, of another shape than the scale, s32 zero points other than 0, and per-axis
    /// scales of the wrong length.
    func testInvalidQDQParametersAreRefusedNamingTheNode() throws {
        let p = Params()
        let wShape = [4, 3, 3, 3]
        let w = K.s8(wShape, Self.fullRangeWeights(108, seed: 71))
        func graph(_ edit: (inout [String: Tensor]) -> Void, wAxis: Int = 0) -> Graph {
            var inits: [String: Tensor] = ["wq": w, "sw": K.floats([4], [0.01, 0.02, 0.03, 0.04])]
            edit(&inits)
            return Self.qdqGraph(
                p, xShape: [1, 3, 5, 5], yShape: [1, 4, 5, 5],
                core: [K.dq("dqw", "wq", "sw", inits["zw"] == nil ? "" : "zw", "wd", axis: wAxis), K.conv("conv", "xd", "wd", nil, "c")],
                coreOutput: "c", initializers: inits)
        }
        let cases: [(String, Graph, Int, String, String)] = [
            ("per-axis in opset 12", graph { _ in }, 12, "dqw", "opset 13"),
            ("zero Q scale", graph { $0["sx"] = K.scalar(0) }, 13, "qx", "positive"),
            ("negative Q scale", graph { $0["sy"] = K.scalar(-0.5) }, 13, "qy", "positive"),
            ("NaN activation DQ scale", graph { $0["sx"] = K.scalar(.nan) }, 13, "qx", "finite"),
            ("zero point type", graph { $0["zw"] = K.u8([4], [0, 0, 0, 0]) }, 13, "dqw", "zero point"),
            ("zero point shape", graph { $0["zw"] = K.s8([2], [0, 0]) }, 13, "dqw", "2 zero points"),
            ("scale count", graph { $0["sw"] = K.floats([3], [0.1, 0.1, 0.1]) }, 13, "dqw", "3 scales for axis 0"),
            ("axis outside the rank", graph({ _ in }, wAxis: 4), 13, "dqw", "axis 4"),
            ("s32 zero point", graph { $0["zx"] = K.s32([], [3]) }, 13, "qx", "zero point"),
        ]
        for (label, g, opset, node, phrase) in cases {
            for path in ["session", "converter"] {
                do {
                    let model = Model(graph: g, opsetVersion: opset)
                    if path == "session" { _ = try InferenceSession(model: model) } else { _ = try QATConverter().convert(model) }
                    XCTFail("\(label) (\(path)): accepted")
                } catch let error as GraphError {
                    XCTAssertTrue(error.message.contains("'\(node)'"), "\(label) (\(path)): \(error.message) does not name \(node)")
                    XCTAssertTrue(error.message.contains(phrase), "\(label) (\(path)): \(error.message) does not say '\(phrase)'")
                }
            }
        }
        // An activation DequantizeLinear of scale 0 (a constant weight DQ may have it).
        let zeroActivation = Graph(
            name: "dq0", nodes: [K.dq("dq", "xq", "s", "z", "y")], inputs: [K.value("xq", .u8, [4])], outputs: [K.f32("y", [4])],
            initializers: ["s": K.scalar(0), "z": K.u8([], [0])])
        XCTAssertThrowsError(try InferenceSession(model: Model(graph: zeroActivation, opsetVersion: 13))) { error in
            XCTAssertTrue("\(error)".contains("'dq'") && "\(error)".contains("run-time"), "\(error)")
        }
    }

    /// The converter's decisions on a model with INT8 and FP32 nodes, and its normalized model
    /// (written, read back) computes the same as the original.
    func testConversionReportsEachNodeAndRoundTrips() throws {
        let p = Params()
        let wShape = [4, 3, 3, 3]
        let g = Self.qdqGraph(
            p, xShape: [1, 3, 6, 6], yShape: [1, 4, 3, 3],
            core: [
                K.dq("dqw", "wq", "sw", "", "wd", axis: 0), K.conv("conv", "xd", "wd", nil, "c"),
                Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
                K.q("qr", "r", "sy", "zy", "rq"), K.dq("dqr", "rq", "sy", "zy", "rd"),
                Node(
                    name: "pool", opType: "AveragePool", inputs: ["rd"], outputs: ["mp"],
                    attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
                Node(name: "soft", opType: "Softmax", inputs: ["mp"], outputs: ["sm"], attributes: ["axis": .int(1)]),
            ], coreOutput: "sm",
            initializers: ["wq": K.s8(wShape, Self.fullRangeWeights(108, seed: 81)), "sw": K.floats([4], [0.01, 0.02, 0.015, 0.03])])
        let conversion = try QATConverter().convert(Model(graph: g, opsetVersion: 13))
        let byNode = Dictionary(conversion.nodes.map { ($0.node, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byNode["Conv 'conv'"]?.precision, .int8, "\(conversion.nodes)")
        XCTAssertEqual(byNode["AveragePool 'pool'"]?.precision, .fp32, "\(conversion.nodes)")
        XCTAssertEqual(byNode["AveragePool 'pool'"]?.reason, "its output is not quantized")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qat-\(UUID().uuidString).onnx")
        defer { try? FileManager.default.removeItem(at: url) }
        try conversion.model.write(to: url)
        let x = Self.gridInput([1, 3, 6, 6], p, seed: 82).x
        let a = try InferenceSession(model: Model(graph: g, opsetVersion: 13)).run(["x": x])["y"]!.floatValues()
        let b = try InferenceSession(model: Model(contentsOf: url)).run(["x": x])["y"]!.floatValues()
        XCTAssertEqual(a, b)
        XCTAssertTrue(QATConverter.isQDQ(conversion.model))
    }
}

/// `QATConverterTests` again on CPUs without VNNI (`ONEDNN_MAX_CPU_ISA=AVX2` and
/// `AVX512_CORE`, each in a child process): every INT8 path (convolution with u8 and s8
/// sources, asymmetric padding, grouped and depthwise; matmul; Gemm) stays within one step of
/// the integer reference, weights within 7 bits on INT8 primitives, wider ones on the exact
/// FP32 path.
final class QATISAMatrixTests: XCTestCase {
    func testQDQModelsAreExactOnCPUsWithoutVNNI() throws {
        for isa in ["AVX2", "AVX512_CORE"] {
            let (status, output) = try ISAChild.run("QuantizationTests.QATConverterTests", isa: isa)
            let s = ISAChild.summary(output)
            XCTAssertEqual(status, 0, "QATConverterTests under \(isa):\n\(output.suffix(6000))")
            XCTAssertEqual(s?.failures, 0, "under \(isa)")
            XCTAssertGreaterThanOrEqual(s?.executed ?? 0, 8, "under \(isa)")
        }
    }
}
