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
        let strides = global ? [Int](repeating: 1, count: sp) : (node.ints("strides") ?? [Int](repeating: 1, count: sp))
        let dilations = node.ints("dilations") ?? [Int](repeating: 1, count: sp)
        var (padB, padE) = global ? ([Int](repeating: 0, count: sp), [Int](repeating: 0, count: sp))
            : ConvolutionKernels.padding(node, input: spatial, kernel: kernel, strides: strides,
                                         dilations: dilations, transposed: false,
                                         outputPadding: [Int](repeating: 0, count: sp))
        let ceil = node.int("ceil_mode") == 1
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
        let alg: PoolingAlgorithm = node.opType.contains("Max") ? .max
            : (node.int("count_include_pad") == 1 ? .averageIncludePadding : .averageExcludePadding)
        let src = try l.slot(node.inputs[0])
        let outShape = Array(xShape[..<2]) + out
        let pd = try l.wrap { () throws(DNNLError) in
            try PrimitiveDescriptor.pooling(
                alg, src: l.descriptor(src),
                dst: MemoryDescriptor(dims: outShape, dataType: l.descriptor(src).dataType, tag: .any),
                kernel: kernel, strides: strides, dilations: dilations.map { $0 - 1 },
                paddingL: padB, paddingR: padE, engine: l.engine)
        }
        let dst = l.newSlot(node.outputs[0], shape: outShape, pd.dst)
        try l.emit(pd, [(.src, src), (.dst, dst)], label: "\(l.where_()) pooling")
        l.note("\(pd.implementation) \(alg) (\(pd.dst.dataType))")
        l.define(node.outputs[0], .slot(dst))
    }
}
