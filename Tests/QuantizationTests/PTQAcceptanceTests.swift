import Foundation
import XCTest

/// The PTQ acceptance data `Tests/prepare_fixtures.sh` puts in the cache
/// (`$DNNL_QUANT_CACHE/ptqdata`), made by `Models/make_data.py` as `Benchmarks/main_job.py` makes
/// them: calibration sets (seed 1) in `calib/` and disjoint evaluation sets (seed 0) in `eval/`.
enum PTQData {
    static var root: URL { RealModelData.cache.appendingPathComponent("ptqdata") }
    static var calibration: URL { root.appendingPathComponent("calib") }
    static var evaluation: URL { root.appendingPathComponent("eval") }

    /// `XCTSkip`, or with `DNNL_QUANT_REQUIRE_MODELS=1` an error that fails the test.
    static func missing(_ message: String) -> Error {
        if RealModelData.required { return RealModelData.Missing(description: message + " (DNNL_QUANT_REQUIRE_MODELS=1)") }
        return XCTSkip(message)
    }

    /// Throws `missing` when the prepared PTQ data or any of `paths` is not there.
    static func require(_ paths: [URL]) throws {
        let needed = [root.appendingPathComponent("prepared.stamp")] + paths
        if let m = needed.first(where: { !FileManager.default.fileExists(atPath: $0.path) }) {
            throw missing("PTQ acceptance data missing (\(m.path)): run Tests/prepare_fixtures.sh")
        }
    }

    /// The CLI the tests drive: the release build when present (calibration in a debug build is
    /// slow; `Tests/run.sh` builds it), else the debug build.
    static func binary() throws -> URL {
        let build = RealModelData.repository.appendingPathComponent(".build")
        let release = build.appendingPathComponent("release/dnnl-quant")
        if FileManager.default.isExecutableFile(atPath: release.path) { return release }
        let debug = build.appendingPathComponent("debug/dnnl-quant")
        if FileManager.default.isExecutableFile(atPath: debug.path) {
            print(
                "PTQ warning: \(release.path) is missing; using the debug build (slow calibration). "
                    + "Build it: swift build -c release --product dnnl-quant")
            return debug
        }
        throw missing("dnnl-quant is not built (\(release.path)): swift build -c release --product dnnl-quant")
    }
}

/// A step of the acceptance run that failed (a command, its output), as opposed to missing data.
struct PTQFailure: Error, CustomStringConvertible {
    let description: String
}

/// One child process's exit status and output.
struct ChildResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double

    /// The last line of standard output that is a JSON object (Models/evaluate.py's record).
    func lastJSON() throws -> [String: Any] {
        guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            throw PTQFailure(description: "no JSON line in the output:\n\(stdout.suffix(2000))")
        }
        return object
    }
}

/// Runs `arguments` (the first found on PATH) with standard output and error in files of `work`
/// (no pipe to fill up); the working directory is the repository.
func runChild(_ arguments: [String], environment extra: [String: String] = [:], work: URL) throws -> ChildResult {
    let fm = FileManager.default
    try fm.createDirectory(at: work, withIntermediateDirectories: true)
    let tag = UUID().uuidString
    let out = work.appendingPathComponent("child-\(tag).stdout"), err = work.appendingPathComponent("child-\(tag).stderr")
    guard fm.createFile(atPath: out.path, contents: nil), fm.createFile(atPath: err.path, contents: nil) else {
        throw PTQFailure(description: "cannot create files in \(work.path)")
    }
    defer { try? fm.removeItem(at: out); try? fm.removeItem(at: err) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    p.currentDirectoryURL = RealModelData.repository
    p.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
    let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
    p.standardOutput = outHandle
    p.standardError = errHandle
    let start = Date()
    try p.run()
    p.waitUntilExit()
    try outHandle.close()
    try errHandle.close()
    return ChildResult(
        status: p.terminationStatus,
        stdout: String(decoding: try Data(contentsOf: out), as: UTF8.self),
        stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self),
        seconds: Date().timeIntervalSince(start))
}

