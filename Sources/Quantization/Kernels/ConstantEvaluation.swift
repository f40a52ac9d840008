import Foundation

/// Plan-time evaluation of nodes whose inputs are all known: the shape arithmetic exporters
/// leave behind (Shape, Gather, Cast, Concat, Unsqueeze, Slice, ...) and constant
/// preprocessing of weights. Plain Swift over `Tensor`s; semantics of the ONNX operator spec.
enum ConstantEvaluation {
    typealias Evaluator = @Sendable (Node, [Tensor?], Int) throws -> [Tensor]

    /// Ops evaluated here when every input is constant (opset passed for version differences).
    static let evaluators: [String: Evaluator] = {
        var e: [String: Evaluator] = [:]
        e["Identity"] = { _, x, _ in [x[0]!] }
        e["Cast"] = cast
        e["Gather"] = gather
        e["Concat"] = concat
        e["Unsqueeze"] = unsqueeze
        e["Squeeze"] = squeeze
        e["Slice"] = slice
        e["Reshape"] = reshape
        e["Flatten"] = flatten
        e["ConstantOfShape"] = constantOfShape
        e["Range"] = range
        e["Expand"] = expand
        e["Tile"] = tile
        e["Transpose"] = transpose
        e["Where"] = whereOp
        e["Shape"] = shapeOp
        e["Size"] = sizeOp
        e["QuantizeLinear"] = QuantizeKernels.evaluate
        e["DequantizeLinear"] = QuantizeKernels.evaluate
        var binaries: [String: @Sendable (Double, Double) -> Double] = [:]
        binaries["Add"] = { $0 + $1 }
        binaries["Sub"] = { $0 - $1 }
        binaries["Mul"] = { $0 * $1 }
        binaries["Div"] = { $0 / $1 }
        binaries["Pow"] = { Foundation.pow($0, $1) }
        binaries["Max"] = { Swift.max($0, $1) }
        binaries["Min"] = { Swift.min($0, $1) }
        binaries["Mod"] = { $0.truncatingRemainder(dividingBy: $1) }
        binaries["Equal"] = { $0 == $1 ? 1 : 0 }
        binaries["Less"] = { $0 < $1 ? 1 : 0 }
        binaries["Greater"] = { $0 > $1 ? 1 : 0 }
        binaries["LessOrEqual"] = { $0 <= $1 ? 1 : 0 }
        binaries["GreaterOrEqual"] = { $0 >= $1 ? 1 : 0 }
        binaries["And"] = { ($0 != 0 && $1 != 0) ? 1 : 0 }
        binaries["Or"] = { ($0 != 0 || $1 != 0) ? 1 : 0 }
        let comparisons: Set<String> = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or"]
        for (name, f) in binaries {
            e[name] = checked(name, needs: 2) { node, x, _ in
                guard x.count == 2 else { throw fail(node, "\(name) of \(x.count) inputs runs after canonicalization only (binary here)") }
                return [try binary(node, x[0]!, x[1]!, f, boolResult: comparisons.contains(name))]
            }
        }
        var unaries: [String: @Sendable (Double) -> Double] = [:]
        unaries["Neg"] = { -$0 }
        unaries["Abs"] = { Swift.abs($0) }
        unaries["Sqrt"] = { $0.squareRoot() }
        unaries["Exp"] = { Foundation.exp($0) }
        unaries["Log"] = { Foundation.log($0) }
        unaries["Floor"] = { $0.rounded(.down) }
        unaries["Ceil"] = { $0.rounded(.up) }
        unaries["Relu"] = { Swift.max($0, 0) }
        unaries["Sigmoid"] = { 1 / (1 + Foundation.exp(-$0)) }
        unaries["Tanh"] = { Foundation.tanh($0) }
        unaries["Not"] = { $0 == 0 ? 1 : 0 }
        unaries["Reciprocal"] = { 1 / $0 }
        unaries["Erf"] = { Foundation.erf($0) }
        for (name, f) in unaries {
            e[name] = { _, x, _ in
                [
                    Tensor(
                        shape: x[0]!.shape, values: x[0]!.doubleValues().map(f),
                        elementType: x[0]!.elementType)
                ]
            }
        }
        // Operator families in Kernels/Evaluators (registered last: they may replace the above).
        MathEvaluators.register(&e)
        IndexingEvaluators.register(&e)
        ReductionEvaluators.register(&e)
        NormalizationEvaluators.register(&e)
        NeuralEvaluators.register(&e)
        // Every evaluator reads the inputs its operator needs with `x[i]!`: check them first.
        return Dictionary(uniqueKeysWithValues: e.map { name, f in (name, checked(name, needs: KernelRegistry.minimumInputs[name] ?? 1, f)) })
    }()

