import DNNL
import Foundation

/// Add, Sub, Mul, Div, Max, Min with broadcasting, as oneDNN binary primitives (src1 broadcast
/// over dims of size 1); a scalar constant operand becomes an eltwise `linear`/`pow`; shapes
/// oneDNN cannot broadcast (both operands smaller than the result) use a Swift kernel.
enum BinaryKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        for op in ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"] { r[op] = binary }
    }

    static func algorithm(_ op: String) -> BinaryAlgorithm? {
        switch op {
        case "Add": .add
        case "Sub": .sub
        case "Mul": .mul
        case "Div": .div
        case "Max": .max
        case "Min": .min
        default: nil
        }
    }

    static func binary(_ node: Node, _ l: Lowering) throws {
        // Variadic Max/Min/Sum/Mean become binary chains in canonicalization; here exactly two.
        guard node.inputs.count == 2 else {
            throw l.fail(.unsupportedAttribute, "\(node.opType) of \(node.inputs.count) inputs runs after canonicalization only (binary here)")
        }
        let a = node.inputs[0], b = node.inputs[1]
        // Scalar constant operand: one eltwise primitive.
        for (constant, other, first) in [(b, a, false), (a, b, true)] {
            if let t = l.constant(constant), t.count == 1, !l.isConstant(other),
                try l.shape(other).count >= t.shape.count,
                let act = Activation.scalarForm(node.opType, t.floatValues()[0], constantFirst: first)
            {
                let out = try ActivationKernels.apply([act], to: try l.slot(other), name: node.outputs[0], l)
                l.define(node.outputs[0], .slot(out))
                return
            }
        }
        let sa = try l.shape(a), sb = try l.shape(b)
        guard let out = Broadcast.shape(sa, sb) else {
            throw l.fail(.shapeMismatch, "shapes \(sa) and \(sb) do not broadcast")
        }
        guard let alg = algorithm(node.opType) else {
            throw l.fail(.unsupportedAttribute, "\(node.opType) needs a scalar constant exponent")
        }
        var (src0, src1) = (a, b)
        var negate = false
        if Broadcast.padded(sa, to: out.count) != out {
            // oneDNN broadcasts src1 only: swap, when the operation allows it.
            guard Broadcast.padded(sb, to: out.count) == out, alg != .div else {
                try broadcastKernel(node, l, out: out)
                return
            }
            (src0, src1) = (b, a)
            if alg == .sub { negate = true }
        }
        try emitBinary(alg, node: node, l, src0: src0, src1: src1, out: out, negate: negate)
    }

    /// Emits `dst = src0 op src1` (src0 of the full shape `out`), negated when `negate`.
    static func emitBinary(
        _ alg: BinaryAlgorithm, node: Node, _ l: Lowering, src0: String, src1: String,
        out: [Int], negate: Bool
    ) throws(GraphError) {
        var s0 = try l.slot(src0)
        var md0 = l.descriptor(s0)
        if l.slots[s0].shape.count < out.count || out.isEmpty {
            s0 = try l.plain(s0)
            md0 = try l.descriptor(dims: out, md0.dataType)
            s0 = l.alias(of: s0, name: src0, shape: out, md0)
        }
        var s1: Int
        var md1: MemoryDescriptor
        let constant1 = l.constant(src1)
        let dims1 = Broadcast.padded(try l.shape(src1), to: max(out.count, 1))
        if constant1 != nil {
            // A constant operand is stored in the layout oneDNN picks for it (a per-channel
            // vector beside a blocked src0 must match its blocking to stay on the jit path).
            s1 = -1
            md1 = try l.wrap { () throws(DNNLError) in try MemoryDescriptor(dims: dims1, dataType: .f32, tag: .any) }
        } else {
            s1 = try l.slot(src1)
            if l.slots[s1].shape != dims1 {
                let p = try l.plain(s1)
                s1 = l.alias(of: p, name: src1, shape: dims1, try l.descriptor(dims: dims1, l.descriptor(p).dataType))
            }
            if dims1 == (out.isEmpty ? [1] : out) { s1 = try l.converted(s1, to: md0) }
            md1 = l.descriptor(s1)
        }
        let dst = l.newSlot(node.outputs[0], shape: out, md0)
        let attr = try l.wrap { () throws(DNNLError) in
            let attr = try PrimitiveAttributes()
            if negate {
                let po = try PostOps()
                try po.appendEltwise(.linear, alpha: -1, beta: 0)
                try attr.setPostOps(po)
            }
            return attr
        }
        var pd: PrimitiveDescriptor
        do {
            pd = try PrimitiveDescriptor.binary(alg, src0: md0, src1: md1, dst: md0, attributes: attr, engine: l.engine)
            if constant1 != nil && pd.src(1).isFormatAny {
                // oneDNN leaves a broadcast operand's `any` unresolved: store it plain.
                md1 = try l.descriptor(dims: dims1, .f32)
                pd = try PrimitiveDescriptor.binary(alg, src0: md0, src1: md1, dst: md0, attributes: attr, engine: l.engine)
            }
        } catch {
            guard !md0.isPlainRowMajor else { throw GraphError(runtime: l.where_(), error) }
            // A blocked src0 oneDNN cannot broadcast over: retry in plain layout.
            let p0 = try l.plain(s0)
            let pdPlain = try l.wrap { () throws(DNNLError) in
                try PrimitiveDescriptor.binary(
                    alg, src0: l.descriptor(p0), src1: md1, dst: l.descriptor(p0),
                    attributes: attr, engine: l.engine)
            }
            if let c = constant1 { s1 = try l.weightsSlot(src1, c.floatValues(), plainDims: dims1, into: pdPlain.src(1)) }
            let plainDst = l.newSlot(node.outputs[0], shape: out, l.descriptor(p0))
            try l.emit(pdPlain, [(.src, p0), (.src1, s1), (.dst, plainDst)], label: "\(l.where_()) binary \(alg)")
            l.note("binary \(alg) (plain, \(md0.dataType))", Precision(md0.dataType))
            l.define(node.outputs[0], .slot(plainDst))
            return
        }
        if let c = constant1 { s1 = try l.weightsSlot(src1, c.floatValues(), plainDims: dims1, into: pd.src(1)) }
        try l.emit(pd, [(.src, s0), (.src1, s1), (.dst, dst)], label: "\(l.where_()) binary \(alg)")
        l.note("\(pd.implementation) binary \(alg) (\(md0.dataType))", Precision(md0.dataType))
        l.define(node.outputs[0], .slot(dst))
    }

    /// Both operands smaller than the result: a Swift loop over plain f32 data.
    static func broadcastKernel(_ node: Node, _ l: Lowering, out: [Int]) throws(GraphError) {
        let a = try l.plain(try l.slot(node.inputs[0])), b = try l.plain(try l.slot(node.inputs[1]))
        let ia = Broadcast.indices(of: l.slots[a].shape, in: out)
        let ib = Broadcast.indices(of: l.slots[b].shape, in: out)
        let dst = l.newSlot(node.outputs[0], shape: out, try l.descriptor(dims: out, .f32))
        let op: @Sendable (Float, Float) -> Float =
            switch node.opType {
            case "Add": { $0 + $1 }
            case "Sub": { $0 - $1 }
            case "Mul": { $0 * $1 }
            case "Div": { $0 / $1 }
            case "Max": { Swift.max($0, $1) }
            case "Min": { Swift.min($0, $1) }
            default: { Foundation.pow($0, $1) }
            }
        l.emitCustom("\(l.where_()) broadcast \(node.opType)", slots: [a, b, dst]) { m in
            let x = m[0].dataPointer.assumingMemoryBound(to: Float.self)
            let y = m[1].dataPointer.assumingMemoryBound(to: Float.self)
            let z = m[2].dataPointer.assumingMemoryBound(to: Float.self)
            for i in 0..<ia.count { z[i] = op(x[ia[i]], y[ib[i]]) }
        }
        l.note("Swift broadcast kernel (f32)", .swift)
        l.define(node.outputs[0], .slot(dst))
    }
}
