import CDNNL
import DNNL

/// INT8 convolution, matmul and element-wise add/sub/mul on oneDNN u8/s8 primitives, for the
/// `dnnl.QConv`, `dnnl.QMatMul`, `dnnl.QAdd`, `dnnl.QSub` and `dnnl.QMul` nodes the QDQ fusion pass writes.
///
/// Scales follow `real = scale * (q - zeroPoint)`. For a convolution with per-channel weight
/// scales `sw[oc]` (oneDNN 2.6 applies the bias before the output scale, ONEDNN_INT8_NOTES A2):
/// `dst_q = sat(round(f(sx * sw[oc] * (acc + b[oc] / (sx * sw[oc])) + sz * (z_q - zz)) / sy) + zy)`
/// where `acc = sum (x_q - zx) * w_q` in s32 and `f` the fused eltwise chain. Without an
/// eltwise the `1 / sy` folds into the output scale; with one it is the last eltwise's scale.
///
/// When oneDNN has no INT8 implementation for a node (`dnnl_primitive_desc_create` answers
/// `unimplemented`), the node runs in FP32 instead, with the same QDQ semantics
/// (`fp32Fallback`), and its report says why.
enum Int8Kernels {
    static func register(_ r: inout [String: LowerFunction]) {
        r["QConv"] = qconv
        r["QMatMul"] = qmatmul
        r["QAdd"] = { n, l in try qbinary(n, l, .add) }
        r["QMul"] = { n, l in try qbinary(n, l, .mul) }
        r["QSub"] = { n, l in try qbinary(n, l, .sub) }
        r["QLookup"] = qlookup
    }