    /// `f`, after checking that inputs `0..<needs` are present (constants), which makes the
    /// evaluators' `x[i]!` for those inputs safe whatever a model's node holds.
    static func checked(_ name: String, needs: Int, _ f: @escaping Evaluator) -> Evaluator {
        { node, x, opset in
            guard x.count >= needs, x.prefix(needs).allSatisfy({ $0 != nil }) else {
                throw GraphError(.invalidModel, "node \(node.label): \(name) needs \(needs) input(s), it has \(x.compactMap { $0 }.count)")
            }
            return try f(node, x, opset)
        }
    }

    /// The most elements a tensor computed at plan time may have (`2^28`: 2 GiB as Double).
    static let elementLimit = 1 << 28

    /// The element count of a shape computed from a model's data, checked: dims >= 0, no
    /// overflow, at most ``elementLimit``.
    static func checkedCount(_ shape: [Int], _ node: Node) throws(GraphError) -> Int {
        var total = 1
        for d in shape {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow, p <= elementLimit else {
                throw GraphError(.shapeMismatch, "node \(node.label): shape \(shape) is negative or too large (at most \(elementLimit) elements)")
            }
            total = p
        }
        return total
    }

    // MARK: helpers

    static func fail(_ node: Node, _ message: String) -> GraphError {
        GraphError(.unsupportedAttribute, "node \(node.label): \(message)")
    }

    /// Normalizes a possibly negative axis for a rank.
    static func axis(_ a: Int, rank: Int, _ node: Node) throws(GraphError) -> Int {
        let r = a < 0 ? a + rank : a
        guard r >= 0, r < max(rank, 1) else { throw fail(node, "axis \(a) is out of range for rank \(rank)") }
        return r
    }

    /// The element type an ONNX `TensorProto.DataType` code maps to.
    static func elementType(onnx code: Int, _ node: Node) throws(GraphError) -> ElementType {
        switch code {
        case 1, 10, 11, 16: .f32  // FLOAT, FLOAT16, DOUBLE, BFLOAT16 -> f32
        case 2, 9: .u8  // UINT8, BOOL
        case 3: .s8
        case 4, 5, 6, 12: .s32  // UINT16, INT16, INT32, UINT32
        case 7, 13: .i64  // INT64, UINT64
        default: throw fail(node, "cannot cast to ONNX data type \(code)")
        }
    }

    // MARK: evaluators

    static func shapeOp(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        [shapeTensor(node, x[0]!.shape)]
    }

    /// `Shape` of a known shape (also used for run-time values, whose shapes are known at plan time).
    static func shapeTensor(_ node: Node, _ shape: [Int]) -> Tensor {
        let r = shape.count
        var start = node.int("start") ?? 0, end = node.int("end") ?? r
        if start < 0 { start += r }
        if end < 0 { end += r }
        start = min(max(start, 0), r)
        end = min(max(end, start), r)
        let dims = Array(shape[start..<end])
        return Tensor(shape: [dims.count], scalars: dims.map { Int64($0) })
    }

    static func sizeOp(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        [Tensor(shape: [], scalars: [Int64(x[0]!.count)])]
    }

