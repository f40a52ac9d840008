import Foundation
import XCTest

@testable import Quantization

/// The indexing and reduction evaluators (Kernels/Evaluators/IndexingEvaluators.swift,
/// ReductionEvaluators.swift) against naive loops written here, independently of the
/// implementation, and a few small literal cases worked by hand from the ONNX spec. The ONNX node
/// conformance cases (Tests/conformance) cover the breadth of attributes.
final class IndexingEvaluatorTests: XCTestCase {
    typealias K = PassKit

    private func eval(
        _ op: String, _ inputs: [Tensor?], _ attributes: [String: AttributeValue] = [:], opset: Int = 18
    ) throws -> [Tensor] {
        let node = Node(name: "n", opType: op, inputs: inputs.map { $0 == nil ? "" : "x" }, outputs: ["y", "z"], attributes: attributes)
        let f = try XCTUnwrap(ConstantEvaluation.evaluators[op], "\(op) has no evaluator")
        return try f(node, inputs, opset)
    }

    private func assertThrowsGraphError(_ body: @autoclosure () throws -> [Tensor], _ message: String, line: UInt = #line) {
        XCTAssertThrowsError(try body(), message, line: line) { XCTAssertTrue($0 is GraphError, "\($0)", line: line) }
    }

    /// Gather, GatherElements and GatherND copy i64 values exactly (above 2^53), take negative
    /// indices from the end, and refuse an out-of-range index with a GraphError.
    func testGathersAreExactForInt64AndNegativeIndices() throws {
        let big: [Int64] = (0..<12).map { Int64.max - 3 * $0 }  // not representable as Double
        let data = Tensor(shape: [3, 4], scalars: big)
        // Gather axis 1, s32 indices [[-1, 0], [2, -4]]: naive loop.
        let idx = Tensor(shape: [2, 2], scalars: [Int32(-1), 0, 2, -4])
        let g = try eval("Gather", [data, idx], ["axis": .int(1)])[0]
        var expected: [Int64] = []
        for r in 0..<3 { for i in [3, 0, 2, 0] { expected.append(big[r * 4 + i]) } }
        XCTAssertEqual(g, Tensor(shape: [3, 2, 2], scalars: expected))

        // GatherElements axis 0: out[i][j] = data[idx[i][j]][j].
        let ge = Tensor(shape: [2, 4], scalars: [Int64(2), -1, 0, 1, -3, 0, 2, 2])
        let e = try eval("GatherElements", [data, ge])[0]
        let geValues = ge.intValues()
        let expectedE = (0..<8).map { k -> Int64 in
            let row = geValues[k] < 0 ? geValues[k] + 3 : geValues[k]
            return big[row * 4 + k % 4]
        }
        XCTAssertEqual(e, Tensor(shape: [2, 4], scalars: expectedE))

        // GatherND with batch_dims 1: out[b][t] = data[b][idx[b][t][0]].
        let nd = Tensor(shape: [3, 2, 1], scalars: [Int64(0), 3, -1, 1, 2, -2])
        let n = try eval("GatherND", [data, nd], ["batch_dims": .int(1)])[0]
        let ndValues = nd.intValues()
        let expectedN = (0..<6).map { k -> Int64 in
            let b = k / 2, c = ndValues[k] < 0 ? ndValues[k] + 4 : ndValues[k]
            return big[b * 4 + c]
        }
        XCTAssertEqual(n, Tensor(shape: [3, 2], scalars: expectedN))

        assertThrowsGraphError(try eval("Gather", [data, Tensor(shape: [1], scalars: [Int64(4)])], ["axis": .int(1)]), "index 4 of 4")
        assertThrowsGraphError(try eval("GatherElements", [data, Tensor(shape: [1, 1], scalars: [Int64(-4)])]), "index -4 of 3")
        assertThrowsGraphError(try eval("GatherND", [data, Tensor(shape: [1, 2], scalars: [Int64(0), 9])]), "index 9 of 4")
    }

