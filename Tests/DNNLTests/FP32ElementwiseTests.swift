import CDNNL
import DNNL
import TestSupport
import XCTest

/// Eltwise, binary, concat/sum, reorder, resampling, softmax, normalizations and memory
/// descriptor views in FP32 against naive Double references.
///
/// Tolerances (absolute + relative, `|got - ref| <= atol + rtol * |ref|`):
/// - `exactTol` 1e-5: one FP32 rounding of an exact operation (binary, sum, linear...):
///   relative error ~6e-8, far below.
/// - `approxTol` 2e-5: transcendental functions (oneDNN JIT polynomial exp/tanh/erf, a few
///   ulps) and reductions over at most a dozen elements (softmax, layer/batch norm).
/// - Copies (concat, reorder, resampling, scaling by 0.5) must be bit-exact.
final class FP32ElementwiseTests: XCTestCase {
    var rng = SeededRandom(seed: 0xE17_3A5E)
    let exactTol = 1e-5
    let approxTol = 2e-5

    /// `count` values uniform in `range` (FP32-representable, so the reference sees the exact
    /// inputs oneDNN sees).
    func randoms(_ count: Int, in range: ClosedRange<Float> = -4...4) -> [Double] {
        rng.floats(count, in: range).map(Double.init)
    }

    /// Values of magnitude in `magnitude` with random sign (divisors away from zero).
    func awayFromZero(_ count: Int, magnitude: ClosedRange<Float> = 0.5...2) -> [Double] {
        let m = rng.floats(count, in: magnitude)
        let s = rng.ints(count, in: 0...1)
        return zip(m, s).map { Double($0) * ($1 == 0 ? -1 : 1) }
    }

    /// Runs an eltwise primitive out of place on plain f32 `dims`.
    func runEltwise(
        _ alg: EltwiseAlgorithm, alpha: Float = 0, beta: Float = 0, dims: [Int],
        _ src: [Double], attributes: PrimitiveAttributes? = nil
    ) throws -> [Float] {
        let md = try MemoryDescriptor(dims: dims, dataType: .f32)
        let pd = try PrimitiveDescriptor.eltwise(
            alg, data: md, alpha: alpha, beta: beta,
            attributes: attributes)
        let dst = try Memory.plain(dims, .f32)
        try PrimitiveHarness().run(pd, inputs: [.src: .plain(dims, .f32, src)], outputs: [.dst: dst])
        return dst.read(as: Float.self)
    }

    // MARK: - Eltwise

    func testEltwiseFunctions() throws {
        let dims = [2, 3, 4, 5]
        let count = dims.reduce(1, *)
        let x = randoms(count)  // [-4, 4]: both sides of every kink, saturation of tanh/logistic
        let cases: [(EltwiseAlgorithm, Float, Float, Reference.Eltwise)] = [
            (.relu, 0, 0, .relu(alpha: 0)),
            (.relu, 0.1, 0, .relu(alpha: 0.1)),  // leaky
            (.clip, -0.5, 0.7, .clip(lo: -0.5, hi: 0.7)),
            (.linear, 1.75, -0.25, .linear(alpha: 1.75, beta: -0.25)),
            (.hardswish, 0, 0, .hardswish),
            (.logistic, 0, 0, .logistic),
            (.tanh, 0, 0, .tanh),
            (.geluErf, 0, 0, .geluErf),
            (.exp, 0, 0, .exp),
            (.abs, 0, 0, .abs),
            (.square, 0, 0, .square),
            (.swish, 1.5, 0, .swish(alpha: 1.5)),
            (.elu, 0.8, 0, .elu(alpha: 0.8)),
        ]
        for (alg, alpha, beta, ref) in cases {
            let got = try runEltwise(alg, alpha: alpha, beta: beta, dims: dims, x)
            assertClose(
                got, x.map { ref($0) }, atol: approxTol, rtol: approxTol,
                "\(alg) alpha \(alpha) beta \(beta)")
        }
        // sqrt on positive input only.
        let positive = randoms(count, in: 0.01...4)
        assertClose(
            try runEltwise(.sqrt, dims: dims, positive),
            positive.map { Reference.Eltwise.sqrt($0) }, atol: approxTol, rtol: approxTol,
            "sqrt")
    }

