import DNNL
import TestSupport
import XCTest

/// INT8 kernels with integer inputs whose exact results are known: u8/s8 sources, s8
/// weights, s32 accumulation, per-channel output scales, bias (added before the output scale
/// in oneDNN 2.6), sum post-ops, and reorders that quantize.
///
/// These run on whatever ISA this process has. `ISAMatrixTests` runs this class again in child
/// processes limited to AVX2 and AVX512_CORE (no VNNI), where `Int8Rule` applies: weights of at
/// most 63 in magnitude and u8 sources for inner product and matmul.
final class Int8KernelTests: XCTestCase {
    var rng = SeededRandom(seed: 0x1A7)
    let rule = Int8Rule()

    /// Exact integer convolution result `acc[n, oc, y, x]` (Reference in Double is exact for
    /// these small integers).
    func exactConv(
        _ src: [Int], _ n: Int, _ c: Int, _ h: Int, _ w: Int, _ wei: [Int], oc: Int,
        bias: [Int]?, _ g: Conv2DGeometry
    ) -> [Int] {
        Reference.convolution(
            src: src.map(Double.init), n: n, c: c, h: h, w: w,
            weights: wei.map(Double.init), oc: oc,
            bias: bias?.map(Double.init), geometry: g
        ).map { Int($0) }
    }

    /// Runs an INT8 convolution with `any` layouts for src/weights and the given dst layout.
    func runConv(
        srcType: DataType, src: [Int], n: Int, c: Int, h: Int, w: Int,
        weights: [Int], oc: Int, g: Conv2DGeometry, bias: [Int]? = nil,
        biasType: DataType = .s32, dstType: DataType,
        attributes: PrimitiveAttributes? = nil
    ) throws -> (values: [Int], impl: String) {
        let (oh, ow) = g.convOutput(h: h, w: w)
        let icg = c / g.groups
        let wDims =
            g.groups == 1
            ? [oc, c, g.kernel.h, g.kernel.w]
            : [g.groups, oc / g.groups, icg, g.kernel.h, g.kernel.w]
        let pd = try PrimitiveDescriptor.convolutionForward(
            src: MemoryDescriptor(dims: [n, c, h, w], dataType: srcType, tag: .any),
            weights: MemoryDescriptor(dims: wDims, dataType: .s8, tag: .any),
            bias: bias == nil ? nil : MemoryDescriptor(dims: [oc], dataType: biasType),
            dst: MemoryDescriptor(dims: [n, oc, oh, ow], dataType: dstType, tag: .any),
            strides: g.strides, dilations: g.dnnlDilations, paddingL: g.paddingL,
            paddingR: g.paddingR, attributes: attributes)
        var inputs: [ExecArg: Memory] = [
            .src: try .plain([n, c, h, w], srcType, src.map(Double.init)),
            .weights: try .plain(wDims, .s8, weights.map(Double.init)),
        ]
        if let bias { inputs[.bias] = try .plain([oc], biasType, bias.map(Double.init)) }
        let dst = try Memory.plain([n, oc, oh, ow], dstType)
        try PrimitiveHarness().run(pd, inputs: inputs, outputs: [.dst: dst])
        return (dst.integers(), pd.implementation)
    }

    /// s8 weights in `range`; pre-VNNI, convolutions with s8 sources get even weights, since
    /// oneDNN halves them there (`scale_adjust` 0.5, ONEDNN_INT8_NOTES.md A4).
    func weights(_ count: Int, _ range: ClosedRange<Int>, signedSourceConv: Bool = false) -> [Int] {
        let v = rng.ints(count, in: range)
        return signedSourceConv && rule.halvesWeightsOfSignedSourceConvolutions ? v.map { $0 / 2 * 2 } : v
    }

    func testConvolutionU8SourceWithPaddingIsExact() throws {
        let (n, c, h, w, oc) = (2, 16, 7, 6, 8)
        let g = Conv2DGeometry(kernel: (3, 3), stride: (1, 2), padBegin: (1, 1), padEnd: (1, 0))
        let src = rng.ints(n * c * h * w, in: 0...8)
        let wei = weights(oc * c * 9, -4...4)
        let got = try runConv(
            srcType: .u8, src: src, n: n, c: c, h: h, w: w, weights: wei,
            oc: oc, g: g, dstType: .s32)
        let expected = exactConv(src, n, c, h, w, wei, oc: oc, bias: nil, g)
        assertInformative(expected)
        assertExact(got.values, expected, got.impl)
    }