/// Multiply-accumulates of oneDNN's compute primitives, read from `ONEDNN_VERBOSE=1` lines
/// (exec lines only; reorders, eltwise, pooling, ... are not counted), by source data type.
struct VerboseMACs {
    struct Primitive {
        var kind: String
        var implementation: String
        var sourceType: String
        var descriptor: String
        var macs: Int
    }

    var primitives: [Primitive] = []
    var total: Int { primitives.reduce(0) { $0 + $1.macs } }
    /// MACs of primitives whose source is u8 or s8.
    var int8: Int { primitives.filter { ["u8", "s8"].contains($0.sourceType) }.reduce(0) { $0 + $1.macs } }
    var int8Share: Double { total == 0 ? 0 : Double(int8) / Double(total) }
    var byType: [String: Int] { primitives.reduce(into: [:]) { $0[$1.sourceType, default: 0] += $1.macs } }

    init(verbose: String) {
        for line in verbose.split(separator: "\n") {
            if let p = Self.parse(line) { primitives.append(p) }
        }
    }

    /// `onednn_verbose,exec,cpu,KIND,IMPL,PROP,MEMORY DESCRIPTORS,ATTRIBUTES,AUX,PROBLEM,TIME`
    /// (a timestamp field after the marker is allowed); nil for other lines and other kinds.
    static func parse(_ line: Substring) -> Primitive? {
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let marker = f.first, marker == "onednn_verbose" || marker == "dnnl_verbose",
            let exec = f.prefix(3).firstIndex(of: "exec"), f.count >= exec + 9
        else { return nil }
        let kind = f[exec + 2]
        guard ["convolution", "deconvolution", "inner_product", "matmul"].contains(kind) else { return nil }
        let descriptor = f[f.count - 2]
        // The source memory descriptor: `src_u8::blocked:acdb:f0` -> u8.
        var source = "?"
        if let mds = f.first(where: { $0.contains("src_") }), let r = mds.range(of: "src_") {
            source = String(mds[r.upperBound...].prefix { $0.isLetter || $0.isNumber })
        }
        guard let macs = Self.macs(kind: kind, descriptor: descriptor) else { return nil }
        return Primitive(kind: kind, implementation: f[exec + 3], sourceType: source, descriptor: descriptor, macs: macs)
    }

    /// The weight shape of a convolution or matmul problem, as `PTQAcceptanceTests` compares it
    /// with the PTQ report: `"convolution ocO innerI"` (I = ic/g * kd*kh*kw) or `"matmul nN kK"`.
    static func weightSignature(kind: String, descriptor: String) -> String? {
        if kind == "matmul" {
            let parts = descriptor.split(separator: ":").map { $0.split(separator: "x").compactMap { Int($0) } }
            guard parts.count >= 2, parts[1].count >= 2 else { return nil }
            return "matmul n\(parts[1][parts[1].count - 1]) k\(parts[1][parts[1].count - 2])"
        }
        guard kind == "convolution" else { return nil }
        let d = fields(descriptor)
        guard let ic = d["ic"], let oc = d["oc"] else { return nil }
        let inner = ic / max(d["g"] ?? 1, 1) * (d["kd"] ?? 1) * (d["kh"] ?? 1) * (d["kw"] ?? 1)
        return "convolution oc\(oc) inner\(inner)"
    }

    /// `mb1_g8ic16oc16_ih8oh8kh3...` -> `["mb": 1, "g": 8, "ic": 16, ...]`.
    static func fields(_ descriptor: String) -> [String: Int] {
        var d: [String: Int] = [:]
        var key = "", number = ""
        func flush() {
            if !key.isEmpty, let v = Int(number) { d[key] = v }
            key = ""; number = ""
        }
        for c in descriptor {
            if c.isLetter {
                if !number.isEmpty { flush() }
                key.append(c)
            } else if c.isNumber {
                number.append(c)
            } else {
                flush()
            }
        }
        flush()
        return d
    }

