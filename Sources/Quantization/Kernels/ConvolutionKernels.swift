import DNNL

/// Conv and ConvTranspose (1-D to 3-D, groups, depthwise, dilation, auto_pad) and their fused
/// forms, as oneDNN convolution/deconvolution primitives with `format_tag any` layouts, weights
/// reordered once, bias, and post-ops: sum (residual `Z`, in place) then eltwise activations.
enum ConvolutionKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        r["Conv"] = { n, l in try convolution(n, l, transposed: false) }
        r["ConvTranspose"] = { n, l in try convolution(n, l, transposed: true) }
        r["FusedConv"] = { n, l in try convolution(n, l, transposed: false) }
        r["FusedConvTranspose"] = { n, l in try convolution(n, l, transposed: true) }
    }

    /// Padding `(begin, end)` per spatial dim from `pads` / `auto_pad` (ONNX Conv).
    static func padding(
        _ node: Node, input: [Int], kernel: [Int], strides: [Int], dilations: [Int],
        transposed: Bool, outputPadding: [Int]
    ) -> (begin: [Int], end: [Int]) {
        let sp = input.count
        let autoPad = node.string("auto_pad") ?? "NOTSET"
        if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            var b: [Int] = [], e: [Int] = []
            for i in 0..<sp {
                let k = (kernel[i] - 1) * dilations[i] + 1
                let total: Int
                if transposed {
                    total = max(0, strides[i] * (input[i] - 1) + outputPadding[i] + k - input[i] * strides[i])
                } else {
                    let out = (input[i] + strides[i] - 1) / strides[i]
                    total = max(0, (out - 1) * strides[i] + k - input[i])
                }
                let small = total / 2
                b.append(autoPad == "SAME_UPPER" ? small : total - small)
                e.append(autoPad == "SAME_UPPER" ? total - small : small)
            }
            return (b, e)
        }
        if autoPad == "VALID" { return ([Int](repeating: 0, count: sp), [Int](repeating: 0, count: sp)) }
        let pads = node.ints("pads") ?? [Int](repeating: 0, count: 2 * sp)
        return (Array(pads[..<sp]), Array(pads[sp...]))
    }

    static func convolution(_ node: Node, _ l: Lowering, transposed: Bool) throws {
        let chain = node.postOps
        try l.lowerFused(node, chain: chain) { chain, out in
            try convolution(node, l, transposed: transposed, chain: chain, output: out)
        }
    }

    static func convolution(
        _ node: Node, _ l: Lowering, transposed: Bool, chain: PostOpChain,
        output: String
    ) throws {
        guard let w = l.constant(node.input(1)) else {
            throw l.fail(.unsupportedAttribute, "weights '\(node.inputs[1])' must be constant")
        }
        let xShape = try l.shape(node.inputs[0])
        let g = try ConvGeometry(node, xShape: xShape, wShape: w.shape, transposed: transposed, l)
        let (groups, kernel, strides, dilations) = (g.groups, g.kernel, g.strides, g.dilations)
        let (padB, padE, oc, c, outShape) = (g.padBegin, g.padEnd, g.oc, g.c, g.outShape)
        if transposed, g.spatialRank == 2, groups == 1, kernel == strides, padB.allSatisfy({ $0 == 0 }),
            padE.allSatisfy({ $0 == 0 }), dilations.allSatisfy({ $0 == 1 }), !chain.hasSum,
            g.outSpatial == zip(g.spatial, strides).map({ $0 * $1 })
        {
            try nonOverlappingDeconvolution(
                node, l, w: w, xShape: xShape, oc: oc, kernel: kernel,
                chain: chain, output: output)
            return
        }
        try l.checkResidual(chain.hasSum ? node.input(3) : nil, elementCount: outShape.reduce(1, *), shape: outShape)
        // oneDNN weights: [G, OC/G, IC/G, k...] with groups, else [OC, IC, k...].
        let wValues = w.floatValues()
        let kCount = kernel.reduce(1, *)
        var plainW = wValues
        let ocg = oc / groups, icg = c / groups
        if transposed {
            // ONNX [IC, OC/G, k...] -> [G, OC/G, IC/G, k...].
            plainW = [Float](repeating: 0, count: wValues.count)
            for g in 0..<groups {
                for o in 0..<ocg {
                    for i in 0..<icg {
                        for k in 0..<kCount {
                            plainW[((g * ocg + o) * icg + i) * kCount + k] = wValues[((g * icg + i) * ocg + o) * kCount + k]
                        }
                    }
                }
            }
        }
        let wDims = g.weightDims
        let residual = chain.hasSum ? node.input(3) : nil

        let pd = try l.wrap { () throws(DNNLError) in
            let attr = try chain.primitiveAttributes()
            let src = try MemoryDescriptor(dims: xShape, dataType: .f32, tag: .any)
            let wei = try MemoryDescriptor(dims: wDims, dataType: .f32, tag: .any)
            let bias = node.input(2) == nil ? nil : try MemoryDescriptor(dims: [oc], dataType: .f32)
            let dst = try MemoryDescriptor(dims: outShape, dataType: .f32, tag: .any)
            let dil = dilations.map { $0 - 1 }
            return transposed
                ? try PrimitiveDescriptor.deconvolutionForward(
                    src: src, weights: wei, bias: bias, dst: dst, strides: strides, dilations: dil,
                    paddingL: padB, paddingR: padE, attributes: attr, engine: l.engine)
                : try PrimitiveDescriptor.convolutionForward(
                    src: src, weights: wei, bias: bias, dst: dst, strides: strides, dilations: dil,
                    paddingL: padB, paddingR: padE, attributes: attr, engine: l.engine)
        }
        let src = try l.converted(try l.slot(node.inputs[0]), to: pd.src)
        let wSlot = try l.weightsSlot(node.inputs[1], plainW, plainDims: wDims, into: pd.weights)
        var args: [(ExecArg, Int)] = [(.src, src), (.weights, wSlot)]
        if let b = node.input(2) {
            guard let bt = l.constant(b), bt.count == oc else {
                throw l.fail(.unsupportedAttribute, "bias '\(b)' must be a constant of \(oc) values")
            }
            args.append((.bias, try l.constantSlot(b, bt)))
        }
        let dst: Int
        if let residual {
            // Sum post-op: the result is added to the residual in its own buffer.
            let r = try l.slot(residual)
            dst = try l.sumDestination(residual: r, chain: chain, name: output, shape: outShape, pd.dst)
        } else {
            dst = l.newSlot(output, shape: outShape, pd.dst)
        }
        args.append((.dst, dst))
        try l.emit(pd, args, label: "\(l.where_()) \(transposed ? "deconvolution" : "convolution")")
        l.note("\(pd.implementation) (f32)\(chain.summary)")
        l.define(output, .slot(dst))
    }

    /// A transposed convolution whose kernel equals its stride (no overlap, no padding) as a
    /// 1x1 convolution to `OC*KH*KW` channels in NHWC followed by a depth-to-space reorder
    /// into NHWC:
    /// `y[n, o, h*KH + i, w*KW + j] = sum_c x[n, c, h, w] W[c, o, i, j] + b[o]`.
    /// oneDNN 2.6's deconvolution runs these at 5 GMAC/s; the 1x1 convolution near peak.
    static func nonOverlappingDeconvolution(
        _ node: Node, _ l: Lowering, w: Tensor, xShape: [Int], oc: Int,
        kernel: [Int], chain: PostOpChain, output: String
    ) throws {
        let (n, c, h, wd) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let (kh, kw) = (kernel[0], kernel[1])
        let c2 = oc * kh * kw
        let wv = w.floatValues()
        // 1x1 weights [OC*KH*KW, IC, 1, 1] from ONNX [IC, OC, KH, KW].
        var w1 = [Float](repeating: 0, count: c2 * c)
        for ic in 0..<c { for k in 0..<c2 { w1[k * c + ic] = wv[ic * c2 + k] } }
        var bias1: Tensor? = nil
        if let b = node.input(2) {
            guard let bt = l.constant(b), bt.count == oc else {
                throw l.fail(.unsupportedAttribute, "bias '\(b)' must be a constant of \(oc) values")
            }
            let bv = bt.floatValues()
            bias1 = Tensor(shape: [c2], scalars: (0..<c2).map { bv[$0 / (kh * kw)] })
        }
        let midShape = [n, c2, h, wd]
        let pd = try l.wrap { () throws(DNNLError) in
            let attr = try chain.primitiveAttributes()
            return try PrimitiveDescriptor.convolutionForward(
                src: MemoryDescriptor(dims: xShape, dataType: .f32, tag: .any),
                weights: MemoryDescriptor(dims: [c2, c, 1, 1], dataType: .f32, tag: .any),
                bias: bias1 == nil ? nil : MemoryDescriptor(dims: [c2], dataType: .f32),
                dst: MemoryDescriptor(dims: midShape, dataType: .f32, tag: .nhwc),
                strides: [1, 1], paddingL: [0, 0], paddingR: [0, 0], attributes: attr, engine: l.engine)
        }
        let src = try l.converted(try l.slot(node.inputs[0]), to: pd.src)
        var args: [(ExecArg, Int)] = [(.src, src), (.weights, try l.weightsSlot(node.inputs[1], w1, plainDims: [c2, c, 1, 1], into: pd.weights))]
        if let bias1 { args.append((.bias, try l.constantSlot(output + ".bias1x1", bias1))) }
        let mid = l.newSlot(output + ".1x1", shape: midShape, pd.dst)
        args.append((.dst, mid))
        try l.emit(pd, args, label: "\(l.where_()) deconvolution as 1x1 convolution")
        // NHWC [N, H, W, OC, KH, KW] read as [N, OC, H, KH, W, KW] -> plain = [N, OC, H*KH, W*KW].
        let shuffled = [n, oc, h, kh, wd, kw]
        let strides = [h * wd * c2, kh * kw, wd * c2, kw, c2, 1]
        let view = try l.wrap { () throws(DNNLError) in try MemoryDescriptor(dims: shuffled, dataType: .f32, strides: strides) }
        let viewSlot = l.alias(of: mid, name: output + ".shuffle", shape: shuffled, view)
        // The result is written channels-last (NHWC), the layout the 1x1 convolution of the
        // next transposed convolution reads, so no further reorder is needed there.
        let outShape = [n, oc, h * kh, wd * kw]
        let (oh, ow) = (h * kh, wd * kw)
        let dstMD = try l.wrap { () throws(DNNLError) in try MemoryDescriptor(dims: outShape, dataType: .f32, tag: .nhwc) }
        let dst = l.newSlot(output, shape: outShape, dstMD)
        let dst6MD = try l.wrap { () throws(DNNLError) in
            try MemoryDescriptor(dims: shuffled, dataType: .f32, strides: [oh * ow * oc, 1, kh * ow * oc, ow * oc, kw * oc, oc])
        }
        let dst6 = l.alias(of: dst, name: output + ".6d", shape: shuffled, dst6MD)
        try l.reorder(from: viewSlot, to: dst6, label: "\(l.where_()) depth to space")
        l.note("\(pd.implementation) 1x1 + depth-to-space reorder (f32)\(chain.summary)")
        l.define(output, .slot(dst))
    }
}

