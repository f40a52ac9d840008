import CDNNL
import DNNL
import Foundation
import TestSupport
import XCTest

@testable import Quantization

/// INT8 nodes oneDNN has no INT8 kernel for run in FP32 with the same QDQ semantics
/// (`Int8Kernels.fp32Fallback`), and say so; oneDNN errors keep their status and call when
/// they surface as `GraphError`s; inputs from files, flags and callers throw instead of trapping.
///
/// oneDNN 2.6's reference kernels accept every INT8 configuration the QDQ fusion writes
/// (probed over ranks 3-5, groups, dilations, zero points, u8/s8/f32 results and post-op
/// chains: only an f32 result with an int8 sum, which the kernels never ask for, is
/// `unimplemented`), so the tests make descriptor creation answer `unimplemented` through the
/// `Int8Kernels.unimplementedForTesting` hook.
final class ErrorFallbackTests: XCTestCase {
    typealias K = PassKit

    /// `g` with the scale `sy` of its final QuantizeLinear (node `q`, reading `preQ`) chosen so
    /// that the largest |value| of `preQ` on `feeds` is `target` steps.
    private func withOutputScale(_ g: Graph, _ feeds: [String: Tensor], preQ: String, target: Float) throws -> Graph {
        var probe = g
        probe.nodes.removeAll { $0.name == "q" }
        probe.outputs = [K.f32(preQ, [])]
        probe.outputs[0].shape = nil
        let values = try XCTUnwrap(K.session(probe).run(feeds)[preQ]).floatValues()
        var result = g
        result.initializers["sy"] = K.scalar(values.map(abs).max()! / target)
        return result
    }

    /// Runs `g` three ways: the QDQ reference (no QDQ fusion: reorders around FP32 kernels),
    /// the fused INT8 graph, and the fused graph with `forced` op types answering
    /// `unimplemented`. Checks that `fused` op types were fused, that the fallback is within one
    /// step of the reference (in output units: `|got - ref| <= 1` on the integers), and that
    /// every step of each forced node is FP32 with the reason first.
    private func checkFallback(
        _ g: Graph, _ feeds: [String: Tensor], output: String, forced: Set<String>, step: Float = 1,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let reference = try XCTUnwrap(K.session(g, optimize: true, disabled: ["qdq-fusion"]).run(feeds)[output], file: file, line: line)
        let session = try K.session(g, optimize: true)
        let fusedTypes = Set(session.graph.nodes.map(\.opType))
        XCTAssertTrue(forced.isSubset(of: fusedTypes), "fused graph: \(K.opTypes(session.graph))", file: file, line: line)

        // Without the hook: INT8 kernels.
        let int8Report = try session.nodeReport(for: feeds)
        for n in session.graph.nodes where forced.contains(n.opType) {
            XCTAssertTrue(int8Report.contains { $0.node == n.label && $0.precision == .int8 }, "\(n.label): \(int8Report)", file: file, line: line)
        }

        // With the hook, in a session of its own (plans are cached per session).
        let fallback = try K.session(g, optimize: true)
        let (got, report) = try Int8Kernels.$unimplementedForTesting.withValue(forced) {
            (try fallback.run(feeds), try fallback.nodeReport(for: feeds))
        }
        for n in fallback.graph.nodes where forced.contains(n.opType) {
            let steps = report.filter { $0.node == n.label }
            XCTAssertEqual(steps.first?.precision, .fp32, "\(n.label): \(steps)", file: file, line: line)
            XCTAssertTrue(steps.first?.detail.hasPrefix("FP32 fallback: ") ?? false, "\(steps)", file: file, line: line)
            XCTAssertEqual(steps.filter(\.isFP32Fallback).count, 1, "\(steps)", file: file, line: line)
            XCTAssertTrue(steps.first?.detail.contains("unimplemented") ?? false, "\(steps)", file: file, line: line)
            XCTAssertTrue(steps.allSatisfy { $0.precision == .fp32 }, "every step of \(n.label) runs FP32: \(steps)", file: file, line: line)
            XCTAssertTrue(steps.contains { $0.detail.contains("(f32)") }, "an FP32 primitive: \(steps)", file: file, line: line)
        }
        let y = try XCTUnwrap(got[output], file: file, line: line)
        XCTAssertEqual(y.elementType, reference.elementType, file: file, line: line)
        XCTAssertEqual(y.shape, reference.shape, file: file, line: line)
        let ref = reference.floatValues()
        switch reference.elementType {
        case .u8: assertInformative(reference.intValues(), range: 0...255, file: file, line: line)
        case .s8: assertInformative(reference.intValues(), range: -128...127, file: file, line: line)
        default: XCTAssertGreaterThan(Set(ref).count, ref.count / 2, "the reference is degenerate", file: file, line: line)
        }
        assertClose(y.floatValues(), ref.map(Double.init), atol: Double(step) * 1.0001, "FP32 fallback vs QDQ reference", file: file, line: line)
    }

