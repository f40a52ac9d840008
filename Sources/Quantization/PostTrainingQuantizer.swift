import Foundation

/// Post-training quantization (PTQ): an FP32 model and calibration samples in, an INT8 QDQ
/// model out (Paddle's Quant2 design: per-tensor activation scales from calibration, per-channel
/// s8 weights, u8 after non-negative activations, scales propagated through layout ops).
///
/// ```swift
/// let q = try PostTrainingQuantizer(.init(calibration: .entropy))
///     .quantize(model, calibrationData: CalibrationReader(directory: dir, inputNames: names))
/// try q.model.write(to: out)     // standard QDQ ONNX (opset >= 13); onnxruntime runs it too
/// print(q.report)
/// ```
public struct PostTrainingQuantizer: Sendable {
    public struct Options: Sendable {
        /// How activation ranges are chosen (`.entropy`, `.percentile(99.99)`, `.minMax`, ...).
        public var calibration: CalibrationMethod
        /// Per-output-channel (default) or per-tensor s8 weight scales.
        public var weights: WeightGranularity
        /// Node names and op types kept in FP32.
        public var excludeNodes: Set<String>
        public var excludeOpTypes: Set<String>
        /// At most this many calibration samples are used.
        public var maxSamples: Int?
        /// Report progress on standard error (a one-line bar when it is a terminal).
        public var progress: Bool

        public init(calibration: CalibrationMethod = .mse, weights: WeightGranularity = .perChannel,
                    excludeNodes: Set<String> = [], excludeOpTypes: Set<String> = [], maxSamples: Int? = nil,
                    progress: Bool = false) {
            self.calibration = calibration
            self.weights = weights
            self.excludeNodes = excludeNodes
            self.excludeOpTypes = excludeOpTypes
            self.maxSamples = maxSamples
            self.progress = progress
        }
    }

    public enum WeightGranularity: String, Sendable { case perChannel, perTensor }

    public let options: Options
    public init(_ options: Options = .init()) { self.options = options }

    /// A quantized model and what was decided.
    public struct Result: Sendable {
        public let model: Model
        public let table: CalibrationTable
        public let report: QuantizationReport
    }

    /// Calibrates on `calibrationData` and quantizes.
    /// - Parameter calibrationData: samples keyed by input name (f32, the model's shapes).
    /// - Throws: `QuantizationError` (an already quantized model, no samples, a sample whose
    ///   input is missing or of the wrong shape or type, all-NaN tensors), or `GraphError`.
    public func quantize<S: Sequence>(_ model: Model, calibrationData: S) throws -> Result where S.Element == [String: Tensor] {
        var iterator = calibrationData.makeIterator()
        return try quantize(model, next: { iterator.next() })
    }

