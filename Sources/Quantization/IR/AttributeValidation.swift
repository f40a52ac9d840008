/// Checks, once per session (``InferenceSession/init(model:options:)``, which the quantizer's
/// sessions go through too), what a kernel would otherwise read with a silent default:
/// - every node of a known operator has its required inputs and an output
///   (``checkArity(_:)``, also run at import);
/// - boolean attributes (`ceil_mode`, `count_include_pad`, `linear_before_reset`, `keepdims`,
///   ...) are the int 0 or 1: the ONNX spec defines no other value, onnxruntime reads any
///   non-zero as true while the kernels here compare with 1, so `2` gave different results;
/// - enum attributes (`auto_pad`, Resize `mode` / `coordinate_transformation_mode` /
///   `nearest_mode`, LSTM/GRU/RNN `direction` and `activations`, Pad and DepthToSpace `mode`,
///   ...) are one of the strings the spec lists, instead of running a default.
/// Errors name the node, the attribute and the value.
enum AttributeValidation {
    /// The values an attribute may take.
    enum Allowed: Sendable {
        /// An int attribute that is 0 or 1.
        case boolean
        /// An int attribute from a set.
        case ints(Set<Int>)
        /// A string attribute from a set.
        case strings(Set<String>)
        /// A list of strings, each from a set.
        case stringList(Set<String>)
        /// A finite float >= 0 (normalization `epsilon`: a negative one makes `sqrt(var + eps)`
        /// NaN wherever the variance is smaller, and the folded and unfolded forms disagree).
        case nonNegativeFloat
    }

    static let autoPad: Allowed = .strings(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
    static let recurrentDirection: Allowed = .strings(["forward", "reverse", "bidirectional"])
    /// ONNX RNN/GRU/LSTM activation functions (operator spec, "Activation functions").
    static let recurrentActivations: Allowed = .stringList([
        "Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus",
    ])
    static let reduction: Allowed = .strings(["none", "add", "mul", "max", "min"])

    /// Operator (default domain) -> attribute -> allowed values (ONNX operator spec, all
    /// versions up to opset 23).
    static let table: [String: [String: Allowed]] = {
        var t: [String: [String: Allowed]] = [
            "AveragePool": ["auto_pad": autoPad, "ceil_mode": .boolean, "count_include_pad": .boolean],
            "MaxPool": ["auto_pad": autoPad, "ceil_mode": .boolean, "storage_order": .boolean],
            "LpPool": ["auto_pad": autoPad, "ceil_mode": .boolean],
            "Conv": ["auto_pad": autoPad],
            "ConvTranspose": ["auto_pad": autoPad],
            "ConvInteger": ["auto_pad": autoPad],
            "QLinearConv": ["auto_pad": autoPad],
            "LSTM": [
                "direction": recurrentDirection, "activations": recurrentActivations, "input_forget": .boolean, "layout": .boolean,
            ],
            "GRU": [
                "direction": recurrentDirection, "activations": recurrentActivations, "linear_before_reset": .boolean,
                "layout": .boolean,
            ],
            "RNN": ["direction": recurrentDirection, "activations": recurrentActivations, "layout": .boolean],
            "Gemm": ["transA": .boolean, "transB": .boolean],
            "Reshape": ["allowzero": .boolean],
            "Resize": [
                "mode": .strings(["nearest", "linear", "cubic"]),
                "coordinate_transformation_mode": .strings([
                    "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "tf_half_pixel_for_nn", "tf_crop_and_resize",
                ]),
                "nearest_mode": .strings(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]),
                "keep_aspect_ratio_policy": .strings(["stretch", "not_larger", "not_smaller"]),
                "exclude_outside": .boolean, "antialias": .boolean,
            ],
            "Upsample": ["mode": .strings(["nearest", "linear", "bilinear"])],
            "Pad": ["mode": .strings(["constant", "reflect", "edge", "wrap"])],
            "DepthToSpace": ["mode": .strings(["DCR", "CRD"])],
            "ArgMax": ["keepdims": .boolean, "select_last_index": .boolean],
            "ArgMin": ["keepdims": .boolean, "select_last_index": .boolean],
            "CumSum": ["exclusive": .boolean, "reverse": .boolean],
            "CumProd": ["exclusive": .boolean, "reverse": .boolean],
            "TopK": ["largest": .boolean, "sorted": .boolean],
            "Unique": ["sorted": .boolean],
            "Mod": ["fmod": .boolean],
            "Trilu": ["upper": .boolean],
            "IsInf": ["detect_negative": .boolean, "detect_positive": .boolean],
            "BatchNormalization": ["training_mode": .boolean, "epsilon": .nonNegativeFloat],
            "InstanceNormalization": ["epsilon": .nonNegativeFloat],
            "LayerNormalization": ["epsilon": .nonNegativeFloat],
            "GroupNormalization": ["epsilon": .nonNegativeFloat],
            "RMSNormalization": ["epsilon": .nonNegativeFloat],
            "Gelu": ["approximate": .strings(["none", "tanh"])],
            "GridSample": [
                "align_corners": .boolean, "mode": .strings(["bilinear", "nearest", "bicubic", "linear", "cubic"]),
                "padding_mode": .strings(["zeros", "border", "reflection"]),
            ],
            "AffineGrid": ["align_corners": .boolean],
            "RoiAlign": [
                "mode": .strings(["avg", "max"]), "coordinate_transformation_mode": .strings(["half_pixel", "output_half_pixel"]),
            ],
            "NonMaxSuppression": ["center_point_box": .boolean],
            "ScatterElements": ["reduction": reduction],
            "ScatterND": ["reduction": reduction],
            "GatherND": [:],
            "BitShift": ["direction": .strings(["LEFT", "RIGHT"])],
            "LpNormalization": ["p": .ints([1, 2])],
            "QuantizeLinear": ["saturate": .boolean],
            "Cast": ["saturate": .boolean],
            "CastLike": ["saturate": .boolean],
            "DFT": ["inverse": .boolean, "onesided": .boolean],
            "Einsum": [:],
            "CenterCropPad": [:],
        ]
        for op in [
            "ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
            "ReduceLogSumExp", "ReduceSumSquare",
        ] {
            t[op] = ["keepdims": .boolean, "noop_with_empty_axes": .boolean]
        }
        return t
    }()

