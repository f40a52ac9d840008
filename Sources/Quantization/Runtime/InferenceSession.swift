import DNNL
import Foundation
import Synchronization

/// Options of an inference session.
public struct SessionOptions: Sendable {
    /// OpenMP threads for the primitives (set on the thread that runs each call).
    public var threads: Int
    /// Run the FP32 graph optimizations (BatchNorm folding, activation and post-op fusion).
    public var optimize: Bool
    /// Names of optimization passes to skip (also read from the environment variable
    /// `DNNL_QUANT_DISABLE_PASSES`, comma separated), like onnxruntime's disabled optimizers.
    public var disabledPasses: Set<String>

    /// How INT8 nodes run on a CPU without VNNI (AVX2, AVX-512 before Cascade Lake), where
    /// oneDNN 2.6's u8 x s8 kernels add pairs of products into a saturating s16
    /// (ONEDNN_INT8_NOTES A4, ``Int8Rule``).
    public enum Int8WithoutVNNI: String, Sendable, CaseIterable {
        /// Every node computes what its QDQ graph computes (within one output step): weights
        /// within 7 bits (|q| <= 63) and s8 sources shifted to u8 run on INT8 primitives; a
        /// node with wider weights runs in FP32 on its dequantized weights, reported as an
        /// FP32 fallback. The default: a QAT model's weights are fixed at full 8-bit range.
        case exact
        /// Weights wider than 7 bits are re-quantized to 7 bits per output channel and run on
        /// INT8 primitives: faster, with twice the weight rounding error.
        case sevenBitWeights
    }

    /// See ``Int8WithoutVNNI``; no effect on CPUs with VNNI.
    public var int8WithoutVNNI: Int8WithoutVNNI = .exact

    public init(threads: Int = 1, optimize: Bool = true, disabledPasses: Set<String> = []) {
        self.threads = threads
        self.optimize = optimize
        let env = ProcessInfo.processInfo.environment["DNNL_QUANT_DISABLE_PASSES"] ?? ""
        self.disabledPasses = disabledPasses.union(env.split(separator: ",").map(String.init))
    }
}

/// Runs a model on oneDNN.
///
/// At creation the graph is checked (every operator supported) and optimized. The first `run`
/// with a set of input shapes compiles a plan for them: shapes are inferred, shape arithmetic
/// is folded, oneDNN primitives are created with layouts they choose, weights are reordered
/// once and buffers are assigned; later runs with the same shapes reuse it, and new shapes
/// (another batch size or text-line width) get a plan of their own.
///
/// `Sendable`: the stream and the plans live in a `Mutex`, so a session may be shared between
/// threads and tasks; calls run one at a time, on whichever thread calls (oneDNN primitives use
/// the user scratchpad mode, so they hold no per-thread state). Several sessions may run at once.
public final class InferenceSession: Sendable {
    public let model: Model
    public let options: SessionOptions
    /// The graph after optimization passes.
    public let graph: Graph
    /// What each optimization pass did.
    public let passReports: [PassReport]
    /// What calls change, guarded by one lock: the stream and the compiled plans (at most
    /// `maxPlans`, the oldest dropped first).
    private struct State {
        let stream: DNNL.Stream
        var plans: [[Int]: Plan] = [:]
        var planOrder: [[Int]] = []
    }
    private let state: Mutex<State>
    /// Graph inputs that set shapes (``RuntimeEvaluation/shapeSettingInputs(of:)``): constants
    /// of the plan, which is made per value.
    private let specialized: Set<String>
    private static let maxPlans = 8

