import DNNL
import TestSupport
import XCTest

/// Convolution, deconvolution, pooling and inner product in FP32 against naive Double loops.
final class FP32ConvolutionTests: XCTestCase {
    var rng = SeededRandom(seed: 0xC0FFEE)
    let tol = 2e-4  // FP32 accumulation over at most ~300 products of values in [-1, 1]

    /// Runs a conv (or deconv) with `any` layouts and returns dst plain `[N, OC, OH, OW]`.
    func runConv(
        deconv: Bool = false, src: [Double], n: Int, c: Int, h: Int, w: Int,
        weights: [Double], weightDims: [Int], bias: [Double]?, oc: Int,
        g: Conv2DGeometry, postOps: ((PostOps) throws -> Void)? = nil,
        dstInit: [Double]? = nil
    ) throws -> [Float] {
        let (oh, ow) = deconv ? g.deconvOutput(h: h, w: w) : g.convOutput(h: h, w: w)
        let anySrc = try MemoryDescriptor(dims: [n, c, h, w], dataType: .f32, tag: .any)
        let anyWei = try MemoryDescriptor(dims: weightDims, dataType: .f32, tag: .any)
        let anyDst = try MemoryDescriptor(dims: [n, oc, oh, ow], dataType: .f32, tag: .any)
        let biasMD = try bias.map { _ in try MemoryDescriptor(dims: [oc], dataType: .f32) }
        let attr = try PrimitiveAttributes()
        if let postOps {
            let po = try PostOps()
            try postOps(po)
            try attr.setPostOps(po)
        }
        let make = deconv ? PrimitiveDescriptor.deconvolutionForward : PrimitiveDescriptor.convolutionForward
        let pd = try make(
            anySrc, anyWei, biasMD, anyDst, g.strides, g.dnnlDilations,
            g.paddingL, g.paddingR, attr, .cpu)
        var inputs: [ExecArg: Memory] = [
            .src: try .plain([n, c, h, w], .f32, src),
            .weights: try .plain(weightDims, .f32, weights),
        ]
        if let bias { inputs[.bias] = try .plain([oc], .f32, bias) }
        let dst =
            try dstInit.map { try Memory.plain([n, oc, oh, ow], .f32, $0) }
            ?? .plain([n, oc, oh, ow], .f32)
        try PrimitiveHarness().run(pd, inputs: inputs, outputs: [.dst: dst])
        return dst.read(as: Float.self)
    }

    func testConvolutionWithStridePaddingDilationAndBias() throws {
        let (n, c, h, w, oc) = (2, 4, 9, 8, 6)
        let g = Conv2DGeometry(
            kernel: (3, 3), stride: (2, 1), dilation: (2, 1),
            padBegin: (1, 2), padEnd: (2, 0))
        let src = rng.floats(n * c * h * w).map(Double.init)
        let wei = rng.floats(oc * c * 9).map(Double.init)
        let bias = rng.floats(oc).map(Double.init)
        let got = try runConv(
            src: src, n: n, c: c, h: h, w: w, weights: wei,
            weightDims: [oc, c, 3, 3], bias: bias, oc: oc, g: g)
        let ref = Reference.convolution(
            src: src, n: n, c: c, h: h, w: w, weights: wei, oc: oc,
            bias: bias, geometry: g)
        assertClose(got, ref, atol: tol, rtol: tol)
    }

    func testGroupedAndDepthwiseConvolution() throws {
        for (c, oc, groups) in [(8, 6, 2), (16, 16, 16)] {
            let (n, h, w) = (1, 7, 7)
            let g = Conv2DGeometry(
                kernel: (3, 3), stride: (1, 1), padBegin: (1, 1), padEnd: (1, 1),
                groups: groups)
            let src = rng.floats(n * c * h * w).map(Double.init)
            let wei = rng.floats(oc * (c / groups) * 9).map(Double.init)
            let bias = rng.floats(oc).map(Double.init)
            let got = try runConv(
                src: src, n: n, c: c, h: h, w: w, weights: wei,
                weightDims: [groups, oc / groups, c / groups, 3, 3],
                bias: bias, oc: oc, g: g)
            let ref = Reference.convolution(
                src: src, n: n, c: c, h: h, w: w, weights: wei,
                oc: oc, bias: bias, geometry: g)
            assertClose(got, ref, atol: tol, rtol: tol, "groups \(groups)")
        }
    }