    /// ScatterElements and ScatterND with every reduction and repeated indices, s32 and f32,
    /// against a naive sequential loop.
    func testScattersWithReductionsMatchANaiveLoop() throws {
        let data: [Float] = (0..<12).map { Float($0 % 5) - 1.5 }
        let idx: [Int] = [1, -3, 1, 0, 2, 2]  // rows of a [3, 4] data, for a [2, 3] indices (axis 0)
        let upd: [Float] = [2, -1, 3, 0.5, 4, -2]
        let reductions: [(String, (Float, Float) -> Float)] = [
            ("none", { $1 }), ("add", { $0 + $1 }), ("mul", { $0 * $1 }), ("max", { max($0, $1) }), ("min", { min($0, $1) }),
        ]
        for (name, f) in reductions {
            var expected = data
            for k in 0..<6 {
                let row = idx[k] < 0 ? idx[k] + 3 : idx[k], col = k % 3
                expected[row * 4 + col] = f(expected[row * 4 + col], upd[k])
            }
            let y = try eval(
                "ScatterElements", [K.floats([3, 4], data), Tensor(shape: [2, 3], scalars: idx.map { Int64($0) }), K.floats([2, 3], upd)],
                ["reduction": .string(name)])[0]
            XCTAssertEqual(y.floatValues(), expected, "ScatterElements \(name)")

            // ScatterND on s32: index tuples of one coordinate (whole rows of 4), rows [2, 0, 2].
            let rows = [2, 0, -1]
            let rowUpdates = (0..<12).map { Int32($0 * 3 - 7) }
            var expectedND = data.map { Int32($0 * 2) }
            for (t, r) in rows.enumerated() {
                let row = r < 0 ? r + 3 : r
                for j in 0..<4 {
                    let p = row * 4 + j
                    expectedND[p] = Int32(f(Float(expectedND[p]), Float(rowUpdates[t * 4 + j])))
                }
            }
            let nd = try eval(
                "ScatterND",
                [
                    Tensor(shape: [3, 4], scalars: data.map { Int32($0 * 2) }), Tensor(shape: [3, 1], scalars: rows.map { Int64($0) }),
                    Tensor(shape: [3, 4], scalars: rowUpdates),
                ], ["reduction": .string(name)])[0]
            XCTAssertEqual(nd, Tensor(shape: [3, 4], scalars: expectedND), "ScatterND \(name)")
        }
        assertThrowsGraphError(
            try eval("ScatterElements", [K.floats([2], [0, 0]), K.i64([2]), K.floats([1], [1])]), "index 2 of 2")
    }

    /// TopK ties come lower index first; ArgMax/ArgMin select_last_index and keepdims; Hardmax
    /// marks the first largest (values worked by hand from the spec).
    func testTopKArgMaxAndHardmaxTies() throws {
        let x = Tensor(shape: [2, 5], scalars: [Int32(3), 1, 3, 2, 1, 0, 7, 7, -1, 7])
        let top = try eval("TopK", [x, K.i64([3])])
        XCTAssertEqual(top[0], Tensor(shape: [2, 3], scalars: [Int32(3), 3, 2, 7, 7, 7]))
        XCTAssertEqual(top[1], Tensor(shape: [2, 3], scalars: [Int64(0), 2, 3, 1, 2, 4]))
        let low = try eval("TopK", [x, K.i64([2])], ["largest": .int(0)])
        XCTAssertEqual(low[0], Tensor(shape: [2, 2], scalars: [Int32(1), 1, -1, 0]))
        XCTAssertEqual(low[1], Tensor(shape: [2, 2], scalars: [Int64(1), 4, 3, 0]))
        assertThrowsGraphError(try eval("TopK", [x, K.i64([6])]), "k 6 of 5")

        XCTAssertEqual(try eval("ArgMax", [x], ["axis": .int(1)])[0], Tensor(shape: [2, 1], scalars: [Int64(0), 1]))
        XCTAssertEqual(
            try eval("ArgMax", [x], ["axis": .int(-1), "keepdims": .int(0), "select_last_index": .int(1)])[0],
            Tensor(shape: [2], scalars: [Int64(2), 4]))
        XCTAssertEqual(
            try eval("ArgMin", [x], ["axis": .int(0), "keepdims": .int(0)])[0], Tensor(shape: [5], scalars: [Int64(1), 0, 0, 1, 0]))

        let h = try eval("Hardmax", [K.floats([2, 3], [1, 5, 5, -2, -2, -3])], opset: 13)[0]
        XCTAssertEqual(h.floatValues(), [0, 1, 0, 1, 0, 0])
        // Opset 11: the input coerced to 2-D at axis 0 (one row of 6).
        let h11 = try eval("Hardmax", [K.floats([2, 3], [1, 5, 5, -2, 6, -3])], ["axis": .int(0)], opset: 11)[0]
        XCTAssertEqual(h11.floatValues(), [0, 0, 0, 0, 1, 0])
    }