    /// `dnnl.QLookup` (written by QDQ fusion for element-wise ops between DQs and a Q):
    /// - one source, table `[1, 256]`: `y = table[x]`, in the source's layout;
    /// - one source, table `[C, 256]` (per-channel constants of rank `constant_rank`, whose
    ///   axis 1 is the source's axis `rank - constant_rank + 1`): `y = table[c][x]`, on a
    ///   channels-last copy when that axis is 1 (rank >= 3), else on a plain one;
    /// - two sources, table `[256, 256]`: `y = table[a][b]`, `b` broadcast to `a`'s shape.
    /// Entries are indexed by the raw byte of the int8 values.
    static func qlookup(_ node: Node, _ l: Lowering) throws {
        let q = try operands(node, l)
        let binary = node.inputs.count == 3
        guard let yq = q.dst, let table = l.constant(node.inputs.last), table.count % 256 == 0 else {
            throw l.fail(.unsupportedAttribute, "QLookup needs a table of 256-entry rows and the result's parameters")
        }
        var a = try l.slot(node.inputs[0])
        guard l.descriptor(a).dataType == q.src.dataType else {
            throw l.fail(.runtime, "input '\(node.inputs[0])' is \(l.descriptor(a).dataType), expected \(q.src.type)")
        }
        let shape = l.slots[a].shape
        let entries = table.scalars(as: UInt8.self)
        let channels = binary ? 1 : table.count / 256
        if binary {
            var b = try l.slot(node.inputs[1])
            let bShape = l.slots[b].shape
            guard Broadcast.shape(shape, bShape) == shape else {
                throw l.fail(.shapeMismatch, "QLookup of \(shape) and \(bShape): the second operand must broadcast to the first")
            }
            if bShape == shape {
                b = try l.converted(b, to: l.descriptor(a))
                let md = try l.wrap { () throws(DNNLError) in try l.descriptor(a).with(dataType: yq.dataType) }
                let dst = l.newSlot(node.outputs[0], shape: shape, md)
                l.emitCustom("\(l.where_()) int8 lookup (2 sources)", slots: [a, b, dst]) { m in
                    let count = min(m[0].byteCount, m[1].byteCount, m[2].byteCount)
                    let x = m[0].dataPointer.assumingMemoryBound(to: UInt8.self), z = m[1].dataPointer.assumingMemoryBound(to: UInt8.self)
                    let y = m[2].dataPointer.assumingMemoryBound(to: UInt8.self)
                    entries.withUnsafeBufferPointer { t in
                        for i in 0..<count { y[i] = t[Int(x[i]) << 8 | Int(z[i])] }
                    }
                }
                l.note("Swift lookup table \(q.src.type),\(q.src1?.type.rawValue ?? "?")->\(yq.type)", .int8)
                l.define(node.outputs[0], .slot(dst))
                return
            }
            a = try l.plain(a)
            b = try l.plain(b)
            let dst = l.newSlot(node.outputs[0], shape: shape, try l.descriptor(dims: shape, yq.dataType))
            let index = Broadcast.indices(of: Broadcast.padded(bShape, to: shape.count), in: shape)
            l.emitCustom("\(l.where_()) int8 lookup (2 sources, broadcast)", slots: [a, b, dst]) { m in
                let x = m[0].dataPointer.assumingMemoryBound(to: UInt8.self), z = m[1].dataPointer.assumingMemoryBound(to: UInt8.self)
                let y = m[2].dataPointer.assumingMemoryBound(to: UInt8.self)
                entries.withUnsafeBufferPointer { t in
                    for i in index.indices { y[i] = t[Int(x[i]) << 8 | Int(z[index[i]])] }
                }
            }
            l.note("Swift lookup table \(q.src.type),\(q.src1?.type.rawValue ?? "?")->\(yq.type)", .int8)
            l.define(node.outputs[0], .slot(dst))
            return
        }
        var inner = 1
        if channels > 1 {
            let axis = shape.count - (node.int("constant_rank") ?? shape.count) + 1
            guard axis >= 0, axis < shape.count, shape[axis] == channels else {
                throw l.fail(.shapeMismatch, "QLookup: \(channels) per-channel tables for input \(shape)")
            }
            if axis == 1, shape.count >= 3, let tag = FormatTag.channelsLast(rank: shape.count) {
                a = try l.converted(
                    a, to: try l.wrap { () throws(DNNLError) in try MemoryDescriptor(dims: shape, dataType: q.src.dataType, tag: tag) })
            } else {
                a = try l.plain(a)
                inner = shape[(axis + 1)...].reduce(1, *)
            }
        }
        let md = try l.wrap { () throws(DNNLError) in try l.descriptor(a).with(dataType: yq.dataType) }
        let dst = l.newSlot(node.outputs[0], shape: shape, md)
        l.emitCustom("\(l.where_()) int8 lookup", slots: [a, dst]) { m in
            let count = min(m[0].byteCount, m[1].byteCount)
            let x = m[0].dataPointer.assumingMemoryBound(to: UInt8.self)
            let y = m[1].dataPointer.assumingMemoryBound(to: UInt8.self)
            entries.withUnsafeBufferPointer { t in
                if channels == 1 {
                    for i in 0..<count { y[i] = t[Int(x[i])] }
                    return
                }
                if inner == 1 {  // channels-last: every pixel holds the channels in order
                    var base = 0
                    while base + channels <= count {
                        for c in 0..<channels { y[base + c] = t[c << 8 | Int(x[base + c])] }
                        base += channels
                    }
                    return
                }
                // Blocks of `inner` elements of one channel, channels cycling (no division per element).
                var i = 0, c = 0
                while i < count {
                    let row = UnsafeBufferPointer(rebasing: t[(c << 8)..<((c + 1) << 8)])
                    let end = min(i + inner, count)
                    while i < end {
                        y[i] = row[Int(x[i])]
                        i += 1
                    }
                    c = c + 1 == channels ? 0 : c + 1
                }
            }
        }
        l.note("Swift lookup table \(q.src.type)->\(yq.type)\(channels > 1 ? " (\(channels) channels)" : "")", .int8)
        l.define(node.outputs[0], .slot(dst))
    }

    /// Test hook: op types (`"QConv"`, ...) whose INT8 primitive descriptor creation answers
    /// `unimplemented` while bound, as oneDNN does for configurations it has no INT8 kernel for.
    @TaskLocal static var unimplementedForTesting: Set<String> = []

    /// Creates the INT8 primitive descriptor of `node`. When oneDNN answers `unimplemented`,
    /// lowers the node with `fp32Fallback` instead and returns nil (the caller emits nothing);
    /// other oneDNN errors are thrown as `GraphError`s naming the node.
    static func int8Descriptor(
        _ node: Node, _ l: Lowering, _ make: () throws(DNNLError) -> PrimitiveDescriptor
    ) throws -> PrimitiveDescriptor? {
        let made: Result<PrimitiveDescriptor, DNNLError>
        do throws(DNNLError) {
            if unimplementedForTesting.contains(node.opType) {
                throw DNNLError(
                    status: dnnl_unimplemented, call: "dnnl_primitive_desc_create", context: "\(node.opType) (unimplemented for a test)")
            }
            made = .success(try make())
        } catch  where error.isUnimplemented {
            made = .failure(error)
        } catch {
            throw GraphError(runtime: l.where_(), error)
        }
        switch made {
        case .success(let pd): return pd
        case .failure(let reason):
            try fp32Fallback(node, l, reason: "\(reason)")
            return nil
        }
    }

