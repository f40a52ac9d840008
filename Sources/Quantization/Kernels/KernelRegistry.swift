import DNNL

/// How a node becomes run-time steps: one function per ONNX operator (by `opType`), grouped
/// by operator family in the files of `Kernels/`.
typealias LowerFunction = @Sendable (Node, Lowering) throws -> Void

enum KernelRegistry {
    /// Operators that run at run time (oneDNN primitives or Swift kernels).
    static let lowerings: [String: LowerFunction] = {
        var r: [String: LowerFunction] = [:]
        ActivationKernels.register(&r)
        BinaryKernels.register(&r)
        ConvolutionKernels.register(&r)
        PoolingKernels.register(&r)
        LayoutKernels.register(&r)
        NormalizationKernels.register(&r)
        MatMulKernels.register(&r)
        ResizeKernels.register(&r)
        RecurrentKernels.register(&r)
        QuantizeKernels.register(&r)
        Int8Kernels.register(&r)
        return r
    }()

    /// Operators that are only evaluated at plan time (their inputs must be constants).
    static var constantOnly: Set<String> {
        Set(ConstantEvaluation.evaluators.keys).subtracting(lowerings.keys)
    }

    /// True when this library can run `opType` of the default domain (or its own fused ops).
    static func supports(_ node: Node) -> Bool {
        if PriorBoxKernels.isPriorBox(node) { return true }
        guard node.domain.isEmpty || node.domain == "ai.onnx" || node.domain == FusedOps.domain else { return false }
        return lowerings[node.opType] != nil || ConstantEvaluation.evaluators[node.opType] != nil
            || Canonicalization.rewrittenOperators.contains(node.opType)
    }

    /// Lowers one node: folds it when its inputs are all known, else emits its run-time steps.
    /// Inputs an operator needs at least (others: 1).
    static let minimumInputs: [String: Int] = [
        "Add": 2, "Sub": 2, "Max": 1, "Min": 1, "Mul": 2, "Div": 2, "Pow": 2, "MatMul": 2, "Gemm": 2, "Conv": 2, "ConvTranspose": 2,
        "FusedConv": 2, "FusedConvTranspose": 2, "FusedMatMul": 2, "FusedGemm": 2, "QConv": 2, "QMatMul": 2,
        "QAdd": 2, "QMul": 2, "QSub": 2, "QLookup": 2, "LSTM": 3, "GRU": 3, "BatchNormalization": 5, "QuantizeLinear": 2,
        "DequantizeLinear": 2, "Tile": 2, "Expand": 2, "Gather": 2, "Where": 3, "Range": 3, "Equal": 2,
        "Less": 2, "Greater": 2, "LessOrEqual": 2, "GreaterOrEqual": 2, "And": 2, "Or": 2, "Mod": 2,
        "GatherElements": 2, "GatherND": 2, "ScatterElements": 3, "Scatter": 3, "ScatterND": 3, "OneHot": 3, "CumSum": 2,
        "CumProd": 2, "ReverseSequence": 2, "Compress": 2,
        // Math evaluators (Kernels/Evaluators/MathEvaluators.swift).
        "Xor": 2, "BitShift": 2, "BitwiseAnd": 2, "BitwiseOr": 2, "BitwiseXor": 2, "PRelu": 2, "CastLike": 2,
        // Normalization and neural evaluators (Kernels/Evaluators).
        "RMSNormalization": 2, "GroupNormalization": 3, "InstanceNormalization": 3,
        "MatMulInteger": 2, "ConvInteger": 2, "QLinearMatMul": 8, "QLinearConv": 8, "NegativeLogLikelihoodLoss": 2,
        "SoftmaxCrossEntropyLoss": 2,
    ]