    /// MACs of one problem descriptor.
    /// - convolution `[gG]mbN_icIocO_[idDodDkdK..._]ihHohHkhK..._iwWowWkwK...` (the group prefix in
    ///   either place): mb * oc * ic/g * od*oh*ow * kd*kh*kw;
    /// - deconvolution, same descriptor: every input pixel meets the whole kernel, so
    ///   mb * oc * ic/g * id*ih*iw * kd*kh*kw;
    /// - inner_product `mbNicI[idD][ihH][iwW]ocO`: mb * oc * ic * id*ih*iw;
    /// - matmul `[B..x]MxK:[B..x]KxN[:[B..x]MxN]`: batch * M * K * N (batch dimensions broadcast).
    static func macs(kind: String, descriptor: String) -> Int? {
        if kind == "matmul" {
            let parts = descriptor.split(separator: ":").map { $0.split(separator: "x").compactMap { Int($0) } }
            guard parts.count >= 2, parts[0].count >= 2, parts[1].count >= 2 else { return nil }
            var a = parts[0], b = parts[1]
            let rank = max(a.count, b.count)
            a = Array(repeating: 1, count: rank - a.count) + a
            b = Array(repeating: 1, count: rank - b.count) + b
            let batch = zip(a.dropLast(2), b.dropLast(2)).reduce(1) { $0 * max($1.0, $1.1) }
            return batch * a[rank - 2] * a[rank - 1] * b[rank - 1]
        }
        let d = fields(descriptor)
        guard let mb = d["mb"], let ic = d["ic"], let oc = d["oc"] else { return nil }
        let g = max(d["g"] ?? 1, 1)
        switch kind {
        case "convolution":
            return mb * oc * (ic / g) * (d["od"] ?? 1) * (d["oh"] ?? 1) * (d["ow"] ?? 1)
                * (d["kd"] ?? 1) * (d["kh"] ?? 1) * (d["kw"] ?? 1)
        case "deconvolution":
            return mb * oc * (ic / g) * (d["id"] ?? 1) * (d["ih"] ?? 1) * (d["iw"] ?? 1)
                * (d["kd"] ?? 1) * (d["kh"] ?? 1) * (d["kw"] ?? 1)
        default:  // inner_product
            return mb * oc * ic * (d["id"] ?? 1) * (d["ih"] ?? 1) * (d["iw"] ?? 1)
        }
    }
}

/// Post-training quantization acceptance on the real PP-OCR models (issue 4's bars): each model is
/// quantized by the release CLI (`dnnl-quant quantize`, default method) on the calibration set,
/// FP32 and INT8 are evaluated by our engine with `Models/evaluate.py` (metrics of
/// `Models/ocr_metrics.py`) on the disjoint evaluation set, and one INT8 run under
/// `ONEDNN_VERBOSE=1` shows which share of the multiply-accumulates ran in INT8 primitives.
final class PTQAcceptanceTests: XCTestCase {
    struct Quantized {
        var fp32: URL
        var int8: URL
        var report: URL { int8.deletingPathExtension().appendingPathExtension("report.json") }
    }

    /// Where quantized models and outputs go (removed when the class is done).
    static let work = FileManager.default.temporaryDirectory
        .appendingPathComponent("dnnl-quant-ptq-acceptance-\(ProcessInfo.processInfo.processIdentifier)")
    private static let lock = NSLock()
    nonisolated(unsafe) private static var quantized: [String: Quantized] = [:]

    override class func tearDown() {
        try? FileManager.default.removeItem(at: work)
        super.tearDown()
    }

