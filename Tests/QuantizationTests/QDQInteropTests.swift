import Foundation
import Quantization
import XCTest

/// QDQ models made by other tools run on our INT8 engine (issue 9, "QAT route"): the PP-OCR
/// classifier, v4 recogniser and v4 detector quantized by onnxruntime (`quant_pre_process`,
/// opset 13, `quantize_static` QDQ with u8/s8 and s8/s8 activations/weights) and by NNCF's ONNX
/// backend (`Models/qdq_models.py` writes them to `$DNNL_QUANT_CACHE/qdq`, `Tests/prepare_fixtures.sh`
/// runs it). For every file that exists:
/// - the task metric of our engine is within 1 point of onnxruntime's run of the same file
///   (`Models/evaluate.py --engine both` on the first samples of the PTQ evaluation sets);
/// - every quantized unit (DQ -> float ops -> Q, cut out by `Models/qdq_node_check.py` with the
///   int8 inputs onnxruntime computed for one sample) gives at least 99.9% of its output elements
///   within one quantization step of the FP64 QDQ reference;
/// - at least 90% of the convolution / deconvolution / inner product / matmul MACs run in u8/s8
///   oneDNN primitives (`ONEDNN_VERBOSE=1`).
final class QDQInteropTests: XCTestCase {
    /// A model of the suite: its `Models/evaluate.py` task, evaluation set, metric and sample count.
    struct Subject {
        var model: String
        var task: String
        var set: String
        var metric: String
        var limit: Int
        var chunk: Int
    }

    static let subjects: [String: Subject] = [
        "ppocr_cls": .init(model: "ppocr_cls", task: "cls", set: "lines", metric: "accuracy", limit: 300, chunk: 100),
        "ppocr_v4_rec": .init(model: "ppocr_v4_rec", task: "rec", set: "words_v4", metric: "word_acc", limit: 300, chunk: 50),
        "ppocr_v4_det": .init(model: "ppocr_v4_det", task: "det", set: "pages", metric: "recall", limit: 30, chunk: 4),
    ]
    static let variants = ["ort_u8s8", "ort_s8s8", "nncf"]

    static var folder: URL { RealModelData.cache.appendingPathComponent("qdq") }
    static var index: URL { folder.appendingPathComponent("qdq.json") }
    static func nodes(_ name: String) -> URL { folder.appendingPathComponent("nodes").appendingPathComponent(name) }

