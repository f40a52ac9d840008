import DNNL

/// MatMul (batched, broadcast), Gemm and their fused forms as oneDNN matmul primitives.
/// Constant 2-D weights are reordered once into the layout oneDNN chooses; a constant bias and
/// a residual `Z` (sum post-op) and activations (eltwise post-ops) are fused.
enum MatMulKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        r["MatMul"] = matmul
        r["FusedMatMul"] = matmul
        r["Gemm"] = gemm
        r["FusedGemm"] = gemm
    }

    /// Inputs of one matmul primitive: `a [..., M, K] x b [..., K, N] (+ bias) (+ z)`.
    struct Operands {
        var a: String
        var aShape: [Int]
        /// Constant weights `[K, N]` (already transposed and scaled), or a run-time value name.
        var constantB: [Float]?
        var b: String
        var bShape: [Int]
        var bias: Tensor?
        var z: String?
        var chain: PostOpChain
    }

    static func matmul(_ node: Node, _ l: Lowering) throws {
        try l.lowerFused(node, chain: node.postOps) { chain, out in try matmul(node, l, chain: chain, output: out) }
    }

    static func gemm(_ node: Node, _ l: Lowering) throws {
        try l.lowerFused(node, chain: node.postOps) { chain, out in try gemm(node, l, chain: chain, output: out) }
    }

    static func matmul(_ node: Node, _ l: Lowering, chain: PostOpChain, output: String) throws {
        var aShape = try l.shape(node.inputs[0]), bShape = try l.shape(node.inputs[1])
        let squeezeA = aShape.count == 1, squeezeB = bShape.count == 1
        if squeezeA { aShape = [1] + aShape }
        if squeezeB { bShape = bShape + [1] }
        guard aShape.last == bShape[bShape.count - 2] else {
            throw l.fail(.shapeMismatch, "MatMul of \(aShape) and \(bShape)")
        }
        let fused = node.opType == "FusedMatMul"
        var ops = Operands(
            a: node.inputs[0], aShape: aShape, constantB: nil, b: node.inputs[1], bShape: bShape,
            bias: fused ? l.constant(node.input(2)) : nil, z: chain.hasSum ? node.input(3) : nil,
            chain: chain)
        if let bt = l.constant(node.inputs[1]), bShape.count == 2 { ops.constantB = bt.floatValues() }
        var outShape = try emit(ops, output: output, l)
        if squeezeA { outShape.remove(at: outShape.count - 2) }
        if squeezeB { outShape.removeLast() }
        try l.reshapeOutput(output, to: outShape)
    }

    static func gemm(_ node: Node, _ l: Lowering, chain: PostOpChain, output: String) throws {
        var aShape = try l.shape(node.inputs[0])
        let alpha = node.float("alpha") ?? 1, beta = node.float("beta") ?? 1
        guard let bt = l.constant(node.input(1)), bt.shape.count == 2 else {
            throw l.fail(.unsupportedAttribute, "Gemm needs constant 2-D B")
        }
        var a = node.inputs[0]
        guard aShape.count == 2 || node.int("transA") != 1, !aShape.isEmpty else {
            throw l.fail(.shapeMismatch, "Gemm needs a 2-D A, not \(aShape)")
        }
        if node.int("transA") == 1 {
            let t = Node(
                name: node.name + ".transA", opType: "Transpose", inputs: [a], outputs: [a + ".T"],
                attributes: ["perm": .ints([1, 0])])
            try LayoutKernels.transpose(t, l)
            a = a + ".T"
            aShape = [aShape[1], aShape[0]]
        }
        var b = bt.floatValues()
        var (k, n) = (bt.shape[0], bt.shape[1])
        if node.int("transB") == 1 {
            (k, n) = (n, k)
            let stored = b  // [N, K]; read once (reading it per element was quadratic)
            b = (0..<(k * n)).map { i in stored[(i % n) * k + i / n] }
        }
        if alpha != 1 { b = b.map { $0 * alpha } }
        var bias: Tensor? = nil
        if let c = l.constant(node.input(2)) {
            bias = Tensor(shape: c.shape, scalars: c.floatValues().map { $0 * beta })
        } else if node.input(2) != nil {
            throw l.fail(.unsupportedAttribute, "Gemm needs a constant C")
        }
        let ops = Operands(
            a: a, aShape: aShape, constantB: b, b: node.inputs[1], bShape: [k, n], bias: bias,
            z: chain.hasSum ? node.input(3) : nil, chain: chain)
        let out = try emit(ops, output: output, l)
        try l.reshapeOutput(output, to: out)
    }

    /// Emits the matmul; defines `output` with the broadcast output shape, returned.
    static func emit(_ o: Operands, output: String, _ l: Lowering) throws -> [Int] {
        guard let k = o.aShape.last, let n = o.bShape.last else {
            throw l.fail(.shapeMismatch, "MatMul of \(o.aShape) and \(o.bShape)")
        }
        var out: [Int]
        var srcDims: [Int], weiDims: [Int]
        if o.constantB != nil {
            // [..., M, K] x [K, N]: fold the batch into M.
            let rows = o.aShape.dropLast().reduce(1, *)
            srcDims = [rows, k]; weiDims = [k, n]
            out = Array(o.aShape.dropLast()) + [n]
        } else {
            let r = max(o.aShape.count, o.bShape.count)
            srcDims = Broadcast.padded(o.aShape, to: r)
            weiDims = Broadcast.padded(o.bShape, to: r)
            guard let batch = Broadcast.shape(Array(srcDims.dropLast(2)), Array(weiDims.dropLast(2))) else {
                throw l.fail(.shapeMismatch, "MatMul batch dims \(o.aShape) and \(o.bShape) do not broadcast")
            }
            out = batch + [srcDims[r - 2], n]
        }
        let dstDims = o.constantB != nil ? [srcDims[0], n] : out
        try l.checkResidual(o.z, elementCount: dstDims.reduce(1, *), shape: out)
        var biasDims: [Int]? = nil
        if let bias = o.bias {
            let padded = Broadcast.padded(bias.shape, to: dstDims.count)
            guard bias.shape.count <= dstDims.count, zip(padded, dstDims).allSatisfy({ $0 == 1 || $0 == $1 }) else {
                throw l.fail(.shapeMismatch, "bias \(bias.shape) does not broadcast to \(dstDims)")
            }
            biasDims = padded
        }
        let pd = try l.wrap { () throws(DNNLError) in
            let attr = try o.chain.primitiveAttributes()
            var biasMD: MemoryDescriptor? = nil
            if let biasDims { biasMD = try MemoryDescriptor(dims: biasDims, dataType: .f32) }
            return try PrimitiveDescriptor.matmul(
                src: MemoryDescriptor(dims: srcDims, dataType: .f32),
                weights: MemoryDescriptor(dims: weiDims, dataType: .f32, tag: o.constantB != nil ? .any : nil),
                bias: biasMD,
                dst: MemoryDescriptor(dims: dstDims, dataType: .f32), attributes: attr, engine: l.engine)
        }
        let a = try l.plain(try l.slot(o.a))
        let aView = l.alias(of: a, name: o.a + ".2d", shape: srcDims, pd.src)
        let wSlot: Int
        if let b = o.constantB {
            wSlot = try l.weightsSlot(o.b, b, plainDims: weiDims, into: pd.weights)
        } else {
            let b = try l.plain(try l.slot(o.b))
            wSlot = l.alias(of: b, name: o.b + ".nd", shape: weiDims, pd.weights)
        }
        var args: [(ExecArg, Int)] = [(.src, aView), (.weights, wSlot)]
        if let bias = o.bias, let biasDims {
            args.append((.bias, try l.constantSlot(output + ".bias", bias.reshaped(biasDims))))
        }
        let dst: Int
        if let z = o.z {
            let r = try l.plain(try l.slot(z))
            guard l.slots[r].shape.reduce(1, *) == dstDims.reduce(1, *) else {
                throw l.fail(.shapeMismatch, "residual \(l.slots[r].shape) differs from the output \(out)")
            }
            let view = l.slots[r].shape == dstDims ? r : l.alias(of: r, name: z + ".view", shape: dstDims, pd.dst)
            dst = try l.sumDestination(residual: view, chain: o.chain, name: output, shape: dstDims, pd.dst)
        } else {
            dst = l.newSlot(output, shape: dstDims, pd.dst)
        }
        args.append((.dst, dst))
        try l.emit(pd, args, label: "\(l.where_()) matmul")
        l.note("\(pd.implementation) matmul (f32)\(o.chain.summary)")
        l.define(output, .slot(dst))
        return out
    }
}

extension Lowering {
    /// Re-views a just-defined plain output with its logical shape (same element count).
    func reshapeOutput(_ name: String, to shape: [Int]) throws(GraphError) {
        guard case .slot(let s) = try value(name), slots[s].shape != shape else { return }
        let md = try descriptor(dims: shape, descriptor(s).dataType)
        define(name, .slot(alias(of: s, name: name, shape: shape, md)))
    }
}