    static func cast(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let to = try elementType(onnx: node.int("to") ?? 1, node)
        let t = x[0]!
        if to == .f32 { return [Tensor(shape: t.shape, scalars: t.floatValues())] }
        return [Tensor(shape: t.shape, values: t.doubleValues().map { $0.rounded(.towardZero) }, elementType: to)]
    }

    static func gather(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let data = x[0]!, idx = x[1]!
        guard !data.shape.isEmpty else { throw fail(node, "Gather of a scalar") }
        let ax = try axis(node.int("axis") ?? 0, rank: data.shape.count, node)
        let outer = data.shape[..<ax].reduce(1, *), n = data.shape[ax]
        let inner = data.shape[(ax + 1)...].reduce(1, *)
        let indices = idx.intValues().map { $0 < 0 ? $0 + n : $0 }
        guard indices.allSatisfy({ $0 >= 0 && $0 < n }) else { throw fail(node, "index out of range 0..<\(n)") }
        _ = try checkedCount(Array(data.shape[..<ax]) + idx.shape + Array(data.shape[(ax + 1)...]), node)
        let v = data.doubleValues()
        var out: [Double] = []
        out.reserveCapacity(outer * indices.count * inner)
        for o in 0..<outer { for i in indices { out += v[((o * n + i) * inner)..<((o * n + i + 1) * inner)] } }
        let shape = Array(data.shape[..<ax]) + idx.shape + Array(data.shape[(ax + 1)...])
        return [Tensor(shape: shape, values: out, elementType: data.elementType)]
    }

    static func concat(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let parts = x.compactMap { $0 }
        guard let firstPart = parts.first else { throw fail(node, "no inputs") }
        let rank = firstPart.shape.count
        guard rank > 0 else { throw fail(node, "Concat of scalars") }
        let ax = try axis(node.int("axis") ?? 0, rank: rank, node)
        let outer = firstPart.shape[..<ax].reduce(1, *)
        var out: [Double] = []
        var total = 0
        for p in parts {
            var others = p.shape, firstOthers = firstPart.shape
            if p.shape.count == rank { others[ax] = 0; firstOthers[ax] = 0 }
            guard p.shape.count == rank, others == firstOthers else {
                throw GraphError(.shapeMismatch, "node \(node.label): concat of shapes \(parts.map(\.shape)) along axis \(ax)")
            }
            total += p.shape[ax]
        }
        let values = parts.map { $0.doubleValues() }
        for o in 0..<outer {
            for (p, v) in zip(parts, values) {
                let chunk = p.shape[ax...].reduce(1, *)
                out += v[(o * chunk)..<((o + 1) * chunk)]
            }
        }
        var shape = firstPart.shape
        shape[ax] = total
        return [Tensor(shape: shape, values: out, elementType: firstPart.elementType)]
    }

    /// Axes from the `axes` attribute (opset < 13) or the second input.
    static func axesInput(_ node: Node, _ x: [Tensor?]) -> [Int]? {
        if let a = node.ints("axes") { return a }
        if x.count > 1, let t = x[1] { return t.intValues() }
        return nil
    }

    static func unsqueezeShape(_ node: Node, _ shape: [Int], axes: [Int]) throws(GraphError) -> [Int] {
        let r = shape.count + axes.count
        var normalized: [Int] = []
        for a in axes { normalized.append(try axis(a, rank: r, node)) }
        guard Set(normalized).count == normalized.count else { throw fail(node, "axes \(axes) repeat an axis") }
        var out: [Int] = []
        var it = shape.makeIterator()
        // r - axes.count == shape.count dims are not inserted axes (the axes are distinct).
        for i in 0..<r { out.append(normalized.contains(i) ? 1 : it.next()!) }
        return out
    }