    /// Operators of the default domain that take no inputs.
    static let sourceOperators: Set<String> = ["Constant", "RandomNormal", "RandomUniform"]

    /// ONNX minimum input counts where ``KernelRegistry/minimumInputs`` (what a kernel reads,
    /// after canonicalization) asks for more: variadic Max and Min take one input.
    static let variadicMinimumInputs: [String: Int] = ["Max": 1, "Min": 1, "Sum": 1, "Mean": 1]

    /// Throws when a node of a known operator (one ``KernelRegistry/supports(_:)`` accepts) has
    /// fewer than its required inputs (``KernelRegistry/minimumInputs``, else 1), an empty first
    /// input, or no output: the graph passes and kernels index them.
    static func checkArity(_ node: Node) throws(GraphError) {
        guard node.domain.isEmpty || node.domain == "ai.onnx", !sourceOperators.contains(node.opType),
            KernelRegistry.supports(node)
        else { return }
        let needed = variadicMinimumInputs[node.opType] ?? KernelRegistry.minimumInputs[node.opType] ?? 1
        guard node.inputs.count >= needed, node.inputs.first.map({ !$0.isEmpty }) ?? false else {
            throw GraphError(
                .invalidModel,
                "node \(node.label): \(node.opType) needs at least \(needed) input(s) (the first one present), it has \(node.inputs.count)")
        }
        guard node.outputs.contains(where: { !$0.isEmpty }) else {
            throw GraphError(.invalidModel, "node \(node.label): \(node.opType) has no output")
        }
    }

    /// Throws naming the first node whose inputs, outputs, attribute values or constant
    /// quantization parameters are invalid (`opset`: the model's default-domain opset).
    static func validate(_ graph: Graph, opset: Int = 13) throws(GraphError) {
        for node in graph.nodes {
            try checkArity(node)
            try checkAttributes(node)
            try checkQuantization(node, graph, opset: opset)
        }
    }

