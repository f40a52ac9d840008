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
        /// Per-output-channel (default) or per-tensor s8 weight scales (symmetric, zero point 0).
        public var weights: WeightGranularity
        /// Node names and op types kept in FP32.
        public var excludeNodes: Set<String>
        public var excludeOpTypes: Set<String>
        /// At most this many calibration samples are used.
        public var maxSamples: Int?
        /// Report progress on standard error (a one-line bar when it is a terminal).
        public var progress: Bool
        /// Minimum SQNR (dB) of every model output against FP32 on the calibration samples:
        /// while it is not met, the quantized unit whose output has the lowest SQNR is kept
        /// FP32 and the model is quantized again (at most `maxFallbacks` times).
        public var accuracyBudget: Double?
        public var maxFallbacks: Int
        /// Calibration samples (at most) the SQNR analysis runs on.
        public var analysisSamples: Int
        /// When set, the graph after each pass is written there as `NN-pass.dot` (Graphviz).
        public var dumpDirectory: URL?
        /// An average pool runs in INT8 when its output SQNR on the analysis samples is at most
        /// this many dB (default 0: not below) under keeping it FP32; nil keeps them all FP32.
        public var averagePoolMaxSQNRLoss: Double?

        public init(
            calibration: CalibrationMethod = .mse, weights: WeightGranularity = .perChannel,
            excludeNodes: Set<String> = [], excludeOpTypes: Set<String> = [], maxSamples: Int? = nil,
            progress: Bool = false, accuracyBudget: Double? = nil, maxFallbacks: Int = 20,
            analysisSamples: Int = 8, averagePoolMaxSQNRLoss: Double? = 0
        ) {
            self.averagePoolMaxSQNRLoss = averagePoolMaxSQNRLoss
            self.accuracyBudget = accuracyBudget
            self.maxFallbacks = maxFallbacks
            self.analysisSamples = analysisSamples
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
        public var report: QuantizationReport
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
    /// - Parameter describe: names sample `i` (0-based, in the order `next` yields them) in
    ///   warnings and errors, e.g. by its file.
    public func quantize(
        _ model: Model, describe: (Int) -> String = { "calibration sample \($0 + 1)" },
        next: () throws -> [String: Tensor]?
    ) throws -> Result {
        let prepared = try prepare(model)
        // Samples with NaN or Inf inputs are left out with a warning; none left is an error.
        var index = -1
        var skipped: [String] = []
        func nextFinite() throws -> [String: Tensor]? {
            while let s = try next() {
                index += 1
                if let bad = s.first(where: { $0.value.elementType == .f32 && $0.value.floatValues().contains { !$0.isFinite } }) {
                    skipped.append("\(describe(index)): input '\(bad.key)' has NaN or Inf values; sample left out")
                    continue
                }
                return s
            }
            return nil
        }
        guard let first = try nextFinite() else {
            throw QuantizationError(
                skipped.isEmpty
                    ? "no calibration samples"
                    : "no usable calibration samples: \(skipped.joined(separator: "; "))")
        }
        let shapes = try prepared.shapes(first)
        // Every average pool that may run INT8 does in this placement (the superset of the
        // tensors to calibrate); AveragePoolPrecision then decides on the samples.
        let placement = prepared.placement(shapes: shapes, options: options, averagePools: nil)
        // Observe every tensor to quantize: the FP32 graph with those tensors as extra outputs.
        var observed = prepared.graph
        let existing = Set(observed.outputs.map(\.name))
        observed.outputs += placement.tensors.filter { !existing.contains($0) }.map { ValueInfo(name: $0, elementType: .f32, shape: nil) }
        let session = try InferenceSession(model: Model(graph: observed, opsetVersion: model.opsetVersion, source: model.source))
        var calibrator = Calibrator(tensors: placement.tensors)
        let limit = options.maxSamples ?? Int.max
        var sample: [String: Tensor]? = first
        var count = 0
        var kept: [[String: Tensor]] = []
        var inputMaxima: [String: [(sample: Int, absMax: Double)]] = [:]
        while let s = sample, count < limit {
            if kept.count < options.analysisSamples { kept.append(s) }
            let outputs: [String: Tensor]
            do { outputs = try session.run(s) } catch {
                throw QuantizationError("\(describe(index)): \(error)")
            }
            calibrator.observe(outputs)
            for (name, t) in s where t.elementType == .f32 {
                inputMaxima[name, default: []].append((index, Double(t.floatValues().reduce(Float(0)) { max($0, abs($1)) })))
            }
            count += 1
            if options.progress { Self.progress(count, limit == Int.max ? nil : limit) }
            sample = count < limit ? try nextFinite() : nil
        }
        if options.progress && isatty(2) != 0 { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        let table = calibrator.table(method: options.calibration, unsigned: placement.unsigned)
        // A tensor that was zero on every sample gets a tiny scale: real inputs would saturate.
        var zeroWarnings: [String] = []
        for t in placement.tensors {
            if let o = calibrator.observers[t], o.count > 0, o.absMax == 0 {
                zeroWarnings.append("tensor '\(t)' was zero on every calibration sample: its scale is arbitrary; calibrate on representative data")
            }
        }
        let observedRanges = calibrator.table(method: .minMax, unsigned: [])
        let pools = try AveragePoolPrecision.decide(
            candidates: placement.averagePoolCandidates, graph: prepared.graph, opset: model.opsetVersion,
            params: Self.groupParams(placement, table: table, observed: observedRanges),
            table: table, observed: observedRanges, samples: kept, maxLoss: options.averagePoolMaxSQNRLoss)
        return try quantizeWithinBudget(
            model, prepared: prepared, shapes: shapes, table: table, averagePools: pools,
            observed: observedRanges,
            samples: kept, warnings: skipped + zeroWarnings + Self.outlierWarnings(inputMaxima, describe: describe) + calibrator.warnings)
    }

    /// Warnings for samples whose largest input magnitude is over 1000x the median of the
    /// samples' maxima: such a sample sets the input's scale alone (min/max and histogram
    /// ranges), and every other sample then quantizes to a few levels.
    static func outlierWarnings(_ maxima: [String: [(sample: Int, absMax: Double)]], describe: (Int) -> String) -> [String] {
        var warnings: [String] = []
        for (name, list) in maxima.sorted(by: { $0.key < $1.key }) where list.count >= 3 {
            let sorted = list.map(\.absMax).sorted()
            let median = sorted[(sorted.count - 1) / 2]
            guard median > 0 else { continue }
            for entry in list where entry.absMax > 1000 * median {
                warnings.append(
                    String(
                        format:
                            "%@: input '%@' reaches %.3g, %.0fx the median of the samples' maxima (%.3g): an outlier sample sets the input scale; "
                            + "remove it or check the data", describe(entry.sample), name, entry.absMax, entry.absMax / median, median))
            }
        }
        return warnings
    }

    /// Quantizes; with samples, measures SQNR per quantized tensor and per output, and keeps
    /// the worst units FP32 until `accuracyBudget` is met.
    func quantizeWithinBudget(
        _ model: Model, prepared: Prepared, shapes: [String: [Int]], table: CalibrationTable,
        averagePools: AveragePoolPrecision.Decisions = .init(),
        observed: CalibrationTable?, samples: [[String: Tensor]], warnings: [String]
    ) throws -> Result {
        var options = self.options
        var fallbacks: [String] = []
        while true {
            let placement = prepared.placement(shapes: shapes, options: options, averagePools: averagePools)
            var result = try quantize(
                model, prepared: prepared, placement: placement, table: table, shapes: shapes,
                observed: observed, warnings: warnings)
            guard !samples.isEmpty else { return result }
            let sqnr = try Self.analyse(fp32: prepared, quantized: result.model, tensors: placement.tensors, samples: samples)
            result.report.tensorSQNR = sqnr.tensors
            result.report.outputSQNR = sqnr.outputs
            result.report.fallbacks = fallbacks
            guard let budget = options.accuracyBudget, let worst = sqnr.outputs.values.min(), worst < budget,
                fallbacks.count < options.maxFallbacks
            else { return result }
            // Keep FP32 the unit that loses the most accuracy itself: the largest drop from the
            // SQNR of its input to that of its output (errors accumulate, so the output SQNR
            // alone would blame the last units).
            let candidates = placement.units.filter { sqnr.tensors[$0.output] != nil }
            func loss(_ u: QuantizationPlacement.Unit) -> Double {
                (sqnr.tensors[u.input] ?? 100) - sqnr.tensors[u.output]!
            }
            guard let unit = candidates.max(by: { loss($0) < loss($1) }) else { return result }
            options.excludeNodes.insert(unit.anchor)
            fallbacks.append(
                String(
                    format: "%@ (loses %.1f dB, output SQNR %.1f dB; model output %.1f dB < budget %.1f dB)",
                    unit.anchor, loss(unit), sqnr.tensors[unit.output]!, worst, budget))
        }
    }

    /// SQNR in dB, `10 log10(sum x^2 / sum (x - y)^2)`, of each quantized tensor (its
    /// dequantized INT8 value against FP32) over `samples`, and of each model output (the lower
    /// of the pooled value and the median per-sample value).
    static func analyse(
        fp32: Prepared, quantized: Model, tensors: [String],
        samples: [[String: Tensor]]
    ) throws -> (tensors: [String: Double], outputs: [String: Double]) {
        let outputs = fp32.graph.outputs.map(\.name)
        var g32 = fp32.graph, g8 = quantized.graph
        let dequantized = g8.dequantizedValues()
        let pairs = tensors.compactMap { t in dequantized[t].map { (t, $0) } }
        let existing32 = Set(g32.outputs.map(\.name))
        g32.outputs += pairs.map(\.0).filter { !existing32.contains($0) }.map { ValueInfo(name: $0, elementType: .f32, shape: nil) }
        g8.outputs += pairs.map { ValueInfo(name: $0.1, elementType: .f32, shape: nil) }
        let s32 = try InferenceSession(model: Model(graph: g32, opsetVersion: fp32.model.opsetVersion, source: fp32.model.source))
        let s8 = try InferenceSession(model: Model(graph: g8, opsetVersion: quantized.opsetVersion, source: quantized.source))
        var signal: [String: Double] = [:], noise: [String: Double] = [:]
        func add(_ key: String, _ a: Tensor?, _ b: Tensor?) {
            guard let a, let b, a.count == b.count, a.elementType == .f32, b.elementType == .f32 else { return }
            let x = a.floatValues(), y = b.floatValues()
            var sx = 0.0, se = 0.0
            for i in 0..<x.count { let d = Double(x[i]) - Double(y[i]); sx += Double(x[i]) * Double(x[i]); se += d * d }
            signal[key, default: 0] += sx
            noise[key, default: 0] += se
        }
        func db(_ sx: Double, _ se: Double) -> Double { se == 0 ? 200 : 10 * log10(max(sx, 1e-30) / se) }
        // Per-sample output SQNR too: one sample with huge values (an outlier) dominates the
        // pooled sums, and would hide outputs that are wrong on every other sample.
        var perSample: [String: [Double]] = [:]
        for s in samples {
            let r32 = try s32.run(s), r8 = try s8.run(s)
            for (t, dq) in pairs { add("t:" + t, r32[t], r8[dq]) }
            for o in outputs {
                let before = (signal["o:" + o] ?? 0, noise["o:" + o] ?? 0)
                add("o:" + o, r32[o], r8[o])
                if let sx = signal["o:" + o], let se = noise["o:" + o] { perSample[o, default: []].append(db(sx - before.0, se - before.1)) }
            }
        }
        func pooled(_ key: String) -> Double? {
            guard let sx = signal[key], let se = noise[key] else { return nil }
            return db(sx, se)
        }
        func output(_ o: String) -> Double? {
            guard let p = pooled("o:" + o) else { return nil }
            let sorted = (perSample[o] ?? []).sorted()
            return sorted.isEmpty ? p : min(p, sorted[(sorted.count - 1) / 2])
        }
        return (
            Dictionary(pairs.compactMap { p in pooled("t:" + p.0).map { (p.0, $0) } }, uniquingKeysWith: { a, _ in a }),
            Dictionary(outputs.compactMap { o in output(o).map { (o, $0) } }, uniquingKeysWith: { a, _ in a })
        )
    }

    /// Quantizes with a saved calibration table (no calibration run); `sample` gives shapes.
    public func quantize(_ model: Model, table: CalibrationTable, sample: [String: Tensor]) throws -> Result {
        let prepared = try prepare(model)
        let shapes = try prepared.shapes(sample)
        let placement = prepared.placement(shapes: shapes, options: options)
        let missing = placement.tensors.filter { table.ranges[$0] == nil }
        guard missing.isEmpty else {
            throw QuantizationError(
                "the calibration table has no range for \(missing.count) tensors, e.g. '\(missing[0])': it was made for another model or other options"
            )
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
        /// The passes run so far (dump numbering continues from them).
        var manager: PassManager

        func shapes(_ sample: [String: Tensor]) throws -> [String: [Int]] {
            let session = try InferenceSession(
                model: Model(graph: graph, opsetVersion: model.opsetVersion, source: model.source),
                options: .init(optimize: false))
            return try session.valueShapes(for: sample)
        }

        func placement(
            shapes: [String: [Int]], options: Options,
            averagePools: AveragePoolPrecision.Decisions? = .init()
        ) -> QuantizationPlacement {
            QuantizationPlacement(
                analysis, shapes: shapes, excludeNodes: options.excludeNodes, excludeOpTypes: options.excludeOpTypes,
                averagePools: averagePools)
        }
    }

    func prepare(_ model: Model) throws -> Prepared {
        if let q = model.graph.nodes.first(where: {
            ["QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"].contains($0.opType)
        }) {
            throw QuantizationError("\(model.source) is already quantized (node \(q.label)); give the FP32 model")
        }
        var manager = PassManager(dumpDirectory: options.dumpDirectory)
        var g = model.graph
        try manager.run(Pipelines.ptqPrepare(opset: model.opsetVersion), on: &g)
        var analysis = g
        try manager.run(Pipelines.ptqAnalysis, on: &analysis)
        return Prepared(graph: g, analysis: analysis, model: model, manager: manager)
    }

    func quantize(
        _ model: Model, prepared: Prepared, placement: QuantizationPlacement, table: CalibrationTable,
        shapes: [String: [Int]], observed: CalibrationTable? = nil, warnings: [String]
    ) throws -> Result {
        let params = Self.groupParams(placement, table: table, observed: observed)
        var g = prepared.graph
        var manager = prepared.manager
        let reports = try manager.run(
            Pipelines.qdqWrite(
                placement: placement, params: params, opset: model.opsetVersion,
                shapes: shapes, perChannelWeights: options.weights == .perChannel), on: &g)
        if options.dumpDirectory != nil {
            // What the INT8 engine makes of it.
            var engine = g
            try manager.run(Pipelines.engine(opset: max(13, model.opsetVersion)), on: &engine)
        }
        var imports = model.opsetImports
        let opset = max(13, model.opsetVersion)
        imports[""] = opset
        let q = Model(
            graph: g, opsetVersion: opset, opsetImports: imports, metadata: model.metadata,
            producerName: "swift-dnnl-quantization", producerVersion: QuantizationLibrary.version,
            irVersion: max(model.irVersion, 7), source: model.source)
        let report = QuantizationReport(
            method: options.calibration, placement: placement, params: params,
            passes: reports, warnings: warnings, sampleCount: table.sampleCount)
        return Result(model: q, table: table, report: report)
    }

    /// The parameters of every quantized tensor: one range per scale-propagation group, the
    /// union of its members'.
    static func groupParams(_ placement: QuantizationPlacement, table: CalibrationTable, observed: CalibrationTable?) -> [String: QuantParams] {
        var params: [String: QuantParams] = [:]
        for (root, members) in placement.groups {
            let leaders = members.filter { !placement.rangeFollowers.contains($0) }
            let ranges = (leaders.isEmpty ? members : leaders).compactMap { table.ranges[$0] }
            guard let lo = ranges.map(\.min).min(), let hi = ranges.map(\.max).max() else { continue }
            let unsigned = members.allSatisfy { placement.unsigned.contains($0) }
            // The observed extremes show skewed signed tensors (HardSwish: [-0.375, large]).
            // Not for the outputs of INT8 binaries (no zero points in oneDNN's binary).
            let symmetric = members.contains { placement.zeroPointFree.contains($0) }
            let seenMin = symmetric ? nil : observed.flatMap { o in members.compactMap { o.ranges[$0]?.min }.min() }
            let p = Self.params(min: lo, max: hi, unsigned: unsigned, observedMin: seenMin)
            params[root] = p
            for m in members { params[m] = p }
        }
        return params
    }

    /// Parameters covering `[min, max]`, zero point 0 where possible (oneDNN's fast path,
    /// PERF_NOTES.md): u8 `[0, max]` with scale max/255 for non-negative tensors; s8 with scale
    /// max(|min|, |max|)/127 for signed ones, unless the observed minimum shows a skewed range
    /// (negative part under a quarter of the positive, as after HardSwish), which gets u8 with a
    /// zero point over `[max(observedMin, -t), t]` (one more bit where the values are).
    static func params(min: Float, max: Float, unsigned: Bool, observedMin: Float? = nil) -> QuantParams {
        let t = unsigned ? Swift.max(max, 0) : Swift.max(abs(min), abs(max))
        let safe = t > 0 && t.isFinite ? t : 1e-6
        if unsigned { return QuantParams(scale: safe / 255, zeroPoint: 0, type: .u8) }
        if let m = observedMin, m < 0, -m < 0.25 * safe {
            let lo = Swift.max(m, -safe)
            let scale = (safe - lo) / 255
            let zp = Swift.min(Swift.max(Int((-lo / scale).rounded(.toNearestOrEven)), 0), 255)
            return QuantParams(scale: scale, zeroPoint: zp, type: .u8)
        }
        return QuantParams(scale: safe / 127, zeroPoint: 0, type: .s8)
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
        /// For a quantized unit: its anchor's op type (Conv, MatMul, Gemm) and weight shape as
        /// the INT8 primitive sees it (Conv `[OC, IC/g, k...]`, MatMul/Gemm `[K, N]`).
        public var opType: String? = nil
        public var weightShape: [Int]? = nil
    }

    public let method: CalibrationMethod
    public let sampleCount: Int
    public let tensors: [TensorEntry]
    public let nodes: [NodeEntry]
    public let passes: [PassReport]
    public let warnings: [String]
    /// Output SQNR (dB) of the quantized model against FP32 on the analysis samples, by output:
    /// the lower of the SQNR pooled over the samples and the median of the per-sample SQNRs (so
    /// one sample of huge values cannot hide outputs that are wrong on the others).
    public var outputSQNR: [String: Double] = [:]
    /// SQNR (dB) of each quantized tensor (dequantized INT8 against FP32): per-node sensitivity.
    public var tensorSQNR: [String: Double] = [:]
    /// Units kept FP32 to meet the accuracy budget, with the reason.
    public var fallbacks: [String] = []

    init(
        method: CalibrationMethod, placement: QuantizationPlacement, params: [String: QuantParams],
        passes: [PassReport], warnings: [String], sampleCount: Int
    ) {
        self.method = method
        self.sampleCount = sampleCount
        self.passes = passes
        self.warnings = warnings
        tensors = placement.tensors.compactMap { t in
            params[t].map { TensorEntry(tensor: t, type: $0.type.rawValue, scale: $0.scale, zeroPoint: $0.zeroPoint) }
        }
        var n: [NodeEntry] = []
        for u in placement.units {
            n.append(
                NodeEntry(
                    node: u.anchor, precision: "int8", reason: u.nodes.count > 1 ? "fused with \(u.nodes.dropFirst().joined(separator: ", "))" : nil,
                    opType: u.opType, weightShape: u.weightShape))
        }
        for p in placement.passThrough {
            n.append(NodeEntry(node: p, precision: "int8", reason: placement.int8Reasons[p] ?? "passes int8 through"))
        }
        for b in placement.binaries { n.append(NodeEntry(node: b, precision: "int8", reason: "int8 binary")) }
        for (label, reason) in placement.fp32Reasons.sorted(by: { $0.key < $1.key }) {
            n.append(NodeEntry(node: label, precision: "fp32", reason: reason))
        }
        nodes = n
    }

    public var description: String {
        let int8 = nodes.filter { $0.precision == "int8" }.count
        var lines = [
            "quantization: \(method), \(sampleCount) calibration samples, \(int8) nodes INT8, \(nodes.count - int8) FP32, \(tensors.count) tensors quantized"
        ]
        for w in warnings { lines.append("warning: \(w)") }
        for (k, v) in outputSQNR.sorted(by: { $0.key < $1.key }) { lines.append(String(format: "output %@: SQNR %.1f dB vs FP32", k, v)) }
        for f in fallbacks { lines.append("kept FP32 for the accuracy budget: \(f)") }
        if let worst = tensorSQNR.min(by: { $0.value < $1.value }) {
            lines.append(String(format: "least accurate quantized tensor: %@ (%.1f dB)", worst.key, worst.value))
        }
        return lines.joined(separator: "\n")
    }

    /// The report as JSON (per node precision and reason, per tensor scale, warnings, SQNR).
    public func jsonData() throws -> Data {
        struct Doc: Codable {
            var method: String; var samples: Int; var nodes: [NodeEntry]; var tensors: [TensorEntry]
            var passes: [String: [String]]; var warnings: [String]; var outputSQNR: [String: Double]
            var tensorSQNR: [String: Double]; var fallbacks: [String]
        }
        let doc = Doc(
            method: method.description, samples: sampleCount, nodes: nodes, tensors: tensors,
            passes: Dictionary(passes.map { ($0.pass, $0.applied + $0.skipped.map { "skipped: " + $0 }) }, uniquingKeysWith: { $0 + $1 }),
            warnings: warnings, outputSQNR: outputSQNR, tensorSQNR: tensorSQNR, fallbacks: fallbacks)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(doc)
    }
}