    private static let python = ProcessInfo.processInfo.environment["PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"

    private func f4(_ x: Double) -> String { String(format: "%.4f", x) }

    /// The model quantized with the default method on `calib/<set>` (once per test process).
    private func quantize(_ model: String, calibration set: String) throws -> Quantized {
        let fp32 = try RealModelData.modelURL(model)
        let calib = PTQData.calibration.appendingPathComponent(set)
        try PTQData.require([fp32, calib])
        let binary = try PTQData.binary()
        Self.lock.lock()
        defer { Self.lock.unlock() }
        if let q = Self.quantized[model] { return q }
        let dir = Self.work.appendingPathComponent(model)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let int8 = dir.appendingPathComponent("\(model)_int8.onnx"), report = dir.appendingPathComponent("\(model)_int8.report.json")
        let r = try runChild(
            [
                binary.path, "quantize", fp32.path, "--calibration", calib.path,
                "--output", int8.path, "--report", report.path,
            ], work: Self.work)
        guard r.status == 0, FileManager.default.fileExists(atPath: int8.path) else {
            throw PTQFailure(description: "dnnl-quant quantize \(model) failed (\(r.status)):\n\(r.stderr.suffix(4000))\n\(r.stdout.suffix(2000))")
        }
        let summary = r.stdout.split(separator: "\n").filter { !$0.hasPrefix("wrote ") }.joined(separator: "\n  ")
        print("PTQ \(model): quantized on \(calib.path) in \(String(format: "%.1f", r.seconds)) s\n  \(summary)")
        let q = Quantized(fp32: fp32, int8: int8)
        Self.quantized[model] = q
        return q
    }

    /// `Models/evaluate.py TASK MODEL --set SET` on the evaluation data with our engine; returns
    /// the `engines.ours` record (outputs kept under `keep/<set>_ours`).
    private func evaluate(_ task: String, _ model: URL, set: String, keep: URL, compareTo: URL?) throws -> [String: Any] {
        try PTQData.require([PTQData.evaluation.appendingPathComponent(set)])
        let binary = try PTQData.binary()
        let r = try runChild(
            [
                Self.python, "Models/evaluate.py", task, model.path, "--set", set,
                "--data", PTQData.evaluation.path, "--binary", binary.path, "--keep", keep.path,
                "--compare-to", compareTo?.path ?? "none",
            ], work: Self.work)
        guard r.status == 0 else {
            throw PTQFailure(
                description: "Models/evaluate.py \(task) \(model.lastPathComponent) --set \(set) failed (\(r.status)):\n\(r.stderr.suffix(4000))")
        }
        for w in r.stderr.split(separator: "\n") where w.hasPrefix("warning") { print("PTQ \(w)") }
        guard let engines = try r.lastJSON()["engines"] as? [String: Any], let ours = engines["ours"] as? [String: Any] else {
            throw PTQFailure(description: "Models/evaluate.py printed no engines.ours record:\n\(r.stdout.suffix(2000))")
        }
        XCTAssertNil(
            ours["failed_batches"],
            "\(model.lastPathComponent) on \(set): batches failed and ran one sample at a time (engine bug): \(ours["failed_batches"] ?? "")")
        return ours
    }

    /// FP32 then INT8 on one evaluation set, INT8 compared with FP32's outputs.
    private func evaluatePair(_ task: String, _ q: Quantized, set: String) throws -> (fp32: [String: Any], int8: [String: Any]) {
        let dir = Self.work.appendingPathComponent(q.int8.deletingPathExtension().lastPathComponent)
        let keep32 = dir.appendingPathComponent("fp32"), keep8 = dir.appendingPathComponent("int8")
        let r32 = try evaluate(task, q.fp32, set: set, keep: keep32, compareTo: nil)
        let r8 = try evaluate(task, q.int8, set: set, keep: keep8, compareTo: keep32.appendingPathComponent("\(set)_ours"))
        return (r32, r8)
    }

    private func number(_ record: [String: Any], _ key: String) throws -> Double {
        guard let v = record[key] as? Double ?? (record[key] as? Int).map(Double.init) else {
            throw PTQFailure(description: "no number '\(key)' in the Models/evaluate.py record \(record)")
        }
        return v
    }

    /// Runs the INT8 model once on the first evaluation sample of `set` under `ONEDNN_VERBOSE=1`
    /// and asserts that at least 90% of the convolution / deconvolution / inner product / matmul
    /// MACs ran with u8 or s8 sources.
    private func checkMACShare(_ model: String, _ q: Quantized, set: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let binary = try PTQData.binary()
        let sample = try XCTUnwrap(
            try FileManager.default.contentsOfDirectory(atPath: PTQData.evaluation.appendingPathComponent(set).path)
                .filter { $0.hasSuffix(".npy") }.sorted().first, "no sample in eval/\(set)")
        let input = PTQData.evaluation.appendingPathComponent(set).appendingPathComponent(sample)
        let out = Self.work.appendingPathComponent("\(model)_verbose_out")
        let r = try runChild(
            [binary.path, "run", q.int8.path, "--input", input.path, "--output-dir", out.path, "--threads", "2"],
            environment: ["ONEDNN_VERBOSE": "1"], work: Self.work)
        XCTAssertEqual(
            r.status, 0, "dnnl-quant run \(q.int8.lastPathComponent) under ONEDNN_VERBOSE=1: \(r.stderr.suffix(2000))", file: file, line: line)
        let macs = VerboseMACs(verbose: r.stdout + "\n" + r.stderr)
        XCTAssertGreaterThan(
            macs.total, 0,
            "\(model): no convolution/deconvolution/inner_product/matmul exec lines in ONEDNN_VERBOSE=1 output:\n\(r.stdout.prefix(2000))",
            file: file, line: line)
        guard macs.total > 0 else { return }
        let types = macs.byType.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", Double($0.value) / 1e6))M" }.joined(
            separator: ", ")
        print(
            "PTQ \(model): INT8 MAC share \(f4(macs.int8Share)) (bar >= 0.9000) of \(String(format: "%.1f", Double(macs.total) / 1e6))M MACs "
                + "in \(macs.primitives.count) primitives on \(sample) (by source type: \(types))")
        let fp = macs.primitives.filter { !["u8", "s8"].contains($0.sourceType) }.sorted { $0.macs > $1.macs }
        for p in fp.prefix(5) {
            print(
                "PTQ \(model):   not INT8: \(p.kind) \(p.implementation) src_\(p.sourceType) \(p.descriptor) "
                    + "(\(String(format: "%.2f", 100 * Double(p.macs) / Double(macs.total)))% of MACs)")
        }
        try checkPrimitivesMatchReport(model, q, macs, file: file, line: line)
        XCTAssertGreaterThanOrEqual(
            macs.int8Share, 0.9,
            "\(model): only \(f4(macs.int8Share)) of the MACs ran with u8/s8 sources; largest others: "
                + fp.prefix(5).map { "\($0.kind) src_\($0.sourceType) \($0.descriptor)" }.joined(separator: "; "),
            file: file, line: line)
    }