    /// Throws when the constant parameters of a QuantizeLinear or DequantizeLinear break the
    /// ONNX spec (operators QuantizeLinear/DequantizeLinear, opsets 10-21) or cannot describe a
    /// tensor, naming the node:
    /// - scales: QuantizeLinear divides by them, so they must be positive and finite; a
    ///   DequantizeLinear of a run-time tensor (an activation) likewise; a DequantizeLinear of a
    ///   constant (weights) may have scale 0 (an all-zero channel: its output is the bias);
    /// - per-axis parameters (more than one scale) need opset 13, a 1-D scale whose length is
    ///   the extent of `axis` in a constant input, and an axis inside the input's rank;
    /// - zero points: the shape of the scale; u8 or s8 (the type of the quantized tensor; a
    ///   DequantizeLinear of a constant must match its type), or s32 and all 0 for an s32
    ///   DequantizeLinear (a bias).
    static func checkQuantization(_ node: Node, _ graph: Graph, opset: Int) throws(GraphError) {
        guard node.domain.isEmpty || node.domain == "ai.onnx", ["QuantizeLinear", "DequantizeLinear"].contains(node.opType),
            let name = node.input(1), let scale = graph.initializers[name]
        else { return }
        func refuse(_ what: String) -> GraphError { GraphError(.unsupportedAttribute, "node \(node.label): \(what)") }
        let dequantize = node.opType == "DequantizeLinear"
        let x = node.input(0).flatMap { graph.initializers[$0] }
        let zeroAllowed = dequantize && x != nil
        if let bad = scale.floatValues().first(where: { !($0.isFinite && ($0 > 0 || (zeroAllowed && $0 == 0))) }) {
            let rule =
                zeroAllowed
                ? "scales must be non-negative and finite"
                : dequantize
                    ? "scales must be positive and finite (non-negative and finite only for constant weights; this DequantizeLinear reads a run-time tensor)"
                    : "scales must be positive and finite"
            throw refuse("scale '\(name)' holds \(bad); \(rule)")
        }
        if scale.count == 0 { throw refuse("scale '\(name)' is empty") }
        let perAxis = scale.count > 1 && (node.int("block_size") ?? 0) == 0
        if perAxis {
            guard opset >= 13 else {
                throw refuse("\(scale.count) scales (per-axis quantization) need opset 13 or later; the model declares opset \(opset)")
            }
            guard scale.shape.count == 1 else { throw refuse("per-axis scale '\(name)' has shape \(scale.shape); it must be 1-D") }
            if let x {
                var axis = node.int("axis") ?? 1
                let rank = x.shape.count
                guard axis >= -rank, axis < rank else { throw refuse("axis \(axis) is outside the rank \(rank) of '\(node.inputs[0])'") }
                if axis < 0 { axis += rank }
                guard x.shape[axis] == scale.count else {
                    throw refuse("\(scale.count) scales for axis \(axis) of '\(node.inputs[0])' \(x.shape), which has \(x.shape[axis]) channels")
                }
            }
        }
        guard let zpName = node.input(2), let zp = graph.initializers[zpName] else { return }
        guard zp.shape == scale.shape || zp.count == scale.count && zp.shape.count <= 1 && scale.shape.count <= 1 else {
            throw refuse("\(zp.count) zero points in '\(zpName)' (shape \(zp.shape)) for \(scale.count) scales in '\(name)' (shape \(scale.shape))")
        }
        switch zp.elementType {
        case .u8, .s8:
            if let x, dequantize, x.elementType != zp.elementType {
                throw refuse("'\(node.inputs[0])' is \(x.elementType) but its zero point '\(zpName)' is \(zp.elementType)")
            }
        case .s32 where dequantize:
            if let bad = zp.intValues().first(where: { $0 != 0 }) {
                throw refuse("s32 zero point '\(zpName)' holds \(bad); an s32 DequantizeLinear takes zero point 0 only")
            }
        default:
            throw refuse("zero point '\(zpName)' is \(zp.elementType); u8 or s8 expected")
        }
    }

    /// Throws when an attribute of `node` listed in ``table`` has a value (or a type) the
    /// operator spec does not allow.
    static func checkAttributes(_ node: Node) throws(GraphError) {
        guard node.domain.isEmpty || node.domain == "ai.onnx", let rules = table[node.opType] else { return }
        for name in rules.keys.sorted() {
            guard let value = node.attributes[name], let allowed = rules[name] else { continue }
            func refuse(_ what: String) -> GraphError {
                GraphError(.unsupportedAttribute, "node \(node.label): attribute '\(name)' = \(describe(value)) is invalid: \(what)")
            }
            switch (allowed, value) {
            case (.boolean, .int(let v)):
                guard v == 0 || v == 1 else { throw refuse("it must be 0 or 1") }
            case (.ints(let set), .int(let v)):
                guard set.contains(v) else { throw refuse("it must be one of \(set.sorted().map(String.init).joined(separator: ", "))") }
            case (.strings(let set), .string(let v)):
                guard set.contains(v) else { throw refuse("it must be one of \(set.sorted().joined(separator: ", "))") }
            case (.stringList(let set), .strings(let vs)):
                if let bad = vs.first(where: { !set.contains($0) }) {
                    throw refuse("'\(bad)' is not one of \(set.sorted().joined(separator: ", "))")
                }
            case (.nonNegativeFloat, .float(let v)):
                guard v.isFinite, v >= 0 else { throw refuse("it must be a finite float >= 0") }
            case (.nonNegativeFloat, _):
                throw refuse("it must be a float")
            case (.boolean, _), (.ints, _):
                throw refuse("it must be an int")
            case (.strings, _):
                throw refuse("it must be a string")
            case (.stringList, _):
                throw refuse("it must be a list of strings")
            }
        }
    }

    static func describe(_ value: AttributeValue) -> String {
        switch value {
        case .int(let v): "\(v)"
        case .float(let v): "\(v)"
        case .string(let v): "'\(v)'"
        case .ints(let v): "\(v)"
        case .floats(let v): "\(v)"
        case .strings(let v): "\(v)"
        case .tensor(let t): "a tensor of shape \(t.shape)"
        }
    }
}
