import Foundation
import TestSupport
import XCTest

@testable import Quantization

/// A Gemm with constant weights and `transB = 1` (PyTorch's `Linear` export) with a
/// classifier-sized weight `[1000, 512]`: it used to never finish loading (the transposition
/// re-read the whole weight tensor for every element). Checked against a naive Double loop.
final class GemmTransBTests: XCTestCase {
    func testClassifierSizedTransposedWeightsLoadAndMatchANaiveLoop() throws {
        let (k, n) = (512, 1000)
        var rng = SeededRandom(seed: 11)
        let w = rng.floats(n * k, in: -0.1...0.1), bias = rng.floats(n, in: -1...1), x = rng.floats(2 * k, in: -1...1)
        let g = Graph(
            name: "linear",
            nodes: [Node(name: "fc", opType: "Gemm", inputs: ["x", "W", "B"], outputs: ["y"], attributes: ["transB": .int(1)])],
            inputs: [PassKit.f32("x", [2, k])], outputs: [PassKit.f32("y", [2, n])],
            initializers: ["W": Tensor(shape: [n, k], scalars: w), "B": Tensor(shape: [n], scalars: bias)])
        let y = try XCTUnwrap(try PassKit.run(g, ["x": Tensor(shape: [2, k], scalars: x)])["y"]).floatValues()
        var ref: [Double] = []
        for r in 0..<2 {
            for j in 0..<n {
                var acc = Double(bias[j])
                for i in 0..<k { acc += Double(x[r * k + i]) * Double(w[j * k + i]) }
                ref.append(acc)
            }
        }
        assertClose(y, ref, atol: 1e-4, rtol: 1e-4, "Gemm transB")
    }
}

/// Thread counts a session accepts: 1...4 per CPU (libgomp segfaulted on 100000, and
/// 2^32 + 1 trapped converting to Int32).
final class ThreadCountTests: XCTestCase {
    func testAbsurdThreadCountsAreRefusedWithTheirValue() throws {
        let g = Graph(
            name: "t", nodes: [Node(name: "r", opType: "Relu", inputs: ["x"], outputs: ["y"])],
            inputs: [PassKit.f32("x", [2])], outputs: [PassKit.f32("y", [2])])
        for threads in [0, -1, 100_000, (1 << 32) + 1] {
            XCTAssertThrowsError(try InferenceSession(model: Model(graph: g, opsetVersion: 13), options: .init(threads: threads))) {
                let e = $0 as? GraphError
                XCTAssertEqual(e?.kind, .badInput)
                XCTAssertTrue(e?.message.contains("got \(threads)") == true, "\($0)")
            }
        }
        let ok = try InferenceSession(model: Model(graph: g, opsetVersion: 13), options: .init(threads: 2))
        XCTAssertEqual(try ok.run(["x": Tensor(shape: [2], scalars: [Float(-1), 2])])["y"]?.floatValues(), [0, 2])
    }
}
