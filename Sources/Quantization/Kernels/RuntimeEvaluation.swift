import DNNL

/// Operators computed at run time by their plan-time evaluator (``ConstantEvaluation``): plain
/// Swift over ``Tensor``s, for any element type (f32, u8/bool, s8, s32, i64). This is how
/// comparisons, logic, `Where`, integer arithmetic, `Gather` on run-time indices and the other
/// small operators of real graphs (masks, positions, shape arithmetic that reaches the run) run,
/// and how operators whose oneDNN lowering needs constants (run-time Clip bounds, LayerNorm
/// scale) still run. Not a fast path: each run copies the inputs into tensors.
///
/// The output shapes are found when the plan is made, by evaluating the node on zeros of the
/// input shapes. That is only valid when the output shape depends on input shapes alone; inputs
/// that set shapes (``shapeSetting``) must be known then: constants, or graph inputs, for whose
/// values the session makes a plan of its own (``shapeSettingInputs(of:)``).
enum RuntimeEvaluation {
    /// Inputs whose values set the output shape, by op type.
    static let shapeSetting: [String: Set<Int>] = {
        var r: [String: Set<Int>] = [
            "Reshape": [1], "Expand": [1], "Tile": [1], "Slice": [1, 2, 3, 4], "ConstantOfShape": [0], "Range": [0, 1, 2],
            "Unsqueeze": [1], "Squeeze": [1], "Resize": [2, 3], "Upsample": [1], "Pad": [1, 3], "TopK": [1], "OneHot": [1],
            "Split": [1], "CenterCropPad": [1], "NonZero": [0], "Compress": [1], "Unique": [0], "EyeLike": [],
        ]
        for op in [
            "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
            "ReduceLogSumExp", "ReduceSumSquare",
        ] {
            r[op] = [1]
        }
        return r
    }()

    /// Graph inputs that some node reads as a shape-setting input (a Reshape's shape, a
    /// Resize's scales, ...).
    static func shapeSettingInputs(of graph: Graph) -> Set<String> {
        let candidates = Set(graph.inputs.map(\.name))
        var result: Set<String> = []
        for node in graph.nodes {
            for i in shapeSetting[node.opType] ?? [] where i < node.inputs.count && candidates.contains(node.inputs[i]) {
                result.insert(node.inputs[i])
            }
        }
        return result
    }

    /// True when a run-time input of `node` holds a type its oneDNN lowering does not read:
    /// integers (s32, i64), or u8/s8 values that are not quantized activations.
    static func needsEvaluator(_ node: Node, _ l: Lowering) -> Bool {
        for name in node.inputs where !name.isEmpty {
            guard case .slot(let s)? = try? l.value(name) else { continue }
            switch l.slots[s].elementType {
            case .f32: continue
            case .i64, .s32: return true
            case .u8, .s8:
                let int8Capable =
                    node.domain == FusedOps.domain || OpTraits.table[node.opType]?.contains(.int8PassThrough) == true
                    || ["DequantizeLinear", "QuantizeLinear", "Cast", "Identity", "Shape", "Size"].contains(node.opType)
                if !int8Capable { return true }
            }
        }
        return false
    }

    /// Emits a Swift step that evaluates `node` at run time.
    static func lower(_ node: Node, _ l: Lowering, _ evaluate: @escaping ConstantEvaluation.Evaluator) throws(GraphError) {
        var inputs: [Tensor?] = []
        var runtime: [(index: Int, slot: Int, shape: [Int], type: ElementType)] = []
        let settingShapes = shapeSetting[node.opType] ?? []
        for (i, name) in node.inputs.enumerated() {
            if name.isEmpty {
                inputs.append(nil)
            } else if let t = l.constant(name) {
                inputs.append(t)
            } else {
                guard !settingShapes.contains(i) else {
                    throw l.fail(
                        .unsupportedOperator,
                        "\(node.opType) input \(i) ('\(name)') sets the output shape and is computed at run time; it must be a constant or a graph input"
                    )
                }
                let s = try l.plain(try l.slot(name))
                let type = l.slots[s].elementType
                runtime.append((i, s, l.slots[s].shape, type))
                inputs.append(Tensor(zeros: l.slots[s].shape, elementType: type))
            }
        }
        // Output shapes and types: the node evaluated on zeros of the input shapes.
        let probe: [Tensor]
        do { probe = try evaluate(node, inputs, l.opset) } catch let e as GraphError { throw e } catch {
            throw GraphError(runtime: l.where_(), error)
        }
        var outSlots: [Int] = []
        for (k, name) in node.outputs.enumerated() where !name.isEmpty {
            guard k < probe.count else { break }
            let s = try l.newSlot(name, shape: probe[k].shape, type: probe[k].elementType)
            outSlots.append(s)
            l.define(name, .slot(s))
        }
        let expected = probe.map { ($0.shape, $0.elementType) }
        let outputIndices = node.outputs.enumerated().filter { !$0.element.isEmpty && $0.offset < probe.count }.map(\.offset)
        let constants = inputs
        let opset = l.opset
        let label = "\(l.where_()) Swift \(node.opType)"
        l.emitCustom(label, slots: runtime.map(\.slot) + outSlots) { m in
            var x = constants
            for (j, r) in runtime.enumerated() {
                var t = Tensor(zeros: r.shape, elementType: r.type)
                t.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: m[j].dataPointer, count: $0.count)) }
                x[r.index] = t
            }
            let y = try evaluate(node, x, opset)
            for (j, k) in outputIndices.enumerated() {
                guard k < y.count, y[k].shape == expected[k].0, y[k].elementType == expected[k].1 else {
                    throw GraphError(
                        .runtime,
                        "\(label): output \(k) is \(k < y.count ? "\(y[k].elementType) \(y[k].shape)" : "missing"), the plan expected \(expected[k].1) \(expected[k].0) (its shape depends on input values)"
                    )
                }
                let dst = m[runtime.count + j]
                y[k].withUnsafeBytes { dst.dataPointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }  // never null
            }
        }
        let types = Set(runtime.map(\.type.rawValue)).sorted().joined(separator: "/")
        l.note("Swift evaluator (\(types.isEmpty ? "constants" : types))", .swift)
    }
}

extension RuntimeEvaluation {
    /// The element types of a node's run-time inputs, for errors (e.g. `i64, f32`).
    static func describeTypes(_ node: Node, _ l: Lowering) -> String {
        node.inputs.compactMap { name -> String? in
            guard !name.isEmpty, case .slot(let s)? = try? l.value(name) else { return nil }
            return l.slots[s].elementType.rawValue
        }.joined(separator: ", ")
    }
}