    /// Lowerings that handle zero-element inputs without a oneDNN primitive (views, and
    /// Split/Slice, which make empty outputs).
    static let emptySafe: Set<String> = ["Split", "Slice", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"]

    static func lower(_ node: Node, _ l: Lowering, opset: Int) throws(GraphError) {
        let needed = minimumInputs[node.opType] ?? 1
        guard node.inputs.count >= needed, node.inputs.prefix(needed).allSatisfy({ !$0.isEmpty || node.opType == "Conv" }),
            !node.inputs.isEmpty, !node.inputs[0].isEmpty, node.outputs.contains(where: { !$0.isEmpty })
        else {
            throw GraphError(
                .invalidModel,
                "node \(node.label): \(node.opType) needs at least \(needed) input(s) and an output; it has \(node.inputs.count) input(s), \(node.outputs.count) output(s)"
            )
        }
        if PriorBoxKernels.isPriorBox(node) {  // from the input shapes alone: plan constants
            try PriorBoxKernels.lower(node, l)
            return
        }
        if node.opType == "Shape" {  // the shape of a run-time value is known at plan time
            l.define(node.outputs[0], .constant(ConstantEvaluation.shapeTensor(node, try l.shape(node.inputs[0]))))
            return
        }
        let present = node.inputs.filter { !$0.isEmpty }
        if let evaluate = ConstantEvaluation.evaluators[node.opType], present.allSatisfy(l.isConstant) {
            let inputs = node.inputs.map { $0.isEmpty ? nil : l.constant($0) }
            do {
                let outs = try evaluate(node, inputs, opset)
                for (name, t) in zip(node.outputs, outs) { l.define(name, .constant(t)) }
                return
            } catch let e as GraphError { throw e } catch {
                throw GraphError(runtime: "node \(node.label)", error)
            }
        }
        let evaluator = ConstantEvaluation.evaluators[node.opType]
        // Zero-element run-time values never reach a oneDNN primitive (its kernels divide by
        // the sizes): the Swift evaluator handles them, or the node is refused.
        if let empty = present.first(where: { (try? l.shape($0))?.contains(0) == true && !l.isConstant($0) }),
            !emptySafe.contains(node.opType)
        {
            guard let evaluator else {
                throw GraphError(.unsupportedOperator, "node \(node.label): \(node.opType) has no kernel for the zero-element input '\(empty)'")
            }
            try RuntimeEvaluation.lower(node, l, evaluator)
            return
        }
        guard let lowerFn = lowerings[node.opType], !(evaluator != nil && RuntimeEvaluation.needsEvaluator(node, l)) else {
            // No oneDNN lowering, or inputs of types it does not read: the Swift evaluator.
            guard let evaluator else {
                throw GraphError(
                    .unsupportedOperator,
                    "node \(node.label): \(node.opType) (opset \(opset)) has no kernel for run-time inputs of type \(RuntimeEvaluation.describeTypes(node, l))"
                )
            }
            try RuntimeEvaluation.lower(node, l, evaluator)
            return
        }
        // A checkpoint only where the evaluator can take over (journaling costs on every define).
        let checkpoint = evaluator != nil ? l.checkpoint() : nil
        defer { if checkpoint != nil { l.commit() } }
        do { try lowerFn(node, l) } catch let e as GraphError {
            // A lowering that needs constants (run-time Clip bounds, LayerNorm scale, ...): the
            // evaluator runs the node instead, from a clean state.
            guard let evaluator, let checkpoint, [.unsupportedAttribute, .unsupportedOperator, .shapeMismatch].contains(e.kind) else { throw e }
            l.restore(checkpoint)
            do { try RuntimeEvaluation.lower(node, l, evaluator) } catch { throw e }
        } catch {
            throw GraphError(runtime: "node \(node.label)", error)
        }
    }
}

extension Lowering {
    /// The run-time slot of input `i` (constants materialized).
    func inputSlot(_ node: Node, _ i: Int) throws(GraphError) -> Int {
        guard let name = node.input(i) else { throw fail(.unsupportedAttribute, "input \(i) is missing") }
        return try slot(name)
    }

    /// A slot holding `slot`'s values in `descriptor`'s layout (a reorder, made once).
    func converted(_ slot: Int, to descriptor: MemoryDescriptor) throws(GraphError) -> Int {
        if slots[slot].descriptor == descriptor { return slot }
        if descriptor.isPlainRowMajor && descriptor.dataType == slots[slot].descriptor.dataType {
            return try plain(slot)
        }
        let c = newSlot(slots[slot].name + ".reordered", shape: slots[slot].shape, descriptor)
        try reorder(from: slot, to: c)
        return c
    }

    /// A persistent slot of `descriptor` filled by reordering a plain f32 constant into it.
    func weightsSlot(
        _ name: String, _ values: [Float], plainDims: [Int],
        into descriptor: MemoryDescriptor, attributes: PrimitiveAttributes? = nil
    ) throws(GraphError) -> Int {
        guard values.count == plainDims.reduce(1, *) else {
            throw fail(.shapeMismatch, "'\(name)' has \(values.count) values, \(plainDims) needs \(plainDims.reduce(1, *))")
        }
        return addSlot(
            Slot(
                name: name, shape: plainDims, descriptor: descriptor, persistent: true,
                fill: { m, stream in
                    let src = try Memory(MemoryDescriptor(dims: plainDims, dataType: .f32), engine: m.engine)
                    try src.write(values)
                    try src.reorder(into: m, attributes: attributes, stream: stream)
                }))
    }
}