    /// HardSigmoid(x) = clip(0.2 x + 0.5, 0, 1): oneDNN 2.6 has no hardsigmoid, so it is
    /// `linear` then `clip`, as two primitives (the second in place) and as one eltwise with a
    /// clip post-op.
    func testHardSigmoidAsLinearThenClip() throws {
        let dims = [3, 4, 7]
        let x = randoms(dims.reduce(1, *))
        let linear = Reference.Eltwise.linear(alpha: 0.2, beta: 0.5)
        let clip = Reference.Eltwise.clip(lo: 0, hi: 1)
        let ref = x.map { clip(linear($0)) }
        // x in [-4, 4] puts 0.2 x + 0.5 in [-0.3, 1.3]: both clip bounds and the linear part.
        XCTAssert(ref.contains(0) && ref.contains(1) && ref.contains { $0 > 0 && $0 < 1 })

        // Two primitives; the clip runs in place (src and dst are the same memory).
        let md = try MemoryDescriptor(dims: dims, dataType: .f32)
        let stream = try DNNL.Stream()
        let src = try Memory.plain(dims, .f32, x)
        let tmp = try Memory.plain(dims, .f32)
        try PrimitiveDescriptor.eltwise(.linear, data: md, alpha: 0.2, beta: 0.5)
            .makePrimitive().execute(on: stream, [.src: src, .dst: tmp])
        try PrimitiveDescriptor.eltwise(.clip, data: md, alpha: 0, beta: 1)
            .makePrimitive().execute(on: stream, [.src: tmp, .dst: tmp])
        assertClose(tmp.read(as: Float.self), ref, atol: exactTol, rtol: exactTol, "two primitives")

        // One eltwise primitive with a clip post-op.
        let po = try PostOps()
        try po.appendEltwise(.clip, alpha: 0, beta: 1)
        let attr = try PrimitiveAttributes()
        try attr.setPostOps(po)
        let fused = try runEltwise(.linear, alpha: 0.2, beta: 0.5, dims: dims, x, attributes: attr)
        assertClose(fused, ref, atol: exactTol, rtol: exactTol, "linear + clip post-op")
    }

    // MARK: - Binary

    func testBinaryWithBroadcasting() throws {
        let dims = [2, 3, 4, 5]
        let a = randoms(dims.reduce(1, *))
        let ops: [(BinaryAlgorithm, (Double, Double) -> Double)] = [
            (.add, +), (.mul, *), (.sub, -), (.max, { Swift.max($0, $1) }),
            (.min, { Swift.min($0, $1) }), (.div, /),
        ]
        for bDims in [[1, 3, 1, 1], [2, 1, 4, 1], dims] {
            let bCount = bDims.reduce(1, *)
            // Divisors of magnitude >= 0.5; the others share the data range of a.
            let bFull = randoms(bCount)
            let bDivisor = awayFromZero(bCount)
            for (alg, op) in ops {
                let b = alg == .div ? bDivisor : bFull
                let pd = try PrimitiveDescriptor.binary(
                    alg, src0: MemoryDescriptor(dims: dims, dataType: .f32),
                    src1: MemoryDescriptor(dims: bDims, dataType: .f32),
                    dst: MemoryDescriptor(dims: dims, dataType: .f32))
                let dst = try Memory.plain(dims, .f32)
                try PrimitiveHarness().run(
                    pd,
                    inputs: [
                        .src: .plain(dims, .f32, a), .src1: .plain(bDims, .f32, b),
                    ], outputs: [.dst: dst])
                let ref = Reference.binary(a, aDims: dims, b, bDims: bDims, op)
                assertClose(
                    dst.read(as: Float.self), ref, atol: exactTol, rtol: exactTol,
                    "\(alg) src1 \(bDims)")
            }
        }
    }

