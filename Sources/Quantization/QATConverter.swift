import Foundation

/// Converts a QDQ model for the INT8 engine: a graph trained with quantization-aware training
/// (fake-quant nodes exported as ONNX QuantizeLinear/DequantizeLinear, e.g. Paddle QAT +
/// paddle2onnx, PyTorch, NNCF) or quantized by another tool (onnxruntime `quantize_static`,
/// NNCF), keeping the scales and zero points the file gives.
///
/// ``InferenceSession`` applies the same conversion to every model it runs (`dnnl-quant run`,
/// `bench` and `inspect` too); this type gives the converted QDQ model and the decision for
/// each node without running anything. The conversion:
/// - checks the Q/DQ parameters (ONNX QuantizeLinear/DequantizeLinear, opsets 10-21): scales
///   positive and finite (0 allowed for a weight DequantizeLinear: an all-zero channel),
///   per-axis parameters only from opset 13 with one scale per channel of the axis, zero points
///   of the scale's shape and of the quantized type; a violation throws naming the node;
/// - normalizes the forms exporters write (`QDQNormalization`): weight DequantizeLinear moved
///   across Transpose/Reshape with its axis remapped, u8 or zero-pointed weights as symmetric
///   s8 when exact, FP32 weights on an 8-bit grid next to fake-quantized activations as s8;
/// - matches `DQ -> op -> Q` for every operator with an INT8 kernel (`QDQFusion`: Conv,
///   MatMul, Gemm with their bias, activations and residual sum; Add, Sub, Mul; int8
///   pass-through of pooling and layout ops), requantizations squashed, the rest left FP32
///   with the reason.
///
/// The INT8 kernels compute `y_q = sat(round(f(sx * sw[oc] * acc + b) / sy) + zy)` with
/// `acc = sum (x_q - zx) * w_q` in s32: the QDQ graph's value up to float rounding of the
/// output scale, so within one quantization step of a float64 QDQ reference.
public struct QATConverter: Sendable {
    public init() {}

    /// How one quantizable node of the QDQ model runs.
    public struct NodeDecision: Sendable, Codable, Equatable {
        /// `"Conv 'conv1'"`.
        public var node: String
        public var opType: String
        /// `.int8` (an INT8 primitive or int8 pass-through) or `.fp32`.
        public var precision: Precision
        /// Why the node stays FP32 (nil for INT8 nodes).
        public var reason: String?
    }

    /// The result of ``convert(_:)``.
    public struct Conversion: Sendable {
        /// The model in the normalized QDQ form: standard ONNX (onnxruntime runs it) that the
        /// engine turns into INT8 kernels.
        public let model: Model
        /// Every node with a dequantized input or a quantized output that has an INT8 kernel
        /// (anchors, binaries, pass-through ops), in graph order.
        public let nodes: [NodeDecision]
        /// What each pass did, normalization and fusion included.
        public let passReports: [PassReport]

        /// The nodes that run INT8.
        public var int8Nodes: [NodeDecision] { nodes.filter { $0.precision == .int8 } }
        /// The nodes that stay FP32, with their reasons.
        public var fp32Nodes: [NodeDecision] { nodes.filter { $0.precision == .fp32 } }
    }

    /// Whether `model` holds QDQ nodes (QuantizeLinear or DequantizeLinear).
    public static func isQDQ(_ model: Model) -> Bool {
        model.graph.nodes.contains { $0.opType == "QuantizeLinear" || $0.opType == "DequantizeLinear" }
    }

    /// Validates and converts `model`.
    /// - Returns: the normalized QDQ model and the decision per node.
    /// - Throws: `GraphError` naming the node: `.unsupportedAttribute` for invalid Q/DQ
    ///   parameters (see the type's documentation), `.unsupportedOperator` for an operator the
    ///   engine cannot run, or the first pass's error.
    public func convert(_ model: Model) throws(GraphError) -> Conversion {
        for node in model.graph.nodes where !KernelRegistry.supports(node) {
            throw GraphError(.unsupportedOperator, "\(model.source): node \(node.label): operator \(node.opType) is not supported")
        }
        do {
            try AttributeValidation.validate(model.graph, opset: model.opsetVersion)
        } catch {
            throw GraphError(error.kind, "\(model.source): \(error.message)")
        }
        var normalized = model.graph
        var manager = PassManager()
        let prepare = PassPipeline(
            name: "qat-normalize", passes: [Canonicalization(), ConstantFolding(opset: model.opsetVersion), QDQNormalization()])
        try manager.run(prepare, on: &normalized)
        var engine = normalized
        var reports = manager.reports
        var engineManager = PassManager()
        try engineManager.run(Pipelines.engine(opset: model.opsetVersion), on: &engine)
        reports += engineManager.reports.filter { $0.pass == "qdq-fusion" }
        let fusion = engineManager.reports.first { $0.pass == "qdq-fusion" } ?? PassReport(pass: "qdq-fusion")
        let normalization = reports.first { $0.pass == "qdq-normalization" } ?? PassReport(pass: "qdq-normalization")
        let decisions = Self.decisions(normalized, fusion: fusion, normalization: normalization)
        let converted = Model(
            graph: normalized, opsetVersion: model.opsetVersion, opsetImports: model.opsetImports, metadata: model.metadata,
            producerName: model.producerName, producerVersion: model.producerVersion, irVersion: model.irVersion, source: model.source)
        return Conversion(model: converted, nodes: decisions, passReports: reports)
    }

    /// One decision per node of `g` that has an INT8 kernel and a dequantized input or a
    /// quantized output, read from the passes' reports (their lines begin with the node's label).
    static func decisions(_ g: Graph, fusion: PassReport, normalization: PassReport) -> [NodeDecision] {
        let producers = g.producers(), consumers = g.consumers()
        let quantizable: OpTraits = [.unitAnchor, .int8Binary, .int8PassThrough]
        var out: [NodeDecision] = []
        for n in g.nodes where !OpTraits.of(n, constants: { $0.flatMap { g.initializers[$0] } }).isDisjoint(with: quantizable) {
            let dequantizedInput = n.inputs.contains { v in producers[v].map { g.nodes[$0].opType == "DequantizeLinear" } ?? false }
            let quantizedOutput = n.outputs.contains { v in (consumers[v] ?? []).contains { g.nodes[$0].opType == "QuantizeLinear" } }
            let label = n.label
            let int8 = (fusion.applied + normalization.applied).contains { $0.hasPrefix(label + " ->") || $0.hasPrefix(label + " runs on") }
            guard dequantizedInput || quantizedOutput || int8 else { continue }
            if int8 {
                out.append(NodeDecision(node: label, opType: n.opType, precision: .int8))
                continue
            }
            let reason =
                (fusion.skipped + normalization.skipped).first { $0.hasPrefix(label + ":") }.map { String($0.dropFirst(label.count + 2)) }
                ?? (dequantizedInput
                    ? (quantizedOutput ? "its inputs are not all dequantized int8 tensors" : "its output is not quantized")
                    : "its inputs are not dequantized")
            out.append(NodeDecision(node: label, opType: n.opType, precision: .fp32, reason: reason))
        }
        return out
    }
}
