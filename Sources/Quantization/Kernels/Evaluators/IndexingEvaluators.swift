import Foundation

/// Indexing operators evaluated in Swift over `Tensor`s (at plan time on constants, at run time
/// through `RuntimeEvaluation`), following the ONNX operator spec (Operators.md, the section of
/// each operator). Every element type is handled (f32, u8/bool, s8, s32, i64): data movement
/// copies element bytes (exact for i64), arithmetic runs on `Double` for f32 and on wrapping
/// `Int` for integer types (exact for i64; integer overflow wraps as NumPy's does).
///
/// Indices (Gather*, Scatter*, OneHot excepted) may be negative (counted from the end); an index
/// out of range throws a `GraphError` naming the node, never traps. Output shapes depend on input
/// shapes only, except TopK's `k`, OneHot's `depth` and Compress's `condition`, which
/// `RuntimeEvaluation.shapeSetting` lists.
enum IndexingEvaluators {
    static func register(_ e: inout [String: ConstantEvaluation.Evaluator]) {
        e["Gather"] = gather
        e["GatherElements"] = gatherElements
        e["GatherND"] = gatherND
        e["ScatterElements"] = scatterElements
        e["Scatter"] = scatterElements  // deprecated (opset 9-10): ScatterElements without reduction
        e["ScatterND"] = scatterND
        e["ArgMax"] = { n, x, _ in try argExtreme(n, x, largest: true) }
        e["ArgMin"] = { n, x, _ in try argExtreme(n, x, largest: false) }
        e["Hardmax"] = hardmax
        e["TopK"] = topK
        e["Trilu"] = trilu
        e["EyeLike"] = eyeLike
        e["OneHot"] = oneHot
        e["CumSum"] = { n, x, _ in try cumulative(n, x, product: false) }
        e["CumProd"] = { n, x, _ in try cumulative(n, x, product: true) }
        e["ReverseSequence"] = reverseSequence
        e["Compress"] = compress
        e["SpaceToDepth"] = spaceToDepth
        e["DepthToSpace"] = depthToSpace
    }

    private static func fail(_ node: Node, _ message: String) -> GraphError { ConstantEvaluation.fail(node, message) }

    // MARK: shared helpers (also used by ReductionEvaluators)