    /// Calibrates on the samples `next` yields until it returns nil.
    public func quantize(_ model: Model, next: () throws -> [String: Tensor]?) throws -> Result {
        let prepared = try prepare(model)
        guard let first = try next() else { throw QuantizationError("no calibration samples") }
        let shapes = try prepared.shapes(first)
        let placement = prepared.placement(shapes: shapes, options: options)
        // Observe every tensor to quantize: the FP32 graph with those tensors as extra outputs.
        var observed = prepared.graph
        let existing = Set(observed.outputs.map(\.name))
        observed.outputs += placement.tensors.filter { !existing.contains($0) }.map { ValueInfo(name: $0, elementType: .f32, shape: nil) }
        let session = try InferenceSession(model: Model(graph: observed, opsetVersion: model.opsetVersion, source: model.source))
        var calibrator = Calibrator(tensors: placement.tensors)
        let limit = options.maxSamples ?? Int.max
        var sample: [String: Tensor]? = first
        var count = 0
        while let s = sample, count < limit {
            let outputs: [String: Tensor]
            do { outputs = try session.run(s) } catch {
                throw QuantizationError("calibration sample \(count + 1): \(error)")
            }
            calibrator.observe(outputs)
            count += 1
            if options.progress { Self.progress(count, limit == Int.max ? nil : limit) }
            sample = count < limit ? try next() : nil
        }
        if options.progress && isatty(2) != 0 { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        let table = calibrator.table(method: options.calibration, unsigned: placement.unsigned)
        return try quantize(model, prepared: prepared, placement: placement, table: table, shapes: shapes,
                            warnings: calibrator.warnings)
    }

    /// Quantizes with a saved calibration table (no calibration run); `sample` gives shapes.
    public func quantize(_ model: Model, table: CalibrationTable, sample: [String: Tensor]) throws -> Result {
        let prepared = try prepare(model)
        let shapes = try prepared.shapes(sample)
        let placement = prepared.placement(shapes: shapes, options: options)
        let missing = placement.tensors.filter { table.ranges[$0] == nil }
        guard missing.isEmpty else {
            throw QuantizationError("the calibration table has no range for \(missing.count) tensors, e.g. '\(missing[0])': it was made for another model or other options")
        }
        return try quantize(model, prepared: prepared, placement: placement, table: table, shapes: shapes, warnings: [])
    }

    // MARK: steps

    /// The FP32 graph the QDQ model is written on (BatchNorm and affine ops folded into Conv),
    /// and the analysis graph (activation patterns fused) placement looks at.
    struct Prepared {
        var graph: Graph
        var analysis: Graph
        var model: Model

        func shapes(_ sample: [String: Tensor]) throws -> [String: [Int]] {
            let session = try InferenceSession(model: Model(graph: graph, opsetVersion: model.opsetVersion, source: model.source),
                                               options: .init(optimize: false))
            return try session.valueShapes(for: sample)
        }

        func placement(shapes: [String: [Int]], options: Options) -> QuantizationPlacement {
            QuantizationPlacement(analysis, shapes: shapes, excludeNodes: options.excludeNodes, excludeOpTypes: options.excludeOpTypes)
        }
    }

    func prepare(_ model: Model) throws -> Prepared {
        if let q = model.graph.nodes.first(where: { ["QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"].contains($0.opType) }) {
            throw QuantizationError("\(model.source) is already quantized (node \(q.label)); give the FP32 model")
        }
        var g = model.graph
        _ = try ConvScaleShiftFolding().apply(&g)
        var analysis = g
        _ = try ActivationPatternFusion().apply(&analysis)
        return Prepared(graph: g, analysis: analysis, model: model)
    }

    func quantize(_ model: Model, prepared: Prepared, placement: QuantizationPlacement, table: CalibrationTable,
                  shapes: [String: [Int]], warnings: [String]) throws -> Result {
        // One range per scale-propagation group: the union of its members'.
        var params: [String: QuantParams] = [:]
        for (root, members) in placement.groups {
            let ranges = members.compactMap { table.ranges[$0] }
            guard let lo = ranges.map(\.min).min(), let hi = ranges.map(\.max).max() else { continue }
            let unsigned = members.allSatisfy { placement.unsigned.contains($0) }
            let p = Self.params(min: lo, max: hi, unsigned: unsigned)
            params[root] = p
            for m in members { params[m] = p }
        }
        var g = prepared.graph
        var reports: [PassReport] = []
        reports.append(try OpsetUpgrade(from: model.opsetVersion, shapes: shapes).apply(&g))
        reports.append(try QDQInsertion(placement: placement, params: params).apply(&g))
        var imports = model.opsetImports
        let opset = max(13, model.opsetVersion)
        imports[""] = opset
        let q = Model(graph: g, opsetVersion: opset, opsetImports: imports, metadata: model.metadata,
                      producerName: "swift-dnnl-quantization", producerVersion: QuantizationLibrary.version,
                      irVersion: max(model.irVersion, 7), source: model.source)
        let report = QuantizationReport(method: options.calibration, placement: placement, params: params,
                                        passes: reports, warnings: warnings, sampleCount: table.sampleCount)
        return Result(model: q, table: table, report: report)
    }

    /// Symmetric parameters covering `[min, max]`: u8 `[0, max]` with scale max/255, or s8
    /// with scale max(|min|, |max|)/127; zero point 0 (oneDNN's fast path, PERF_NOTES.md).
    static func params(min: Float, max: Float, unsigned: Bool) -> QuantParams {
        let t = unsigned ? Swift.max(max, 0) : Swift.max(abs(min), abs(max))
        let safe = t > 0 && t.isFinite ? t : 1e-6
        return QuantParams(scale: safe / (unsigned ? 255 : 127), zeroPoint: 0, type: unsigned ? .u8 : .s8)
    }

    static func progress(_ done: Int, _ total: Int?) {
        guard isatty(2) != 0 else { return }
        let line: String
        if let total {
            let width = 30, filled = width * done / Swift.max(total, 1)
            line = "\rcalibrating [" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] \(done)/\(total)"
        } else {
            line = "\rcalibrating: \(done) samples"
        }
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }
}

