import DNNL

/// The library's own fused operators (domain `dnnl`), written by the fusion passes and run by
/// the kernels, in the style of onnxruntime's `com.microsoft` FusedConv; what each carries is
/// the typed payload `FusedNode` (IR/FusedNode.swift).
enum FusedOps {
    static let domain = "dnnl"
}

extension PostOpChain {
    /// Primitive attributes carrying this chain as post-ops (none when empty).
    func primitiveAttributes() throws(DNNLError) -> PrimitiveAttributes {
        let attr = try PrimitiveAttributes()
        if !isEmpty {
            let po = try PostOps()
            try append(to: po)
            try attr.setPostOps(po)
        }
        return attr
    }

    /// Appends the chain to oneDNN post-ops.
    func append(to po: PostOps) throws(DNNLError) {
        for op in ops {
            switch op {
            case .sum: try po.appendSum(scale: sumScale)
            case .eltwise(let a): try po.appendEltwise(a.algorithm, alpha: a.alpha, beta: a.beta)
            }
        }
    }
}

extension Lowering {
    /// Lowers a fused node. When its residual `Z` cannot be summed by oneDNN (its shape differs
    /// from the result: broadcasting), the chain is split: the op with the post-ops before the
    /// sum, a binary Add, then the remaining eltwise functions.
    func lowerFused(
        _ node: Node, chain: PostOpChain,
        _ body: (PostOpChain, String) throws -> Void
    ) throws {
        do {
            try body(chain, node.outputs[0])
            return
        } catch is ResidualShapeMismatch {}
        guard let sumIndex = chain.ops.firstIndex(of: .sum), let z = node.input(3) else { return }
        let out = node.outputs[0]
        let pre = out + ".before_sum"
        try body(PostOpChain(ops: Array(chain.ops[..<sumIndex])), pre)
        let rest = chain.ops[(sumIndex + 1)...].compactMap { op -> Activation? in
            if case .eltwise(let a) = op { return a } else { return nil }
        }
        let added = rest.isEmpty ? out : out + ".sum"
        let op = chain.sumScale < 0 ? "Sub" : "Add"
        try BinaryKernels.binary(Node(name: node.name + ".sum", opType: op, inputs: [pre, z], outputs: [added]), self)
        if !rest.isEmpty {
            define(out, .slot(try ActivationKernels.apply(rest, to: try slot(added), name: out, self)))
        }
        note("residual \(z) broadcast: binary add after the primitive")
    }

    /// Thrown by a kernel, before it emits anything, when its residual's shape differs from
    /// its result's.
    struct ResidualShapeMismatch: Error {}

    /// Checks a residual's shape against the result's (see `lowerFused`).
    func checkResidual(_ z: String?, elementCount: Int, shape outShape: [Int]) throws {
        guard let z else { return }
        let s = try shape(z)
        if s != outShape && !(s.reduce(1, *) == elementCount && outShape.count != s.count) { throw ResidualShapeMismatch() }
    }

    /// Whether a sum post-op may write into residual slot `r`: the chain allows it (nothing
    /// else reads the residual later) and `r` is a buffer of its own (no view, constant or
    /// input; an earlier in-place sum's destination owns its buffer: ResNet's chained blocks).
    func canSumInPlace(into r: Int, _ chain: PostOpChain) -> Bool {
        chain.sumInPlace && (slots[r].aliasOf == nil || slots[r].ownsRoot) && !slots[r].persistent && !isGraphInput(r)
    }

    /// The destination of a primitive with a sum post-op: the residual's own buffer when the
    /// chain allows it in place and the layouts agree, else a copy of the residual.
    func sumDestination(
        residual r: Int, chain: PostOpChain, name: String, shape: [Int],
        _ descriptor: MemoryDescriptor
    ) throws(GraphError) -> Int {
        let owned = canSumInPlace(into: r, chain)
        if owned && slots[r].descriptor == descriptor {
            let a = alias(of: r, name: name, shape: shape, descriptor)
            markOwnsRoot(a)
            return a
        }
        let dst = newSlot(name, shape: shape, descriptor)
        try reorder(from: r, to: dst, label: "\(where_()) residual copy")
        return dst
    }
}