    /// The ten reductions over every axis subset (keepdims 0 and 1) of random f32 and s32 data
    /// against a naive loop; noop_with_empty_axes; empty reductions give the identity.
    func testReductionsMatchANaiveLoop() throws {
        let shape = [2, 3, 4]
        let f = K.random(shape, seed: 11, in: 0.1...2).floatValues().map(Double.init)
        let ints = (0..<24).map { ($0 * 7) % 5 - 2 }  // small: products stay exact
        let ops: [(String, ([Double]) -> Double)] = [
            ("ReduceSum", { $0.reduce(0, +) }), ("ReduceMean", { $0.reduce(0, +) / Double($0.count) }),
            ("ReduceMax", { $0.max()! }), ("ReduceMin", { $0.min()! }), ("ReduceProd", { $0.reduce(1, *) }),
            ("ReduceL1", { $0.map(abs).reduce(0, +) }), ("ReduceL2", { $0.map { $0 * $0 }.reduce(0, +).squareRoot() }),
            ("ReduceLogSum", { log($0.reduce(0, +)) }), ("ReduceLogSumExp", { log($0.map(exp).reduce(0, +)) }),
            ("ReduceSumSquare", { $0.map { $0 * $0 }.reduce(0, +) }),
        ]
        for axes in [[0], [1], [2], [0, 2], [-1, -2], [0, 1, 2]] {
            let reduced = Set(axes.map { $0 < 0 ? $0 + 3 : $0 })
            // Naive: group the elements by their coordinates with the reduced ones dropped.
            var groups: [[Int]: [Int]] = [:]
            for a in 0..<2 {
                for b in 0..<3 {
                    for c in 0..<4 {
                        groups[[a, b, c].enumerated().filter { !reduced.contains($0.offset) }.map(\.element), default: []].append((a * 3 + b) * 4 + c)
                    }
                }
            }
            let keys = groups.keys.sorted { $0.lexicographicallyPrecedes($1) }
            let keptShape = shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
            for (op, reduce) in ops {
                for keep in [0, 1] {
                    let y = try eval(op, [K.floats(shape, f.map(Float.init)), K.i64(axes)], ["keepdims": .int(keep)])[0]
                    XCTAssertEqual(y.shape, keep == 1 ? keptShape : keptShape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element))
                    let expected = keys.map { reduce(groups[$0]!.map { f[$0] }) }
                    for (got, want) in zip(y.floatValues(), expected) {
                        XCTAssertEqual(Double(got), want, accuracy: 1e-4 * max(1, abs(want)), "\(op) \(axes)")
                    }
                }
                guard !["ReduceLogSum", "ReduceLogSumExp", "ReduceL2", "ReduceMean"].contains(op) else { continue }
                // s32: the same integer results (no rounding involved).
                let y = try eval(op, [K.s32(shape, ints), K.i64(axes)], ["keepdims": .int(0)])[0]
                XCTAssertEqual(y.elementType, .s32)
                XCTAssertEqual(y.intValues(), keys.map { Int(reduce(groups[$0]!.map { Double(ints[$0]) })) }, "\(op) s32 \(axes)")
            }
        }
        // Axes from the attribute (old opsets), all axes by default, noop_with_empty_axes.
        let x = K.floats([2, 2], [1, -2, 3, 4])
        XCTAssertEqual(try eval("ReduceSum", [x], ["axes": .ints([1])], opset: 11)[0], K.floats([2, 1], [-1, 7]))
        XCTAssertEqual(try eval("ReduceSum", [x, K.i64([])])[0], K.floats([1, 1], [6]))
        XCTAssertEqual(try eval("ReduceL1", [x, K.i64([])], ["noop_with_empty_axes": .int(1)])[0], K.floats([2, 2], [1, 2, 3, 4]))
        // Bool stays bool; empty reductions give the identity.
        XCTAssertEqual(try eval("ReduceMax", [K.u8([2, 2], [0, 1, 0, 0]), K.i64([1])], ["keepdims": .int(0)])[0], K.u8([2], [1, 0]))
        let empty = Tensor(zeros: [2, 0], elementType: .f32)
        XCTAssertEqual(try eval("ReduceSum", [empty, K.i64([1])])[0], K.floats([2, 1], [0, 0]))
        XCTAssertEqual(try eval("ReduceProd", [empty, K.i64([1])])[0], K.floats([2, 1], [1, 1]))
        XCTAssertEqual(try eval("ReduceMax", [empty, K.i64([1])])[0].floatValues(), [-.infinity, -.infinity])
        XCTAssertEqual(try eval("ReduceMin", [Tensor(zeros: [0], elementType: .s8), K.i64([0])])[0], K.s8([1], [127]))
        assertThrowsGraphError(try eval("ReduceSum", [x, K.i64([2])]), "axis 2 of rank 2")
    }

    /// CumSum (exclusive, reverse) and CumProd on i64 against a naive loop; Trilu, EyeLike,
    /// OneHot, ReverseSequence, Compress worked by hand; SpaceToDepth against a naive loop and
    /// DepthToSpace as its inverse in both modes.
    func testScansMasksAndRearrangements() throws {
        let v: [Int64] = [3, -1, 4, 1, -5, 9, 2, 6]  // [2, 4], axis 1
        for (exclusive, reverse) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            for product in [false, true] {
                var expected = v
                for r in 0..<2 {
                    for c in 0..<4 {
                        let range = reverse == 1 ? Array((c + exclusive)..<4) : Array(0..<(c + 1 - exclusive))
                        let parts = range.map { v[r * 4 + $0] }
                        expected[r * 4 + c] = product ? parts.reduce(1, *) : parts.reduce(0, +)
                    }
                }
                let y = try eval(
                    product ? "CumProd" : "CumSum", [Tensor(shape: [2, 4], scalars: v), Tensor(shape: [], scalars: [Int32(-1)])],
                    ["exclusive": .int(exclusive), "reverse": .int(reverse)])[0]
                XCTAssertEqual(y, Tensor(shape: [2, 4], scalars: expected), "product \(product) exclusive \(exclusive) reverse \(reverse)")
            }
        }

        let m = K.s8([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(try eval("Trilu", [m])[0], K.s8([3, 3], [1, 2, 3, 0, 5, 6, 0, 0, 9]))
        XCTAssertEqual(try eval("Trilu", [m, K.i64([-1])], ["upper": .int(0)])[0], K.s8([3, 3], [0, 0, 0, 4, 0, 0, 7, 8, 0]))
        XCTAssertEqual(
            try eval("EyeLike", [m], ["k": .int(1), "dtype": .int(7)])[0], Tensor(shape: [3, 3], scalars: [Int64(0), 1, 0, 0, 0, 1, 0, 0, 0]))
        // OneHot, axis 0: indices [1, -1, 5] with depth 3 (5 is out of range: a column of `off`).
        let oh = try eval("OneHot", [K.i64([1, -1, 5]), K.i64([3]), K.floats([2], [-1, 2])], ["axis": .int(0)])[0]
        XCTAssertEqual(oh, K.floats([3, 3], [-1, -1, -1, 2, -1, -1, -1, 2, -1]))
        // ReverseSequence, time axis 0, batch axis 1: batch 0 reverses 3 steps, batch 1 one.
        let seq = try eval("ReverseSequence", [K.s32([3, 2], [0, 1, 2, 3, 4, 5]), K.i64([3, 1])])[0]
        XCTAssertEqual(seq, K.s32([3, 2], [4, 1, 2, 3, 0, 5]))
        assertThrowsGraphError(try eval("ReverseSequence", [K.s32([3, 2], [0, 1, 2, 3, 4, 5]), K.i64([4, 1])]), "length 4 of 3")
        let c = try eval("Compress", [K.s32([2, 3], [1, 2, 3, 4, 5, 6]), K.u8([2], [0, 1])], ["axis": .int(1)])[0]
        XCTAssertEqual(c, K.s32([2, 1], [2, 5]))
        XCTAssertEqual(try eval("Compress", [K.s32([2, 3], [1, 2, 3, 4, 5, 6]), K.u8([4], [1, 0, 0, 1])])[0], K.s32([2], [1, 4]))

        let x = K.random([1, 2, 4, 6], seed: 12)
        let xv = x.floatValues()
        for mode in ["DCR", "CRD"] {
            let s = try eval("SpaceToDepth", [x], ["blocksize": .int(2), "mode": .string(mode)])[0]
            XCTAssertEqual(s.shape, [1, 8, 2, 3])
            let sv = s.floatValues()
            for ch in 0..<2 {
                for i in 0..<2 {
                    for j in 0..<2 {
                        let outC = mode == "DCR" ? (i * 2 + j) * 2 + ch : ch * 4 + i * 2 + j
                        for h in 0..<2 { for w in 0..<3 { XCTAssertEqual(sv[(outC * 2 + h) * 3 + w], xv[(ch * 4 + h * 2 + i) * 6 + w * 2 + j]) } }
                    }
                }
            }
            XCTAssertEqual(try eval("DepthToSpace", [s], ["blocksize": .int(2), "mode": .string(mode)])[0], x, mode)
        }
    }

    /// The evaluators run at run time on graph inputs of any type (a session: i64 ArgMax of a
    /// run-time f32 input, a s32 ReduceProd, a bool ReduceMin) and with constant shape inputs.
    func testRunTimeInputsThroughASession() throws {
        let g = Graph(
            name: "indexing",
            nodes: [
                Node(name: "am", opType: "ArgMax", inputs: ["x"], outputs: ["am"], attributes: ["axis": .int(1), "keepdims": .int(0)]),
                Node(name: "tk", opType: "TopK", inputs: ["x", "k"], outputs: ["tv", "ti"]),
                Node(name: "rp", opType: "ReduceProd", inputs: ["i", "axes"], outputs: ["rp"], attributes: ["keepdims": .int(0)]),
                Node(name: "rm", opType: "ReduceMin", inputs: ["b", "axes"], outputs: ["rm"], attributes: ["keepdims": .int(0)]),
            ],
            inputs: [K.f32("x", [2, 3]), K.value("i", .s32, [2, 3]), K.value("b", .u8, [2, 3])],
            outputs: [
                K.value("am", .i64, [2]), K.f32("tv", [2, 2]), K.value("ti", .i64, [2, 2]), K.value("rp", .s32, [2]), K.value("rm", .u8, [2]),
            ],
            initializers: ["k": K.i64([2]), "axes": K.i64([1])])
        let session = try K.session(g, opset: 18)
        let x = K.floats([2, 3], [0.5, 2, -1, 4, 4, 3])
        let r = try session.run(["x": x, "i": K.s32([2, 3], [2, -3, 4, 1, 5, -1]), "b": K.u8([2, 3], [1, 1, 1, 1, 0, 1])])
        XCTAssertEqual(r["am"], Tensor(shape: [2], scalars: [Int64(1), 0]))
        XCTAssertEqual(r["tv"], K.floats([2, 2], [2, 0.5, 4, 4]))
        XCTAssertEqual(r["ti"], Tensor(shape: [2, 2], scalars: [Int64(1), 0, 0, 1]))
        XCTAssertEqual(r["rp"], K.s32([2], [-24, -5]))
        XCTAssertEqual(r["rm"], K.u8([2], [1, 0]))
    }
}
