import DNNL
import Foundation

/// Element-wise activations (Relu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish, ...) as oneDNN
/// eltwise primitives in the source's own layout; Erf as a Swift kernel (no eltwise erf in 2.6).
enum ActivationKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        for op in [
            "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "Elu", "Exp", "Abs",
            "Sqrt", "Neg", "Gelu", "HardSigmoid", "Clip", "Swish",
        ] {
            r[op] = activation
        }
        r["Erf"] = erf
        r["Identity"] = { node, l in l.define(node.outputs[0], try l.value(node.inputs[0])) }
    }

    static func activation(_ node: Node, _ l: Lowering) throws {
        guard let acts = Activation.of(node, constants: l.constant) else {
            throw l.fail(.unsupportedAttribute, "\(node.opType) with run-time parameters is not supported")
        }
        let src = try l.inputSlot(node, 0)
        l.define(node.outputs[0], .slot(try apply(acts, to: src, name: node.outputs[0], l)))
    }

    /// Applies eltwise functions in order: the first out of place into a new slot, the rest in
    /// place on it. Returns the new slot.
    static func apply(_ acts: [Activation], to src: Int, name: String, _ l: Lowering) throws(GraphError) -> Int {
        let md = l.descriptor(src)
        let dst = l.newSlot(name, shape: l.slots[src].shape, md)
        for (i, a) in acts.enumerated() {
            let pd = try l.wrap { () throws(DNNLError) in
                try PrimitiveDescriptor.eltwise(a.algorithm, data: md, alpha: a.alpha, beta: a.beta, engine: l.engine)
            }
            try l.emit(pd, [(.src, i == 0 ? src : dst), (.dst, dst)], label: "\(l.where_()) eltwise \(a.algorithm)")
        }
        l.note("eltwise \(acts.map { "\($0.algorithm)" }.joined(separator: "+")) (\(md.dataType))", Precision(md.dataType))
        return dst
    }

    static func erf(_ node: Node, _ l: Lowering) throws {
        let src = try l.plain(try l.inputSlot(node, 0))
        let dst = l.newSlot(node.outputs[0], shape: l.slots[src].shape, l.descriptor(src))
        let n = l.slots[src].shape.reduce(1, *)
        l.emitCustom("\(l.where_()) erf", slots: [src, dst]) { m in
            let x = m[0].dataPointer.assumingMemoryBound(to: Float.self)
            let y = m[1].dataPointer.assumingMemoryBound(to: Float.self)
            for i in 0..<n { y[i] = Foundation.erf(x[i]) }
        }
        l.note("Swift kernel (f32)", .swift)
        l.define(node.outputs[0], .slot(dst))
    }
}