/// The geometry of a Conv or ConvTranspose node for an input shape (ONNX attributes, auto_pad,
/// output_shape), shared by the FP32 and INT8 kernels.
struct ConvGeometry {
    var spatialRank: Int, spatial: [Int], groups: Int, kernel: [Int], strides: [Int], dilations: [Int]
    var padBegin: [Int], padEnd: [Int], outSpatial: [Int], oc: Int, c: Int, outShape: [Int]
    /// oneDNN weights dims: `[G, OC/G, IC/G, k...]` with groups, else `[OC, IC, k...]`.
    var weightDims: [Int]

    init(_ node: Node, xShape: [Int], wShape: [Int], transposed: Bool, _ l: Lowering) throws(GraphError) {
        guard xShape.count >= 3, xShape.count <= 5, wShape.count == xShape.count else {
            throw l.fail(.shapeMismatch, "input \(xShape) and weights \(wShape) do not fit a 1-D to 3-D convolution")
        }
        let sp = xShape.count - 2
        spatialRank = sp
        spatial = Array(xShape[2...])
        groups = node.int("group") ?? 1
        kernel = node.ints("kernel_shape") ?? Array(wShape[2...])
        strides = node.ints("strides") ?? [Int](repeating: 1, count: sp)
        dilations = node.ints("dilations") ?? [Int](repeating: 1, count: sp)
        var outputPadding = node.ints("output_padding") ?? [Int](repeating: 0, count: sp)
        for (name, v, n) in [
            ("kernel_shape", kernel, sp), ("strides", strides, sp), ("dilations", dilations, sp),
            ("output_padding", outputPadding, sp), ("pads", node.ints("pads") ?? [Int](repeating: 0, count: 2 * sp), 2 * sp),
        ]
        where v.count != n {
            throw l.fail(.unsupportedAttribute, "\(name) \(v) needs \(n) values for \(sp) spatial dims")
        }
        guard strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }), kernel.allSatisfy({ $0 > 0 }),
            (node.ints("pads") ?? []).allSatisfy({ $0 >= 0 }), outputPadding.allSatisfy({ $0 >= 0 })
        else {
            throw l.fail(.unsupportedAttribute, "strides, dilations and kernel_shape must be positive and pads non-negative")
        }
        // Bounded so that the output size arithmetic below cannot overflow.
        let limit = 1 << 24
        let attributeValues = strides + dilations + kernel + outputPadding + (node.ints("pads") ?? []) + (node.ints("output_shape") ?? [])
        guard attributeValues.allSatisfy({ $0 >= -limit && $0 <= limit }), xShape.allSatisfy({ $0 >= 0 && $0 <= 1 << 31 }) else {
            throw l.fail(
                .unsupportedAttribute,
                "kernel_shape, strides, dilations, pads and output sizes must be within ±\(limit) and input dims \(xShape) at most 2^31")
        }
        if transposed, let os = node.ints("output_shape"), os.count < sp {
            throw l.fail(.unsupportedAttribute, "output_shape \(os) needs \(sp) spatial sizes")
        }
        guard kernel == Array(wShape[2...]) else {
            throw l.fail(.shapeMismatch, "kernel_shape \(kernel) differs from the weights' \(Array(wShape[2...]))")
        }
        c = xShape[1]
        // A group count above the input channels can never divide them (and would overflow
        // `OC/G * G` below).
        guard groups > 0, groups <= max(c, 1) else {
            throw l.fail(.unsupportedAttribute, "group \(groups) must be between 1 and the \(c) input channels")
        }
        let (transposedOC, ocOverflow) = wShape[1].multipliedReportingOverflow(by: groups)
        guard !transposed || !ocOverflow else {
            throw l.fail(.shapeMismatch, "weights \(wShape) with \(groups) groups have too many output channels")
        }
        oc = transposed ? transposedOC : wShape[0]
        let icPerGroup = transposed ? wShape[0] / groups : wShape[1]
        guard c % groups == 0, c / groups == icPerGroup, !transposed || wShape[0] % groups == 0, oc % groups == 0 else {
            throw l.fail(.shapeMismatch, "input channels \(c) do not match weights \(wShape) with \(groups) groups")
        }
        (padBegin, padEnd) = ConvolutionKernels.padding(
            node, input: spatial, kernel: kernel, strides: strides,
            dilations: dilations, transposed: transposed, outputPadding: outputPadding)
        outSpatial = []
        for i in 0..<sp {
            let k = (kernel[i] - 1) * dilations[i] + 1
            if transposed {
                if let os = node.ints("output_shape") {
                    let target = os[os.count - sp + i]
                    let total = strides[i] * (spatial[i] - 1) + outputPadding[i] + k - target
                    padBegin[i] = (node.string("auto_pad") == "SAME_UPPER") ? total / 2 : total - total / 2
                    padEnd[i] = total - padBegin[i]
                    outputPadding[i] = 0
                }
                outSpatial.append(strides[i] * (spatial[i] - 1) + outputPadding[i] + k - padBegin[i] - padEnd[i])
            } else {
                outSpatial.append((spatial[i] + padBegin[i] + padEnd[i] - k) / strides[i] + 1)
            }
        }
        guard outSpatial.allSatisfy({ $0 > 0 }) else {
            throw l.fail(.shapeMismatch, "input \(xShape) gives an empty output \(outSpatial)")
        }
        outShape = [xShape[0], oc] + outSpatial
        let icg = c / groups
        weightDims = groups > 1 ? [groups, oc / groups, icg] + kernel : [oc, icg] + kernel
    }
}