    /// oneDNN attributes for an INT8 primitive: per-channel output scales, zero points, and
    /// the post-op chain with the residual's scale and the destination's scale folded in.
    static func attributes(
        realScales: [Float], mask: Int32, x: QuantParams, y: QuantParams?,
        z: QuantParams?, chain: PostOpChain
    ) throws(DNNLError) -> PrimitiveAttributes {
        let attr = try PrimitiveAttributes()
        let toDst: Float = y.map { 1 / $0.scale } ?? 1
        let lastIsEltwise: Bool = { if case .eltwise? = chain.ops.last { true } else { false } }()
        // Fold 1/sy into the output scale when nothing non-linear follows.
        let foldIntoScale = chain.eltwiseCount == 0
        try attr.setOutputScales(realScales.map { foldIntoScale ? $0 * toDst : $0 }, mask: realScales.count > 1 ? mask : 0)
        if x.zeroPoint != 0 { try attr.setZeroPoints([Int32(x.zeroPoint)], for: .src) }
        if let y, y.zeroPoint != 0 { try attr.setZeroPoints([Int32(y.zeroPoint)], for: .dst) }
        guard !chain.isEmpty || false else { return attr }
        let po = try PostOps()
        var seenEltwise = 0
        for (i, op) in chain.ops.enumerated() {
            switch op {
            case .sum:
                let zs = z?.scale ?? 1
                // Before any eltwise, the sum adds in the scale the output scale produced.
                let sumScale = (foldIntoScale ? zs * toDst : zs) * chain.sumScale
                try po.appendSum(scale: sumScale, zeroPoint: Int32(z?.zeroPoint ?? 0), dataType: z?.dataType ?? .undefined)
            case .eltwise(let a):
                seenEltwise += 1
                let last = i == chain.ops.count - 1
                try po.appendEltwise(a.algorithm, alpha: a.alpha, beta: a.beta, scale: last ? toDst : 1)
            }
        }
        if !foldIntoScale && !lastIsEltwise && toDst != 1 {
            try po.appendEltwise(.linear, alpha: toDst, beta: 0)
        }
        try attr.setPostOps(po)
        return attr
    }

    /// The int8 operand parameters the QDQ fusion pass attached to `node`.
    static func operands(_ node: Node, _ l: Lowering) throws(GraphError) -> Int8Operands {
        guard let q = node.fused?.int8 else { throw l.fail(.unsupportedAttribute, "\(node.opType) without int8 operand parameters") }
        return q
    }

    /// A persistent slot of s8 weights reordered into `descriptor` (which carries oneDNN's
    /// compensation for s8 sources).
    static func weightsSlot(
        _ l: Lowering, _ name: String, _ values: [Int8], plainDims: [Int],
        into descriptor: MemoryDescriptor
    ) -> Int {
        l.addSlot(
            Slot(
                name: name, shape: plainDims, descriptor: descriptor, persistent: true,
                fill: { m, stream in
                    let src = try Memory(MemoryDescriptor(dims: plainDims, dataType: .s8), engine: m.engine)
                    try src.write(values)
                    try src.reorder(into: m, stream: stream)
                }))
    }