    static let work = FileManager.default.temporaryDirectory
        .appendingPathComponent("dnnl-quant-qdq-interop-\(ProcessInfo.processInfo.processIdentifier)")
    private static let python = ProcessInfo.processInfo.environment["PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"

    override class func tearDown() {
        try? FileManager.default.removeItem(at: work)
        super.tearDown()
    }

    private func f4(_ x: Double) -> String { String(format: "%.4f", x) }

    /// The QDQ files of `model` that `Models/qdq_models.py` wrote (name `<model>_<variant>`, path);
    /// variants a tool failed on are printed with their recorded error and left out.
    private func files(_ model: String) throws -> [(name: String, url: URL)] {
        try PTQData.require([Self.index])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.index)) as? [String: Any]
        let written = json?["files"] as? [String: Any] ?? [:]
        let errors = json?["errors"] as? [String: [String: Any]] ?? [:]
        var out: [(String, URL)] = []
        for v in Self.variants {
            let name = "\(model)_\(v)"
            let url = Self.folder.appendingPathComponent(name + ".onnx")
            if written[name] != nil, FileManager.default.fileExists(atPath: url.path) {
                out.append((name, url))
            } else if let e = errors[name] {
                print("QDQ \(name): not made (the tool failed: \(e["error"] ?? "?")); skipped")
            } else {
                throw PTQData.missing("QDQ file \(url.path) missing: run Tests/prepare_fixtures.sh (Models/qdq_models.py)")
            }
        }
        return out
    }

    // MARK: (a) task metric, ours vs onnxruntime on the same file

    private func checkTaskMetric(_ model: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try XCTUnwrap(Self.subjects[model])
        let evalSet = PTQData.evaluation.appendingPathComponent(s.set)
        try PTQData.require([evalSet])
        let binary = try PTQData.binary()
        for (name, url) in try files(model) {
            let r = try runChild(
                [
                    Self.python, "Models/evaluate.py", s.task, url.path, "--set", s.set, "--data", PTQData.evaluation.path,
                    "--engine", "both", "--limit", "\(s.limit)", "--chunk", "\(s.chunk)", "--binary", binary.path,
                    "--compare-to", "none",
                ], work: Self.work)
            guard r.status == 0 else {
                XCTFail(
                    "Models/evaluate.py \(s.task) \(name) failed (\(r.status)):\n\(r.stderr.suffix(3000))\n\(r.stdout.suffix(1000))",
                    file: file, line: line)
                continue
            }
            for w in r.stderr.split(separator: "\n") where w.hasPrefix("warning") { print("QDQ \(name): \(w)") }
            let record = try r.lastJSON()
            guard let engines = record["engines"] as? [String: Any], let ours = engines["ours"] as? [String: Any],
                let ort = engines["ort"] as? [String: Any],
                let a = (ours[s.metric] as? NSNumber)?.doubleValue, let b = (ort[s.metric] as? NSNumber)?.doubleValue
            else {
                XCTFail(
                    "\(name): no engines.ours/ort '\(s.metric)' in the Models/evaluate.py record:\n\(r.stdout.suffix(2000))", file: file, line: line)
                continue
            }
            let agreement =
                (record["ours_vs_ort"] as? [String: Any]).map { v in
                    v.sorted { $0.key < $1.key }.map { "\($0.key) \(($0.value as? NSNumber).map { f4($0.doubleValue) } ?? "\($0.value)")" }
                        .joined(separator: ", ")
                } ?? ""
            print(
                "QDQ \(name) on eval/\(s.set) (\(record["samples"] ?? "?") samples): \(s.metric) ours \(f4(a)), onnxruntime \(f4(b)) "
                    + "(bar |diff| <= 0.0100); ours vs onnxruntime: \(agreement) [\(String(format: "%.1f", r.seconds)) s]")
            XCTAssertNil(
                ours["failed_batches"], "\(name): batches failed on our engine and ran one sample at a time: \(ours["failed_batches"] ?? "")",
                file: file, line: line)
            XCTAssertLessThanOrEqual(
                abs(a - b), 0.01 + 1e-9, "\(name): \(s.metric) ours \(f4(a)) vs onnxruntime \(f4(b)) on the same file", file: file, line: line)
        }
    }

    func testClassifierMetricMatchesOnnxRuntime() throws { try checkTaskMetric("ppocr_cls") }
    func testRecogniserV4MetricMatchesOnnxRuntime() throws { try checkTaskMetric("ppocr_v4_rec") }
    func testDetectorV4MetricMatchesOnnxRuntime() throws { try checkTaskMetric("ppocr_v4_det") }

    // MARK: (b) every quantized unit within one step of the FP64 QDQ reference

    struct Manifest: Decodable {
        struct Port: Decodable {
            var name: String
            var file: String
            var dtype: String
            var shape: [Int]
        }
        struct Unit: Decodable {
            var index: Int
            var name: String
            var node: String
            var op_type: String
            var ops: [String]
            var model: String
            var inputs: [Port]
            var output: Port
            var macs: Int
        }
        struct Skipped: Decodable {
            var name: String
            var reason: String
        }
        var units: [Unit]
        var skipped: [Skipped]
    }

    struct UnitResult {
        var unit: Manifest.Unit
        var within1: Double
        var maxStep: Int
        var elements: Int
        var precision: String
        var error: String?
    }

    /// Integer values of a u8/s8 tensor.
    private func integers(_ t: Tensor) -> [Int]? {
        switch t.elementType {
        case .u8: return t.scalars(as: UInt8.self).map(Int.init)
        case .s8: return t.scalars(as: Int8.self).map(Int.init)
        default: return nil
        }
    }

    private func runUnit(_ u: Manifest.Unit, in dir: URL) -> UnitResult {
        var r = UnitResult(unit: u, within1: 0, maxStep: Int.max, elements: 0, precision: "?", error: nil)
        do {
            let model = try Model(contentsOf: dir.appendingPathComponent(u.model))
            let session = try InferenceSession(model: model, options: .init(threads: 1))
            r.precision = session.precision
            var feeds: [String: Tensor] = [:]
            for p in u.inputs { feeds[p.name] = try Tensor(contentsOfNPY: dir.appendingPathComponent(p.file)) }
            let outputs = try session.run(feeds)
            let reference = try Tensor(contentsOfNPY: dir.appendingPathComponent(u.output.file))
            guard let ours = outputs[u.output.name] else {
                r.error = "no output '\(u.output.name)' (outputs: \(outputs.keys.sorted()))"
                return r
            }
            guard ours.elementType == reference.elementType, ours.shape == reference.shape, let a = integers(ours),
                let b = integers(reference)
            else {
                r.error = "output \(ours.elementType) \(ours.shape), reference \(reference.elementType) \(reference.shape)"
                return r
            }
            var close = 0, worst = 0
            for (x, y) in zip(a, b) {
                let d = abs(x - y)
                if d <= 1 { close += 1 }
                worst = max(worst, d)
            }
            r.elements = a.count
            r.within1 = a.isEmpty ? 1 : Double(close) / Double(a.count)
            r.maxStep = worst
        } catch {
            r.error = "\(error)"
        }
        return r
    }

    private func checkUnits(_ model: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for (name, _) in try files(model) {
            let dir = Self.nodes(name)
            let manifestURL = dir.appendingPathComponent("manifest.json")
            guard FileManager.default.fileExists(atPath: manifestURL.path) else {
                throw PTQData.missing("node fixtures \(manifestURL.path) missing: run Tests/prepare_fixtures.sh (Models/qdq_node_check.py)")
            }
            let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: manifestURL))
            let start = Date()
            let results = manifest.units.map { runUnit($0, in: dir) }
            let failed = results.filter { $0.error != nil || $0.within1 < 0.999 }
            let fp32 = results.filter { $0.precision == "fp32" }
            let macOps: Set<String> = ["Conv", "ConvTranspose", "Gemm", "MatMul"]
            let fp32MACs = fp32.filter { macOps.contains($0.unit.op_type) }
            print(
                "QDQ \(name): \(results.count) units (\(manifest.skipped.count) QuantizeLinears without a unit), "
                    + "\(results.count - failed.count) with >= 99.9% of elements within 1 step, \(failed.count) below or failing; "
                    + "\(fp32.count) ran without an INT8 node (\(fp32MACs.count) of them Conv/ConvTranspose/Gemm/MatMul units) "
                    + "[\(String(format: "%.1f", Date().timeIntervalSince(start))) s]")
            func describe(_ r: UnitResult) -> String {
                let what = "\(r.unit.model) \(r.unit.node) [\(r.unit.ops.joined(separator: ">"))] -> \(r.unit.output.dtype) \(r.unit.output.shape)"
                if let e = r.error { return "\(what): error \(e.prefix(300))" }
                return "\(what): \(String(format: "%.5f", r.within1)) within 1 step, max \(r.maxStep) steps, \(r.precision)"
            }
            let worst = results.sorted { ($0.error == nil ? $0.within1 : -1, -$0.maxStep) < ($1.error == nil ? $1.within1 : -1, -$1.maxStep) }
            for r in worst.prefix(5) { print("QDQ \(name):   worst: \(describe(r))") }
            for r in fp32MACs.prefix(5) { print("QDQ \(name):   MAC unit without INT8: \(describe(r))") }
            XCTAssertTrue(
                failed.isEmpty,
                "\(name): \(failed.count) of \(results.count) units below 99.9% of elements within 1 step of the FP64 QDQ reference:\n"
                    + failed.prefix(20).map(describe).joined(separator: "\n"), file: file, line: line)
        }
    }

    func testClassifierUnitsWithinOneStep() throws { try checkUnits("ppocr_cls") }
    func testRecogniserV4UnitsWithinOneStep() throws { try checkUnits("ppocr_v4_rec") }
    func testDetectorV4UnitsWithinOneStep() throws { try checkUnits("ppocr_v4_det") }

    // MARK: (c) share of the MACs in u8/s8 primitives

    /// `dnnl-quant run FILE` on the first sample of the evaluation set under `ONEDNN_VERBOSE=1`.
    private func verboseMACs(_ url: URL, set: String) throws -> (VerboseMACs, String) {
        let binary = try PTQData.binary()
        let folder = PTQData.evaluation.appendingPathComponent(set)
        try PTQData.require([folder])
        let sample = try XCTUnwrap(
            try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".npy") }.sorted().first,
            "no sample in eval/\(set)")
        let out = Self.work.appendingPathComponent("verbose-\(url.deletingPathExtension().lastPathComponent)")
        let r = try runChild(
            [binary.path, "run", url.path, "--input", folder.appendingPathComponent(sample).path, "--output-dir", out.path, "--threads", "2"],
            environment: ["ONEDNN_VERBOSE": "1"], work: Self.work)
        guard r.status == 0 else {
            throw PTQFailure(
                description: "dnnl-quant run \(url.lastPathComponent) under ONEDNN_VERBOSE=1 failed (\(r.status)): \(r.stderr.suffix(2000))")
        }
        return (VerboseMACs(verbose: r.stdout + "\n" + r.stderr), sample)
    }

    private func checkMACShare(_ model: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try XCTUnwrap(Self.subjects[model])
        let variants = try files(model)
        // The FP32 model's MACs under oneDNN: the denominator when an INT8 run shows fewer (MACs
        // that left oneDNN for a Swift kernel would otherwise drop out of the share).
        let fp32URL = try RealModelData.modelURL(model)
        try PTQData.require([fp32URL])
        let (fp32, _) = try verboseMACs(fp32URL, set: s.set)
        for (name, url) in variants {
            let (macs, sample) = try verboseMACs(url, set: s.set)
            let total = max(macs.total, fp32.total)
            let share = total == 0 ? 0 : Double(macs.int8) / Double(total)
            let types = macs.byType.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", Double($0.value) / 1e6))M" }
                .joined(separator: ", ")
            print(
                "QDQ \(name): INT8 MAC share \(f4(share)) (bar >= 0.9000) of \(String(format: "%.1f", Double(total) / 1e6))M MACs on \(sample) "
                    + "(\(macs.primitives.count) primitives; by source type: \(types); FP32 model: "
                    + "\(String(format: "%.1f", Double(fp32.total) / 1e6))M)")
            if macs.total < fp32.total * 99 / 100 {
                print("QDQ \(name):   the INT8 run shows fewer oneDNN MACs than the FP32 model's (some ran outside oneDNN)")
            }
            let others = macs.primitives.filter { !["u8", "s8"].contains($0.sourceType) }.sorted { $0.macs > $1.macs }
            for p in others.prefix(5) {
                print(
                    "QDQ \(name):   not INT8: \(p.kind) \(p.implementation) src_\(p.sourceType) \(p.descriptor) "
                        + "(\(String(format: "%.2f", 100 * Double(p.macs) / Double(max(total, 1))))% of MACs)")
            }
            XCTAssertGreaterThan(macs.total, 0, "\(name): no convolution/matmul exec lines under ONEDNN_VERBOSE=1", file: file, line: line)
            XCTAssertGreaterThanOrEqual(
                share, 0.9,
                "\(name): only \(f4(share)) of the MACs ran with u8/s8 sources; largest others: "
                    + others.prefix(5).map { "\($0.kind) src_\($0.sourceType) \($0.descriptor)" }.joined(separator: "; "),
                file: file, line: line)
        }
    }

    func testClassifierINT8MACShare() throws { try checkMACShare("ppocr_cls") }
    func testRecogniserV4INT8MACShare() throws { try checkMACShare("ppocr_v4_rec") }
    func testDetectorV4INT8MACShare() throws { try checkMACShare("ppocr_v4_det") }
}