    /// - Throws: `GraphError.unsupportedOperator` naming the first node this library cannot
    ///   run (name, op type, opset), or `.runtime` when oneDNN is unusable.
    public init(model: Model, options: SessionOptions = .init()) throws(GraphError) {
        self.model = model
        self.options = options
        guard (1...Platform.maxThreadCount).contains(options.threads) else {
            throw GraphError(.badInput, "threads must be in 1...\(Platform.maxThreadCount) (4 per CPU), got \(options.threads)")
        }
        for node in model.graph.nodes where !KernelRegistry.supports(node) {
            let domain = node.domain.isEmpty ? "" : " in domain '\(node.domain)'"
            throw GraphError(
                .unsupportedOperator,
                "\(model.source): node \(node.label): operator \(node.opType)\(domain) (opset \(model.opsetVersion)) is not supported")
        }
        do { try AttributeValidation.validate(model.graph, opset: model.opsetVersion) } catch {
            throw GraphError(error.kind, "\(model.source): \(error.message)")
        }
        // Attributes no version of the operator defines (a typo, another tool's extension): refused
        // like onnxruntime does, rather than ignored.
        for node in model.graph.nodes where node.domain.isEmpty || node.domain == "ai.onnx" {
            guard let known = OperatorSchemas.attributes[node.opType] else { continue }
            if let unknown = node.attributes.keys.sorted().first(where: { !known.contains($0) }) {
                throw GraphError(
                    .invalidModel,
                    "\(model.source): node \(node.label): \(node.opType) has no attribute '\(unknown)' (ONNX defines: \(known.sorted().joined(separator: ", ")))"
                )
            }
        }
        var g = model.graph
        var manager = PassManager(disabled: options.disabledPasses)
        if options.optimize { try manager.run(Pipelines.engine(opset: model.opsetVersion), on: &g) }
        graph = g
        passReports = manager.reports
        specialized = RuntimeEvaluation.shapeSettingInputs(of: g)
        do {
            state = Mutex(State(stream: try DNNL.Stream(engine: Engine.shared())))
        } catch {
            throw GraphError(.runtime, "\(model.source): oneDNN cannot run here: \(error)", dnnlError: error)
        }
    }

    /// `"int8"` when some node runs on INT8 kernels, else `"fp32"`.
    public var precision: String {
        graph.nodes.contains { $0.domain == FusedOps.domain && $0.opType.hasPrefix("Q") } ? "int8" : "fp32"
    }

    /// Runs the model.
    /// - Parameter feeds: one tensor per graph input, by name; f32 unless the model declares
    ///   another element type. Shapes must match the declared rank and fixed dims.
    /// - Returns: every graph output by name, in row-major layout.
    /// - Throws: `GraphError.badInput` naming the input and what is wrong, or an error from
    ///   compiling a plan for new shapes.
    public func run(_ feeds: [String: Tensor]) throws(GraphError) -> [String: Tensor] {
        try validate(feeds)
        return try state.withLock { (s) throws(GraphError) -> [String: Tensor] in
            Platform.setThreadCount(options.threads)
            return try plan(for: feeds, &s).run(feeds, stream: s.stream)
        }
    }

    /// How each node runs for inputs of these shapes (compiling the plan if needed): one entry
    /// per emitted step group, e.g. `FusedConv 'c1'`, `brgconv:avx512_core (f32)+relu`, `.fp32`.
    /// Nodes folded at plan time (shape arithmetic) have no entry.
    public func nodeReport(for feeds: [String: Tensor]) throws(GraphError) -> [NodeExecution] {
        try validate(feeds)
        return try state.withLock { (s) throws(GraphError) in try plan(for: feeds, &s).notes }
    }

    /// The label of every step of the plan for inputs of these shapes, in run order (primitives,
    /// including reorders such as `... residual copy`, and Swift kernels). For tests.
    func stepLabels(for feeds: [String: Tensor]) throws(GraphError) -> [String] {
        try validate(feeds)
        return try state.withLock { (s) throws(GraphError) in try plan(for: feeds, &s).stepLabels }
    }

    /// The inferred shape of every value of the optimized graph for inputs of these shapes.
    public func valueShapes(for feeds: [String: Tensor]) throws(GraphError) -> [String: [Int]] {
        try validate(feeds)
        return try state.withLock { (s) throws(GraphError) in try plan(for: feeds, &s).valueShapes }
    }

    /// Bytes of the buffers of the plan for these input shapes (activations after reuse,
    /// weights, scratchpad).
    public func planByteCount(for feeds: [String: Tensor]) throws(GraphError) -> Int {
        try validate(feeds)
        return try state.withLock { (s) throws(GraphError) in try plan(for: feeds, &s).byteCount }
    }