    /// Source scales: `dst = s0 * src0 op s1 * src1`.
    func testBinaryWithSourceScales() throws {
        let dims = [2, 3, 4, 5]
        let a = randoms(dims.reduce(1, *))
        let (s0, s1): (Float, Float) = (0.75, -1.5)
        for bDims in [[1, 3, 1, 1], dims] {
            let b = randoms(bDims.reduce(1, *))
            for (alg, op) in [
                (BinaryAlgorithm.add, { (x: Double, y: Double) in x + y }),
                (.mul, { $0 * $1 }), (.max, { Swift.max($0, $1) }),
            ] {
                let attr = try PrimitiveAttributes()
                try attr.setScales([s0], for: .src)
                try attr.setScales([s1], for: .src1)
                let pd = try PrimitiveDescriptor.binary(
                    alg, src0: MemoryDescriptor(dims: dims, dataType: .f32),
                    src1: MemoryDescriptor(dims: bDims, dataType: .f32),
                    dst: MemoryDescriptor(dims: dims, dataType: .f32), attributes: attr)
                let dst = try Memory.plain(dims, .f32)
                try PrimitiveHarness().run(
                    pd,
                    inputs: [
                        .src: .plain(dims, .f32, a), .src1: .plain(bDims, .f32, b),
                    ], outputs: [.dst: dst])
                let ref = Reference.binary(a, aDims: dims, b, bDims: bDims) {
                    op(Double(s0) * $0, Double(s1) * $1)
                }
                assertClose(
                    dst.read(as: Float.self), ref, atol: exactTol, rtol: exactTol,
                    "\(alg) src1 \(bDims) scales \(s0) \(s1)")
            }
        }
    }

    // MARK: - Concat and sum

    func testConcatAlongChannelsAndBatch() throws {
        let cases: [(axis: Int, dims: [[Int]])] = [
            (1, [[2, 2, 3, 4], [2, 3, 3, 4], [2, 1, 3, 4]]),
            (0, [[1, 3, 2, 2], [2, 3, 2, 2], [3, 3, 2, 2]]),
        ]
        for (axis, partDims) in cases {
            let parts = partDims.map { (values: randoms($0.reduce(1, *)), dims: $0) }
            var dstDims = partDims[0]
            dstDims[axis] = partDims.map { $0[axis] }.reduce(0, +)
            let pd = try PrimitiveDescriptor.concat(
                srcs: partDims.map { try MemoryDescriptor(dims: $0, dataType: .f32) }, axis: axis,
                dst: MemoryDescriptor(dims: dstDims, dataType: .f32))
            var inputs: [ExecArg: Memory] = [:]
            for (i, p) in parts.enumerated() { inputs[.multipleSrc(i)] = try .plain(p.dims, .f32, p.values) }
            let dst = try Memory.plain(dstDims, .f32)
            try PrimitiveHarness().run(pd, inputs: inputs, outputs: [.dst: dst])
            XCTAssertEqual(
                dst.read(as: Float.self),
                Reference.concat(parts, axis: axis).map(Float.init), "axis \(axis)")
        }
    }

    func testScaledSumOfThreeSources() throws {
        let dims = [2, 3, 4, 5]
        let scales: [Float] = [0.5, -1, 2]
        let srcs = (0..<3).map { _ in randoms(dims.reduce(1, *)) }
        let md = try MemoryDescriptor(dims: dims, dataType: .f32)
        let pd = try PrimitiveDescriptor.sum(srcs: [md, md, md], scales: scales, dst: md)
        var inputs: [ExecArg: Memory] = [:]
        for (i, s) in srcs.enumerated() { inputs[.multipleSrc(i)] = try .plain(dims, .f32, s) }
        let dst = try Memory.plain(dims, .f32)
        try PrimitiveHarness().run(pd, inputs: inputs, outputs: [.dst: dst])
        let ref = (0..<srcs[0].count).map { i in
            (0..<3).reduce(0.0) { $0 + Double(scales[$1]) * srcs[$1][i] }
        }
        assertClose(dst.read(as: Float.self), ref, atol: exactTol, rtol: exactTol)
    }

    // MARK: - Reorder

