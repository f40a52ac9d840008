import DNNL

/// Ops that move data without arithmetic: Reshape, Flatten, Squeeze, Unsqueeze (zero-copy
/// views of a plain buffer), Transpose (a reorder from a permuted view), Slice and Split
/// (reorders from sub-memory views), Concat (oneDNN concat), Pad, Tile, Gather, Expand, Cast
/// (Swift kernels over plain f32 data).
enum LayoutKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        r["Reshape"] = { n, l in
            guard let t = l.constant(n.input(1)) else { throw l.fail(.unsupportedAttribute, "the target shape must be constant") }
            try view(n, l, try ConstantEvaluation.reshapeShape(n, input: try l.shape(n.inputs[0]), target: t.intValues()))
        }
        r["Flatten"] = { n, l in try view(n, l, try ConstantEvaluation.flattenShape(n, try l.shape(n.inputs[0]))) }
        r["Squeeze"] = { n, l in
            let axes = n.ints("axes") ?? l.constant(n.input(1))?.intValues()
            try view(n, l, try ConstantEvaluation.squeezeShape(n, try l.shape(n.inputs[0]), axes: axes))
        }
        r["Unsqueeze"] = { n, l in
            guard let axes = n.ints("axes") ?? l.constant(n.input(1))?.intValues() else {
                throw l.fail(.unsupportedAttribute, "axes must be constant")
            }
            try view(n, l, try ConstantEvaluation.unsqueezeShape(n, try l.shape(n.inputs[0]), axes: axes))
        }
        r["Cast"] = { n, l in
            let to = try ConstantEvaluation.elementType(onnx: n.int("to") ?? 1, n)
            guard ![10, 16].contains(n.int("to") ?? 1) else {  // FLOAT16/BFLOAT16 round: the Swift evaluator
                throw l.fail(.unsupportedAttribute, "run-time Cast to FLOAT16/BFLOAT16 rounds in the Swift evaluator")
            }
            let s = try l.slot(n.inputs[0])
            guard to == l.descriptor(s).dataType.elementType else {
                throw l.fail(.unsupportedAttribute, "run-time Cast from \(l.descriptor(s).dataType) to \(to) is not supported")
            }
            l.define(n.outputs[0], .slot(s))
        }
        r["Transpose"] = transpose
        r["Slice"] = slice
        r["Split"] = split
        r["Concat"] = concat
        r["Pad"] = pad
        r["Tile"] = { n, l in try gatherKernel(n, l, name: "Tile") }
        r["Expand"] = { n, l in try gatherKernel(n, l, name: "Expand") }
        r["Gather"] = { n, l in try gatherKernel(n, l, name: "Gather") }
    }

    /// A zero-copy view of the input's plain buffer with another shape.
    static func view(_ node: Node, _ l: Lowering, _ shape: [Int]) throws(GraphError) {
        let p = try l.plain(try l.slot(node.inputs[0]))
        let md = try l.descriptor(dims: shape, l.descriptor(p).dataType)
        l.define(node.outputs[0], .slot(l.alias(of: p, name: node.outputs[0], shape: shape, md)))
    }

    static func transpose(_ node: Node, _ l: Lowering) throws {
        let s = try l.slot(node.inputs[0])
        let shape = l.slots[s].shape
        let perm = node.ints("perm") ?? Array((0..<shape.count).reversed())
        guard perm.sorted() == Array(0..<shape.count) else {
            throw l.fail(.unsupportedAttribute, "perm \(perm) is not a permutation of the \(shape.count) axes")
        }
        let out = perm.map { shape[$0] }
        // oneDNN's permute_axes: input axis i becomes output axis p[i], so p = perm^-1.
        var inverse = [Int](repeating: 0, count: perm.count)
        for (j, a) in perm.enumerated() { inverse[a] = j }
        let src = shape.isEmpty ? s : try l.plain(s)
        let permuted = try l.wrap { () throws(DNNLError) in try l.descriptor(src).permutingAxes(inverse) }
        let viewSlot = l.alias(of: src, name: node.inputs[0] + ".permuted", shape: out, permuted)
        let dst = l.newSlot(node.outputs[0], shape: out, try l.descriptor(dims: out, permuted.dataType))
        try l.reorder(from: viewSlot, to: dst, label: "\(l.where_()) transpose")
        l.note("reorder (transpose, \(permuted.dataType))", Precision(permuted.dataType))
        l.define(node.outputs[0], .slot(dst))
    }

    /// Copies `src[offsets ..< offsets + dims]` (a plain slot) into a new plain slot.
    static func copyBlock(_ l: Lowering, from src: Int, dims: [Int], offsets: [Int], name: String) throws(GraphError) -> Int {
        // An empty block (or a block of an empty source) copies nothing: oneDNN's sub-memory
        // reorder divides by the dims (SIGFPE on a zero).
        if dims.contains(0) || l.slots[src].shape.contains(0) {
            guard dims.allSatisfy({ $0 >= 0 }) else { throw l.fail(.shapeMismatch, "block \(dims) has a negative size") }
            return l.newSlot(name, shape: dims, try l.descriptor(dims: dims, l.descriptor(src).dataType))
        }
        let sub = try l.wrap { () throws(DNNLError) in try l.descriptor(src).submemory(dims: dims, offsets: offsets) }
        let viewSlot = l.alias(of: src, name: name + ".view", shape: dims, sub)
        let dst = l.newSlot(name, shape: dims, try l.descriptor(dims: dims, sub.dataType))
        try l.reorder(from: viewSlot, to: dst, label: "\(l.where_()) copy block")
        return dst
    }

    static func slice(_ node: Node, _ l: Lowering) throws {
        let s = try l.plain(try l.slot(node.inputs[0]))
        let shape = l.slots[s].shape
        let inputs = node.inputs.map { $0.isEmpty ? nil : l.constant($0) }
        guard node.inputs.dropFirst().allSatisfy({ $0.isEmpty || l.isConstant($0) }) else {
            throw l.fail(.unsupportedAttribute, "starts, ends, axes and steps must be constant")
        }
        let p = try ConstantEvaluation.sliceParams(node, shape: shape, inputs)
        guard p.steps.allSatisfy({ $0 == 1 }) else {
            throw l.fail(.unsupportedAttribute, "run-time Slice with steps \(p.steps) is not supported")
        }
        l.define(node.outputs[0], .slot(try copyBlock(l, from: s, dims: p.shape, offsets: p.starts, name: node.outputs[0])))
        l.note("reorder (slice, \(l.descriptor(s).dataType))", Precision(l.descriptor(s).dataType))
    }

    static func split(_ node: Node, _ l: Lowering) throws {
        let s = try l.plain(try l.slot(node.inputs[0]))
        let shape = l.slots[s].shape
        let axis = try ConstantEvaluation.axis(node.int("axis") ?? 0, rank: shape.count, node)
        var sizes = node.ints("split") ?? l.constant(node.input(1))?.intValues() ?? []
        if sizes.isEmpty {
            let k = node.outputs.count
            let chunk = (shape[axis] + k - 1) / k
            sizes = (0..<k).map { min(chunk, shape[axis] - $0 * chunk) }
        }
        guard sizes.count == node.outputs.count, sizes.allSatisfy({ $0 >= 0 && $0 <= shape[axis] }), sizes.reduce(0, +) == shape[axis] else {
            throw l.fail(.shapeMismatch, "split sizes \(sizes) do not cover \(shape[axis])")
        }
        var offset = 0
        for (name, size) in zip(node.outputs, sizes) {
            var dims = shape, offsets = [Int](repeating: 0, count: shape.count)
            dims[axis] = size
            offsets[axis] = offset
            offset += size
            l.define(name, .slot(try copyBlock(l, from: s, dims: dims, offsets: offsets, name: name)))
        }
        l.note("reorders (split, \(l.descriptor(s).dataType))", Precision(l.descriptor(s).dataType))
    }

    static func concat(_ node: Node, _ l: Lowering) throws {
        let names = node.inputs.filter { !$0.isEmpty }
        var parts: [Int] = []
        for n in names where try l.shape(n).reduce(1, *) > 0 { parts.append(try l.slot(n)) }
        guard let first = parts.first else { throw l.fail(.shapeMismatch, "Concat of empty inputs") }
        let rank = l.slots[first].shape.count
        let axis = try ConstantEvaluation.axis(node.int("axis") ?? 0, rank: rank, node)
        var out = l.slots[first].shape
        out[axis] = parts.map { l.slots[$0].shape[axis] }.reduce(0, +)
        if parts.count == 1 { l.define(node.outputs[0], .slot(first)); return }
        let pd = try l.wrap { () throws(DNNLError) in
            try PrimitiveDescriptor.concat(srcs: parts.map { l.descriptor($0) }, axis: axis, engine: l.engine)
        }
        let dst = l.newSlot(node.outputs[0], shape: out, pd.dst)
        try l.emit(
            pd, parts.enumerated().map { (.multipleSrc($0.offset), $0.element) } + [(.dst, dst)],
            label: "\(l.where_()) concat")
        l.note("\(pd.implementation) concat (\(pd.dst.dataType))", Precision(pd.dst.dataType))
        l.define(node.outputs[0], .slot(dst))
    }

    static func pad(_ node: Node, _ l: Lowering) throws {
        let s = try l.plain(try l.slot(node.inputs[0]))
        let shape = l.slots[s].shape, r = shape.count
        guard let pads = node.ints("pads") ?? l.constant(node.input(1))?.intValues(), pads.count == 2 * r else {
            throw l.fail(.unsupportedAttribute, "pads must be constant with \(2 * r) values")
        }
        guard node.input(3) == nil else { throw l.fail(.unsupportedAttribute, "Pad with axes is not supported") }
        let mode = node.string("mode") ?? "constant"
        // A run-time constant_value: the evaluator (NormalizationEvaluators) pads instead.
        if let v = node.input(2), !l.isConstant(v) { throw l.fail(.unsupportedAttribute, "Pad with a run-time constant_value '\(v)'") }
        let value = node.float("value") ?? l.constant(node.input(2))?.floatValues().first ?? 0
        guard pads.allSatisfy({ $0 >= 0 && $0 <= ConstantEvaluation.elementLimit }) else {
            throw l.fail(.unsupportedAttribute, "pads \(pads) must be non-negative (at most \(ConstantEvaluation.elementLimit))")
        }
        let out = (0..<r).map { shape[$0] + pads[$0] + pads[r + $0] }
        _ = try ConstantEvaluation.checkedCount(out, node)
        if mode == "reflect" {
            for i in 0..<r where pads[i] >= max(shape[i], 1) || pads[r + i] >= max(shape[i], 1) {
                throw l.fail(.unsupportedAttribute, "reflect pads \(pads) must be smaller than the input \(shape)")
            }
        } else if mode != "constant" && mode != "edge" {
            throw l.fail(.unsupportedAttribute, "Pad mode '\(mode)'")
        }
        // Source index along each dim for every output index (-1 = the constant value).
        let maps: [[Int]] = (0..<r).map { d in
            (0..<out[d]).map { o in
                let i = o - pads[d]
                if i >= 0 && i < shape[d] { return i }
                switch mode {
                case "reflect": return i < 0 ? -i : 2 * (shape[d] - 1) - i
                case "edge": return min(max(i, 0), shape[d] - 1)
                default: return -1
                }
            }
        }
        let dst = try l.emitIndexCopy(
            "pad \(mode)", from: s, to: node.outputs[0], shape: out,
            index: Broadcast.indices(of: shape, in: out, maps: maps), fill: value)
        l.note("Swift kernel (pad \(mode))", .swift)
        l.define(node.outputs[0], .slot(dst))
    }

    /// Tile, Expand and Gather as index maps computed at plan time, applied by a Swift loop.
    static func gatherKernel(_ node: Node, _ l: Lowering, name: String) throws(GraphError) {
        let s = try l.plain(try l.slot(node.inputs[0]))
        let shape = l.slots[s].shape
        // Evaluate the operation on the element indices themselves: the result says which
        // source element each output element copies.
        let ids = Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map(Double.init), elementType: .i64)
        let others = node.inputs.dropFirst().map { $0.isEmpty ? nil : l.constant($0) }
        guard node.inputs.dropFirst().allSatisfy({ $0.isEmpty || l.isConstant($0) }) else {
            throw l.fail(.unsupportedAttribute, "\(name) needs constant \(name == "Gather" ? "indices" : "repeats/shape")")
        }
        guard let evaluate = ConstantEvaluation.evaluators[name] else { throw l.fail(.unsupportedOperator, "no index map for \(name)") }
        let mapped: Tensor
        do {
            guard let first = try evaluate(node, [ids] + others, 0).first else { throw l.fail(.runtime, "\(name) gave no result") }
            mapped = first
        } catch let e as GraphError { throw e } catch { throw GraphError(runtime: l.where_(), error) }
        let dst = try l.emitIndexCopy(name, from: s, to: node.outputs[0], shape: mapped.shape, index: mapped.intValues())
        l.note("Swift kernel (\(name), \(l.descriptor(s).dataType))", .swift)
        l.define(node.outputs[0], .slot(dst))
    }
}