    /// The plan for these input shapes (compiled and cached on first use).
    private func plan(for feeds: [String: Tensor], _ s: inout State) throws(GraphError) -> Plan {
        // Inputs that set shapes (a Reshape's shape, a Slice's starts, ...) are part of the key:
        // the plan is made for their values.
        var key = graph.inputs.flatMap { (feeds[$0.name]?.shape ?? []) + [-1] }
        for name in specialized {
            key += (feeds[name]?.doubleValues() ?? []).map { Int(truncatingIfNeeded: $0.bitPattern) } + [-2]
        }
        if let p = s.plans[key] { return p }
        let p = try compile(shapes: feeds, stream: s.stream)
        s.plans[key] = p
        s.planOrder.append(key)
        if s.planOrder.count > Self.maxPlans { s.plans[s.planOrder.removeFirst()] = nil }
        return p
    }

    /// Compiles a plan for the shapes (and element types) of `inputs`.
    private func compile(shapes inputs: [String: Tensor], stream: DNNL.Stream) throws(GraphError) -> Plan {
        // The stream's engine: `Engine.shared()`, which succeeded when the session was made.
        let l = Lowering(graph: graph, opset: model.opsetVersion, engine: stream.engine, withoutVNNI: options.int8WithoutVNNI)
        for (name, t) in graph.initializers { l.define(name, .constant(t)) }
        var inputSlots: [String: Int] = [:]
        for info in graph.inputs {
            guard let t = inputs[info.name] else { throw GraphError(.badInput, "\(model.source): input '\(info.name)' is missing") }
            if specialized.contains(info.name) {
                l.define(info.name, .constant(t))
                continue
            }
            let s = try l.newSlot(info.name, shape: t.shape, type: t.elementType)
            l.graphInputSlots.insert(s)
            inputSlots[info.name] = s
            l.define(info.name, .slot(s))
        }
        for node in graph.nodes where !l.absorbed.contains(node.name) {
            l.node = node
            try KernelRegistry.lower(node, l, opset: model.opsetVersion)
        }
        l.node = nil
        var outputs: [(String, LoweredValue)] = []
        for o in graph.outputs {
            var v = try l.value(o.name)
            if case .slot(let s) = v {
                var p = try l.plain(s)
                if l.isGraphInput(p) || l.slots[p].persistent {
                    // An output that is an input or a constant buffer: copy it out.
                    let c = try l.newSlot(o.name, shape: l.slots[p].shape, type: l.slots[p].elementType)
                    try l.reorder(from: p, to: c)
                    p = c
                }
                v = .slot(p)
            }
            outputs.append((o.name, v))
        }
        return try Plan(l, inputs: inputSlots, outputs: outputs, stream: stream)
    }

    private func validate(_ feeds: [String: Tensor]) throws(GraphError) {
        let names = Set(graph.inputs.map(\.name))
        for name in feeds.keys where !names.contains(name) {
            throw GraphError(
                .badInput, "\(model.source): '\(name)' is not an input of the model (inputs: \(graph.inputs.map(\.name).joined(separator: ", ")))")
        }
        for info in graph.inputs {
            guard let t = feeds[info.name] else {
                throw GraphError(.badInput, "\(model.source): input '\(info.name)' is missing")
            }
            let expected = info.elementType ?? .f32
            guard t.elementType == expected else {
                throw GraphError(.badInput, "\(model.source): input '\(info.name)' is \(t.elementType), the model declares \(expected)")
            }
            if let shape = info.shape {
                guard shape.count == t.shape.count else {
                    throw GraphError(
                        .badInput,
                        "\(model.source): input '\(info.name)' has rank \(t.shape.count) (shape \(t.shape)), the model declares rank \(shape.count) \(shape)"
                    )
                }
                for (i, (d, v)) in zip(shape, t.shape).enumerated() {
                    if let f = d.value, f != v {
                        throw GraphError(
                            .badInput, "\(model.source): input '\(info.name)' dim \(i) is \(v), the model declares \(f) (shape \(shape))")
                    }
                }
            }
        }
    }
}

extension NodeExecution {
    /// True for the step that records an INT8 node running in FP32 because oneDNN has no INT8
    /// kernel for it: `detail` is `"FP32 fallback: "` and oneDNN's answer (call, status, shapes).
    public var isFP32Fallback: Bool { precision == .fp32 && detail.hasPrefix(Int8Kernels.fallbackNote) }
}
