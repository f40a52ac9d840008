import DNNL

/// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool as oneDNN pooling primitives in the
/// source's layout (ceil_mode by extra end padding).
enum PoolingKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        for op in ["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"] { r[op] = pooling }
    }

    static func pooling(_ node: Node, _ l: Lowering) throws {
        if node.outputs.count > 1 && !node.outputs[1].isEmpty {
            throw l.fail(.unsupportedAttribute, "MaxPool with an Indices output is not supported")
        }
        let xShape = try l.shape(node.inputs[0])
        guard xShape.count >= 3 else { throw l.fail(.shapeMismatch, "pooling needs [N, C, spatial...], got \(xShape)") }
        let spatial = Array(xShape[2...]), sp = spatial.count
        let global = node.opType.hasPrefix("Global")
        let kernel = global ? spatial : (node.ints("kernel_shape") ?? [])
        guard kernel.count == sp else { throw l.fail(.unsupportedAttribute, "kernel_shape \(kernel) for \(sp) spatial dims") }
        let declaredPads = node.ints("pads") ?? [Int](repeating: 0, count: 2 * sp)
        let declaredStrides = node.ints("strides") ?? [Int](repeating: 1, count: sp)
        let declaredDilations = node.ints("dilations") ?? [Int](repeating: 1, count: sp)
        guard
            global
                || (declaredPads.count == 2 * sp && declaredStrides.count == sp && declaredDilations.count == sp
                    && kernel.allSatisfy { $0 > 0 } && declaredStrides.allSatisfy { $0 > 0 }
                    && declaredDilations.allSatisfy { $0 > 0 } && declaredPads.allSatisfy { $0 >= 0 })
        else {
            throw l.fail(
                .unsupportedAttribute, "kernel_shape, strides, dilations (positive, \(sp) each) and pads (non-negative, \(2 * sp)) do not fit")
        }
        // Bounded (like Conv's) so that the window and output size arithmetic below cannot overflow.
        let limit = 1 << 24
        guard global || (kernel + declaredPads + declaredStrides + declaredDilations).allSatisfy({ $0 <= limit }),
            xShape.allSatisfy({ $0 >= 0 && $0 <= 1 << 31 })
        else {
            throw l.fail(
                .unsupportedAttribute,
                "kernel_shape, strides, dilations and pads must be at most \(limit) and input dims \(xShape) at most 2^31")
        }
        let strides = global ? [Int](repeating: 1, count: sp) : (node.ints("strides") ?? [Int](repeating: 1, count: sp))
        let dilations = global ? [Int](repeating: 1, count: sp) : declaredDilations
        var (padB, padE) =
            global
            ? ([Int](repeating: 0, count: sp), [Int](repeating: 0, count: sp))
            : ConvolutionKernels.padding(
                node, input: spatial, kernel: kernel, strides: strides,
                dilations: dilations, transposed: false,
                outputPadding: [Int](repeating: 0, count: sp))
        let ceil = node.int("ceil_mode") == 1
        let declaredEnd = padE
        var out: [Int] = []
        for i in 0..<sp {
            let k = (kernel[i] - 1) * dilations[i] + 1
            let span = spatial[i] + padB[i] + padE[i] - k
            var o = (ceil ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1
            // ONNX: the last window must start inside the input or the begin padding.
            if ceil && (o - 1) * strides[i] >= spatial[i] + padB[i] { o -= 1 }
            padE[i] = max(padE[i], (o - 1) * strides[i] + k - spatial[i] - padB[i])
            out.append(o)
        }
        let alg: PoolingAlgorithm =
            node.opType.contains("Max")
            ? .max
            : (node.int("count_include_pad") == 1 ? .averageIncludePadding : .averageExcludePadding)
        let outShape = Array(xShape[..<2]) + out
        if alg == .averageIncludePadding && padE != declaredEnd {
            // ceil_mode windows past the declared padding: ONNX divides by the window's part
            // inside input + declared padding, oneDNN by the whole window. A Swift kernel.
            try averageIncludingDeclaredPadding(
                node, l, xShape: xShape, outShape: outShape, kernel: kernel,
                strides: strides, dilations: dilations, padB: padB, padE: declaredEnd)
            return
        }
        let src = try l.slot(node.inputs[0])
        let pd = try l.wrap { () throws(DNNLError) in
            try PrimitiveDescriptor.pooling(
                alg, src: l.descriptor(src),
                dst: MemoryDescriptor(dims: outShape, dataType: l.descriptor(src).dataType, tag: .any),
                kernel: kernel, strides: strides, dilations: dilations.map { $0 - 1 },
                paddingL: padB, paddingR: padE, engine: l.engine)
        }
        let dst = l.newSlot(node.outputs[0], shape: outShape, pd.dst)
        try l.emit(pd, [(.src, src), (.dst, dst)], label: "\(l.where_()) pooling")
        l.note("\(pd.implementation) \(alg) (\(pd.dst.dataType))", Precision(pd.dst.dataType))
        l.define(node.outputs[0], .slot(dst))
    }

    static func averageIncludingDeclaredPadding(
        _ node: Node, _ l: Lowering, xShape: [Int], outShape: [Int], kernel: [Int],
        strides: [Int], dilations: [Int], padB: [Int], padE: [Int]
    ) throws(GraphError) {
        let src = try l.plain(try l.slot(node.inputs[0]))
        let dst = l.newSlot(node.outputs[0], shape: outShape, try l.descriptor(dims: outShape, .f32))
        let sp = kernel.count, spatial = Array(xShape[2...]), outSpatial = Array(outShape[2...])
        let planes = xShape[0] * xShape[1]
        let inSize = spatial.reduce(1, *), outSize = outSpatial.reduce(1, *)
        let inStrides = Broadcast.strides(spatial)
        let kSize = kernel.reduce(1, *)
        l.emitCustom("\(l.where_()) average pool (ceil mode, count_include_pad)", slots: [src, dst]) { m in
            let x = m[0].dataPointer.assumingMemoryBound(to: Float.self)
            let y = m[1].dataPointer.assumingMemoryBound(to: Float.self)
            var o = [Int](repeating: 0, count: sp), k = [Int](repeating: 0, count: sp)
            for p in 0..<planes {
                for oi in 0..<outSize {
                    var rem = oi
                    for d in stride(from: sp - 1, through: 0, by: -1) { o[d] = rem % outSpatial[d]; rem /= outSpatial[d] }
                    var sum: Float = 0, count = 0
                    for ki in 0..<kSize {
                        var r = ki
                        for d in stride(from: sp - 1, through: 0, by: -1) { k[d] = r % kernel[d]; r /= kernel[d] }
                        var inside = true, inPadded = true, idx = 0
                        for d in 0..<sp {
                            let c = o[d] * strides[d] - padB[d] + k[d] * dilations[d]
                            if c < -padB[d] || c >= spatial[d] + padE[d] { inPadded = false }
                            if c < 0 || c >= spatial[d] { inside = false } else { idx += c * inStrides[d] }
                        }
                        if inPadded { count += 1 }
                        if inside { sum += x[p * inSize + idx] }
                    }
                    y[p * outSize + oi] = count > 0 ? sum / Float(count) : 0
                }
            }
        }
        l.note("Swift kernel (average pool, ceil mode with count_include_pad)", .swift)
        l.define(node.outputs[0], .slot(dst))
    }
}