    func testConvolutionS8SourceGroupedAndDepthwiseIsExact() throws {
        for (c, oc, groups) in [(16, 16, 1), (16, 8, 2), (32, 32, 32)] {
            let (n, h, w) = (1, 6, 6)
            let g = Conv2DGeometry(kernel: (3, 3), padBegin: (1, 1), padEnd: (1, 1), groups: groups)
            let src = rng.ints(n * c * h * w, in: -4...4)
            let wei = weights(oc * (c / groups) * 9, -4...4, signedSourceConv: true)
            let got = try runConv(
                srcType: .s8, src: src, n: n, c: c, h: h, w: w, weights: wei,
                oc: oc, g: g, dstType: .s32)
            let expected = exactConv(src, n, c, h, w, wei, oc: oc, bias: nil, g)
            assertInformative(expected)
            assertExact(got.values, expected, "groups \(groups), \(got.impl)")
        }
    }

    func testPerChannelOutputScalesApplyAfterBias() throws {
        // dst = sat(round_half_even(scale[oc] * (acc + bias[oc]))), bias before the scale.
        let (n, c, h, w, oc) = (1, 8, 5, 5, 4)
        let g = Conv2DGeometry(kernel: (3, 3), padBegin: (1, 1), padEnd: (1, 1))
        let src = rng.ints(n * c * h * w, in: 0...8)
        let wei = weights(oc * c * 9, -3...3)
        let bias = [-40, 25, 7, -3]
        let scales: [Float] = [0.5, 0.25, 0.125, 1]  // powers of two: exact in f32, ties defined
        for (dstType, biasType) in [(DataType.s8, DataType.s32), (.u8, .f32), (.s8, .f32)] {
            let attr = try PrimitiveAttributes()
            try attr.setOutputScales(scales, mask: 2)
            let got = try runConv(
                srcType: .u8, src: src, n: n, c: c, h: h, w: w, weights: wei,
                oc: oc, g: g, bias: bias, biasType: biasType, dstType: dstType,
                attributes: attr)
            let acc = exactConv(src, n, c, h, w, wei, oc: oc, bias: bias, g)
            let range = dstType == .u8 ? 0...255 : -128...127
            let expected = acc.enumerated().map { i, v in
                Reference.quantize(Double(v), scale: Double(scales[(i / (h * w)) % oc]), range: range)
            }
            assertInformative(expected, range: range, maxFraction: dstType == .u8 ? 0.6 : 0.3)
            assertExact(got.values, expected, "dst \(dstType) bias \(biasType), \(got.impl)")
        }
    }