    static func squeezeShape(_ node: Node, _ shape: [Int], axes: [Int]?) throws(GraphError) -> [Int] {
        guard let axes else { return shape.filter { $0 != 1 } }
        var normalized: Set<Int> = []
        for a in axes { normalized.insert(try axis(a, rank: shape.count, node)) }
        for a in normalized where shape[a] != 1 {
            throw GraphError(.shapeMismatch, "node \(node.label): cannot squeeze axis \(a) of size \(shape[a]) (shape \(shape))")
        }
        return shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
    }

    static func unsqueeze(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard let axes = axesInput(node, x) else { throw fail(node, "Unsqueeze needs axes") }
        return [x[0]!.reshaped(try unsqueezeShape(node, x[0]!.shape, axes: axes))]
    }

    static func squeeze(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        [x[0]!.reshaped(try squeezeShape(node, x[0]!.shape, axes: axesInput(node, x)))]
    }

    /// Resolves a Reshape target (0 copies the input dim unless allowzero, -1 is inferred).
    /// Every product is overflow-checked: a target such as `[2, 2^62, 4]` is an error, not a trap.
    static func reshapeShape(_ node: Node, input: [Int], target: [Int]) throws(GraphError) -> [Int] {
        let allowZero = node.int("allowzero") == 1
        var out = target.enumerated().map { i, d in (d == 0 && !allowZero && i < input.count) ? input[i] : d }
        func invalid() -> GraphError { GraphError(.shapeMismatch, "node \(node.label): cannot reshape \(input) to \(target)") }
        func product(_ dims: [Int]) -> Int? {
            var p = 1
            for d in dims {
                let (r, overflow) = p.multipliedReportingOverflow(by: d)
                if overflow { return nil }
                p = r
            }
            return p
        }
        guard input.allSatisfy({ $0 >= 0 }), out.allSatisfy({ $0 >= -1 }), out.filter({ $0 == -1 }).count <= 1,
            let total = product(input)
        else { throw invalid() }
        if let m = out.firstIndex(of: -1) {
            guard let known = product(out.enumerated().filter { $0.offset != m }.map(\.element)), known > 0, total % known == 0 else {
                throw invalid()
            }
            out[m] = total / known
        }
        guard product(out) == total else { throw invalid() }
        return out
    }

    static func reshape(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard x.count > 1, let target = x[1] else { throw fail(node, "Reshape needs a shape input") }
        return [x[0]!.reshaped(try reshapeShape(node, input: x[0]!.shape, target: target.intValues()))]
    }

    static func flattenShape(_ node: Node, _ shape: [Int]) throws(GraphError) -> [Int] {
        // axis in [-r, r]; a negative axis counts from the rank r (not r + 1).
        let raw = node.int("axis") ?? 1
        let a = raw < 0 ? raw + shape.count : raw
        guard a >= 0, a <= shape.count else { throw fail(node, "axis \(raw) is out of range for rank \(shape.count)") }
        let (outer, o1) = shape[..<a].reduce((1, false)) { p, d in
            let r = p.0.multipliedReportingOverflow(by: d); return (r.0, p.1 || r.1)
        }
        let (inner, o2) = shape[a...].reduce((1, false)) { p, d in
            let r = p.0.multipliedReportingOverflow(by: d); return (r.0, p.1 || r.1)
        }
        guard !o1, !o2 else { throw fail(node, "shape \(shape) has too many elements") }
        return [outer, inner]
    }

    static func flatten(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        [x[0]!.reshaped(try flattenShape(node, x[0]!.shape))]
    }

    static func constantOfShape(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let shape = x[0]!.intValues()
        let count = try checkedCount(shape, node)
        let value = node.tensor("value") ?? Tensor(shape: [1], scalars: [Float(0)])
        let v = value.doubleValues().first ?? 0
        return [
            Tensor(
                shape: shape, values: [Double](repeating: v, count: count),
                elementType: value.elementType)
        ]
    }