extension Lowering {
    /// A new plain slot of `shape` (the source's element type) where element i copies source
    /// element `index[i]` (a plain slot), or `fill` where the index is -1: the Swift kernel of
    /// Pad, nearest Resize, Tile, Expand and Gather, whose index maps are computed at plan time.
    func emitIndexCopy(
        _ what: String, from src: Int, to name: String, shape: [Int], index: [Int],
        fill: Float = 0
    ) throws(GraphError) -> Int {
        let dataType = descriptor(src).dataType
        let dst = newSlot(name, shape: shape, try descriptor(dims: shape, dataType))
        let wide = dataType.size == 4
        let fillBits = wide ? fill.bitPattern : UInt32(UInt8(truncatingIfNeeded: Int(saturating: Double(fill))))
        emitCustom("\(where_()) \(what)", slots: [src, dst]) { m in
            if wide {
                let x = m[0].dataPointer.assumingMemoryBound(to: UInt32.self)
                let y = m[1].dataPointer.assumingMemoryBound(to: UInt32.self)
                for i in 0..<index.count { let k = index[i]; y[i] = k < 0 ? fillBits : x[k] }
            } else {
                let x = m[0].dataPointer.assumingMemoryBound(to: UInt8.self)
                let y = m[1].dataPointer.assumingMemoryBound(to: UInt8.self)
                for i in 0..<index.count { let k = index[i]; y[i] = k < 0 ? UInt8(fillBits) : x[k] }
            }
        }
        return dst
    }
}