    /// s8 weights and their scales per output channel. A channel of scale 0 takes zero weights
    /// and scale 1. On a CPU without VNNI under ``SessionOptions/Int8WithoutVNNI/sevenBitWeights``
    /// channels wider than 7 bits are re-quantized to |q| <= 63.
    static func weights(_ l: Lowering, _ node: Node, channels: Int, channelOf: (Int) -> Int) throws(GraphError) -> (q: [Int8], scales: [Float]) {
        guard let w = l.constant(node.input(1)), w.elementType == .s8 || w.elementType == .u8 else {
            throw l.fail(.unsupportedAttribute, "INT8 weights must be a constant s8 tensor")
        }
        guard var scales = try operands(node, l).weights?.perChannel(channels) else {
            throw l.fail(.unsupportedAttribute, "INT8 weights need 1 or \(channels) scales")
        }
        // One byte per weight throughout (VGG16's classifier has 120M of them): no [Int] copy.
        var q: [Int8] = w.elementType == .s8 ? w.scalars(as: Int8.self) : w.scalars(as: UInt8.self).map { Int8(clamping: $0) }
        // A channel of scale 0 (valid in a DequantizeLinear: its real weights are 0, its output
        // the bias) takes zero weights and scale 1, so the bias in accumulator units stays finite
        // (ONEDNN_INT8_NOTES C4).
        if scales.contains(0) {
            for i in q.indices where scales[channelOf(i)] == 0 { q[i] = 0 }
            scales = scales.map { $0 == 0 ? 1 : $0 }
        }
        let rule = Int8Rule()
        if rule.weightMax < 127 && l.withoutVNNI == .sevenBitWeights {
            var maxAbs = [Int](repeating: 0, count: channels)
            for (i, v) in q.enumerated() { maxAbs[channelOf(i)] = max(maxAbs[channelOf(i)], abs(Int(v))) }
            let factor = (0..<channels).map { maxAbs[$0] > rule.weightMax ? Float(rule.weightMax) / Float(maxAbs[$0]) : 1 }
            for i in q.indices where factor[channelOf(i)] != 1 {
                q[i] = Int8(clamping: Int((Float(q[i]) * factor[channelOf(i)]).rounded(.toNearestOrEven)))
            }
            scales = (0..<channels).map { scales[$0] / factor[$0] }
        }
        return (q, scales)
    }

    /// Why the INT8 primitive would not compute these weights exactly on this CPU (no VNNI and
    /// a weight beyond `Int8Rule.weightMax`: `vpmaddubsw` saturates), or nil.
    static func inexactWithoutVNNI(_ q: [Int8]) -> String? {
        let rule = Int8Rule()
        guard rule.weightMax < 127, let wide = q.first(where: { abs(Int($0)) > rule.weightMax }) else { return nil }
        return "no VNNI on \(rule.isa): s8 weight \(wide) is beyond +-\(rule.weightMax), which u8 x s8 pairs would saturate (s16); "
            + "runs in FP32 on the dequantized weights, exact to the QDQ graph (SessionOptions.int8WithoutVNNI = .sevenBitWeights re-quantizes instead)"
    }

    /// An s8 source as u8 with zero point + 128 (an exact reorder), for a CPU without VNNI:
    /// inner product and matmul have no s8-source protection there, and convolutions halve
    /// their weights for s8 sources (`Int8Rule`).
    static func shiftedToU8(_ slot: Int, _ p: QuantParams, name: String, _ l: Lowering) throws(GraphError) -> (slot: Int, p: QuantParams) {
        let shape = l.slots[slot].shape
        let md = try l.wrap { () throws(DNNLError) in try l.descriptor(slot).with(dataType: .u8) }
        let u = l.newSlot(name + ".u8", shape: shape, md)
        let attr = try l.wrap { () throws(DNNLError) in
            let at = try PrimitiveAttributes()
            try at.setZeroPoints([128], for: .dst)
            return at
        }
        try l.reorder(from: slot, to: u, attributes: attr, label: "\(l.where_()) s8 -> u8")
        return (u, QuantParams(scale: p.scale, zeroPoint: p.zeroPoint + 128, type: .u8))
    }

    /// The destination of an INT8 primitive: with a sum, the residual's buffer seen with the
    /// destination's element type (s8 residual under a u8 result), in place when allowed.
    static func destination(
        _ l: Lowering, z: String?, zq: QuantParams?, chain: PostOpChain, name: String,
        shape: [Int], _ md: MemoryDescriptor
    ) throws(GraphError) -> Int {
        guard let z, let zq else { return l.newSlot(name, shape: shape, md) }
        var r = try l.slot(z)
        if l.slots[r].shape != shape {
            guard l.slots[r].shape.reduce(1, *) == shape.reduce(1, *) else {
                throw l.fail(.shapeMismatch, "residual '\(z)' \(l.slots[r].shape) does not match the result \(shape)")
            }
            let p = try l.plain(r)
            r = l.alias(of: p, name: z + ".view", shape: shape, try l.descriptor(dims: shape, zq.dataType))
        }
        if md.dataType == .f32 {
            // An f32 result sums the residual dequantized into its buffer.
            let dst = l.newSlot(name, shape: shape, md)
            let attr = try l.wrap { () throws(DNNLError) in try zq.dequantizeAttributes() }
            try l.reorder(from: r, to: dst, attributes: attr, label: "\(l.where_()) residual dequantize")
            return dst
        }
        let zView = try l.wrap { () throws(DNNLError) in try md.with(dataType: zq.dataType) }
        let owned = l.canSumInPlace(into: r, chain)
        if owned && l.descriptor(r) == zView {
            let a = l.alias(of: r, name: name, shape: shape, md)
            l.markOwnsRoot(a)
            return a
        }
        let dst = l.newSlot(name, shape: shape, md)
        let view = l.alias(of: dst, name: name + ".residual", shape: shape, zView)
        try l.reorder(from: r, to: view, label: "\(l.where_()) residual copy")
        return dst
    }

