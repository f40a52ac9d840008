import Foundation

/// Reduction operators evaluated in Swift over `Tensor`s (at plan time on constants, at run time
/// through `RuntimeEvaluation`), following the ONNX operator spec (Operators.md#ReduceSum and
/// its siblings).
///
/// All ten reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
/// ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare. Input of any shape and element type
/// (f32, u8/bool, s8, s32, i64); the output has the input's element type (integer results of
/// Mean, L2, LogSum and LogSumExp truncated toward zero, as NumPy's `astype`; bool stays bool
/// for Max and Min). Axes: the `axes` attribute (before ReduceSum-13 / the others' opset 18) or
/// input 1 (a constant: it sets the shape), negative counted from the end; none or empty: all
/// axes, or with `noop_with_empty_axes` = 1 none (each element reduced alone, as the ONNX
/// reference does). `keepdims` (default 1) keeps the reduced dims as 1. A reduction over no
/// elements gives its identity: 0 (Sum, L1, L2, SumSquare), 1 (Prod), the type's lowest
/// (Max; -inf for f32) or highest (Min; +inf), -inf (LogSum, LogSumExp), NaN (Mean).
///
/// The f32 ReduceMean/Sum/Max/Min with constant axes also have a oneDNN lowering
/// (NormalizationKernels); this evaluator runs the other types and the other reductions.
enum ReductionEvaluators {
    static let operators = [
        "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
        "ReduceLogSumExp", "ReduceSumSquare",
    ]

    static func register(_ e: inout [String: ConstantEvaluation.Evaluator]) {
        for op in operators { e[op] = reduce }
    }

    /// The reduced axes (sorted, distinct; empty = no reduction) for a node and input rank.
    static func reducedAxes(_ node: Node, _ x: [Tensor?], rank: Int) throws(GraphError) -> [Int] {
        let given = ConstantEvaluation.axesInput(node, x) ?? []
        if given.isEmpty { return node.int("noop_with_empty_axes") == 1 ? [] : Array(0..<rank) }
        var axes: Set<Int> = []
        for a in given {
            guard rank > 0 else { throw ConstantEvaluation.fail(node, "axes \(given) for a scalar") }
            axes.insert(try ConstantEvaluation.axis(a, rank: rank, node))
        }
        return axes.sorted()
    }

    static func reduce(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        let r = t.shape.count
        let axes = try reducedAxes(node, x, rank: r)
        let keep = node.int("keepdims") ?? 1 != 0
        // Output (keepdims) shape and, for each input element, its output element.
        var kept = t.shape
        for a in axes { kept[a] = 1 }
        let outCount = kept.reduce(1, *)
        let groupSize = axes.reduce(1) { $0 * t.shape[$1] }
        let outStrides = Broadcast.strides(kept)
        var target = [Int](repeating: 0, count: t.count)
        var coord = [Int](repeating: 0, count: r)
        let reduced = (0..<r).map { axes.contains($0) }
        for e in 0..<t.count {
            var o = 0
            for d in 0..<r where !reduced[d] { o += coord[d] * outStrides[d] }
            target[e] = o
            Broadcast.advance(&coord, in: t.shape)
        }
        let shape = keep ? kept : t.shape.enumerated().filter { !reduced[$0.offset] }.map(\.element)
        let type = t.elementType
        func run<T>(_ a: IndexingEvaluators.Arithmetic<T>, lowest: T, highest: T) -> Tensor {
            let v = a.values(t)
            func fold(_ initial: T, _ f: (T, T) -> T) -> [T] {
                var acc = [T](repeating: initial, count: outCount)
                for e in 0..<v.count { acc[target[e]] = f(acc[target[e]], v[e]) }
                return acc
            }
            func real(_ values: [T], _ f: (Double) -> Double) -> [T] { values.map { a.fromDouble(f(a.toDouble($0))) } }
            let out: [T]
            switch node.opType {
            case "ReduceSum": out = fold(a.zero, a.plus)
            case "ReduceMean": out = real(fold(a.zero, a.plus)) { $0 / Double(groupSize) }
            case "ReduceMax": out = fold(lowest, a.maximum)
            case "ReduceMin": out = fold(highest, a.minimum)
            case "ReduceProd": out = fold(a.one, a.times)
            case "ReduceL1": out = fold(a.zero) { a.plus($0, a.magnitude($1)) }
            case "ReduceL2": out = real(fold(a.zero) { a.plus($0, a.times($1, $1)) }) { $0.squareRoot() }
            case "ReduceSumSquare": out = fold(a.zero) { a.plus($0, a.times($1, $1)) }
            case "ReduceLogSum": out = real(fold(a.zero, a.plus)) { Foundation.log($0) }
            default:  // ReduceLogSumExp: log(sum(exp(x - m))) + m, m the largest finite value
                var shift = [Double](repeating: -.infinity, count: outCount)
                let d = v.map(a.toDouble)
                for e in 0..<d.count where d[e].isFinite { shift[target[e]] = Swift.max(shift[target[e]], d[e]) }
                for o in 0..<outCount where shift[o] == -.infinity { shift[o] = 0 }
                var sums = [Double](repeating: 0, count: outCount)
                for e in 0..<d.count { sums[target[e]] += Foundation.exp(d[e] - shift[target[e]]) }
                out = (0..<outCount).map { a.fromDouble(Foundation.log(sums[$0]) + shift[$0]) }
            }
            return a.tensor(shape, out, type)
        }
        let result =
            type == .f32
            ? run(IndexingEvaluators.real, lowest: -.infinity, highest: .infinity)
            : run(IndexingEvaluators.integer, lowest: IndexingEvaluators.lowest(type), highest: IndexingEvaluators.highest(type))
        return [result]
    }
}
