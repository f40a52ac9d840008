import DNNL
import TestSupport
import XCTest

/// LSTM, GRU and linear-before-reset GRU in FP32 against `Reference.rnn` (one layer, one
/// direction, oneDNN gate orders). Right to left is the reference run on the time-reversed
/// input with its output sequence reversed; bidirectional concat joins both along channels.
final class FP32RecurrentTests: XCTestCase {
    var rng = SeededRandom(seed: 0x5EC_0E11)
    /// Absolute: states are bounded by tanh (|h| <= 1, |c| <= T), and each step accumulates
    /// at most SLC + DHC FP32 products; oneDNN's JIT sigmoid/tanh are within a few ulps.
    let tol = 1e-5

    struct Shape {
        var t = 5, n = 2, slc = 3, dhc = 4
    }

    /// Inputs for one run; per-direction tensors are stacked along D (index 0 = left to right,
    /// 1 = right to left, as in oneDNN's `ldigo`/`ldnc`).
    struct Inputs {
        var x: [Double]  // [T, N, SLC]
        var h0: [Double]  // [D, N, DHC]
        var c0: [Double]?  // [D, N, DHC]
        var wl: [Double]  // [D, SLC, G, DHC]
        var wi: [Double]  // [D, DHC, G, DHC]
        var bias: [Double]  // [D, G', DHC]
    }

    struct Outputs {
        var dst: [Double]  // [T, N, D * DHC] (concat)
        var h: [Double]  // [D, N, DHC]
        var c: [Double]  // [D, N, DHC] (LSTM)
    }

    func randoms(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Double] {
        rng.floats(count, in: range).map(Double.init)
    }

    func makeInputs(_ cell: Reference.Cell, _ s: Shape, directions d: Int) -> Inputs {
        let g = cell.gates
        return Inputs(
            x: randoms(s.t * s.n * s.slc),
            h0: randoms(d * s.n * s.dhc),
            c0: cell == .lstm ? randoms(d * s.n * s.dhc) : nil,
            wl: randoms(d * s.slc * g * s.dhc),
            wi: randoms(d * s.dhc * g * s.dhc),
            bias: randoms(d * cell.biasGates * s.dhc))
    }

    /// The reference for `direction`, composed from one-direction `Reference.rnn` runs.
    func reference(
        _ cell: Reference.Cell, _ direction: RNNDirection, _ s: Shape,
        _ i: Inputs
    ) -> Outputs {
        let g = cell.gates
        let state = s.n * s.dhc
        func slice(_ a: [Double], _ dir: Int, _ size: Int) -> [Double] {
            Array(a[(dir * size)..<((dir + 1) * size)])
        }
        /// Reverses the time axis of a `[T, N, C]` sequence.
        func reversed(_ seq: [Double], channels: Int) -> [Double] {
            let step = s.n * channels
            return (0..<s.t).reversed().flatMap { seq[($0 * step)..<(($0 + 1) * step)] }
        }
        /// One direction with the weights at index `dir`.
        func run(dir: Int, rightToLeft: Bool) -> (dst: [Double], h: [Double], c: [Double]) {
            let x = rightToLeft ? reversed(i.x, channels: s.slc) : i.x
            let r = Reference.rnn(
                cell, x: x, t: s.t, n: s.n, slc: s.slc, dhc: s.dhc, h0: slice(i.h0, dir, state),
                c0: i.c0.map { slice($0, dir, state) }, wl: slice(i.wl, dir, s.slc * g * s.dhc),
                wi: slice(i.wi, dir, s.dhc * g * s.dhc), bias: slice(i.bias, dir, cell.biasGates * s.dhc))
            return (rightToLeft ? reversed(r.dst, channels: s.dhc) : r.dst, r.h, r.c)
        }
        switch direction {
        case .leftToRight, .rightToLeft:
            let r = run(dir: 0, rightToLeft: direction == .rightToLeft)
            return Outputs(dst: r.dst, h: r.h, c: r.c)
        case .bidirectionalConcat:
            let l2r = run(dir: 0, rightToLeft: false), r2l = run(dir: 1, rightToLeft: true)
            var dst = [Double]()
            for row in 0..<(s.t * s.n) {
                dst += l2r.dst[(row * s.dhc)..<((row + 1) * s.dhc)]
                dst += r2l.dst[(row * s.dhc)..<((row + 1) * s.dhc)]
            }
            return Outputs(dst: dst, h: l2r.h + r2l.h, c: l2r.c + r2l.c)
        case .bidirectionalSum:
            fatalError("not used by these tests")
        }
    }