    static func qconv(_ node: Node, _ l: Lowering) throws {
        let q = try operands(node, l)
        let yq = q.dst, zq = q.residual
        var xq = q.src
        let chain = node.postOps
        let xSlot = try l.slot(node.inputs[0])
        guard l.descriptor(xSlot).dataType == xq.dataType else {
            throw l.fail(.runtime, "input '\(node.inputs[0])' is \(l.descriptor(xSlot).dataType), expected \(xq.type)")
        }
        let xShape = l.slots[xSlot].shape
        guard let wShape = l.constant(node.input(1))?.shape else { throw l.fail(.unsupportedAttribute, "weights must be constant") }
        let g = try ConvGeometry(node, xShape: xShape, wShape: wShape, transposed: false, l)
        let per = wShape.dropFirst().reduce(1, *)
        let (wq, ws) = try weights(l, node, channels: g.oc) { $0 / per }
        if let why = inexactWithoutVNNI(wq) {
            try fp32Fallback(node, l, reason: why)
            return
        }
        var xSrc = xSlot
        if xq.type == .s8 && Int8Rule().halvesWeightsOfSignedSourceConvolutions {
            (xSrc, xq) = try shiftedToU8(xSlot, xq, name: node.inputs[0], l)
        }
        let real = ws.map { xq.scale * $0 }
        var bias: [Float]? = nil
        if let b = node.input(2) {
            guard let bt = l.constant(b), bt.count == g.oc else { throw l.fail(.unsupportedAttribute, "bias must be a constant of \(g.oc) values") }
            bias = zip(bt.floatValues(), real).map { $0 / $1 }  // accumulator units
        }
        guard
            let pd = try int8Descriptor(
                node, l,
                { () throws(DNNLError) in
                    let attr = try attributes(realScales: real, mask: 1 << 1, x: xq, y: yq, z: yq == nil ? nil : zq, chain: chain)
                    return try PrimitiveDescriptor.convolutionForward(
                        src: MemoryDescriptor(dims: xShape, dataType: xq.dataType, tag: .any),
                        weights: MemoryDescriptor(dims: g.weightDims, dataType: .s8, tag: .any),
                        bias: bias == nil ? nil : MemoryDescriptor(dims: [g.oc], dataType: .f32),
                        dst: MemoryDescriptor(dims: g.outShape, dataType: yq?.dataType ?? .f32, tag: .any),
                        strides: g.strides, dilations: g.dilations.map { $0 - 1 }, paddingL: g.padBegin,
                        paddingR: g.padEnd, attributes: attr, engine: l.engine)
                })
        else { return }  // lowered by fp32Fallback
        let src = try l.converted(xSrc, to: pd.src)
        var args: [(ExecArg, Int)] = [(.src, src), (.weights, weightsSlot(l, node.inputs[1], wq, plainDims: g.weightDims, into: pd.weights))]
        if let bias { args.append((.bias, try l.constantSlot(node.name + ".bias_acc", Tensor(shape: [g.oc], scalars: bias)))) }
        let dst = try destination(l, z: chain.hasSum ? node.input(3) : nil, zq: zq, chain: chain, name: node.outputs[0], shape: g.outShape, pd.dst)
        args.append((.dst, dst))
        try l.emit(pd, args, label: "\(l.where_()) int8 convolution")
        l.note("\(pd.implementation) \(xq.type)->\(yq?.type.rawValue ?? "f32")\(chain.summary)", .int8)
        l.define(node.outputs[0], .slot(dst))
    }