    func testReorderNCHWToNHWCAndBack() throws {
        let dims = [2, 3, 4, 5]
        let (n, c, h, w) = (2, 3, 4, 5)
        let x = randoms(dims.reduce(1, *))
        let stream = try DNNL.Stream()
        let plain = try Memory.plain(dims, .f32, x)
        let nhwc = try Memory(MemoryDescriptor(dims: dims, dataType: .f32, tag: .nhwc))
        try plain.reorder(into: nhwc, stream: stream)
        // The channels-last buffer holds x[n, c, h, w] at ((n * H + h) * W + w) * C + c.
        var ref = [Double](repeating: 0, count: x.count)
        Reference.forEachIndex(dims) { i in
            ref[((i[0] * h + i[2]) * w + i[3]) * c + i[1]] = x[((i[0] * c + i[1]) * h + i[2]) * w + i[3]]
        }
        XCTAssertEqual(n * c * h * w, x.count)
        XCTAssertEqual(nhwc.read(as: Float.self), ref.map(Float.init), "nhwc buffer")
        let back = try Memory.plain(dims, .f32)
        try nhwc.reorder(into: back, stream: stream)
        XCTAssertEqual(back.read(as: Float.self), x.map(Float.init), "round trip")
    }

    func testReorderWithOutputScale() throws {
        let dims = [3, 4, 5]
        let x = randoms(dims.reduce(1, *))
        let attr = try PrimitiveAttributes()
        try attr.setOutputScales([0.5])
        let dst = try Memory.plain(dims, .f32)
        try Memory.plain(dims, .f32, x).reorder(into: dst, attributes: attr, stream: DNNL.Stream())
        // Scaling by a power of two is exact in FP32.
        XCTAssertEqual(dst.read(as: Float.self), x.map { Float(0.5 * $0) })
    }

    // MARK: - Resampling

    func testNearestResampling() throws {
        let (n, c, h, w) = (1, 3, 4, 5)
        let x = randoms(n * c * h * w)
        for factor in [2, 3] {
            let (oh, ow) = (h * factor, w * factor)
            let pd = try PrimitiveDescriptor.resampling(
                .nearest, src: MemoryDescriptor(dims: [n, c, h, w], dataType: .f32),
                dst: MemoryDescriptor(dims: [n, c, oh, ow], dataType: .f32))
            let dst = try Memory.plain([n, c, oh, ow], .f32)
            try PrimitiveHarness().run(
                pd, inputs: [.src: .plain([n, c, h, w], .f32, x)],
                outputs: [.dst: dst])
            let ref = Reference.resampleNearest(x, n: n, c: c, h: h, w: w, oh: oh, ow: ow)
            XCTAssertEqual(dst.read(as: Float.self), ref.map(Float.init), "factor \(factor)")
        }
    }

    // MARK: - Softmax

    func testSoftmaxAndLogSoftmax() throws {
        let dims = [2, 5, 3]
        let x = randoms(dims.reduce(1, *))
        let md = try MemoryDescriptor(dims: dims, dataType: .f32)
        for log in [false, true] {
            for axis in [1, 2] {
                let pd = try PrimitiveDescriptor.softmax(src: md, dst: md, axis: axis, log: log)
                let dst = try Memory.plain(dims, .f32)
                try PrimitiveHarness().run(
                    pd, inputs: [.src: .plain(dims, .f32, x)],
                    outputs: [.dst: dst])
                let ref = Reference.softmax(x, dims: dims, axis: axis, log: log)
                assertClose(
                    dst.read(as: Float.self), ref, atol: approxTol, rtol: approxTol,
                    "\(log ? "log " : "")softmax axis \(axis)")
            }
        }
    }

    // MARK: - Normalization

    func testLayerNormalizationWithAndWithoutScaleShift() throws {
        let dims = [2, 3, 8]
        let c = 8
        let epsilon: Float = 1e-5
        let x = randoms(dims.reduce(1, *))
        let scale = randoms(c, in: 0.5...2)
        let shift = randoms(c, in: -1...1)
        for affine in [true, false] {
            let pd = try PrimitiveDescriptor.layerNormalization(
                data: MemoryDescriptor(dims: dims, dataType: .f32), epsilon: epsilon,
                useScale: affine, useShift: affine)
            var inputs: [ExecArg: Memory] = [.src: try .plain(dims, .f32, x)]
            if affine {
                inputs[.scale] = try .plain([c], .f32, scale)
                inputs[.shift] = try .plain([c], .f32, shift)
            }
            let dst = try Memory.plain(dims, .f32)
            try PrimitiveHarness().run(pd, inputs: inputs, outputs: [.dst: dst])
            let ref = Reference.layerNorm(
                x, lastDim: c, epsilon: Double(epsilon),
                scale: affine ? scale : nil, shift: affine ? shift : nil)
            assertClose(
                dst.read(as: Float.self), ref, atol: approxTol, rtol: approxTol,
                affine ? "with scale and shift" : "plain")
        }
    }