    /// Runs the oneDNN primitive: plain `tnc`/`ldnc`/`ldgo` data, weights passed as `any` and
    /// reordered from plain `ldigo` into the layouts the primitive chose (PrimitiveHarness).
    func runDNNL(
        _ cell: RNNCell, _ direction: RNNDirection, _ s: Shape, gates g: Int,
        biasGates: Int, _ i: Inputs
    ) throws -> (dst: [Float], h: [Float], c: [Float]?) {
        let d = direction.count
        let dstChannels = direction == .bidirectionalConcat ? 2 * s.dhc : s.dhc
        let xDims = [s.t, s.n, s.slc], stateDims = [1, d, s.n, s.dhc]
        let wlDims = [1, d, s.slc, g, s.dhc], wiDims = [1, d, s.dhc, g, s.dhc]
        let biasDims = [1, d, biasGates, s.dhc], dstDims = [s.t, s.n, dstChannels]
        let lstm = cell == .lstm
        let stateMD = try MemoryDescriptor(dims: stateDims, dataType: .f32, tag: .ldnc)
        let mds = RNNDescriptors(
            srcLayer: try MemoryDescriptor(dims: xDims, dataType: .f32, tag: .tnc),
            srcIter: stateMD, srcIterC: lstm ? stateMD : nil,
            weightsLayer: try MemoryDescriptor(dims: wlDims, dataType: .f32, tag: .any),
            weightsIter: try MemoryDescriptor(dims: wiDims, dataType: .f32, tag: .any),
            bias: try MemoryDescriptor(dims: biasDims, dataType: .f32, tag: .ldgo),
            dstLayer: try MemoryDescriptor(dims: dstDims, dataType: .f32, tag: .tnc),
            dstIter: stateMD, dstIterC: lstm ? stateMD : nil)
        let pd = try PrimitiveDescriptor.rnn(cell, direction: direction, mds)
        XCTAssertFalse(pd.descriptor(for: .weightsLayer).isFormatAny)

        // Plain row-major of these ranks is exactly tnc / ldnc / ldigo / ldgo.
        var inputs: [ExecArg: Memory] = [
            .srcLayer: try .plain(xDims, .f32, i.x), .srcIter: try .plain(stateDims, .f32, i.h0),
            .weightsLayer: try .plain(wlDims, .f32, i.wl), .weightsIter: try .plain(wiDims, .f32, i.wi),
            .bias: try .plain(biasDims, .f32, i.bias),
        ]
        let dst = try Memory.plain(dstDims, .f32)
        let h = try Memory.plain(stateDims, .f32)
        var outputs: [ExecArg: Memory] = [.dstLayer: dst, .dstIter: h]
        var c: Memory?
        if lstm, let c0 = i.c0 {
            inputs[.srcIterC] = try .plain(stateDims, .f32, c0)
            c = try Memory.plain(stateDims, .f32)
            outputs[.dstIterC] = c
        }
        try PrimitiveHarness().run(pd, inputs: inputs, outputs: outputs)
        return (dst.read(as: Float.self), h.read(as: Float.self), c?.read(as: Float.self))
    }

    /// Runs oneDNN and the reference and compares dst_layer, dst_iter and (LSTM) dst_iter_c.
    func check(
        _ cell: RNNCell, _ refCell: Reference.Cell, _ direction: RNNDirection,
        shape s: Shape = Shape(), file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let i = makeInputs(refCell, s, directions: direction.count)
        let got = try runDNNL(
            cell, direction, s, gates: refCell.gates,
            biasGates: refCell.biasGates, i)
        let ref = reference(refCell, direction, s, i)
        let what = "\(cell) \(direction)"
        assertClose(got.dst, ref.dst, atol: tol, "\(what) dst_layer", file: file, line: line)
        assertClose(got.h, ref.h, atol: tol, "\(what) dst_iter", file: file, line: line)
        if refCell == .lstm {
            guard let c = got.c else { return XCTFail("no dst_iter_c", file: file, line: line) }
            assertClose(c, ref.c, atol: tol, "\(what) dst_iter_c", file: file, line: line)
        }
        // The initial state matters: the first step must differ from a zero-state run, or the
        // test would not see src_iter ignored.
        var zeroState = i
        zeroState.h0 = zeroState.h0.map { _ in 0 }
        zeroState.c0 = zeroState.c0?.map { _ in 0 }
        let refZero = reference(refCell, direction, s, zeroState)
        XCTAssertGreaterThan(
            zip(ref.dst, refZero.dst).map { abs($0 - $1) }.max()!, 100 * tol,
            "\(what): h0/c0 do not affect the output", file: file, line: line)
    }

    func testLSTMLeftToRight() throws {
        try check(.lstm, .lstm, .leftToRight)
    }

    func testLSTMRightToLeft() throws {
        try check(.lstm, .lstm, .rightToLeft)
    }

    func testLSTMBidirectionalConcat() throws {
        try check(.lstm, .lstm, .bidirectionalConcat)
    }

    func testGRULeftToRight() throws {
        try check(.gru, .gru, .leftToRight)
    }

    func testLinearBeforeResetGRULeftToRight() throws {
        try check(.linearBeforeResetGRU, .lbrGRU, .leftToRight)
    }
}