    /// The same decision in the quantizer and the engine: the u8/s8 convolution and matmul
    /// primitives ONEDNN_VERBOSE shows are, in number and weight shapes, the units the PTQ report
    /// says it quantized (Conv -> convolution `oc`, `ic/g * kernel`; MatMul/Gemm -> matmul `N`, `K`).
    private func checkPrimitivesMatchReport(
        _ model: String, _ q: Quantized, _ macs: VerboseMACs,
        file: StaticString, line: UInt
    ) throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: q.report)) as? [String: Any]
        let nodes = try XCTUnwrap(json?["nodes"] as? [[String: Any]], "\(model): report without nodes", file: file, line: line)
        let reported: [String] = nodes.compactMap { n in
            guard let op = n["opType"] as? String, let w = n["weightShape"] as? [Int], w.count >= 2 else { return nil }
            return op == "Conv" ? "convolution oc\(w[0]) inner\(w.dropFirst().reduce(1, *))" : "matmul n\(w[1]) k\(w[0])"
        }.sorted()
        let executed: [String] = macs.primitives.filter { ["u8", "s8"].contains($0.sourceType) }.compactMap { p in
            VerboseMACs.weightSignature(kind: p.kind, descriptor: p.descriptor)
        }.sorted()
        XCTAssertFalse(reported.isEmpty, "\(model): the report names no quantized unit", file: file, line: line)
        XCTAssertEqual(
            executed, reported, "\(model): INT8 primitives run (ONEDNN_VERBOSE) differ from the units the PTQ report quantized",
            file: file, line: line)
        print("PTQ \(model): \(executed.count) INT8 convolution/matmul primitives executed = \(reported.count) units in the report")
    }

    // Bars compare results on 300 (30) samples; 1e-9 only absorbs the binary rounding of x - 0.01.
    private let eps = 1e-9

    // MARK: the three models

    func testClassifierINT8Accuracy() throws {
        let q = try quantize("ppocr_cls", calibration: "lines")
        let (r32, r8) = try evaluatePair("cls", q, set: "lines")
        let a32 = try number(r32, "accuracy"), a8 = try number(r8, "accuracy"), agree = try number(r8, "argmax_agreement")
        print(
            "PTQ ppocr_cls on eval/lines (\(r8["n"] ?? "?") samples): accuracy FP32 \(f4(a32)), INT8 \(f4(a8)) "
                + "(bar >= \(f4(a32 - 0.01))); INT8 vs FP32 argmax agreement \(f4(agree)) (bar >= 0.9800)")
        XCTAssertGreaterThanOrEqual(a8, a32 - 0.01 - eps, "cls INT8 accuracy \(a8) < FP32 \(a32) - 0.01")
        XCTAssertGreaterThanOrEqual(agree, 0.98 - eps, "cls: INT8 changed \(f4(1 - agree)) of the predictions (> 2%)")
    }

    func testClassifierINT8MACShare() throws {
        try checkMACShare("ppocr_cls", quantize("ppocr_cls", calibration: "lines"), set: "lines")
    }

    func testRecogniserV4INT8Accuracy() throws {
        let q = try quantize("ppocr_v4_rec", calibration: "words_v4")
        let (r32, r8) = try evaluatePair("rec", q, set: "words_v4")
        let w32 = try number(r32, "word_acc"), w8 = try number(r8, "word_acc")
        let c32 = try number(r32, "cer"), c8 = try number(r8, "cer"), agree = try number(r8, "text_agreement")
        print(
            "PTQ ppocr_v4_rec on eval/words_v4 (\(r8["n"] ?? "?") samples): word accuracy FP32 \(f4(w32)), INT8 \(f4(w8)) "
                + "(bar >= \(f4(w32 - 0.01))); CER FP32 \(f4(c32)), INT8 \(f4(c8)); INT8 vs FP32 text agreement \(f4(agree))")
        XCTAssertGreaterThanOrEqual(w8, w32 - 0.01 - eps, "v4 rec INT8 word accuracy \(w8) < FP32 \(w32) - 0.01")
    }

    func testRecogniserV4INT8MACShare() throws {
        try checkMACShare("ppocr_v4_rec", quantize("ppocr_v4_rec", calibration: "words_v4"), set: "words_v4")
    }

    func testDetectorV4INT8Accuracy() throws {
        let q = try quantize("ppocr_v4_det", calibration: "pages")
        let (p32, p8) = try evaluatePair("det", q, set: "pages")
        let rec32 = try number(p32, "recall"), rec8 = try number(p8, "recall")
        let iouPages = try number(p8, "iou"), iouPagesMean = try number(p8, "iou_mean")
        print(
            "PTQ ppocr_v4_det on eval/pages (\(p8["n"] ?? "?") pages, \(p8["boxes"] ?? "?") boxes): box recall FP32 \(f4(rec32)), "
                + "INT8 \(f4(rec8)) (bar >= \(f4(rec32 - 0.01))); text-mask IoU INT8 vs FP32 \(f4(iouPages)) (bar >= 0.8000; "
                + "per-page mean \(f4(iouPagesMean)))")
        XCTAssertGreaterThanOrEqual(rec8, rec32 - 0.01 - eps, "det INT8 box recall \(rec8) < FP32 \(rec32) - 0.01")
        XCTAssertGreaterThanOrEqual(iouPages, 0.8 - eps, "det text-mask IoU (prob > 0.3) of INT8 vs FP32 on the rendered pages: \(iouPages)")

        let (_, s8) = try evaluatePair("det", q, set: "scans")
        let iouScans = try number(s8, "iou"), iouScansMean = try number(s8, "iou_mean")
        print(
            "PTQ ppocr_v4_det on eval/scans (\(s8["n"] ?? "?") real images): text-mask IoU INT8 vs FP32 \(f4(iouScans)) "
                + "(bar >= 0.8000; per-image mean \(f4(iouScansMean)))")
        XCTAssertGreaterThanOrEqual(iouScans, 0.8 - eps, "det text-mask IoU (prob > 0.3) of INT8 vs FP32 on the real scans: \(iouScans)")
    }

    func testDetectorV4INT8MACShare() throws {
        try checkMACShare("ppocr_v4_det", quantize("ppocr_v4_det", calibration: "pages"), set: "pages")
    }

    // MARK: the verbose parser (no data needed)

    func testVerboseMACParser() {
        let lines = """
            onednn_verbose,info,oneDNN v2.6.3 (commit N/A)
            onednn_verbose,exec,cpu,reorder,jit:uni,undef,src_f32::blocked:abcd:f0 dst_s8::blocked:acdb:f0,,,1x3x8x8,0.01
            onednn_verbose,exec,cpu,convolution,jit_int8:avx512_core_vnni,forward_inference,src_u8::blocked:acdb:f0 wei_s8::blocked:Abcde16a:f3:s8m1 bia_f32::blocked:a:f0 dst_u8::blocked:acdb:f0,attr-scratchpad:user attr-oscale:2 ,alg:convolution_direct,g16mb1_ic16oc16_ih8oh8kh3sh1dh0ph1_iw8ow8kw3sw1dw0pw1,0.02
            onednn_verbose,exec,cpu,convolution,jit:avx512_core,forward_inference,src_f32::blocked:acdb:f0 wei_f32::blocked:Abcde16a:f0 bia_f32::blocked:a:f0 dst_f32::blocked:acdb:f0,,alg:convolution_direct,mb1_g16ic16oc16_ih8oh8kh3sh1dh0ph1_iw8ow8kw3sw1dw0pw1,0.02
            onednn_verbose,exec,cpu,deconvolution,jit:avx512_core,forward_inference,src_f32::blocked:acdb:f0 wei_f32::blocked:abcd:f0 dst_f32::blocked:acdb:f0,,alg:deconvolution_direct,mb2_ic24oc8_ih4oh8kh2sh2dh0ph0_iw4ow8kw2sw2dw0pw0,0.03
            onednn_verbose,exec,cpu,inner_product,brgemm:avx512_core_vnni,forward_inference,src_s8::blocked:ab:f0 wei_s8::blocked:AB16b64a4b:f0 bia_f32::blocked:a:f0 dst_f32::blocked:ab:f0,,,mb1ic96oc24,0.01
            onednn_verbose,exec,cpu,matmul,brg:avx512_core_vnni,undef,src_u8::blocked:ab:f0 wei_s8:p:blocked:BA16a64b4a:f8:zpm2 dst_f32::blocked:ab:f0,attr-oscale:2 ,,800x120:120x120:800x120,0.05
            onednn_verbose,exec,cpu,matmul,brg:avx512_core,undef,src_f32::blocked:abcd:f0 wei_f32::blocked:abcd:f0 dst_f32::blocked:abcd:f0,,,1x8x40x15:1x8x15x40:1x8x40x40,0.01
            onednn_verbose,create:cache_miss,cpu,matmul,brg:avx512_core,undef,src_f32::blocked:ab:f0 wei_f32::blocked:ab:f0 dst_f32::blocked:ab:f0,,,4x4:4x4:4x4,0.01
            onednn_verbose,exec,cpu,pooling_v2,jit:avx512_core,forward_inference,src_u8::blocked:acdb:f0 dst_u8::blocked:acdb:f0,,alg:pooling_max,mb1ic16_ih8oh4kh2sh2dh0ph0_iw8ow4kw2sw2dw0pw0,0.01
            """
        let m = VerboseMACs(verbose: lines)
        XCTAssertEqual(m.primitives.map(\.kind), ["convolution", "convolution", "deconvolution", "inner_product", "matmul", "matmul"])
        XCTAssertEqual(m.primitives.map(\.macs), [16 * 64 * 9, 16 * 64 * 9, 2 * 8 * 24 * 16 * 4, 96 * 24, 800 * 120 * 120, 8 * 40 * 15 * 40])
        XCTAssertEqual(m.primitives.map(\.sourceType), ["u8", "f32", "f32", "s8", "u8", "f32"])
        XCTAssertEqual(m.int8, 16 * 64 * 9 + 96 * 24 + 800 * 120 * 120)
        XCTAssertEqual(m.total, m.int8 + 16 * 64 * 9 + 2 * 8 * 24 * 16 * 4 + 8 * 40 * 15 * 40)
        XCTAssertEqual(VerboseMACs.macs(kind: "matmul", descriptor: "2x1x6x5:1x3x5x7:2x3x6x7"), 2 * 3 * 6 * 5 * 7)
        XCTAssertEqual(VerboseMACs.macs(kind: "inner_product", descriptor: "mb4ic16ih5iw5oc10"), 4 * 10 * 16 * 25)
    }
}