    static func qmatmul(_ node: Node, _ l: Lowering) throws {
        let q = try operands(node, l)
        let aq = q.src, yq = q.dst, zq = q.residual
        let chain = node.postOps
        let aInput = try l.slot(node.inputs[0])
        guard l.descriptor(aInput).dataType == aq.dataType else {
            throw l.fail(.runtime, "input '\(node.inputs[0])' is \(l.descriptor(aInput).dataType), expected \(aq.type)")
        }
        guard let bShape = l.constant(node.input(1))?.shape, bShape.count == 2 else {
            throw l.fail(.unsupportedAttribute, "INT8 MatMul needs constant 2-D weights")
        }
        let aShape = l.slots[aInput].shape
        let (k, n) = (bShape[0], bShape[1])
        guard aShape.last == k else { throw l.fail(.shapeMismatch, "MatMul of \(aShape) and \(bShape)") }
        let rows = aShape.dropLast().reduce(1, *)
        let (bq, ws) = try weights(l, node, channels: n) { $0 % n }
        if let why = inexactWithoutVNNI(bq) {
            try fp32Fallback(node, l, reason: why)
            return
        }
        let real = ws.map { aq.scale * $0 }
        var a = aq
        let shiftToU8 = aq.type == .s8 && !Int8Rule().allowsSignedSource(for: .matmul)
        if shiftToU8 {
            // Int8Rule: no s8 sources into matmul without VNNI; shift to u8 with zero point 128.
            a = QuantParams(scale: aq.scale, zeroPoint: aq.zeroPoint + 128, type: .u8)
        }
        var bias: [Float]? = nil
        if let b = node.input(2) {
            guard let bt = l.constant(b), bt.count == n else { throw l.fail(.unsupportedAttribute, "bias must be a constant of \(n) values") }
            bias = zip(bt.floatValues(), real).map { $0 / $1 }
        }
        let outShape = Array(aShape.dropLast()) + [n]
        guard
            let pd = try int8Descriptor(
                node, l,
                { () throws(DNNLError) in
                    let attr = try attributes(realScales: real, mask: 1 << 1, x: a, y: yq, z: yq == nil ? nil : zq, chain: chain)
                    return try PrimitiveDescriptor.matmul(
                        src: MemoryDescriptor(dims: [rows, k], dataType: a.dataType),
                        weights: MemoryDescriptor(dims: [k, n], dataType: .s8, tag: .any),
                        bias: bias == nil ? nil : MemoryDescriptor(dims: [1, n], dataType: .f32),
                        dst: MemoryDescriptor(dims: [rows, n], dataType: yq?.dataType ?? .f32), attributes: attr, engine: l.engine)
                })
        else { return }  // lowered by fp32Fallback
        var aSlot = try l.plain(aInput)
        if shiftToU8 { aSlot = try shiftedToU8(aSlot, aq, name: node.inputs[0], l).slot }
        let aView = l.alias(of: aSlot, name: node.inputs[0] + ".2d", shape: [rows, k], pd.src)
        var args: [(ExecArg, Int)] = [(.src, aView), (.weights, weightsSlot(l, node.inputs[1], bq, plainDims: [k, n], into: pd.weights))]
        if let bias { args.append((.bias, try l.constantSlot(node.name + ".bias_acc", Tensor(shape: [1, n], scalars: bias)))) }
        let dst2 = try destination(
            l, z: chain.hasSum ? node.input(3) : nil, zq: zq, chain: chain, name: node.outputs[0] + ".2d", shape: [rows, n], pd.dst)
        args.append((.dst, dst2))
        try l.emit(pd, args, label: "\(l.where_()) int8 matmul")
        l.note("\(pd.implementation) \(a.type)->\(yq?.type.rawValue ?? "f32")\(chain.summary)", .int8)
        let md = try l.descriptor(dims: outShape, pd.dst.dataType)
        l.define(node.outputs[0], .slot(l.alias(of: dst2, name: node.outputs[0], shape: outShape, md)))
    }

