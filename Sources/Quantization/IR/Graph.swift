/// A dimension of a value's shape: a number, or a name standing for a size known only when
/// the model runs (ONNX `dim_param`, e.g. `"batch"`; `"?"` when unnamed).
public enum ShapeDimension: Sendable, Hashable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)

    public var value: Int? { if case .fixed(let v) = self { v } else { nil } }
    public var description: String {
        switch self {
        case .fixed(let v): "\(v)"
        case .symbolic(let s): s
        }
    }
}

/// A named value's declared element type and shape (graph inputs, outputs and ONNX
/// `value_info`). Declarations can be stale; inference from actual inputs wins.
public struct ValueInfo: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// nil when the model does not declare it, or declares a type this library does not run.
    public var elementType: ElementType?
    /// nil when the rank is unknown.
    public var shape: [ShapeDimension]?

    public init(name: String, elementType: ElementType?, shape: [ShapeDimension]?) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }

    public var description: String {
        let s = shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "[?]"
        return "\(name): \(elementType?.rawValue ?? "?") \(s)"
    }
}

/// An attribute of a node (ONNX `AttributeProto`), kept with its ONNX type.
public enum AttributeValue: Sendable, Equatable {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case strings([String])
    case tensor(Tensor)
}

/// One operation of the graph (ONNX `NodeProto`).
public struct Node: Sendable, Equatable {
    public var name: String
    public var opType: String
    /// Operator domain; `""` is the default ONNX domain.
    public var domain: String
    /// Input value names; `""` marks an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: AttributeValue]
    /// What a fusion pass decided for one of the library's own nodes (post-ops, int8 operand
    /// parameters): a typed payload, never encoded in `attributes`. nil for ONNX nodes.
    var fused: FusedNode?

    public init(
        name: String, opType: String, domain: String = "", inputs: [String],
        outputs: [String], attributes: [String: AttributeValue] = [:]
    ) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// One of the library's own fused nodes (domain `dnnl`) with its payload.
    init(
        name: String, fusedOp opType: String, inputs: [String], outputs: [String],
        attributes: [String: AttributeValue] = [:], fused: FusedNode
    ) {
        self.init(
            name: name, opType: opType, domain: FusedOps.domain, inputs: inputs, outputs: outputs,
            attributes: attributes)
        self.fused = fused
    }

    /// The i-th input's name, or nil when absent or omitted.
    public func input(_ i: Int) -> String? {
        i < inputs.count && !inputs[i].isEmpty ? inputs[i] : nil
    }

    public func int(_ key: String) -> Int? { if case .int(let v)? = attributes[key] { v } else { nil } }
    public func float(_ key: String) -> Float? {
        switch attributes[key] {
        case .float(let v)?: v
        case .int(let v)?: Float(v)
        default: nil
        }
    }
    public func string(_ key: String) -> String? { if case .string(let v)? = attributes[key] { v } else { nil } }
    public func ints(_ key: String) -> [Int]? { if case .ints(let v)? = attributes[key] { v } else { nil } }
    public func floats(_ key: String) -> [Float]? { if case .floats(let v)? = attributes[key] { v } else { nil } }
    public func strings(_ key: String) -> [String]? { if case .strings(let v)? = attributes[key] { v } else { nil } }
    public func tensor(_ key: String) -> Tensor? { if case .tensor(let v)? = attributes[key] { v } else { nil } }

    /// `"Conv 'conv1'"`, for error messages.
    public var label: String { name.isEmpty ? opType : "\(opType) '\(name)'" }
}

/// A computation graph (ONNX `GraphProto`): nodes in topological order, graph inputs and
/// outputs, and constant tensors (initializers and `Constant` nodes, by value name).
public struct Graph: Sendable {
    public var name: String
    public var nodes: [Node]
    /// Inputs the caller provides (initializers excluded).
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    /// Constant tensors by value name.
    public var initializers: [String: Tensor]
    /// Declared types of intermediate values (may be stale).
    public var valueInfo: [String: ValueInfo]

    public init(
        name: String = "", nodes: [Node], inputs: [ValueInfo], outputs: [ValueInfo],
        initializers: [String: Tensor] = [:], valueInfo: [String: ValueInfo] = [:]
    ) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.valueInfo = valueInfo
    }

    /// For each value name, the indices of the nodes that read it.
    public func consumers() -> [String: [Int]] {
        var c: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() {
            for v in n.inputs where !v.isEmpty { c[v, default: []].append(i) }
        }
        return c
    }

    /// For each value name, the index of the node that writes it.
    public func producers() -> [String: Int] {
        var p: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { for v in n.outputs where !v.isEmpty { p[v] = i } }
        return p
    }
}

extension Graph {
    /// For each value `t` quantized as `DequantizeLinear(QuantizeLinear(t))`, the name of the
    /// dequantized value (found by structure, not by name).
    func dequantizedValues() -> [String: String] {
        let consumers = consumers()
        var result: [String: String] = [:]
        for q in nodes where q.opType == "QuantizeLinear" && q.domain.isEmpty {
            guard let t = q.input(0), let qOut = q.outputs.first,
                let dq = consumers[qOut]?.lazy.map({ self.nodes[$0] }).first(where: { $0.opType == "DequantizeLinear" }),
                let d = dq.outputs.first
            else { continue }
            result[t] = d
        }
        return result
    }
}