    /// The elements of `t` at flat positions `positions` (each in `0..<t.count`; the caller
    /// checks), as a tensor of `shape` (`positions.count` elements) and `t`'s element type. The
    /// bytes are copied: exact for every type.
    static func take(_ t: Tensor, _ positions: [Int], shape: [Int]) -> Tensor {
        var out = Tensor(zeros: shape, elementType: t.elementType)
        let size = t.elementType.byteSize
        t.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                for (k, p) in positions.enumerated() {
                    (d + k * size).copyMemory(from: s + p * size, byteCount: size)
                }
            }
        }
        return out
    }

    /// Arithmetic on a tensor's values: `Double` for f32, `Int` for the integer types (wrapping,
    /// converted back truncating to the type's width, as NumPy's integer arithmetic).
    struct Arithmetic<T: Comparable> {
        let zero: T, one: T
        let plus: (T, T) -> T
        let times: (T, T) -> T
        let magnitude: (T) -> T
        let isNaN: (T) -> Bool
        let toDouble: (T) -> Double
        let fromDouble: (Double) -> T
        let values: (Tensor) -> [T]
        let tensor: ([Int], [T], ElementType) -> Tensor

        /// NaN-propagating max / min (NumPy's `maximum` / `minimum`).
        func maximum(_ a: T, _ b: T) -> T { isNaN(a) ? a : isNaN(b) ? b : Swift.max(a, b) }
        func minimum(_ a: T, _ b: T) -> T { isNaN(a) ? a : isNaN(b) ? b : Swift.min(a, b) }
    }

    static var real: Arithmetic<Double> {
        Arithmetic(
            zero: 0, one: 1, plus: { $0 + $1 }, times: { $0 * $1 }, magnitude: { Swift.abs($0) }, isNaN: { $0.isNaN },
            toDouble: { $0 }, fromDouble: { $0 }, values: { $0.doubleValues() },
            tensor: { shape, v, type in Tensor(shape: shape, values: v, elementType: type) })
    }

    static var integer: Arithmetic<Int> {
        Arithmetic(
            zero: 0, one: 1, plus: { $0 &+ $1 }, times: { $0 &* $1 }, magnitude: { $0 == .min ? $0 : Swift.abs($0) },
            isNaN: { _ in false }, toDouble: { Double($0) }, fromDouble: { Int(saturating: $0) }, values: { $0.intValues() },
            tensor: integerTensor)
    }

    /// A tensor of `type` from `Int`s, each truncated to the type's width (f32: converted).
    static func integerTensor(_ shape: [Int], _ v: [Int], _ type: ElementType) -> Tensor {
        switch type {
        case .f32: Tensor(shape: shape, scalars: v.map { Float($0) })
        case .u8: Tensor(shape: shape, scalars: v.map { UInt8(truncatingIfNeeded: $0) })
        case .s8: Tensor(shape: shape, scalars: v.map { Int8(truncatingIfNeeded: $0) })
        case .s32: Tensor(shape: shape, scalars: v.map { Int32(truncatingIfNeeded: $0) })
        case .i64: Tensor(shape: shape, scalars: v.map { Int64($0) })
        }
    }

    /// The smallest / largest value of an element type (ReduceMax / ReduceMin of nothing).
    static func lowest(_ type: ElementType) -> Int {
        switch type {
        case .u8: 0
        case .s8: Int(Int8.min)
        case .s32: Int(Int32.min)
        case .f32, .i64: Int(Int64.min)
        }
    }

    static func highest(_ type: ElementType) -> Int {
        switch type {
        case .u8: Int(UInt8.max)
        case .s8: Int(Int8.max)
        case .s32: Int(Int32.max)
        case .f32, .i64: Int(Int64.max)
        }
    }

    /// `t`'s values as indices into a dimension of `n`: negative ones count from the end; one
    /// outside `[-n, n-1]` throws.
    static func indices(_ node: Node, _ t: Tensor, _ n: Int, _ what: String = "index") throws(GraphError) -> [Int] {
        var out = t.intValues()
        for k in out.indices {
            let v = out[k]
            let w = v < 0 ? v + n : v
            guard w >= 0, w < n else { throw fail(node, "\(what) \(v) is out of range [\(-n), \(n - 1)]") }
            out[k] = w
        }
        return out
    }

    /// (outer, n, inner): the element counts before, along and after `axis` of `shape`.
    static func split(_ shape: [Int], _ axis: Int) -> (outer: Int, n: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// For each element of the transpose of `shape` by `perm` (row-major), its flat index in
    /// the input of `shape`.
    static func transposedPositions(_ shape: [Int], _ perm: [Int]) -> [Int] {
        let s = Broadcast.strides(shape)
        let outShape = perm.map { shape[$0] }
        let total = shape.reduce(1, *)
        var out = [Int](repeating: 0, count: total)
        var coord = [Int](repeating: 0, count: shape.count)
        for i in 0..<total {
            var idx = 0
            for d in 0..<coord.count { idx += coord[d] * s[perm[d]] }
            out[i] = idx
            Broadcast.advance(&coord, in: outShape)
        }
        return out
    }

    // MARK: gather / scatter

    /// Gather (Operators.md#Gather): `data` of any type and rank r >= 1, `indices` of any
    /// integer type and shape q (negative counted from the end) -> data.shape[..<axis] + q +
    /// data.shape[axis+1...]. Replaces the plan-time `gather` (which goes through Double and
    /// loses i64 values above 2^53).
    static func gather(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let data = x[0]!, idx = x[1]!
        guard !data.shape.isEmpty else { throw fail(node, "Gather of a scalar") }
        let ax = try ConstantEvaluation.axis(node.int("axis") ?? 0, rank: data.shape.count, node)
        let (outer, n, inner) = split(data.shape, ax)
        let shape = Array(data.shape[..<ax]) + idx.shape + Array(data.shape[(ax + 1)...])
        let count = try ConstantEvaluation.checkedCount(shape, node)
        let list = try indices(node, idx, n)
        var positions: [Int] = []
        positions.reserveCapacity(count)
        for o in 0..<outer {
            for i in list {
                let base = (o * n + i) * inner
                for j in 0..<inner { positions.append(base + j) }
            }
        }
        return [take(data, positions, shape: shape)]
    }

    /// For each element of `idx` (row-major, rank r, `idx.shape[d] <= shape[d]` off `axis`),
    /// the flat index into a tensor of `shape` with the coordinate along `axis` replaced by the
    /// element's (checked) value: GatherElements / ScatterElements addressing.
    static func elementPositions(_ node: Node, _ shape: [Int], _ idx: Tensor, axis ax: Int) throws(GraphError) -> [Int] {
        guard idx.shape.count == shape.count else {
            throw GraphError(.shapeMismatch, "node \(node.label): indices of rank \(idx.shape.count), data of rank \(shape.count)")
        }
        for d in 0..<shape.count where d != ax && idx.shape[d] > shape[d] {
            throw GraphError(.shapeMismatch, "node \(node.label): indices shape \(idx.shape) exceeds data shape \(shape) off axis \(ax)")
        }
        let list = try indices(node, idx, shape[ax])
        let s = Broadcast.strides(shape)
        var out = [Int](repeating: 0, count: list.count)
        var coord = [Int](repeating: 0, count: shape.count)
        for k in 0..<list.count {
            var p = 0
            for d in 0..<shape.count { p += (d == ax ? list[k] : coord[d]) * s[d] }
            out[k] = p
            Broadcast.advance(&coord, in: idx.shape)
        }
        return out
    }

    /// GatherElements (Operators.md#GatherElements): output[i][j][k] = data[index][j][k] along
    /// `axis`; output shape = indices shape, data's type.
    static func gatherElements(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let data = x[0]!, idx = x[1]!
        guard !data.shape.isEmpty else { throw fail(node, "GatherElements of a scalar") }
        let ax = try ConstantEvaluation.axis(node.int("axis") ?? 0, rank: data.shape.count, node)
        return [take(data, try elementPositions(node, data.shape, idx, axis: ax), shape: idx.shape)]
    }

    /// The flat offsets (within one batch of `shape[batch...]`) addressed by the index tuples of
    /// `idx` (last dim m = tuple length), per batch: GatherND / ScatterND addressing. Returns the
    /// offsets (one per tuple, batch included) and the slice size after the tuple's dims.
    static func tuplePositions(_ node: Node, _ shape: [Int], _ idx: Tensor, batchDims b: Int) throws(GraphError) -> (
        offsets: [Int], slice: Int
    ) {
        let q = idx.shape.count, r = shape.count
        guard q >= 1, b >= 0, b < q, b <= r, let m = idx.shape.last, m >= 1, m <= r - b else {
            throw GraphError(
                .shapeMismatch, "node \(node.label): indices shape \(idx.shape) and batch_dims \(b) do not index data of shape \(shape)")
        }
        guard Array(idx.shape[..<b]) == Array(shape[..<b]) else {
            throw GraphError(.shapeMismatch, "node \(node.label): batch dims of indices \(idx.shape) and data \(shape) differ")
        }
        let raw = idx.intValues()
        let s = Broadcast.strides(shape)
        let slice = shape[(b + m)...].reduce(1, *), batchSize = shape[b...].reduce(1, *)
        let tuples = raw.count / m
        let perBatch = idx.shape[b..<(q - 1)].reduce(1, *)
        var offsets = [Int](repeating: 0, count: tuples)
        for t in 0..<tuples {
            var p = (perBatch == 0 ? 0 : t / perBatch) * batchSize
            for j in 0..<m {
                let v = raw[t * m + j], n = shape[b + j]
                let w = v < 0 ? v + n : v
                guard w >= 0, w < n else { throw fail(node, "index \(v) is out of range [\(-n), \(n - 1)] for dim \(b + j)") }
                p += w * s[b + j]
            }
            offsets[t] = p
        }
        return (offsets, slice)
    }

    /// GatherND (Operators.md#GatherND): data rank r, indices rank q with tuples of m =
    /// indices.shape[-1] coordinates after `batch_dims` b leading shared dims -> indices.shape[..<q-1]
    /// + data.shape[b+m...], data's type.
    static func gatherND(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let data = x[0]!, idx = x[1]!
        let b = node.int("batch_dims") ?? 0
        let (offsets, slice) = try tuplePositions(node, data.shape, idx, batchDims: b)
        let m = idx.shape.last ?? 0
        let shape = Array(idx.shape.dropLast()) + Array(data.shape[(b + m)...])
        let count = try ConstantEvaluation.checkedCount(shape, node)
        var positions: [Int] = []
        positions.reserveCapacity(count)
        for o in offsets { for j in 0..<slice { positions.append(o + j) } }
        return [take(data, positions, shape: shape)]
    }

    /// Applies `updates` at `positions` of `data` (in order) with `reduction` (none / add /
    /// mul / max / min): ScatterElements / ScatterND.
    static func scattered(
        _ node: Node, _ data: Tensor, _ updates: Tensor, _ positions: [Int]
    ) throws(GraphError) -> Tensor {
        let reduction = node.string("reduction") ?? "none"
        guard ["none", "add", "mul", "max", "min"].contains(reduction) else { throw fail(node, "reduction '\(reduction)'") }
        guard updates.count == positions.count else {
            throw GraphError(.shapeMismatch, "node \(node.label): updates of shape \(updates.shape), \(positions.count) positions")
        }
        func run<T>(_ a: Arithmetic<T>) -> Tensor {
            var v = a.values(data)
            let u = a.values(updates)
            for (k, p) in positions.enumerated() {
                switch reduction {
                case "add": v[p] = a.plus(v[p], u[k])
                case "mul": v[p] = a.times(v[p], u[k])
                case "max": v[p] = a.maximum(v[p], u[k])
                case "min": v[p] = a.minimum(v[p], u[k])
                default: v[p] = u[k]
                }
            }
            return a.tensor(data.shape, v, data.elementType)
        }
        return data.elementType == .f32 ? run(real) : run(integer)
    }

    /// ScatterElements / Scatter (Operators.md#ScatterElements): a copy of `data` with
    /// output[index][j][k] (along `axis`) = updates[i][j][k], combined by `reduction`; indices
    /// and updates of one shape.
    static func scatterElements(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let data = x[0]!, idx = x[1]!, updates = x[2]!
        guard !data.shape.isEmpty else { throw fail(node, "\(node.opType) of a scalar") }
        guard updates.shape == idx.shape else {
            throw GraphError(.shapeMismatch, "node \(node.label): updates shape \(updates.shape) differs from indices shape \(idx.shape)")
        }
        let ax = try ConstantEvaluation.axis(node.int("axis") ?? 0, rank: data.shape.count, node)
        return [try scattered(node, data, updates, try elementPositions(node, data.shape, idx, axis: ax))]
    }

    /// ScatterND (Operators.md#ScatterND): a copy of `data` whose slices addressed by the index
    /// tuples of `indices` (last dim m) are replaced by (or combined by `reduction` with)
    /// `updates` of shape indices.shape[..<q-1] + data.shape[m...].
    static func scatterND(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let data = x[0]!, idx = x[1]!, updates = x[2]!
        let (offsets, slice) = try tuplePositions(node, data.shape, idx, batchDims: 0)
        let m = idx.shape.last ?? 0
        let expected = Array(idx.shape.dropLast()) + Array(data.shape[m...])
        guard updates.shape == expected else {
            throw GraphError(.shapeMismatch, "node \(node.label): updates shape \(updates.shape), expected \(expected)")
        }
        var positions: [Int] = []
        positions.reserveCapacity(updates.count)
        for o in offsets { for j in 0..<slice { positions.append(o + j) } }
        return [try scattered(node, data, updates, positions)]
    }

    // MARK: arg / hard max, top-k

    /// For each (outer, inner) line of `n` values along an axis, the index of its largest
    /// (smallest) value: the first one, or the last with `last`; a NaN wins (NumPy).
    static func argIndices<T>(
        _ a: Arithmetic<T>, _ v: [T], outer: Int, n: Int, inner: Int, largest: Bool, last: Bool
    ) -> [Int] {
        var out = [Int](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                var best = 0
                for k in 1..<max(n, 1) {
                    let c = v[base + k * inner], b = v[base + best * inner]
                    if a.isNaN(b) { break }
                    if a.isNaN(c) || (largest ? (c > b || (last && c == b)) : (c < b || (last && c == b))) { best = k }
                }
                out[o * inner + i] = best
            }
        }
        return out
    }

    /// ArgMax / ArgMin (Operators.md#ArgMax): i64 indices along `axis` (keepdims: that dim
    /// becomes 1, else it is removed); select_last_index picks the last of equal extremes.
    static func argExtreme(_ node: Node, _ x: [Tensor?], largest: Bool) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        let r = t.shape.count
        guard r >= 1 else { throw fail(node, "\(node.opType) of a scalar") }
        let ax = try ConstantEvaluation.axis(node.int("axis") ?? 0, rank: r, node)
        let (outer, n, inner) = split(t.shape, ax)
        guard n > 0 else { throw fail(node, "\(node.opType) along axis \(ax) of size 0") }
        let last = node.int("select_last_index") == 1
        let idx =
            t.elementType == .f32
            ? argIndices(real, real.values(t), outer: outer, n: n, inner: inner, largest: largest, last: last)
            : argIndices(integer, integer.values(t), outer: outer, n: n, inner: inner, largest: largest, last: last)
        var shape = t.shape
        if node.int("keepdims") ?? 1 != 0 { shape[ax] = 1 } else { shape.remove(at: ax) }
        return [Tensor(shape: shape, scalars: idx.map { Int64($0) })]
    }

    /// Hardmax (Operators.md#Hardmax): 1 at the first largest value, 0 elsewhere, input's type
    /// and shape. Opset 13: along `axis` (default -1); before: over the input coerced to 2-D at
    /// `axis` (default 1), each row holding everything from `axis` on.
    static func hardmax(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        let r = t.shape.count
        guard r >= 1 else { throw fail(node, "Hardmax of a scalar") }
        guard t.count > 0 else { return [t] }
        let outer: Int, n: Int, inner: Int
        if opset >= 13 {
            let ax = try ConstantEvaluation.axis(node.int("axis") ?? -1, rank: r, node)
            (outer, n, inner) = split(t.shape, ax)
        } else {
            let raw = node.int("axis") ?? 1
            let ax = raw < 0 ? raw + r : raw
            guard ax >= 0, ax <= r else { throw fail(node, "axis \(raw) is out of range for rank \(r)") }
            (outer, n, inner) = (t.shape[..<ax].reduce(1, *), t.shape[ax...].reduce(1, *), 1)
        }
        func run<T>(_ a: Arithmetic<T>) -> Tensor {
            let best = argIndices(a, a.values(t), outer: outer, n: n, inner: inner, largest: true, last: false)
            var v = [T](repeating: a.zero, count: t.count)
            for o in 0..<outer { for i in 0..<inner { v[(o * n + best[o * inner + i]) * inner + i] = a.one } }
            return a.tensor(t.shape, v, t.elementType)
        }
        return [t.elementType == .f32 ? run(real) : run(integer)]
    }

    /// TopK (Operators.md#TopK): the k largest (`largest` = 1, default) or smallest values along
    /// `axis` (default -1), sorted, with their i64 indices; equal values: the lower index first.
    /// k: input 1 (opset 10+, a constant: it sets the shape) or the `k` attribute (opset 1).
    static func topK(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        let r = t.shape.count
        guard r >= 1 else { throw fail(node, "TopK of a scalar") }
        let k: Int
        if x.count > 1, let kt = x[1] {
            guard kt.count == 1, let v = kt.intValues().first else { throw fail(node, "k must hold one value, it has \(kt.count)") }
            k = v
        } else if let v = node.int("k") {
            k = v
        } else {
            throw fail(node, "TopK needs k")
        }
        let ax = try ConstantEvaluation.axis(node.int("axis") ?? -1, rank: r, node)
        let (outer, n, inner) = split(t.shape, ax)
        guard k >= 0, k <= n else { throw fail(node, "k = \(k) is out of range [0, \(n)] for axis \(ax) of shape \(t.shape)") }
        let largest = node.int("largest") ?? 1 != 0
        func order<T>(_ a: Arithmetic<T>) -> [Int] {
            let v = a.values(t)
            var picked = [Int](repeating: 0, count: outer * k * inner)
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = o * n * inner + i
                    let sorted = (0..<n).sorted { p, q in
                        let vp = v[base + p * inner], vq = v[base + q * inner]
                        if a.isNaN(vp) || a.isNaN(vq) {
                            // NaN ranks above every number (NumPy's sort order).
                            if a.isNaN(vp) == a.isNaN(vq) { return p < q }
                            return a.isNaN(vp) == largest
                        }
                        if vp != vq { return largest ? vp > vq : vp < vq }
                        return p < q
                    }
                    for j in 0..<k { picked[(o * k + j) * inner + i] = sorted[j] }
                }
            }
            return picked
        }
        let picked = t.elementType == .f32 ? order(real) : order(integer)
        var positions = [Int](repeating: 0, count: picked.count)
        for o in 0..<outer {
            for j in 0..<k {
                for i in 0..<inner {
                    let q = (o * k + j) * inner + i
                    positions[q] = (o * n + picked[q]) * inner + i
                }
            }
        }
        var shape = t.shape
        shape[ax] = k
        return [take(t, positions, shape: shape), Tensor(shape: shape, scalars: picked.map { Int64($0) })]
    }

    // MARK: masks and constructors

    /// Trilu (Operators.md#Trilu): the upper (`upper` = 1, default: j - i >= k) or lower
    /// (j - i <= k) triangle of each matrix of the last two dims, zeros elsewhere; k: the
    /// optional scalar input 1 (default 0).
    static func trilu(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        var t = x[0]!
        let r = t.shape.count
        guard r >= 2 else { throw fail(node, "Trilu of rank \(r) (needs 2 or more)") }
        var k = 0
        if x.count > 1, let kt = x[1] {
            guard kt.count == 1, let v = kt.intValues().first else { throw fail(node, "k must hold one value, it has \(kt.count)") }
            k = v
        }
        let upper = node.int("upper") ?? 1 != 0
        let rows = t.shape[r - 2], cols = t.shape[r - 1]
        let size = t.elementType.byteSize, count = rows * cols == 0 ? 0 : t.count
        t.withUnsafeMutableBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            for e in 0..<count {
                let j = e % cols, i = (e / cols) % rows
                let keep = upper ? j - i >= k : j - i <= k
                if !keep { (base + e * size).initializeMemory(as: UInt8.self, repeating: 0, count: size) }
            }
        }
        return [t]
    }

    /// EyeLike (Operators.md#EyeLike): a 2-D tensor of the input's shape with ones on the k-th
    /// diagonal (`k` attribute), of type `dtype` (default: the input's).
    static func eyeLike(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        guard t.shape.count == 2 else { throw fail(node, "EyeLike of rank \(t.shape.count) (needs 2)") }
        var type = t.elementType
        if let code = node.int("dtype") { type = try ConstantEvaluation.elementType(onnx: code, node) }
        let k = node.int("k") ?? 0
        let rows = t.shape[0], cols = t.shape[1]
        var v = [Double](repeating: 0, count: t.count)
        for i in 0..<rows {
            let (j, overflow) = i.addingReportingOverflow(k)
            if !overflow, j >= 0, j < cols { v[i * cols + j] = 1 }
        }
        return [Tensor(shape: t.shape, values: v, elementType: type)]
    }

    /// OneHot (Operators.md#OneHot): indices of shape s, depth (a scalar: it sets the shape),
    /// values [off, on] -> s with a new dim of `depth` at `axis` (default -1, in [-r-1, r]), of
    /// values' type: `on` where the index (negative: + depth) equals the position, `off` elsewhere
    /// (an index outside [-depth, depth-1] gives a line of `off`).
    static func oneHot(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let idx = x[0]!, depthT = x[1]!, values = x[2]!
        guard depthT.count == 1, let depthD = depthT.doubleValues().first else {
            throw fail(node, "depth must hold one value, it has \(depthT.count)")
        }
        guard values.count == 2 else { throw fail(node, "values must hold [off, on], it has \(values.count) values") }
        guard depthD >= 1, depthD <= Double(ConstantEvaluation.elementLimit) else { throw fail(node, "depth \(depthD) is out of range") }
        let depth = Int(depthD)
        let r = idx.shape.count
        let raw = node.int("axis") ?? -1
        let ax = raw < 0 ? raw + r + 1 : raw
        guard ax >= 0, ax <= r else { throw fail(node, "axis \(raw) is out of range for rank \(r) indices") }
        var shape = idx.shape
        shape.insert(depth, at: ax)
        let count = try ConstantEvaluation.checkedCount(shape, node)
        let outer = idx.shape[..<ax].reduce(1, *), inner = idx.shape[ax...].reduce(1, *)
        let v = idx.doubleValues()
        var positions = [Int](repeating: 0, count: count)  // 0: off
        for o in 0..<outer {
            for i in 0..<inner {
                var h = v[o * inner + i]
                if h < 0 { h += Double(depth) }
                if h >= 0, h < Double(depth), h == h.rounded(.towardZero) { positions[(o * depth + Int(h)) * inner + i] = 1 }
            }
        }
        return [take(values, positions, shape: shape)]
    }

    // MARK: scans and rearrangements

    /// CumSum / CumProd (Operators.md#CumSum): running sums (products) along the scalar `axis`
    /// input; `exclusive` leaves each element out of its own total, `reverse` runs from the end.
    /// Input's type and shape.
    static func cumulative(_ node: Node, _ x: [Tensor?], product: Bool) throws(GraphError) -> [Tensor] {
        let t = x[0]!, axisT = x[1]!
        guard axisT.count == 1, let a = axisT.intValues().first else { throw fail(node, "axis must hold one value, it has \(axisT.count)") }
        guard !t.shape.isEmpty else { throw fail(node, "\(node.opType) of a scalar") }
        let ax = try ConstantEvaluation.axis(a, rank: t.shape.count, node)
        let (outer, n, inner) = split(t.shape, ax)
        let exclusive = node.int("exclusive") == 1, reverse = node.int("reverse") == 1
        func run<T>(_ ar: Arithmetic<T>) -> Tensor {
            let v = ar.values(t)
            var out = v
            for o in 0..<outer {
                for i in 0..<inner {
                    var acc = product ? ar.one : ar.zero
                    for step in 0..<n {
                        let k = reverse ? n - 1 - step : step
                        let p = (o * n + k) * inner + i
                        if exclusive { out[p] = acc }
                        acc = product ? ar.times(acc, v[p]) : ar.plus(acc, v[p])
                        if !exclusive { out[p] = acc }
                    }
                }
            }
            return ar.tensor(t.shape, out, t.elementType)
        }
        return [t.elementType == .f32 ? run(real) : run(integer)]
    }

    /// ReverseSequence (Operators.md#ReverseSequence): for each batch b (along `batch_axis`,
    /// default 1) the first sequence_lens[b] elements along `time_axis` (default 0) reversed,
    /// the rest copied; input's type and shape.
    static func reverseSequence(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!, lens = x[1]!.intValues()
        let r = t.shape.count
        guard r >= 2 else { throw fail(node, "ReverseSequence of rank \(r) (needs 2 or more)") }
        let timeAxis = node.int("time_axis") ?? 0, batchAxis = node.int("batch_axis") ?? 1
        guard [0, 1].contains(timeAxis), [0, 1].contains(batchAxis), timeAxis != batchAxis else {
            throw fail(node, "time_axis \(timeAxis) and batch_axis \(batchAxis) must be 0 and 1")
        }
        let batch = t.shape[batchAxis], time = t.shape[timeAxis]
        guard lens.count == batch else { throw fail(node, "sequence_lens has \(lens.count) values for a batch of \(batch)") }
        for l in lens where l < 0 || l > time { throw fail(node, "sequence length \(l) is out of range [0, \(time)]") }
        let s = Broadcast.strides(t.shape)
        var positions = [Int](repeating: 0, count: t.count)
        var coord = [Int](repeating: 0, count: r)
        for e in 0..<t.count {
            let b = coord[batchAxis], ti = coord[timeAxis]
            let src = ti < lens[b] ? lens[b] - 1 - ti : ti
            positions[e] = e + (src - ti) * s[timeAxis]
            Broadcast.advance(&coord, in: t.shape)
        }
        return [take(t, positions, shape: t.shape)]
    }

    /// Compress (Operators.md#Compress): the slices along `axis` (absent: of the flattened
    /// input) whose entry of the 1-D `condition` (a constant: it sets the shape) is nonzero; a
    /// condition shorter than the axis selects among its first entries only.
    static func compress(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!, cond = x[1]!.doubleValues()
        let data: Tensor, ax: Int
        if let a = node.int("axis") {
            guard !t.shape.isEmpty else { throw fail(node, "Compress of a scalar along an axis") }
            data = t
            ax = try ConstantEvaluation.axis(a, rank: t.shape.count, node)
        } else {
            data = t.reshaped([t.count])
            ax = 0
        }
        let (outer, n, inner) = split(data.shape, ax)
        guard cond.count <= n else { throw fail(node, "condition has \(cond.count) entries, axis \(ax) has \(n)") }
        let selected = cond.indices.filter { cond[$0] != 0 }
        var shape = data.shape
        shape[ax] = selected.count
        var positions: [Int] = []
        positions.reserveCapacity(outer * selected.count * inner)
        for o in 0..<outer {
            for k in selected { for i in 0..<inner { positions.append((o * n + k) * inner + i) } }
        }
        return [take(data, positions, shape: shape)]
    }

    /// SpaceToDepth (Operators.md#SpaceToDepth): [N, C, H, W] -> [N, C*b*b, H/b, W/b], each
    /// b x b block moved into channels; `mode` (opset 28) DCR (default: block offsets outermost,
    /// channels as [b, b, C]) or CRD ([C, b, b]).
    static func spaceToDepth(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        guard let b = node.int("blocksize"), b >= 1, b <= 1 << 15 else { throw fail(node, "blocksize must be in [1, 32768]") }
        guard t.shape.count == 4, t.shape[2] % b == 0, t.shape[3] % b == 0 else {
            throw GraphError(.shapeMismatch, "node \(node.label): shape \(t.shape) is not [N, C, H, W] with H and W multiples of \(b)")
        }
        let (n, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        let (cbb, overflow) = c.multipliedReportingOverflow(by: b * b)
        guard !overflow else { throw fail(node, "C * blocksize^2 overflows") }
        let shape = [n, cbb, h / b, w / b]
        _ = try ConstantEvaluation.checkedCount(shape, node)
        let perm: [Int]
        switch node.string("mode") ?? "DCR" {
        case "DCR": perm = [0, 3, 5, 1, 2, 4]
        case "CRD": perm = [0, 1, 3, 5, 2, 4]
        case let mode: throw fail(node, "mode '\(mode)' (DCR or CRD)")
        }
        return [take(t, transposedPositions([n, c, h / b, b, w / b, b], perm), shape: shape)]
    }

    /// DepthToSpace (Operators.md#DepthToSpace): [N, C, H, W] -> [N, C/(b*b), H*b, W*b]; mode
    /// DCR (default: channels as [b, b, C/(b*b)]) or CRD ([C/(b*b), b, b]).
    static func depthToSpace(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        guard let b = node.int("blocksize"), b >= 1, b <= 1 << 15 else { throw fail(node, "blocksize must be in [1, 32768]") }
        guard t.shape.count == 4, t.shape[1] % (b * b) == 0 else {
            throw GraphError(.shapeMismatch, "node \(node.label): shape \(t.shape) is not [N, C, H, W] with C a multiple of \(b * b)")
        }
        let (n, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        let mode = node.string("mode") ?? "DCR"
        let (hb, o1) = h.multipliedReportingOverflow(by: b), (wb, o2) = w.multipliedReportingOverflow(by: b)
        guard !o1, !o2 else { throw fail(node, "H or W * blocksize overflows") }
        let shape = [n, c / (b * b), hb, wb]
        _ = try ConstantEvaluation.checkedCount(shape, node)
        let positions: [Int]
        switch mode {
        case "DCR": positions = transposedPositions([n, b, b, c / (b * b), h, w], [0, 3, 4, 1, 5, 2])
        case "CRD": positions = transposedPositions([n, c / (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3])
        default: throw fail(node, "mode '\(mode)' (DCR or CRD)")
        }
        return [take(t, positions, shape: shape)]
    }
}