    /// `y = a + b`, `a - b` or `a * b` on int8 (or f32 output) with per-source scales:
    /// add `y = (sa/sy) a + (sb/sy) b`, sub `y = (sa/sy) a - (sb/sy) b`, mul `y = (sa/sy) a * sb b`.
    /// oneDNN broadcasts src1 only: a Sub whose first operand broadcasts swaps the operands and
    /// negates both scales (`b - a = (-sb/sy) b - (-sa/sy) a`). Zero points of Add and Sub (as
    /// onnxruntime's u8 activations have) become a constant `zy - s0 za - s1 zb` added by an
    /// eltwise linear post-op; Mul takes none (its cross terms are not linear).
    static func qbinary(_ node: Node, _ l: Lowering, _ alg: BinaryAlgorithm) throws {
        let q = try operands(node, l)
        guard let bq = q.src1 else { throw l.fail(.unsupportedAttribute, "\(node.opType) without the second source's parameters") }
        let aq = q.src, yq = q.dst
        guard alg != .mul || (aq.zeroPoint == 0 && bq.zeroPoint == 0 && (yq?.zeroPoint ?? 0) == 0) else {
            throw l.fail(.unsupportedAttribute, "\(node.opType) with zero points (oneDNN binary has none)")
        }
        var a = try l.slot(node.inputs[0]), b = try l.slot(node.inputs[1])
        var (sa, sb) = (aq, bq)
        guard let out = Broadcast.shape(l.slots[a].shape, l.slots[b].shape) else {
            throw l.fail(.shapeMismatch, "shapes \(l.slots[a].shape) and \(l.slots[b].shape) do not broadcast")
        }
        var swapped = false
        if l.slots[a].shape != out { swap(&a, &b); swap(&sa, &sb); swapped = true }
        guard l.slots[a].shape == out else { throw l.fail(.shapeMismatch, "INT8 \(node.opType) where both operands broadcast") }
        let md0 = l.descriptor(a)
        let dims1 = Broadcast.padded(l.slots[b].shape, to: out.count)
        // src1 in src0's layout when it has the full shape, else plain (broadcast).
        let md1 =
            dims1 == out
            ? try l.wrap { () throws(DNNLError) in try md0.with(dataType: sb.dataType) } : try l.descriptor(dims: dims1, sb.dataType)
        let toDst: Float = yq.map { 1 / $0.scale } ?? 1
        let sign: Float = alg == .sub && swapped ? -1 : 1
        let s0 = sign * sa.scale * toDst, s1 = alg == .mul ? sb.scale : sign * sb.scale * toDst
        // Zero points of Add/Sub: y_q = s0 a +- s1 b + (zy - s0 za -+ s1 zb) (oneDNN's sub is
        // s0 src0 - s1 src1), the constant as an eltwise linear post-op (rounding and
        // saturation come after it).
        let src1Sign: Float = alg == .sub ? -1 : 1
        let offset = Float(yq?.zeroPoint ?? 0) - s0 * Float(sa.zeroPoint) - src1Sign * s1 * Float(sb.zeroPoint)
        let dstMD = try l.wrap { () throws(DNNLError) in try md0.with(dataType: yq?.dataType ?? .f32) }
        guard
            let pd = try int8Descriptor(
                node, l,
                { () throws(DNNLError) in
                    let attr = try PrimitiveAttributes()
                    try attr.setScales([s0], for: .src)
                    try attr.setScales([s1], for: .src1)
                    if offset != 0 {
                        let po = try PostOps()
                        try po.appendEltwise(.linear, alpha: 1, beta: offset)
                        try attr.setPostOps(po)
                    }
                    return try PrimitiveDescriptor.binary(alg, src0: md0, src1: md1, dst: dstMD, attributes: attr, engine: l.engine)
                })
        else { return }  // lowered by fp32Fallback
        if dims1 == out {
            b = try l.converted(b, to: md1)
        } else {
            b = l.alias(of: try l.plain(b), name: node.inputs[1] + ".nd", shape: dims1, md1)
        }
        let dst = l.newSlot(node.outputs[0], shape: out, dstMD)
        try l.emit(pd, [(.src, a), (.src1, b), (.dst, dst)], label: "\(l.where_()) int8 binary \(alg)")
        l.note("\(pd.implementation) binary \(alg) \(sa.type),\(sb.type)->\(yq?.type.rawValue ?? "f32")", .int8)
        l.define(node.outputs[0], .slot(dst))
    }
}

extension Int8Kernels {
    /// How the report's first step of a node lowered by `fp32Fallback` begins.
    static let fallbackNote = "FP32 fallback: "