    func testSumPostOpReadsS8ResidualIntoU8Destination() throws {
        // dst_u8 = sat(round(relu(oscale * acc + 0.5 * residual_s8))), computed in place: the
        // dst buffer holds the s8 residual before the primitive runs (sum data type s8).
        let (n, c, h, w, oc) = (1, 16, 4, 4, 16)
        let g = Conv2DGeometry(kernel: (1, 1))
        let src = rng.ints(n * c * h * w, in: 0...6)
        let wei = weights(oc * c, -3...3)
        let residual = rng.ints(n * oc * h * w, in: -100...100)
        let po = try PostOps()
        try po.appendSum(scale: 0.5, dataType: .s8)
        try po.appendEltwise(.relu)
        let attr = try PrimitiveAttributes()
        try attr.setOutputScales([0.25])
        try attr.setPostOps(po)
        let nhwc = [n, oc, h, w]
        let pd = try PrimitiveDescriptor.convolutionForward(
            src: MemoryDescriptor(dims: [n, c, h, w], dataType: .u8, tag: .nhwc),
            weights: MemoryDescriptor(dims: [oc, c, 1, 1], dataType: .s8, tag: .any),
            bias: nil, dst: MemoryDescriptor(dims: nhwc, dataType: .u8, tag: .nhwc),
            strides: [1, 1], paddingL: [0, 0], paddingR: [0, 0], attributes: attr)
        // Residual bytes written in NHWC order into the u8 destination.
        func nhwcIndex(_ i: Int) -> Int {  // plain NCHW index -> NHWC offset
            let x = i % w, y = (i / w) % h, ch = (i / (h * w)) % oc, b = i / (oc * h * w)
            return ((b * h + y) * w + x) * oc + ch
        }
        var bytes = [UInt8](repeating: 0, count: residual.count)
        for (i, r) in residual.enumerated() { bytes[nhwcIndex(i)] = UInt8(bitPattern: Int8(r)) }
        let dst = try Memory(pd.dst)
        try dst.write(bytes)
        try PrimitiveHarness().run(
            pd,
            inputs: [
                .src: .plain([n, c, h, w], .u8, src.map(Double.init)),
                .weights: .plain([oc, c, 1, 1], .s8, wei.map(Double.init)),
            ], outputs: [.dst: dst])
        let out = dst.read(as: UInt8.self)
        let acc = exactConv(src, n, c, h, w, wei, oc: oc, bias: nil, g)
        let expected = acc.enumerated().map { i, v in
            Reference.quantize(
                max(0.25 * Double(v) + 0.5 * Double(residual[i]), 0), scale: 1,
                range: 0...255)
        }
        assertInformative(expected, range: 0...255, maxFraction: 0.6)
        assertExact((0..<acc.count).map { Int(out[nhwcIndex($0)]) }, expected, pd.implementation)
    }

    func testInnerProductAndMatmulAreExact() throws {
        let (m, k, nOut) = (3, 64, 5)
        for srcType in [DataType.u8, .s8] {
            guard rule.allowsSignedSource(for: .innerProduct) || srcType == .u8 else { continue }
            let src = rng.ints(m * k, in: srcType == .u8 ? 0...9 : -9...9)
            let wei = weights(nOut * k, -5...5)
            let bias = rng.ints(nOut, in: -50...50)
            // Inner product: weights [OC, K].
            let ipExpected = Reference.innerProduct(
                src.map(Double.init), n: m, wei.map(Double.init),
                oc: nOut, bias: bias.map(Double.init)
            ).map { Int($0) }
            let ipPD = try PrimitiveDescriptor.innerProduct(
                src: MemoryDescriptor(dims: [m, k], dataType: srcType, tag: .any),
                weights: MemoryDescriptor(dims: [nOut, k], dataType: .s8, tag: .any),
                bias: MemoryDescriptor(dims: [nOut], dataType: .s32),
                dst: MemoryDescriptor(dims: [m, nOut], dataType: .s32))
            let ipDst = try Memory.plain([m, nOut], .s32)
            try PrimitiveHarness().run(
                ipPD,
                inputs: [
                    .src: .plain([m, k], srcType, src.map(Double.init)),
                    .weights: .plain([nOut, k], .s8, wei.map(Double.init)),
                    .bias: .plain([nOut], .s32, bias.map(Double.init)),
                ], outputs: [.dst: ipDst])
            assertInformative(ipExpected)
            assertExact(ipDst.integers(), ipExpected, "inner product \(srcType) \(ipPD.implementation)")

            // Matmul: weights [K, N] (the transpose), per-column output scales.
            var kn = [Int](repeating: 0, count: k * nOut)
            for o in 0..<nOut { for j in 0..<k { kn[j * nOut + o] = wei[o * k + j] } }
            let scales: [Float] = [1, 0.5, 0.25, 2, 0.125]
            let attr = try PrimitiveAttributes()
            try attr.setOutputScales(scales, mask: 1 << 1)
            let mmPD = try PrimitiveDescriptor.matmul(
                src: MemoryDescriptor(dims: [m, k], dataType: srcType),
                weights: MemoryDescriptor(dims: [k, nOut], dataType: .s8),
                dst: MemoryDescriptor(dims: [m, nOut], dataType: .s32), attributes: attr)
            let mmDst = try Memory.plain([m, nOut], .s32)
            try PrimitiveHarness().run(
                mmPD,
                inputs: [
                    .src: .plain([m, k], srcType, src.map(Double.init)),
                    .weights: .plain([k, nOut], .s8, kn.map(Double.init)),
                ], outputs: [.dst: mmDst])
            let mmExpected = ipExpected.enumerated().map { i, v in
                Reference.quantize(
                    Double(v - bias[i % nOut]), scale: Double(scales[i % nOut]),
                    range: Int(Int32.min)...Int(Int32.max))
            }
            assertExact(mmDst.integers(), mmExpected, "matmul \(srcType) \(mmPD.implementation)")
        }
    }

