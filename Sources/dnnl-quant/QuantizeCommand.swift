import ArgumentParser
import Foundation
import Quantization

/// `dnnl-quant quantize MODEL.onnx --calibration DIR --output OUT.onnx [...]`
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize an FP32 ONNX model to INT8 (QDQ ONNX) from calibration samples.",
        discussion: """
            DIR holds one sample per file: .npz keyed by input name, or .npy for a single-input model. \
            The result is standard QDQ ONNX (opset >= 13): run, bench and inspect run it on the INT8 \
            engine, and onnxruntime runs it too.
            """)

    @Argument(help: "The FP32 ONNX model.") var model: String
    @Option(name: .long, help: "Folder of calibration samples (.npy/.npz).") var calibration: String?
    @Option(name: .long, help: "Where to write the quantized model.") var output: String
    @Option(name: .long, help: "Calibration method: minmax, absmax, entropy, percentile, mse.") var method: String = "mse"
    @Option(name: .long, help: "Percentile for --method percentile (default 99.99).") var percentile: Double?
    @Option(name: .long, help: "Keep this node in FP32 (repeatable).") var exclude: [String] = []
    @Option(name: .customLong("exclude-op-type"), help: "Keep every node of this op type in FP32 (repeatable).") var excludeOpType: [String] = []
    @Option(
        name: .customLong("accuracy-budget"),
        help: "Minimum output SQNR (dB) vs FP32 on calibration samples; the least accurate INT8 nodes fall back to FP32 until it is met.")
    var accuracyBudget: Double?
    @Option(
        name: .customLong("min-output-sqnr"),
        help: "Refuse to write a model whose output SQNR (dB) vs FP32 on the calibration samples is below this floor (exit 1).")
    var minOutputSQNR: Double = 10
    @Option(name: .customLong("save-calibration"), help: "Write the calibration table (JSON).") var saveCalibration: String?
    @Option(name: .customLong("load-calibration"), help: "Use a saved calibration table instead of calibrating.") var loadCalibration: String?
    @Option(name: .long, help: "Write the quantization report (JSON).") var report: String?
    @Option(name: .customLong("dump-each-pass"), help: "Write the graph after each pass as DIR/NN-pass.dot (Graphviz).") var dumpEachPass: String?
    @Option(name: .customLong("max-samples"), help: "Use at most this many calibration samples.") var maxSamples: Int?
    @Flag(name: .long, help: "Dynamic quantization without calibration (not supported yet).") var dynamic = false

    func validate() throws {
        if percentile != nil && method != "percentile" { throw ValidationError("--percentile needs --method percentile") }
        if let p = percentile, !(p > 0 && p <= 100) { throw ValidationError("--percentile must be in (0, 100], got \(p)") }
        guard CalibrationMethod(name: method, percentile: percentile) != nil else {
            throw ValidationError("--method \(method): use one of \(CalibrationMethod.names.joined(separator: ", "))")
        }
        if dynamic { throw ValidationError("--dynamic: dynamic quantization is not supported yet; give --calibration DIR") }
        if let b = accuracyBudget, !(b > 0 && b < 200) { throw ValidationError("--accuracy-budget must be in (0, 200) dB, got \(b)") }
        if calibration == nil && loadCalibration == nil {
            throw ValidationError("give --calibration DIR (or --load-calibration T.json with --calibration for one sample)")
        }
        if !(minOutputSQNR >= -200 && minOutputSQNR <= 200) {
            throw ValidationError("--min-output-sqnr must be in [-200, 200] dB, got \(minOutputSQNR)")
        }
        if let m = maxSamples, m < 1 { throw ValidationError("--max-samples must be at least 1") }
    }

    func run() throws {
        // Every output path is checked before the work starts, so nothing is written when one is bad.
        for (flag, path) in [("--output", output), ("--report", report), ("--save-calibration", saveCalibration)] {
            guard let path else { continue }
            do { try checkOutputPath(URL(fileURLWithPath: path)) } catch { throw CLIError("\(flag) \(path): \(error.message)") }
        }
        // An output must not replace an input (the FP32 model, a calibration table) or another output.
        let outputs = [("--output", output), ("--report", report), ("--save-calibration", saveCalibration)].compactMap { f, p in p.map { (f, $0) } }
        let inputs = [("the model", model), ("--load-calibration", loadCalibration)].compactMap { f, p in p.map { (f, $0) } }
        for (i, (flag, path)) in outputs.enumerated() {
            for (what, other) in inputs + outputs.prefix(i) where isSameFile(URL(fileURLWithPath: path), URL(fileURLWithPath: other)) {
                throw CLIError("\(flag) \(path) is the same file as \(what) (\(other)); give another path, nothing was written")
            }
        }
        let m = try Model(contentsOf: URL(fileURLWithPath: model))
        let names = Set(m.graph.nodes.map(\.name)), types = Set(m.graph.nodes.map(\.opType))
        for n in exclude where !names.contains(n) {
            FileHandle.standardError.write("warning: --exclude \(n): no node of that name in \(model)\n".data(using: .utf8)!)
        }
        for t in excludeOpType where !types.contains(t) {
            FileHandle.standardError.write(
                "warning: --exclude-op-type \(t): no node of that op type in \(model) (op types are case-sensitive, e.g. Conv)\n".data(using: .utf8)!)
        }
        var options = PostTrainingQuantizer.Options(
            calibration: CalibrationMethod(name: method, percentile: percentile)!, excludeNodes: Set(exclude),
            excludeOpTypes: Set(excludeOpType), maxSamples: maxSamples, progress: true, accuracyBudget: accuracyBudget)
        options.dumpDirectory = dumpEachPass.map { URL(fileURLWithPath: $0) }
        let quantizer = PostTrainingQuantizer(options)
        guard let dir = calibration else { throw CLIError("--load-calibration needs --calibration DIR for the input shapes") }
        let reader: CalibrationReader
        do { reader = try CalibrationReader(directory: URL(fileURLWithPath: dir), inputNames: m.inputs.map(\.name)) } catch {
            throw CLIError("--calibration \(dir): \(error)")
        }
        let result: PostTrainingQuantizer.Result
        if let t = loadCalibration {
            let table: CalibrationTable
            do { table = try CalibrationTable(contentsOf: URL(fileURLWithPath: t)) } catch { throw CLIError("--load-calibration: \(error)") }
            result = try quantizer.quantize(m, table: table, sample: try reader.sample(at: 0))
        } else {
            var index = 0
            result = try quantizer.quantize(m, describe: { reader.files[$0].path }) {
                guard index < reader.count else { return nil }
                defer { index += 1 }
                do { return try reader.sample(at: index) } catch { throw CLIError("--calibration \(dir): \(error)") }
            }
        }
        // A model that computes something else than the FP32 model is not written silently.
        if let worst = result.report.outputSQNR.min(by: { $0.value < $1.value }), !(worst.value >= minOutputSQNR) {
            print(result.report)
            throw CLIError(
                String(
                    format: "output '%@' of the INT8 model has SQNR %.1f dB vs FP32 on the calibration samples, below the floor of %.1f dB: "
                        + "nothing was written. Try --accuracy-budget %.0f (keeps the least accurate nodes FP32), another --method, "
                        + "or lower --min-output-sqnr to write it anyway.",
                    worst.key, worst.value, minOutputSQNR, max(minOutputSQNR, 20)))
        }
        if let s = saveCalibration {
            do { try result.table.write(to: URL(fileURLWithPath: s)) } catch { throw CLIError("--save-calibration: \(error)") }
        }
        try result.model.write(to: URL(fileURLWithPath: output))
        if let r = report {
            do { try writeAtomically(try result.report.jsonData(), to: URL(fileURLWithPath: r)) } catch {
                throw CLIError("--report \(r): \(error)")
            }
        }
        print(result.report)
        print("wrote \(output)")
    }
}