    func testConvolutionPostOpsReluSumBinary() throws {
        let (n, c, h, w, oc) = (1, 3, 6, 6, 4)
        let g = Conv2DGeometry(kernel: (3, 3), padBegin: (1, 1), padEnd: (1, 1))
        let src = rng.floats(n * c * h * w).map(Double.init)
        let wei = rng.floats(oc * c * 9).map(Double.init)
        let residual = rng.floats(n * oc * h * w).map(Double.init)
        // dst = relu(conv + 0.5 * residual), then * 2 (eltwise linear post-op).
        let got = try runConv(
            src: src, n: n, c: c, h: h, w: w, weights: wei, weightDims: [oc, c, 3, 3],
            bias: nil, oc: oc, g: g,
            postOps: { po in
                try po.appendSum(scale: 0.5)
                try po.appendEltwise(.relu)
                try po.appendEltwise(.linear, alpha: 2, beta: 0)
            }, dstInit: residual)
        let conv = Reference.convolution(
            src: src, n: n, c: c, h: h, w: w, weights: wei, oc: oc,
            bias: nil, geometry: g)
        let ref = zip(conv, residual).map { 2 * max($0 + 0.5 * $1, 0) }
        assertClose(got, ref, atol: tol, rtol: tol)
    }

    func testBinaryPostOpBroadcastsPerChannel() throws {
        let (n, c, h, w, oc) = (1, 2, 5, 5, 3)
        let g = Conv2DGeometry(kernel: (1, 1))
        let src = rng.floats(n * c * h * w).map(Double.init)
        let wei = rng.floats(oc * c).map(Double.init)
        let perChannel = rng.floats(oc).map(Double.init)
        let anySrc = try MemoryDescriptor(dims: [n, c, h, w], dataType: .f32)
        let wmd = try MemoryDescriptor(dims: [oc, c, 1, 1], dataType: .f32)
        let dmd = try MemoryDescriptor(dims: [n, oc, h, w], dataType: .f32)
        let po = try PostOps()
        let src1 = try MemoryDescriptor(dims: [1, oc, 1, 1], dataType: .f32)
        let index = try po.appendBinary(.mul, src1: src1)
        let attr = try PrimitiveAttributes()
        try attr.setPostOps(po)
        let pd = try PrimitiveDescriptor.convolutionForward(
            src: anySrc, weights: wmd, bias: nil, dst: dmd, strides: [1, 1],
            paddingL: [0, 0], paddingR: [0, 0], attributes: attr)
        let dst = try Memory.plain([n, oc, h, w], .f32)
        try pd.makePrimitive().execute(
            on: Stream(),
            [
                .src: .plain([n, c, h, w], .f32, src), .weights: .plain([oc, c, 1, 1], .f32, wei),
                .dst: dst, .postOpBinarySrc1(index): .plain([1, oc, 1, 1], .f32, perChannel),
            ])
        let conv = Reference.convolution(
            src: src, n: n, c: c, h: h, w: w, weights: wei, oc: oc,
            bias: nil, geometry: g)
        let ref = conv.enumerated().map { $0.element * perChannel[($0.offset / (h * w)) % oc] }
        assertClose(dst.read(as: Float.self), ref, atol: tol, rtol: tol)
    }

    func testDeconvolution() throws {
        for groups in [1, 2] {
            let (n, c, h, w, oc) = (1, 4, 5, 4, 6)
            let g = Conv2DGeometry(
                kernel: (3, 2), stride: (2, 2), dilation: (1, 2),
                padBegin: (1, 0), padEnd: (0, 1), groups: groups)
            let src = rng.floats(n * c * h * w).map(Double.init)
            // ONNX layout [C, OC/g, KH, KW]; oneDNN wants [G, OC/g, C/g, KH, KW].
            let onnx = rng.floats(c * (oc / groups) * 6).map(Double.init)
            let (icg, ocg) = (c / groups, oc / groups)
            var dnnl = [Double](repeating: 0, count: onnx.count)
            for gi in 0..<groups {
                for o in 0..<ocg {
                    for i in 0..<icg {
                        for k in 0..<6 {
                            dnnl[((gi * ocg + o) * icg + i) * 6 + k] = onnx[(((gi * icg + i) * ocg) + o) * 6 + k]
                        }
                    }
                }
            }
            let bias = rng.floats(oc).map(Double.init)
            let got = try runConv(
                deconv: true, src: src, n: n, c: c, h: h, w: w, weights: dnnl,
                weightDims: [groups, ocg, icg, 3, 2], bias: bias, oc: oc, g: g)
            let ref = Reference.deconvolution(
                src: src, n: n, c: c, h: h, w: w, weights: onnx,
                oc: oc, bias: bias, geometry: g)
            assertClose(got, ref, atol: tol, rtol: tol, "groups \(groups)")
        }
    }

