import DNNL

/// Softmax, BatchNormalization, LayerNormalization (oneDNN primitives) and ReduceMean /
/// ReduceSum / ReduceMax (Swift kernels over plain f32 data).
enum NormalizationKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        r["Softmax"] = { n, l in try softmax(n, l, log: false) }
        r["LogSoftmax"] = { n, l in try softmax(n, l, log: true) }
        r["BatchNormalization"] = batchNorm
        r["LayerNormalization"] = layerNorm
        for op in ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"] { r[op] = reduce }
    }

    static func softmax(_ node: Node, _ l: Lowering, log: Bool) throws {
        let s = try l.plain(try l.slot(node.inputs[0]))
        let shape = l.slots[s].shape
        let opset13 = l.opset >= 13
        let axis = try ConstantEvaluation.axis(node.int("axis") ?? (opset13 ? -1 : 1), rank: shape.count, node)
        // Before opset 13 the input is coerced to 2-D at `axis`; from 13 softmax runs along `axis`.
        let dims = opset13 ? shape : [shape[..<axis].reduce(1, *), shape[axis...].reduce(1, *)]
        let (md, v, dst, dstView) = try views(node, l, src: s, shape: shape, dims: dims)
        let pd = try l.wrap { () throws(DNNLError) in
            try PrimitiveDescriptor.softmax(src: md, dst: md, axis: opset13 ? axis : 1, log: log, engine: l.engine)
        }
        try l.emit(pd, [(.src, v), (.dst, dstView)], label: "\(l.where_()) softmax")
        l.note("\(pd.implementation) softmax")
        l.define(node.outputs[0], .slot(dst))
    }

    /// A plain f32 slot `src` of `shape` and a new output slot of the same shape, both also
    /// seen with `dims` (same elements, e.g. `[outer, inner]`) for a primitive on that view.
    static func views(_ node: Node, _ l: Lowering, src: Int, shape: [Int], dims: [Int]) throws(GraphError)
        -> (descriptor: MemoryDescriptor, src: Int, dst: Int, dstView: Int)
    {
        let md = try l.descriptor(dims: dims, .f32)
        let v = l.alias(of: src, name: node.inputs[0] + ".view", shape: dims, md)
        let dst = l.newSlot(node.outputs[0], shape: shape, try l.descriptor(dims: shape, .f32))
        return (md, v, dst, l.alias(of: dst, name: node.outputs[0] + ".view", shape: dims, md))
    }

    static func batchNorm(_ node: Node, _ l: Lowering) throws {
        var params: [Tensor] = []
        for i in 1...4 {
            guard let t = l.constant(node.input(i)) else { throw l.fail(.unsupportedAttribute, "scale, bias, mean and variance must be constant") }
            params.append(t)
        }
        let s = try l.slot(node.inputs[0])
        let shape = l.slots[s].shape
        guard shape.count >= 2, params.allSatisfy({ $0.count == shape[1] }) else {
            throw l.fail(
                .shapeMismatch,
                "scale, bias, mean and variance need \(shape.count >= 2 ? shape[1] : 0) values each (input \(shape)), got \(params.map(\.count))")
        }
        let eps = node.float("epsilon") ?? 1e-5
        let pd = try l.wrap { () throws(DNNLError) in
            try PrimitiveDescriptor.batchNormalization(
                data: l.descriptor(s), epsilon: eps, useScale: true,
                useShift: true, engine: l.engine)
        }
        let dst = l.newSlot(node.outputs[0], shape: shape, l.descriptor(s))
        let names = ["scale", "shift", "mean", "variance"]
        let args: [ExecArg] = [.scale, .shift, .mean, .variance]
        var list: [(ExecArg, Int)] = [(.src, s), (.dst, dst)]
        for i in 0..<4 { list.append((args[i], try l.constantSlot(node.inputs[i + 1] + "." + names[i], params[i]))) }
        try l.emit(pd, list, label: "\(l.where_()) batch normalization")
        l.note("\(pd.implementation) batch normalization")
        l.define(node.outputs[0], .slot(dst))
    }

    /// LayerNormalization over the trailing dims from `axis` (viewed as `[outer, inner]`).
    static func layerNorm(_ node: Node, _ l: Lowering) throws {
        let s = try l.plain(try l.slot(node.inputs[0]))
        let shape = l.slots[s].shape
        let axis = try ConstantEvaluation.axis(node.int("axis") ?? -1, rank: shape.count, node)
        let inner = shape[axis...].reduce(1, *), outer = shape[..<axis].reduce(1, *)
        let scale = l.constant(node.input(1)), bias = l.constant(node.input(2))
        guard scale != nil || node.input(1) == nil, bias != nil || node.input(2) == nil else {
            throw l.fail(.unsupportedAttribute, "scale and bias must be constant")
        }
        let (md, v, dst, dstView) = try views(node, l, src: s, shape: shape, dims: [outer, inner])
        let pd = try l.wrap { () throws(DNNLError) in
            try PrimitiveDescriptor.layerNormalization(
                data: md, epsilon: node.float("epsilon") ?? 1e-5,
                useScale: scale != nil, useShift: bias != nil, engine: l.engine)
        }
        var args: [(ExecArg, Int)] = [(.src, v), (.dst, dstView)]
        // Scale and bias cover the normalized dims; a single value is broadcast.
        func perElement(_ t: Tensor, _ name: String) throws(GraphError) -> Tensor {
            if t.count == inner { return t.reshaped([inner]) }
            guard t.count == 1 else {
                throw l.fail(.shapeMismatch, "\(name) has \(t.count) values for \(inner) normalized elements")
            }
            return Tensor(shape: [inner], scalars: [Float](repeating: t.floatValues()[0], count: inner))
        }
        if let scale { args.append((.scale, try l.constantSlot(node.inputs[1] + ".ln", try perElement(scale, "scale")))) }
        if let bias { args.append((.shift, try l.constantSlot(node.inputs[2] + ".ln", try perElement(bias, "bias")))) }
        try l.emit(pd, args, label: "\(l.where_()) layer normalization")
        l.note("\(pd.implementation) layer normalization")
        l.define(node.outputs[0], .slot(dst))
    }

    static func reduce(_ node: Node, _ l: Lowering) throws {
        let s = try l.plain(try l.slot(node.inputs[0]))
        let shape = l.slots[s].shape
        var axes = node.ints("axes") ?? l.constant(node.input(1))?.intValues() ?? Array(0..<shape.count)
        if axes.isEmpty && node.int("noop_with_empty_axes") != 1 { axes = Array(0..<shape.count) }
        var set: Set<Int> = []
        for a in axes { set.insert(try ConstantEvaluation.axis(a, rank: shape.count, node)) }
        let keep = (node.int("keepdims") ?? 1) == 1
        let kept = shape.enumerated().map { set.contains($0.offset) ? 1 : $0.element }
        let out = keep ? kept : shape.enumerated().filter { !set.contains($0.offset) }.map(\.element)
        let outIndex = Broadcast.indices(of: kept, in: shape)  // output element of each input element
        let count = Float(shape.reduce(1, *) / max(kept.reduce(1, *), 1))
        let n = outIndex.count, m = kept.reduce(1, *)
        let op = node.opType
        let dst = l.newSlot(node.outputs[0], shape: out, try l.descriptor(dims: out, .f32))
        l.emitCustom("\(l.where_()) \(op)", slots: [s, dst]) { mem in
            let x = mem[0].dataPointer.assumingMemoryBound(to: Float.self)
            let y = mem[1].dataPointer.assumingMemoryBound(to: Float.self)
            let start: Float = op == "ReduceMax" ? -.infinity : (op == "ReduceMin" ? .infinity : 0)
            for j in 0..<m { y[j] = start }
            for i in 0..<n {
                let j = outIndex[i]
                switch op {
                case "ReduceMax": y[j] = max(y[j], x[i])
                case "ReduceMin": y[j] = min(y[j], x[i])
                default: y[j] += x[i]
                }
            }
            if op == "ReduceMean" { for j in 0..<m { y[j] /= count } }
        }
        l.note("Swift kernel (\(op))", .swift)
        l.define(node.outputs[0], .slot(dst))
    }
}