/// An error of the quantizer, naming the model, sample or tensor at fault.
public struct QuantizationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// What the quantizer decided, per node and tensor.
public struct QuantizationReport: Sendable, CustomStringConvertible {
    public struct TensorEntry: Sendable, Codable {
        public var tensor: String
        public var type: String
        public var scale: Float
        public var zeroPoint: Int
    }
    public struct NodeEntry: Sendable, Codable {
        public var node: String
        public var precision: String
        public var reason: String?
    }

    public let method: CalibrationMethod
    public let sampleCount: Int
    public let tensors: [TensorEntry]
    public let nodes: [NodeEntry]
    public let passes: [PassReport]
    public let warnings: [String]
    /// Output SQNR (dB) of the quantized model against FP32, by output name (set by callers
    /// that evaluate the model).
    public var outputSQNR: [String: Double] = [:]

    init(method: CalibrationMethod, placement: QuantizationPlacement, params: [String: QuantParams],
         passes: [PassReport], warnings: [String], sampleCount: Int) {
        self.method = method
        self.sampleCount = sampleCount
        self.passes = passes
        self.warnings = warnings
        tensors = placement.tensors.compactMap { t in
            params[t].map { TensorEntry(tensor: t, type: $0.type.rawValue, scale: $0.scale, zeroPoint: $0.zeroPoint) }
        }
        var n: [NodeEntry] = []
        for u in placement.units {
            n.append(NodeEntry(node: u.anchor, precision: "int8", reason: u.nodes.count > 1 ? "fused with \(u.nodes.dropFirst().joined(separator: ", "))" : nil))
        }
        for p in placement.passThrough { n.append(NodeEntry(node: p, precision: "int8", reason: "passes int8 through")) }
        for b in placement.binaries { n.append(NodeEntry(node: b, precision: "int8", reason: "int8 binary")) }
        for (label, reason) in placement.fp32Reasons.sorted(by: { $0.key < $1.key }) {
            n.append(NodeEntry(node: label, precision: "fp32", reason: reason))
        }
        nodes = n
    }

    public var description: String {
        let int8 = nodes.filter { $0.precision == "int8" }.count
        var lines = ["quantization: \(method), \(sampleCount) calibration samples, \(int8) nodes INT8, \(nodes.count - int8) FP32, \(tensors.count) tensors quantized"]
        for w in warnings { lines.append("warning: \(w)") }
        for (k, v) in outputSQNR.sorted(by: { $0.key < $1.key }) { lines.append(String(format: "output %@: SQNR %.1f dB", k, v)) }
        return lines.joined(separator: "\n")
    }

    /// The report as JSON (per node precision and reason, per tensor scale, warnings, SQNR).
    public func jsonData() throws -> Data {
        struct Doc: Codable {
            var method: String; var samples: Int; var nodes: [NodeEntry]; var tensors: [TensorEntry]
            var passes: [String: [String]]; var warnings: [String]; var outputSQNR: [String: Double]
        }
        let doc = Doc(method: method.description, samples: sampleCount, nodes: nodes, tensors: tensors,
                      passes: Dictionary(passes.map { ($0.pass, $0.applied + $0.skipped.map { "skipped: " + $0 }) }, uniquingKeysWith: { $0 + $1 }),
                      warnings: warnings, outputSQNR: outputSQNR)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(doc)
    }
}