    func testPoolingMaxAverageAndGlobal() throws {
        let (n, c, h, w) = (2, 3, 7, 6)
        let src = rng.floats(n * c * h * w).map(Double.init)
        let cases: [(PoolingAlgorithm, Reference.PoolKind, Conv2DGeometry)] = [
            (.max, .max, Conv2DGeometry(kernel: (3, 3), stride: (2, 2), padBegin: (1, 1), padEnd: (1, 1))),
            (
                .averageExcludePadding, .averageExcludePadding,
                Conv2DGeometry(kernel: (3, 2), stride: (2, 1), padBegin: (1, 0), padEnd: (1, 1))
            ),
            (
                .averageIncludePadding, .averageIncludePadding,
                Conv2DGeometry(kernel: (3, 3), stride: (1, 1), padBegin: (1, 1), padEnd: (1, 1))
            ),
            (.averageExcludePadding, .averageExcludePadding, Conv2DGeometry(kernel: (h, w))),  // global
            (.max, .max, Conv2DGeometry(kernel: (h, w))),
            (.max, .max, Conv2DGeometry(kernel: (2, 2), stride: (1, 1), dilation: (2, 2))),
        ]
        for (alg, kind, g) in cases {
            let (oh, ow) = g.convOutput(h: h, w: w)
            let pd = try PrimitiveDescriptor.pooling(
                alg, src: MemoryDescriptor(dims: [n, c, h, w], dataType: .f32),
                dst: MemoryDescriptor(dims: [n, c, oh, ow], dataType: .f32),
                kernel: [g.kernel.h, g.kernel.w], strides: g.strides, dilations: g.dnnlDilations,
                paddingL: g.paddingL, paddingR: g.paddingR)
            let dst = try Memory.plain([n, c, oh, ow], .f32)
            try PrimitiveHarness().run(
                pd, inputs: [.src: .plain([n, c, h, w], .f32, src)],
                outputs: [.dst: dst])
            let ref = Reference.pooling(kind, src: src, n: n, c: c, h: h, w: w, geometry: g)
            assertClose(dst.read(as: Float.self), ref, atol: 1e-5, rtol: 1e-5, "\(alg) \(g.kernel)")
        }
    }

    func testInnerProductOverSpatialSource() throws {
        let (n, c, h, w, oc) = (3, 4, 2, 2, 5)
        let src = rng.floats(n * c * h * w).map(Double.init)
        let wei = rng.floats(oc * c * h * w).map(Double.init)
        let bias = rng.floats(oc).map(Double.init)
        let pd = try PrimitiveDescriptor.innerProduct(
            src: MemoryDescriptor(dims: [n, c, h, w], dataType: .f32, tag: .any),
            weights: MemoryDescriptor(dims: [oc, c, h, w], dataType: .f32, tag: .any),
            bias: MemoryDescriptor(dims: [oc], dataType: .f32),
            dst: MemoryDescriptor(dims: [n, oc], dataType: .f32))
        let dst = try Memory.plain([n, oc], .f32)
        try PrimitiveHarness().run(
            pd,
            inputs: [
                .src: .plain([n, c, h, w], .f32, src), .weights: .plain([oc, c, h, w], .f32, wei),
                .bias: .plain([oc], .f32, bias),
            ], outputs: [.dst: dst])
        assertClose(
            dst.read(as: Float.self),
            Reference.innerProduct(src, n: n, wei, oc: oc, bias: bias), atol: tol, rtol: tol)
    }

    func testBatchedMatmulWithBroadcastAndBias() throws {
        let aDims = [2, 1, 3, 4], bDims = [1, 3, 4, 5], biasDims = [1, 1, 1, 5]
        let a = rng.floats(aDims.reduce(1, *)).map(Double.init)
        let b = rng.floats(bDims.reduce(1, *)).map(Double.init)
        let bias = rng.floats(5).map(Double.init)
        let ref = Reference.matmul(a, aDims: aDims, b, bDims: bDims, bias: bias, biasDims: biasDims)
        let pd = try PrimitiveDescriptor.matmul(
            src: MemoryDescriptor(dims: aDims, dataType: .f32),
            weights: MemoryDescriptor(dims: bDims, dataType: .f32),
            bias: MemoryDescriptor(dims: biasDims, dataType: .f32),
            dst: MemoryDescriptor(dims: ref.dims, dataType: .f32))
        let dst = try Memory.plain(ref.dims, .f32)
        try PrimitiveHarness().run(
            pd,
            inputs: [
                .src: .plain(aDims, .f32, a), .weights: .plain(bDims, .f32, b),
                .bias: .plain(biasDims, .f32, bias),
            ], outputs: [.dst: dst])
        XCTAssertEqual(ref.dims, [2, 3, 3, 5])
        assertClose(dst.read(as: Float.self), ref.values, atol: tol, rtol: tol)
    }
}