    /// QConv with a residual sum and ReLU, u8 result: dequantize x_q and z_q, FP32 convolution
    /// with the dequantized s8 weights, sum and ReLU post-ops, quantize.
    func testQConvWithResidualFallsBackToFP32WithinOneStep() throws {
        var rng = SeededRandom(seed: 700)
        let xs = [1, 4, 6, 6], ws = [8, 4, 3, 3], ys = [1, 8, 6, 6]
        let n = ys.reduce(1, *)
        let g = Graph(
            name: "qconv-fallback",
            nodes: [
                K.dq("dqx", "x_q", "sx", "zx", "x"),
                K.dq("dqw", "wq", "ws", "wz", "w", axis: 0),
                K.dq("dqz", "z_q", "sz", "zz", "z"),
                K.conv("conv", "x", "w", "b", "c"),
                Node(name: "add", opType: "Add", inputs: ["c", "z"], outputs: ["s"]),
                Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["r"]),
                K.q("q", "r", "sy", "zy", "y_q"),
            ], inputs: [K.value("x_q", .u8, xs), K.value("z_q", .s8, ys)], outputs: [K.value("y_q", .u8, ys)],
            initializers: [
                "sx": K.scalar(0.031), "zx": K.u8([], [7]), "wq": K.s8(ws, rng.ints(288, in: -60...127)),
                "ws": K.floats([8], rng.floats(8, in: 0.002...0.01)), "wz": K.s8([8], [Int](repeating: 0, count: 8)),
                "b": K.floats([8], rng.floats(8, in: -0.5...0.5)),
                "sz": K.scalar(0.013), "zz": K.s8([], [0]), "sy": K.scalar(0.021), "zy": K.u8([], [0]),
            ])
        let feeds = ["x_q": K.u8(xs, rng.ints(144, in: 0...255)), "z_q": K.s8(ys, rng.ints(n, in: -128...127))]
        try checkFallback(try withOutputScale(g, feeds, preQ: "r", target: 250), feeds, output: "y_q", forced: ["QConv"])
    }

    /// QConv with an f32 result (no Q after it): the fallback's result is the FP32 convolution
    /// of the dequantized operands, compared in units of the input's quantization step.
    func testQConvWithF32ResultFallsBack() throws {
        var rng = SeededRandom(seed: 701)
        let xs = [1, 3, 5, 5], ws = [4, 3, 3, 3]
        let g = Graph(
            name: "qconv-f32",
            nodes: [
                K.q("qx", "x", "sx", "zx", "x_q"),
                K.dq("dqx", "x_q", "sx", "zx", "xd"),
                K.dq("dqw", "wq", "ws", "wz", "w", axis: 0),
                K.conv("conv", "xd", "w", nil, "y"),
            ], inputs: [K.f32("x", xs)], outputs: [K.f32("y", [1, 4, 5, 5])],
            initializers: [
                "sx": K.scalar(0.02), "zx": K.u8([], [128]), "wq": K.s8(ws, rng.ints(108, in: -127...127)),
                "ws": K.floats([4], [0.01, 0.02, 0.005, 0.015]), "wz": K.s8([4], [0, 0, 0, 0]),
            ])
        // f32 results agree to rounding (the same dequantized values in both).
        try checkFallback(g, ["x": K.random(xs, seed: 702, in: -2...2)], output: "y", forced: ["QConv"], step: 1e-4)
    }

    /// QMatMul with a u8 source (zero point 3), per-column weight scales, a bias and an s8
    /// result.
    func testQMatMulFallsBackToFP32WithinOneStep() throws {
        var rng = SeededRandom(seed: 703)
        let (k, n) = (16, 6)
        let g = Graph(
            name: "qmatmul-fallback",
            nodes: [
                K.dq("dqx", "x_q", "sx", "zx", "x"),
                K.dq("dqw", "wq", "ws", "wz", "w", axis: 1),
                Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["m"]),
                Node(name: "add", opType: "Add", inputs: ["m", "bias"], outputs: ["t"]),
                K.q("q", "t", "sy", "zy", "y_q"),
            ], inputs: [K.value("x_q", .u8, [2, 3, k])], outputs: [K.value("y_q", .s8, [2, 3, n])],
            initializers: [
                "sx": K.scalar(0.05), "zx": K.u8([], [3]), "wq": K.s8([k, n], rng.ints(k * n, in: -127...127)),
                "ws": K.floats([n], rng.floats(n, in: 0.001...0.004)), "wz": K.s8([n], [Int](repeating: 0, count: n)),
                "bias": K.floats([n], rng.floats(n, in: -0.3...0.3)), "sy": K.scalar(0.02), "zy": K.s8([], [0]),
            ])
        let feeds = ["x_q": K.u8([2, 3, k], rng.ints(6 * k, in: 0...255))]
        try checkFallback(try withOutputScale(g, feeds, preQ: "t", target: 120), feeds, output: "y_q", forced: ["QMatMul"])
    }

    /// QAdd and QMul of two s8 tensors with their own scales, s8 results.
    func testQAddAndQMulFallBackToFP32WithinOneStep() throws {
        var rng = SeededRandom(seed: 704)
        let shape = [2, 3, 4]
        for op in ["Add", "Mul"] {
            let g = Graph(
                name: "q" + op,
                nodes: [
                    K.dq("dqa", "a_q", "sa", "za", "a"),
                    K.dq("dqb", "b_q", "sb", "zb", "b"),
                    Node(name: "op", opType: op, inputs: ["a", "b"], outputs: ["t"]),
                    K.q("q", "t", "sy", "zy", "y_q"),
                ], inputs: [K.value("a_q", .s8, shape), K.value("b_q", .s8, shape)], outputs: [K.value("y_q", .s8, shape)],
                initializers: [
                    "sa": K.scalar(0.03), "za": K.s8([], [0]), "sb": K.scalar(0.017), "zb": K.s8([], [0]),
                    "sy": K.scalar(1), "zy": K.s8([], [0]),
                ])
            let feeds = ["a_q": K.s8(shape, rng.ints(24, in: -128...127)), "b_q": K.s8(shape, rng.ints(24, in: -128...127))]
            try checkFallback(try withOutputScale(g, feeds, preQ: "t", target: 120), feeds, output: "y_q", forced: ["Q" + op])
        }
    }

    // MARK: - oneDNN errors through GraphError

    /// A oneDNN failure while a plan is built surfaces as a `.runtime` GraphError naming the
    /// node, with the DNNLError (status, call, context) kept underneath.
    func testLoweringKeepsTheDNNLError() throws {
        let l = Lowering(graph: Graph(nodes: [], inputs: [], outputs: []), opset: 13, engine: try Engine.shared())
        l.node = Node(name: "c1", opType: "Conv", inputs: ["x", "w"], outputs: ["y"])
        let underlying = DNNLError(status: dnnl_unimplemented, call: "dnnl_primitive_desc_create", context: "convolution src [1, 3, 8, 8] u8")
        do throws(GraphError) {
            _ = try l.wrap { () throws(DNNLError) -> Int in throw underlying }
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.kind, .runtime)
            XCTAssertEqual(error.dnnlError, underlying)
            XCTAssertEqual(error.dnnlError?.isUnimplemented, true)
            XCTAssertEqual(error.dnnlError?.call, "dnnl_primitive_desc_create")
            XCTAssertTrue(error.message.hasPrefix("node Conv 'c1': dnnl_primitive_desc_create failed: unimplemented"), error.message)
        }
        // A real oneDNN rejection: a reorder between different dims.
        do throws(GraphError) {
            _ = try l.wrap { () throws(DNNLError) in
                try PrimitiveDescriptor.reorder(
                    src: MemoryDescriptor(dims: [2, 3], dataType: .f32), dst: MemoryDescriptor(dims: [3, 2], dataType: .f32))
            }
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.dnnlError?.call, "dnnl_reorder_primitive_desc_create")
            XCTAssertEqual(error.dnnlError?.status, dnnl_invalid_arguments)
            XCTAssertTrue(error.dnnlError?.context.contains("[2, 3]") ?? false, "\(error)")
        }
    }

    /// Equality compares kind, message and the oneDNN error; errors that did not come from
    /// oneDNN have none.
    func testGraphErrorEqualityIncludesTheDNNLError() {
        let a = DNNLError(status: dnnl_unimplemented, call: "dnnl_primitive_desc_create", context: "x")
        let b = DNNLError(status: dnnl_invalid_arguments, call: "dnnl_primitive_desc_create", context: "x")
        XCTAssertEqual(GraphError(.runtime, "m", dnnlError: a), GraphError(.runtime, "m", dnnlError: a))
        XCTAssertNotEqual(GraphError(.runtime, "m", dnnlError: a), GraphError(.runtime, "m", dnnlError: b))
        XCTAssertNotEqual(GraphError(.runtime, "m", dnnlError: a), GraphError(.runtime, "m"))
        XCTAssertNil(GraphError(.badInput, "m").dnnlError)
        XCTAssertEqual(GraphError(runtime: "node X", a).dnnlError, a)
        XCTAssertEqual(GraphError(runtime: "step", GraphError(.runtime, "inner", dnnlError: b)).dnnlError, b)
        XCTAssertNil(GraphError(runtime: "step", CocoaError(.fileNoSuchFile)).dnnlError)
    }

    // MARK: - data from files, flags and callers throw instead of trapping

    /// Malformed nodes whose evaluation or lowering used to trap (a missing input read with
    /// `!`, an index out of range, an overflow, a NaN converted to `Int`) throw a `GraphError`
    /// naming the node.
    func testMalformedNodesThrowInsteadOfTrapping() throws {
        let xs = [1, 2, 4, 4]
        let x = K.random(xs, seed: 710)
        func f32s(_ shape: [Int], _ v: [Float]) -> Tensor { K.floats(shape, v) }
        func graph(_ nodes: [Node], _ initializers: [String: Tensor], output: String = "y") -> Graph {
            Graph(
                nodes: nodes, inputs: [K.f32("x", xs)], outputs: [ValueInfo(name: output, elementType: .f32, shape: nil)], initializers: initializers)
        }
        func node(_ op: String, _ inputs: [String], _ attributes: [String: AttributeValue] = [:], out: String = "y") -> Node {
            Node(name: op.lowercased(), opType: op, inputs: inputs, outputs: [out], attributes: attributes)
        }
        let w = K.random([2, 3, 3, 3], seed: 711)
        let cases: [(String, Graph, String)] = [
            // Constant folding evaluates an Add with one input (it used to read x[1]!).
            ("Add with one input", graph([node("Add", ["c"], out: "a"), node("Add", ["x", "a"])], ["c": f32s([1], [1])]), "needs"),
            (
                "Unsqueeze repeating an axis",
                graph(
                    [node("Unsqueeze", ["c", "axes"], out: "u"), node("Add", ["x", "u"])], ["c": f32s([4], [1, 2, 3, 4]), "axes": K.i64([0, 0])]),
                "repeat"
            ),
            (
                "ConstantOfShape of a negative shape",
                graph([node("ConstantOfShape", ["s"], out: "c"), node("Add", ["x", "c"])], ["s": K.i64([-3, 4])]), "negative or too large"
            ),
            (
                "ConstantOfShape of an overflowing shape",
                graph([node("ConstantOfShape", ["s"], out: "c"), node("Add", ["x", "c"])], ["s": K.i64([1 << 40, 1 << 40])]), "too large"
            ),
            (
                "Range to infinity",
                graph(
                    [node("Range", ["a", "b", "d"], out: "r"), node("Add", ["x", "r"])],
                    ["a": K.scalar(0), "b": K.scalar(.infinity), "d": K.scalar(1)]), "too many"
            ),
            (
                "Range of NaN",
                graph(
                    [node("Range", ["a", "b", "d"], out: "r"), node("Add", ["x", "r"])], ["a": K.scalar(.nan), "b": K.scalar(4), "d": K.scalar(1)]),
                "too many"
            ),
            (
                "Slice with mismatched counts",
                graph(
                    [node("Slice", ["c", "st", "en"], out: "s"), node("Add", ["x", "s"])],
                    ["c": f32s([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]), "st": K.i64([0, 0]), "en": K.i64([1])]), "differ in count"
            ),
            (
                "Concat of scalars", graph([node("Concat", ["c", "c"], ["axis": .int(0)], out: "s"), node("Add", ["x", "s"])], ["c": K.scalar(1)]),
                "scalars"
            ),
            (
                "Concat of mismatched shapes",
                graph(
                    [node("Concat", ["c", "d"], ["axis": .int(0)], out: "s"), node("Add", ["x", "s"])],
                    ["c": f32s([1, 2], [1, 2]), "d": f32s([1, 3], [1, 2, 3])]), "concat of shapes"
            ),
            (
                "Gather of a scalar", graph([node("Gather", ["c", "i"], out: "g"), node("Add", ["x", "g"])], ["c": K.scalar(1), "i": K.i64([0])]),
                "scalar"
            ),
            (
                "Expand to a negative shape",
                graph([node("Expand", ["c", "s"], out: "e"), node("Add", ["x", "e"])], ["c": f32s([1], [1]), "s": K.i64([-1, 4])]), "cannot expand"
            ),
            (
                "Tile overflowing",
                graph([node("Tile", ["c", "r"], out: "t"), node("Add", ["x", "t"])], ["c": f32s([2], [1, 2]), "r": K.i64([Int.max])]), "overflow"
            ),
            ("Pad by a huge amount", graph([node("Pad", ["x", "p"])], ["p": K.i64([0, 0, 0, 0, 0, 0, 0, Int.max])]), "pads"),
            ("Resize by an infinite scale", graph([node("Resize", ["x", "", "sc"])], ["sc": f32s([4], [1, 1, .infinity, 2])]), "too large"),
            (
                "QuantizeLinear with two zero points for one scale",
                graph(
                    [node("QuantizeLinear", ["x", "s", "z"], out: "q"), node("DequantizeLinear", ["q", "s", "z"])],
                    ["s": K.scalar(0.1), "z": K.u8([2], [0, 1])]), "zero points"
            ),
            (
                "ConvTranspose with a short output_shape", graph([node("ConvTranspose", ["x", "w"], ["output_shape": .ints([9])])], ["w": w]),
                "output_shape"
            ),
            (
                "Conv with an enormous stride",
                graph([node("Conv", ["x", "w2"], ["strides": .ints([Int.max, 1])])], ["w2": K.random([3, 2, 3, 3], seed: 712)]), "at most"
            ),
            ("Gemm of a 4-D A with transA", graph([node("Gemm", ["x", "b"], ["transA": .int(1)])], ["b": K.random([4, 2], seed: 713)]), "2-D A"),
            (
                "LSTM of a scalar R",
                graph(
                    [node("LSTM", ["x3", "wl", "rl"])],
                    ["x3": K.random([2, 1, 3], seed: 714), "wl": K.random([1, 8, 3], seed: 715), "rl": K.scalar(1)]), "hidden_size"
            ),
        ]
        for (what, g, mentions) in cases {
            for optimize in [false, true] {
                do {
                    _ = try K.session(g, optimize: optimize).run(["x": x])
                    XCTFail("\(what) (optimize \(optimize)): expected a GraphError")
                } catch let e as GraphError {
                    XCTAssertTrue(e.message.contains(mentions), "\(what) (optimize \(optimize)): '\(mentions)' missing from: \(e)")
                } catch {
                    XCTFail("\(what): unexpected \(error)")
                }
            }
        }
    }

    /// Integer conversions of model data saturate (NaN gives 0) instead of trapping: a Cast of
    /// non-finite floats to INT32 folds at plan time.
    func testCastOfNonFiniteFloatsSaturates() throws {
        let c = K.floats([5], [.nan, .infinity, -.infinity, 3e30, -2.7])
        XCTAssertEqual(c.intValues(), [0, Int.max, Int.min, Int.max, -2])
        let g = Graph(
            nodes: [Node(name: "cast", opType: "Cast", inputs: ["c"], outputs: ["y"], attributes: ["to": .int(6)])],
            inputs: [K.f32("x", [1])], outputs: [ValueInfo(name: "y", elementType: .s32, shape: nil)], initializers: ["c": c])
        let y = try XCTUnwrap(K.run(g, ["x": K.floats([1], [0])])["y"])
        XCTAssertEqual(y.elementType, .s32)
        XCTAssertEqual(y.intValues(), [0, Int(Int32.max), Int(Int32.min), Int(Int32.max), -2])
    }

    /// A calibration file that disappears after the reader checked it is skipped with a
    /// warning when iterating, and an error from `sample(at:)`; an index out of range is an
    /// error naming the folder.
    func testCalibrationReaderSkipsAFileThatChangedAndChecksIndices() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("errfallback-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for i in 0..<3 { try K.floats([2], [Float(i), 1]).writeNPY(to: folder.appendingPathComponent("\(i).npy")) }
        let reader = try CalibrationReader(directory: folder, inputNames: ["x"])
        try FileManager.default.removeItem(at: folder.appendingPathComponent("1.npy"))
        var it = reader.makeIterator()
        var seen: [Float] = []
        while let s = it.next() { seen.append(s["x"]?.floatValues().first ?? -1) }
        XCTAssertEqual(seen, [0, 2])
        XCTAssertEqual(it.skipped.count, 1)
        XCTAssertTrue(it.skipped.first?.file.hasSuffix("1.npy") ?? false, "\(it.skipped)")
        XCTAssertThrowsError(try reader.sample(at: 1))
        do {
            _ = try reader.sample(at: 3)
            XCTFail("index 3 of 3 samples")
        } catch {
            XCTAssertTrue(error.message.contains("no sample 3"), "\(error)")
        }
        XCTAssertThrowsError(try reader.sample(at: -1))
    }

    /// A caller's table with a NaN range encodes (as a string the decoder rejects) and is
    /// refused by `write(to:)` with an error naming the tensor; observers take any element type.
    func testCalibrationTableWithANaNRangeThrows() throws {
        let table = CalibrationTable(
            method: .minMax, sampleCount: 1, ranges: ["t": TensorRange(min: .nan, max: 1), "u": TensorRange(min: 0, max: 2)])
        let data = table.jsonData()
        XCTAssertThrowsError(try CalibrationTable(jsonData: data))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("errfallback-\(UUID().uuidString).json")
        do {
            try table.write(to: url)
            XCTFail("a NaN range must not be written")
        } catch {
            XCTAssertTrue(error.message.contains("'t'"), "\(error)")
            XCTAssertEqual(error.file, url.path)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))

        var observer = TensorObserver()
        observer.observe(K.u8([4], [0, 3, 200, 7]))
        XCTAssertEqual(observer.count, 4)
        XCTAssertEqual(observer.max, 200)
    }
}