    func testLargeValuesWithinTheRuleAreExact() throws {
        // u8 up to 255 times weights at the rule's limit: with VNNI 127, without 63 (7 bits),
        // where pairs of products must fit vpmaddubsw's s16.
        let (c, oc, hw) = (32, 16, 3)
        let src = rng.ints(c * hw * hw, in: 200...255)
        let wmax = rule.weightMax
        let wei = rng.ints(oc * c, in: (wmax - 3)...wmax).enumerated().map { $0.offset % 3 == 0 ? -$0.element : $0.element }
        let got = try runConv(
            srcType: .u8, src: src, n: 1, c: c, h: hw, w: hw, weights: wei, oc: oc,
            g: Conv2DGeometry(kernel: (1, 1)), dstType: .s32)
        assertExact(
            got.values,
            exactConv(
                src, 1, c, hw, hw, wei, oc: oc, bias: nil,
                Conv2DGeometry(kernel: (1, 1))), got.impl)
        // Inner product with u8 source (the rule's choice on every CPU for large values).
        let ip = try PrimitiveDescriptor.innerProduct(
            src: MemoryDescriptor(dims: [1, c * hw * hw], dataType: .u8, tag: .any),
            weights: MemoryDescriptor(dims: [oc, c * hw * hw], dataType: .s8, tag: .any),
            bias: nil, dst: MemoryDescriptor(dims: [1, oc], dataType: .s32))
        let ipWei = rng.ints(oc * c * hw * hw, in: (wmax - 3)...wmax)
        let dst = try Memory.plain([1, oc], .s32)
        try PrimitiveHarness().run(
            ip,
            inputs: [
                .src: .plain([1, c * hw * hw], .u8, src.map(Double.init)),
                .weights: .plain([oc, c * hw * hw], .s8, ipWei.map(Double.init)),
            ], outputs: [.dst: dst])
        let expected = Reference.innerProduct(
            src.map(Double.init), n: 1, ipWei.map(Double.init),
            oc: oc, bias: nil
        ).map { Int($0) }
        assertExact(dst.integers(), expected, ip.implementation)
    }

    func testReorderQuantizesWithRoundHalfToEvenAndSaturation() throws {
        let x: [Float] = [
            0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 126.5, 127.5, -128.5, 300, -300,
            3.25, -7.75, 0, 1e-3,
        ]
        for (dt, zp, range) in [(DataType.s8, 0, -128...127), (.u8, 0, 0...255), (.u8, 128, 0...255)] {
            for scale: Float in [1, 2, 0.5] {
                let attr = try PrimitiveAttributes()
                try attr.setOutputScales([scale])
                if zp != 0 { try attr.setZeroPoints([Int32(zp)], for: .dst) }
                let src = try Memory.plain([x.count], .f32, x.map(Double.init))
                let dst = try Memory.plain([x.count], dt)
                try src.reorder(into: dst, attributes: attr, stream: Stream())
                let expected = x.map {
                    Reference.quantize(
                        Double($0), scale: Double(scale),
                        zeroPoint: zp, range: range)
                }
                assertExact(dst.integers(), expected, "\(dt) scale \(scale) zero point \(zp)")
            }
        }
        // Dequantize: s8 -> f32 with scale, and requantize s8 -> u8 with a zero point.
        let q: [Int] = [-128, -3, 0, 5, 127]
        let attr = try PrimitiveAttributes()
        try attr.setOutputScales([0.1])
        let src = try Memory.plain([q.count], .s8, q.map(Double.init))
        let f = try Memory.plain([q.count], .f32)
        try src.reorder(into: f, attributes: attr, stream: Stream())
        assertClose(f.read(as: Float.self), q.map { Double(Float(0.1) * Float($0)) }, atol: 0)
    }
}