    func testBatchNormalizationWithGlobalStatistics() throws {
        let (n, c, h, w) = (2, 4, 3, 3)
        let dims = [n, c, h, w]
        let epsilon: Float = 1e-5
        let x = randoms(dims.reduce(1, *))
        let mean = randoms(c, in: -1...1)
        let variance = randoms(c, in: 0.25...4)
        let scale = randoms(c, in: 0.5...2)
        let shift = randoms(c, in: -1...1)
        let pd = try PrimitiveDescriptor.batchNormalization(
            data: MemoryDescriptor(dims: dims, dataType: .f32), epsilon: epsilon,
            useScale: true, useShift: true)
        let dst = try Memory.plain(dims, .f32)
        try PrimitiveHarness().run(
            pd,
            inputs: [
                .src: .plain(dims, .f32, x), .mean: .plain([c], .f32, mean),
                .variance: .plain([c], .f32, variance), .scale: .plain([c], .f32, scale),
                .shift: .plain([c], .f32, shift),
            ], outputs: [.dst: dst])
        let ref = Reference.batchNorm(
            x, n: n, c: c, mean: mean, variance: variance, scale: scale,
            shift: shift, epsilon: Double(epsilon))
        assertClose(dst.read(as: Float.self), ref, atol: approxTol, rtol: approxTol)
    }

    // MARK: - Memory descriptors

    /// A reshaped view of a buffer: softmax over the merged last axis of `[2, 3, 4]` seen as
    /// `[2, 12]` normalizes 12 values per row.
    func testReshapedDescriptor() throws {
        let md = try MemoryDescriptor(dims: [2, 3, 4], dataType: .f32)
        let flat = try md.reshaped([2, 12])
        XCTAssertEqual(flat.dims, [2, 12])
        XCTAssertTrue(flat.isPlainRowMajor)
        XCTAssertEqual(flat.byteCount, md.byteCount)
        XCTAssertEqual(flat, try MemoryDescriptor(dims: [2, 12], dataType: .f32))
        XCTAssertThrowsError(try md.reshaped([5, 5]), "element count differs")

        let x = randoms(24)
        let src = try Memory.plain([2, 3, 4], .f32, x)
        let view = try Memory(flat, buffer: src.dataPointer, owner: src)
        let dst = try Memory.plain([2, 12], .f32)
        try PrimitiveDescriptor.softmax(src: flat, dst: dst.descriptor, axis: 1).makePrimitive()
            .execute(on: DNNL.Stream(), [.src: view, .dst: dst])
        assertClose(
            dst.read(as: Float.self), Reference.softmax(x, dims: [2, 12], axis: 1),
            atol: approxTol, rtol: approxTol)
    }

    /// oneDNN's permutation: input axis `i` becomes output axis `permutation[i]`.
    func testPermutedAxesDescriptor() throws {
        let inDims = [2, 3, 4]
        let md = try MemoryDescriptor(dims: inDims, dataType: .f32)
        let perm = [1, 2, 0]
        let permuted = try md.permutingAxes(perm)
        // out[perm[i]] = in[i]: out = [4, 2, 3].
        var outDims = [0, 0, 0]
        for i in 0..<3 { outDims[perm[i]] = inDims[i] }
        XCTAssertEqual(permuted.dims, outDims)
        XCTAssertEqual(outDims, [4, 2, 3])
        XCTAssertFalse(permuted.isPlainRowMajor)
        XCTAssertEqual(permuted.byteCount, md.byteCount)

        // Reading the same buffer through the permuted view gives the transpose:
        // out[c0, c1, c2] with in coordinate i having c_{perm[i]}.
        let x = randoms(24)
        let src = try Memory.plain(inDims, .f32, x)
        let view = try Memory(permuted, buffer: src.dataPointer, owner: src)
        let dst = try Memory.plain(outDims, .f32)
        try view.reorder(into: dst, stream: DNNL.Stream())
        var ref = [Double]()
        let inStrides = Reference.strides(inDims)
        Reference.forEachIndex(outDims) { o in
            ref.append(x[(0..<3).map { o[perm[$0]] * inStrides[$0] }.reduce(0, +)])
        }
        XCTAssertEqual(dst.read(as: Float.self), ref.map(Float.init))
    }

