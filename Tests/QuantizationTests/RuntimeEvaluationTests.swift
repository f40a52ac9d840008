import Foundation
import XCTest

@testable import Quantization

/// Operators without a oneDNN kernel, or with inputs of types oneDNN does not compute (i64,
/// s32, bool), run at run time through their evaluator, and integer graph inputs that set
/// shapes get a plan per value. References are naive loops here.
final class RuntimeEvaluationTests: XCTestCase {
    typealias K = PassKit

    private func i64(_ name: String, _ shape: [Int]) -> ValueInfo { ValueInfo(name: name, elementType: .i64, shape: shape.map { .fixed($0) }) }

    func testWhereOnRunTimeComparison() throws {
        let g = Graph(
            name: "mask",
            nodes: [
                Node(name: "gt", opType: "Greater", inputs: ["x", "zero"], outputs: ["m"]),
                Node(name: "w", opType: "Where", inputs: ["m", "x", "minus"], outputs: ["y"]),
            ], inputs: [K.f32("x", [2, 5])], outputs: [K.f32("y", [2, 5])],
            initializers: ["zero": K.scalar(0), "minus": K.scalar(-1)])
        let x = K.random([2, 5], seed: 3)
        let y = try XCTUnwrap(try K.session(g, optimize: true).run(["x": x])["y"])
        XCTAssertEqual(y.floatValues(), x.floatValues().map { $0 > 0 ? $0 : -1 })
    }

    func testGatherOnInt64TokenIds() throws {
        let table = K.random([10, 3], seed: 4)
        let g = Graph(
            name: "embed", nodes: [Node(name: "emb", opType: "Gather", inputs: ["table", "ids"], outputs: ["e"])],
            inputs: [i64("ids", [1, 4])], outputs: [K.f32("e", [1, 4, 3])], initializers: ["table": table])
        let session = try K.session(g, optimize: true)
        for ids in [[Int64(0), 9, 3, 3], [1, 2, -1, 0]] {
            let e = try XCTUnwrap(try session.run(["ids": Tensor(shape: [1, 4], scalars: ids)])["e"])
            let t = table.floatValues()
            let expected = ids.flatMap { id -> [Float] in
                let row = Int(id < 0 ? id + 10 : id)
                return Array(t[row * 3..<row * 3 + 3])
            }
            XCTAssertEqual(e.floatValues(), expected, "ids \(ids)")
        }
    }

    /// An i64 graph input that is a Reshape's shape: each value gets its plan.
    func testShapeSettingInputGetsAPlanPerValue() throws {
        var g = Graph(
            name: "reshape", nodes: [Node(name: "r", opType: "Reshape", inputs: ["x", "shape"], outputs: ["y"])],
            inputs: [K.f32("x", [2, 6]), i64("shape", [2])], outputs: [K.f32("y", [])])
        g.outputs[0].shape = nil
        let session = try K.session(g, optimize: true)
        let x = K.random([2, 6], seed: 5)
        for shape in [[Int64(3), 4], [4, -1], [12, 1]] {
            let y = try XCTUnwrap(try session.run(["x": x, "shape": Tensor(shape: [2], scalars: shape)])["y"])
            XCTAssertEqual(y.floatValues(), x.floatValues())
            XCTAssertEqual(y.shape, shape == [4, -1] ? [4, 3] : shape.map(Int.init))
        }
    }

    func testIntegerArithmeticTruncatesLikeONNX() throws {
        let g = Graph(
            name: "ints",
            nodes: [
                Node(name: "d", opType: "Div", inputs: ["a", "b"], outputs: ["q"]),
                Node(name: "m", opType: "Mul", inputs: ["a", "b"], outputs: ["p"]),
            ],
            inputs: [ValueInfo(name: "a", elementType: .s32, shape: [.fixed(4)]), ValueInfo(name: "b", elementType: .s32, shape: [.fixed(4)])],
            outputs: [ValueInfo(name: "q", elementType: .s32, shape: [.fixed(4)]), ValueInfo(name: "p", elementType: .s32, shape: [.fixed(4)])])
        let a: [Int32] = [-3, 12, 7, -7], b: [Int32] = [2, 23, -2, -2]
        let r = try K.session(g, optimize: true).run(["a": Tensor(shape: [4], scalars: a), "b": Tensor(shape: [4], scalars: b)])
        XCTAssertEqual(r["q"], Tensor(shape: [4], scalars: zip(a, b).map { $0 / $1 }))
        XCTAssertEqual(r["p"], Tensor(shape: [4], scalars: zip(a, b).map { $0 * $1 }))
    }

    func testVariadicMaxMinSumMeanAndNegativeFlattenAxis() throws {
        let a = K.random([2, 3], seed: 6), b = K.random([3], seed: 7), c = K.random([2, 1], seed: 8)
        let nodes = ["Max", "Min", "Sum", "Mean"].map {
            Node(name: $0.lowercased(), opType: $0, inputs: ["a", "b", "c"], outputs: [$0.lowercased()])
        }
        let g = Graph(
            name: "variadic", nodes: nodes + [Node(name: "one", opType: "Max", inputs: ["a"], outputs: ["same"])],
            inputs: [K.f32("a", [2, 3]), K.f32("b", [3]), K.f32("c", [2, 1])],
            outputs: ["max", "min", "sum", "mean", "same"].map { K.f32($0, [2, 3]) })
        let r = try K.session(g, optimize: true).run(["a": a, "b": b, "c": c])
        let va = a.floatValues(), vb = b.floatValues(), vc = c.floatValues()
        func each(_ f: (Float, Float, Float) -> Float) -> [Float] { (0..<6).map { i in f(va[i], vb[i % 3], vc[i / 3]) } }
        XCTAssertEqual(r["max"]?.floatValues(), each { max($0, $1, $2) })
        XCTAssertEqual(r["min"]?.floatValues(), each { min($0, $1, $2) })
        for (got, want) in zip(r["sum"]!.floatValues(), each { $0 + $1 + $2 }) { XCTAssertEqual(got, want, accuracy: 1e-6) }
        for (got, want) in zip(r["mean"]!.floatValues(), each { ($0 + $1 + $2) / 3 }) { XCTAssertEqual(got, want, accuracy: 1e-6) }
        XCTAssertEqual(r["same"], a)

        let f = Graph(
            name: "flatten",
            nodes: [Node(name: "f", opType: "Flatten", inputs: ["x"], outputs: ["y"], attributes: ["axis": .int(-3)])],
            inputs: [K.f32("x", [2, 3, 4, 5])], outputs: [K.f32("y", [2, 60])])
        XCTAssertEqual(try K.session(f, optimize: true).run(["x": K.random([2, 3, 4, 5], seed: 9)])["y"]?.shape, [2, 60])
    }
}