    static func range(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard let s = x[0]!.doubleValues().first, let l = x[1]!.doubleValues().first, let d = x[2]!.doubleValues().first else {
            throw fail(node, "Range needs scalar start, limit and delta")
        }
        guard d != 0 else { throw fail(node, "Range with delta 0") }
        let steps = ((l - s) / d).rounded(.up)
        guard steps.isFinite, steps <= Double(elementLimit) else { throw fail(node, "Range(\(s), \(l), \(d)) has too many elements") }
        let n = max(Int(steps), 0)
        return [Tensor(shape: [n], values: (0..<n).map { s + Double($0) * d }, elementType: x[0]!.elementType)]
    }

    /// Element-wise binary op with broadcasting; comparisons give u8 (ONNX bool).
    static func binary(
        _ node: Node, _ a: Tensor, _ b: Tensor, _ f: (Double, Double) -> Double,
        boolResult: Bool
    ) throws(GraphError) -> Tensor {
        guard let shape = Broadcast.shape(a.shape, b.shape) else {
            throw GraphError(.shapeMismatch, "node \(node.label): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        _ = try checkedCount(shape, node)
        let av = a.doubleValues(), bv = b.doubleValues()
        let ia = Broadcast.indices(of: a.shape, in: shape), ib = Broadcast.indices(of: b.shape, in: shape)
        let integer = a.elementType != .f32
        var out = [Double](repeating: 0, count: ia.count)
        for i in 0..<ia.count {
            let r = f(av[ia[i]], bv[ib[i]])
            out[i] = integer && node.opType == "Div" ? r.rounded(.towardZero) : r
        }
        return Tensor(shape: shape, values: out, elementType: boolResult ? .u8 : a.elementType)
    }

    static func whereOp(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let c = x[0]!, a = x[1]!, b = x[2]!
        guard let s1 = Broadcast.shape(c.shape, a.shape), let shape = Broadcast.shape(s1, b.shape) else {
            throw GraphError(.shapeMismatch, "node \(node.label): Where shapes do not broadcast")
        }
        _ = try checkedCount(shape, node)
        let cv = c.doubleValues(), av = a.doubleValues(), bv = b.doubleValues()
        let ic = Broadcast.indices(of: c.shape, in: shape), ia = Broadcast.indices(of: a.shape, in: shape)
        let ib = Broadcast.indices(of: b.shape, in: shape)
        let out = (0..<ic.count).map { cv[ic[$0]] != 0 ? av[ia[$0]] : bv[ib[$0]] }
        return [Tensor(shape: shape, values: out, elementType: a.elementType)]
    }

    static func expand(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        guard let shape = Broadcast.shape(t.shape, x[1]!.intValues()) else {
            throw GraphError(.shapeMismatch, "node \(node.label): cannot expand \(t.shape) to \(x[1]!.intValues())")
        }
        _ = try checkedCount(shape, node)
        let v = t.doubleValues()
        return [
            Tensor(
                shape: shape, values: Broadcast.indices(of: t.shape, in: shape).map { v[$0] },
                elementType: t.elementType)
        ]
    }

    static func tile(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!, reps = x[1]!.intValues()
        guard reps.count == t.shape.count, reps.allSatisfy({ $0 >= 0 }) else { throw fail(node, "Tile repeats \(reps) for rank \(t.shape.count)") }
        var shape: [Int] = []
        for (d, r) in zip(t.shape, reps) {
            let (p, overflow) = d.multipliedReportingOverflow(by: r)
            guard !overflow else { throw fail(node, "Tile repeats \(reps) of \(t.shape) overflow") }
            shape.append(p)
        }
        _ = try checkedCount(shape, node)
        let v = t.doubleValues(), s = Broadcast.strides(t.shape)
        var out = [Double](repeating: 0, count: shape.reduce(1, *))
        var coord = [Int](repeating: 0, count: shape.count)
        for i in 0..<out.count {
            var idx = 0
            for d in 0..<shape.count { idx += (coord[d] % t.shape[d]) * s[d] }
            out[i] = v[idx]
            Broadcast.advance(&coord, in: shape)
        }
        return [Tensor(shape: shape, values: out, elementType: t.elementType)]
    }

    static func transpose(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        let r = t.shape.count
        let perm = node.ints("perm") ?? Array((0..<r).reversed())
        guard perm.sorted() == Array(0..<r) else { throw fail(node, "perm \(perm) is not a permutation of \(r) axes") }
        let shape = perm.map { t.shape[$0] }
        let s = Broadcast.strides(t.shape), v = t.doubleValues()
        var out = [Double](repeating: 0, count: t.count)
        var coord = [Int](repeating: 0, count: r)
        for i in 0..<out.count {
            var idx = 0
            for d in 0..<r { idx += coord[d] * s[perm[d]] }
            out[i] = v[idx]
            Broadcast.advance(&coord, in: shape)
        }
        return [Tensor(shape: shape, values: out, elementType: t.elementType)]
    }

    /// Normalized Slice parameters for one input shape (ONNX Slice-13 semantics, clamping).
    struct SliceParams { var starts: [Int]; var ends: [Int]; var steps: [Int]; var shape: [Int] }

    static func sliceParams(_ node: Node, shape: [Int], _ x: [Tensor?]) throws(GraphError) -> SliceParams {
        let starts: [Int], ends: [Int], axes: [Int]?, stepsIn: [Int]?
        if let s = node.ints("starts") {  // opset < 10
            starts = s; ends = node.ints("ends") ?? []; axes = node.ints("axes"); stepsIn = nil
        } else {
            guard x.count >= 3, let s = x[1], let e = x[2] else { throw fail(node, "Slice needs constant starts and ends") }
            starts = s.intValues(); ends = e.intValues()
            axes = x.count > 3 ? x[3]?.intValues() : nil
            stepsIn = x.count > 4 ? x[4]?.intValues() : nil
        }
        let r = shape.count
        var p = SliceParams(
            starts: [Int](repeating: 0, count: r), ends: shape,
            steps: [Int](repeating: 1, count: r), shape: shape)
        let sliceAxes = axes ?? Array(0..<starts.count)
        guard ends.count == starts.count, sliceAxes.count == starts.count, (stepsIn?.count ?? starts.count) == starts.count else {
            throw fail(node, "Slice starts \(starts), ends \(ends), axes \(sliceAxes) and steps \(stepsIn ?? []) differ in count")
        }
        guard r > 0 || sliceAxes.isEmpty else { throw fail(node, "Slice of a scalar") }
        for (i, a0) in sliceAxes.enumerated() {
            let a = try axis(a0, rank: r, node)
            let step = stepsIn?[i] ?? 1
            guard step != 0, step != Int.min else { throw fail(node, "Slice step \(step)") }
            let d = shape[a]
            var s = starts[i], e = ends[i]
            if s < 0 { s += d }
            if e < 0 { e += d }
            if step > 0 {
                s = min(max(s, 0), d); e = min(max(e, 0), d)
            } else {
                s = min(max(s, -1), d - 1); e = min(max(e, -1), d - 1)
            }
            p.starts[a] = s; p.ends[a] = e; p.steps[a] = step
            // ceil((e - s) / step) elements, without overflow for huge steps.
            p.shape[a] = step > 0 ? (e > s ? (e - s - 1) / step + 1 : 0) : (s > e ? (s - e - 1) / -step + 1 : 0)
        }
        return p
    }

    static func slice(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let t = x[0]!
        let p = try sliceParams(node, shape: t.shape, x)
        let s = Broadcast.strides(t.shape), v = t.doubleValues()
        let total = p.shape.reduce(1, *)
        var out = [Double](repeating: 0, count: total)
        var coord = [Int](repeating: 0, count: p.shape.count)
        for i in 0..<total {
            var idx = 0
            for d in 0..<coord.count { idx += (p.starts[d] + coord[d] * p.steps[d]) * s[d] }
            out[i] = v[idx]
            Broadcast.advance(&coord, in: p.shape)
        }
        return [Tensor(shape: p.shape, values: out, elementType: t.elementType)]
    }
}