    /// A reorder into a submemory view writes a `[1, 2, 3, 3]` block into channels 2...3 of a
    /// `[1, 5, 3, 3]` buffer and leaves the other channels alone.
    func testSubmemoryAsReorderDestination() throws {
        let parentDims = [1, 5, 3, 3], blockDims = [1, 2, 3, 3]
        let before = randoms(45)
        let block = randoms(18)
        let parent = try Memory.plain(parentDims, .f32, before)
        let sub = try parent.descriptor.submemory(dims: blockDims, offsets: [0, 2, 0, 0])
        XCTAssertEqual(sub.dims, blockDims)
        XCTAssertFalse(sub.isPlainRowMajor, "a view at an offset is not a dense row-major buffer")
        XCTAssertEqual(sub.plainStrides, [45, 9, 3, 1])
        let view = try Memory(sub, buffer: parent.dataPointer, owner: parent)
        // Plain NHWC source so the reorder also permutes.
        let blockPlain = try Memory.plain(blockDims, .f32, block)
        let blockNHWC = try Memory(MemoryDescriptor(dims: blockDims, dataType: .f32, tag: .nhwc))
        let stream = try DNNL.Stream()
        try blockPlain.reorder(into: blockNHWC, stream: stream)
        try blockNHWC.reorder(into: view, stream: stream)
        var ref = before
        for i in 0..<18 { ref[2 * 9 + i] = block[i] }
        XCTAssertEqual(parent.read(as: Float.self), ref.map(Float.init))
    }

    func testIsPlainRowMajorAndByteCount() throws {
        let cases: [(MemoryDescriptor, plain: Bool, bytes: Int)] = [
            (try MemoryDescriptor(dims: [2, 3, 4], dataType: .f32), true, 24 * 4),
            (try MemoryDescriptor(dims: [2, 3, 4], dataType: .u8), true, 24),
            (try MemoryDescriptor(dims: [2, 3, 4], dataType: .s32, tag: .abc), true, 24 * 4),
            (try MemoryDescriptor(dims: [1, 3, 4, 5], dataType: .f32, tag: .nhwc), false, 60 * 4),
            // C = 1: NHWC and NCHW are the same bytes.
            (try MemoryDescriptor(dims: [2, 1, 4, 5], dataType: .f32, tag: .nhwc), true, 40 * 4),
            (try MemoryDescriptor(dims: [3, 4], dataType: .f32, tag: .ba), false, 12 * 4),
            (try MemoryDescriptor(dims: [3, 4], dataType: .f32, strides: [8, 1]), false, 3 * 8 * 4),
            (try MemoryDescriptor(dims: [3, 4], dataType: .f32, strides: [4, 1]), true, 12 * 4),
            // nChw16c pads C = 3 to 16.
            (
                try MemoryDescriptor(dims: [1, 3, 4, 5], dataType: .f32, tag: FormatTag(dnnl_aBcd16b)),
                false, 16 * 20 * 4
            ),
        ]
        for (md, plain, bytes) in cases {
            XCTAssertEqual(md.isPlainRowMajor, plain, "\(md)")
            XCTAssertEqual(md.byteCount, bytes, "\(md)")
        }
        let anyMD = try MemoryDescriptor(dims: [2, 3], dataType: .f32, tag: .any)
        XCTAssertTrue(anyMD.isFormatAny)
        XCTAssertFalse(anyMD.isPlainRowMajor)
    }
}