    /// Lowers an INT8 node in FP32 when oneDNN has no INT8 implementation for it (`reason`, an
    /// `unimplemented` answer), with the QDQ semantics the node stands for:
    /// `y_q = Q(f(op(DQ(x_q), DQ(w_q)) + b + DQ(z_q)))` for QConv / QMatMul, `Q(DQ(a_q) op DQ(b_q))`
    /// for QAdd / QMul. The int8 sources and residual are dequantized by reorders, the s8
    /// weights are dequantized at plan time (`w = sw[oc] * w_q`), the FP32 kernel runs with the
    /// same post-op chain, and the result is quantized when the node writes int8 (`int8.dst`).
    /// Every step of the node is reported as FP32, the first with `"FP32 fallback: <reason>"`.
    static func fp32Fallback(_ node: Node, _ l: Lowering, reason: String) throws {
        let q = try operands(node, l)
        let out = node.outputs[0]
        let firstNote = l.notes.count
        l.note(fallbackNote + reason, .fp32)

        /// A run-time f32 copy of int8 input `name` with parameters `p` (an f32 input as is).
        func dequantized(_ name: String, _ p: QuantParams?) throws(GraphError) -> String {
            let s = try l.slot(name)
            let type = l.descriptor(s).dataType
            if type == .f32 { return name }
            guard let p, type == p.dataType else {
                throw l.fail(.runtime, "input '\(name)' is \(type), expected \(p?.type.rawValue ?? "f32")")
            }
            let f32 = "\(name).dequantized.\(out)"
            l.define(f32, .slot(try QuantizeKernels.dequantize(s, p, name: f32, l)))
            return f32
        }

        var fp = node
        fp.fused = FusedNode(chain: node.postOps, int8: nil)
        let result = q.dst == nil ? out : out + ".fp32"
        fp.outputs = [result] + node.outputs.dropFirst()
        switch node.opType {
        case "QConv", "QMatMul":
            let isConv = node.opType == "QConv"
            guard let w = l.constant(node.input(1)), w.elementType == .s8 || w.elementType == .u8, let wName = node.input(1) else {
                throw l.fail(.unsupportedAttribute, "INT8 weights must be a constant s8 tensor")
            }
            guard (isConv && w.shape.count >= 3) || (!isConv && w.shape.count == 2) else {
                throw l.fail(.shapeMismatch, "weights \(w.shape) do not fit \(node.opType)")
            }
            // Output channels: Conv OIHW axis 0, MatMul [K, N] axis 1.
            let channels = isConv ? w.shape[0] : w.shape[1]
            guard let scales = q.weights?.perChannel(channels) else {
                throw l.fail(.unsupportedAttribute, "INT8 weights need 1 or \(channels) scales")
            }
            let per = w.shape.dropFirst().reduce(1, *)
            let values = w.floatValues().enumerated().map { i, v in v * scales[isConv ? i / per : i % channels] }
            let wf32 = "\(wName).dequantized.\(out)"
            l.define(wf32, .constant(Tensor(shape: w.shape, scalars: values)))
            var inputs = [try dequantized(node.inputs[0], q.src), wf32, node.input(2) ?? ""]
            if node.postOps.hasSum, let z = node.input(3) { inputs.append(try dequantized(z, q.residual)) }
            fp.inputs = inputs
            fp.opType = isConv ? "FusedConv" : "FusedMatMul"
            if isConv {
                try ConvolutionKernels.convolution(fp, l, transposed: false)
            } else {
                try MatMulKernels.matmul(fp, l)
            }
        case "QAdd", "QMul", "QSub":
            fp.inputs = [try dequantized(node.inputs[0], q.src), try dequantized(node.inputs[1], q.src1)]
            fp.opType = String(node.opType.dropFirst())
            fp.domain = ""
            fp.fused = nil
            try BinaryKernels.binary(fp, l)
        default:
            throw l.fail(.unsupportedOperator, "no FP32 fallback for \(node.opType)")
        }
        if let yq = q.dst {
            l.define(out, .slot(try QuantizeKernels.quantize(try l.slot(result), yq, name: out, l)))
        }
        // The node runs in FP32: its reorders to and from int8 are part of that.
        for i in firstNote..<l.notes.count where l.notes[i].precision != .fp32 {
            let n = l.notes[i]
            l.notes[i] = NodeExecution(node: n.node, detail: n.detail, precision: .fp32)
        }
    }
}
