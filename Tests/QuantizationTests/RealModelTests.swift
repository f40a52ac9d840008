import Foundation
import Quantization
import XCTest

/// The real models and the small test set that `Tests/prepare_fixtures.sh` puts in the cache
/// (`$DNNL_QUANT_CACHE`, default `~/.cache/swift-dnnl-quantization`): samples in
/// `testdata/<set>/`, onnxruntime's outputs in `testdata/<set>_out/<sample>/<output>.npy`
/// (default optimisation) and `testdata/<set>_out_noopt/` (`--opt-level disable`).
enum RealModelData {
    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var cache: URL {
        if let c = ProcessInfo.processInfo.environment["DNNL_QUANT_CACHE"], !c.isEmpty {
            return URL(fileURLWithPath: c)
        }
        return FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".cache/swift-dnnl-quantization")
    }

    static var testData: URL { cache.appendingPathComponent("testdata") }

    /// Whether missing data fails the tests (CI) instead of skipping them.
    static var required: Bool { ProcessInfo.processInfo.environment["DNNL_QUANT_REQUIRE_MODELS"] == "1" }

    /// The cached file of a `Models/models.json` entry.
    static func modelURL(_ name: String) throws -> URL {
        struct Entries: Decodable { struct Entry: Decodable { var name: String; var path: String }; var entries: [Entry] }
        let json = try Data(contentsOf: repository.appendingPathComponent("Models/models.json"))
        guard let e = try JSONDecoder().decode(Entries.self, from: json).entries.first(where: { $0.name == name }) else {
            throw Missing(description: "Models/models.json has no entry '\(name)'")
        }
        return cache.appendingPathComponent(e.path)
    }

    /// Throws `XCTSkip` (or, with `DNNL_QUANT_REQUIRE_MODELS=1`, an error that fails the test)
    /// when the prepared data or any of `files` is missing.
    static func require(_ files: [URL]) throws {
        let needed = [testData.appendingPathComponent("prepared.stamp")] + files
        guard let missing = needed.first(where: { !FileManager.default.fileExists(atPath: $0.path) }) else { return }
        let message = "real-model test data missing (\(missing.path)): run Tests/prepare_fixtures.sh"
        if required { throw Missing(description: message + " (DNNL_QUANT_REQUIRE_MODELS=1)") }
        throw XCTSkip(message)
    }

    /// The sample files of a set, sorted.
    static func samples(_ set: String) throws -> [URL] {
        let folder = testData.appendingPathComponent(set)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".npy") || $0.hasSuffix(".npz") }.sorted()
        guard !names.isEmpty else { throw Missing(description: "\(folder.path) holds no samples: run Tests/prepare_fixtures.sh") }
        return names.map { folder.appendingPathComponent($0) }
    }

    /// A sample's feeds: an `.npy` feeds the model's only input, an `.npz` each input by key.
    static func feeds(_ sample: URL, model: Model) throws -> [String: Tensor] {
        if sample.pathExtension == "npz" { return try NPZ.read(contentsOf: sample) }
        return [model.inputs[0].name: try Tensor(contentsOfNPY: sample)]
    }

    /// onnxruntime's output of a sample (`suffix` "_out" or "_out_noopt").
    static func reference(_ set: String, _ sample: URL, output: String, suffix: String = "_out") throws -> Tensor {
        let safe = String(output.map { c in (c.isASCII && (c.isLetter || c.isNumber || "._-".contains(c))) ? c : "_" })
        return try Tensor(
            contentsOfNPY: testData.appendingPathComponent(set + suffix)
                .appendingPathComponent(sample.deletingPathExtension().lastPathComponent)
                .appendingPathComponent(safe + ".npy"))
    }
}

/// Errors of one output against a reference, relative to max(reference range, 1).
struct OutputError {
    var maxAbs = 0.0
    var meanAbs = 0.0
    var range = 0.0
    var scale: Double { max(range, 1) }
    /// The suite's tolerance: max |diff| <= 1e-3 x scale and mean |diff| <= 1e-5 x scale.
    var withinTolerance: Bool { maxAbs <= 1e-3 * scale && meanAbs <= 1e-5 * scale }

    init(_ got: [Float], _ want: [Float]) {
        guard got.count == want.count else { maxAbs = .infinity; meanAbs = .infinity; return }
        var sum = 0.0, lo = Double.infinity, hi = -Double.infinity
        for (a, b) in zip(got, want) {
            let d = abs(Double(a) - Double(b))
            maxAbs = max(maxAbs, d.isNaN ? .infinity : d)
            sum += d
            lo = min(lo, Double(b)); hi = max(hi, Double(b))
        }
        meanAbs = want.isEmpty ? 0 : sum / Double(want.count)
        range = want.isEmpty ? 0 : hi - lo
    }

    var description: String {
        String(
            format: "max |diff| %.3g (limit %.3g), mean |diff| %.3g (limit %.3g), range %.4g",
            maxAbs, 1e-3 * scale, meanAbs, 1e-5 * scale, range)
    }
}

/// Greedy CTC decoding of a recogniser output `[T, C]` (one sample): argmax per step, repeats
/// merged, blank (index 0) dropped; index i >= 1 is `characters[i - 1]`, the list ending with
/// a space (PaddleOCR's use_space_char).
func ctcDecode(_ probs: [Float], classes: Int, characters: [String]) -> String {
    var text = "", previous = -1
    for t in 0..<(probs.count / classes) {
        var best = 0, bestValue = -Float.infinity
        for c in 0..<classes where probs[t * classes + c] > bestValue { best = c; bestValue = probs[t * classes + c] }
        if best != previous && best != 0 {
            text += best - 1 < characters.count ? characters[best - 1] : "<\(best)>"
        }
        previous = best
    }
    return text
}

/// The FP32 engine on the five real models, sample by sample against onnxruntime, plus OCR-level
/// agreement (classifier argmax, decoded text, detector text mask), batching and re-planning.
final class RealModelTests: XCTestCase {
    /// One session per model, shared by the tests (sessions are `Sendable` and reuse plans).
    private static let sessionLock = NSLock()
    nonisolated(unsafe) private static var sessions: [String: InferenceSession] = [:]

    private func session(_ name: String) throws -> InferenceSession {
        let url = try RealModelData.modelURL(name)
        try RealModelData.require([url])
        Self.sessionLock.lock()
        defer { Self.sessionLock.unlock() }
        if let s = Self.sessions[name] { return s }
        let s = try InferenceSession(model: Model(contentsOf: url))
        Self.sessions[name] = s
        return s
    }

    /// Runs every sample of `set`, compares every output with onnxruntime's and returns our
    /// outputs and the references by sample file name.
    @discardableResult
    private func compareSet(_ model: String, _ set: String, file: StaticString = #filePath, line: UInt = #line)
        throws -> [(sample: URL, ours: [String: Tensor], reference: [String: Tensor])]
    {
        let s = try session(model)
        try RealModelData.require([RealModelData.testData.appendingPathComponent(set + "_out")])
        var results: [(URL, [String: Tensor], [String: Tensor])] = []
        var worst = 0.0, worstMean = 0.0, worstNoopt = 0.0, ortSelf = 0.0
        let samples = try RealModelData.samples(set)
        for sample in samples {
            let name = sample.lastPathComponent
            let ours = try s.run(RealModelData.feeds(sample, model: s.model))
            var refs: [String: Tensor] = [:]
            for o in s.model.outputs {
                let ref = try RealModelData.reference(set, sample, output: o.name)
                refs[o.name] = ref
                guard let got = ours[o.name] else {
                    XCTFail("\(model) \(name): no output '\(o.name)'", file: file, line: line)
                    continue
                }
                XCTAssertEqual(got.shape, ref.shape, "\(model) \(name) '\(o.name)': shape", file: file, line: line)
                guard got.shape == ref.shape else { continue }
                let g = got.floatValues(), r = ref.floatValues()
                let e = OutputError(g, r)
                XCTAssertTrue(
                    e.withinTolerance, "\(model) \(name) output '\(o.name)' vs onnxruntime: \(e.description)",
                    file: file, line: line)
                worst = max(worst, e.maxAbs / e.scale)
                worstMean = max(worstMean, e.meanAbs / e.scale)
                if let noopt = try? RealModelData.reference(set, sample, output: o.name, suffix: "_out_noopt"),
                    noopt.shape == ref.shape
                {
                    let n = noopt.floatValues()
                    worstNoopt = max(worstNoopt, OutputError(g, n).maxAbs / e.scale)
                    ortSelf = max(ortSelf, OutputError(n, r).maxAbs / e.scale)
                }
            }
            results.append((sample, ours, refs))
        }
        let g = { (x: Double) in String(format: "%.2g", x) }
        print(
            "\(model) on \(set): \(samples.count) samples; relative max |diff| \(g(worst)), mean \(g(worstMean)) "
                + "vs onnxruntime; \(g(worstNoopt)) vs onnxruntime without optimisation (which differs from its "
                + "default by \(g(ortSelf)))")
        return results
    }

    // MARK: per-sample agreement

    func testClassifierMatchesOnnxRuntime() throws {
        let out = "save_infer_model/scale_0.tmp_1"
        for (sample, ours, ref) in try compareSet("ppocr_cls", "lines") {
            let a = try XCTUnwrap(ours[out]).floatValues(), b = try XCTUnwrap(ref[out]).floatValues()
            XCTAssertEqual(argmax(a), argmax(b), "\(sample.lastPathComponent): direction \(a) vs onnxruntime \(b)")
        }
    }

    func testRecogniserV4MatchesOnnxRuntime() throws {
        let chars = try characters("ppocr_v4_rec")
        try checkText(
            compareSet("ppocr_v4_rec", "words_v4"), output: "softmax_11.tmp_0", chars: chars,
            labels: "words_v4")
    }

    func testRecogniserV2WithLSTMMatchesOnnxRuntime() throws {
        let chars = try characters("ppocr_v2_rec")
        try checkText(
            compareSet("ppocr_v2_rec", "words_v2"), output: "save_infer_model/scale_0.tmp_1",
            chars: chars, labels: "words_v2")
    }

    func testDetectorOnPagesMatchesOnnxRuntime() throws {
        try checkMasks(compareSet("ppocr_v4_det", "pages"))
    }

    func testDetectorOnScansMatchesOnnxRuntime() throws {
        try checkMasks(compareSet("ppocr_v4_det", "scans"))
    }

    func testVoiceActivityDetectorMatchesOnnxRuntime() throws {
        for (sample, ours, ref) in try compareSet("silero_vad", "speech") {
            // Speech / no speech at 0.5 agrees on every clip.
            let a = try XCTUnwrap(ours["speech_probs"]).floatValues().max() ?? 0
            let b = try XCTUnwrap(ref["speech_probs"]).floatValues().max() ?? 0
            XCTAssertEqual(a > 0.5, b > 0.5, "\(sample.lastPathComponent): max speech probability \(a) vs onnxruntime \(b)")
        }
    }

    // MARK: batching and re-planning

    /// Four text lines stacked into one [4,3,48,192] batch give the per-sample results.
    func testClassifierBatchEqualsSingleRuns() throws {
        try checkBatch("ppocr_cls", "lines", count: 4, output: "save_infer_model/scale_0.tmp_1")
    }

    /// Three words through the bidirectional LSTMs as one batch (N = 3 in the RNN primitives).
    func testRecogniserV2BatchEqualsSingleRuns() throws {
        try checkBatch("ppocr_v2_rec", "words_v2", count: 3, output: "save_infer_model/scale_0.tmp_1")
    }

    /// Three words through the v4 recogniser (SVTR: attention MatMuls with a batch dim) as one batch.
    func testRecogniserV4BatchEqualsSingleRuns() throws {
        try checkBatch("ppocr_v4_rec", "words_v4", count: 3, output: "softmax_11.tmp_0")
    }

    /// One v4 recogniser session fed widths 320, 480, a crop to the text, and 320 again: each new
    /// width compiles a plan of its own (sequence length W/8), and going back reuses the first.
    func testRecogniserV4ReplansForNewWidths() throws {
        let url = try RealModelData.modelURL("ppocr_v4_rec")
        try RealModelData.require([url, RealModelData.testData.appendingPathComponent("words_v4_widths_out")])
        let s = try InferenceSession(model: Model(contentsOf: url))  // fresh: no plans yet
        let out = "softmax_11.tmp_0"
        let chars = try characters("ppocr_v4_rec")
        let widths = try RealModelData.samples("words_v4_widths")
        let base = try RealModelData.samples("words_v4")
        // width 320, the others of the first word (480 and its crop), 320 again, the rest.
        let order: [(set: String, sample: URL)] =
            [("words_v4", base[0])]
            + widths.prefix(2).map { ("words_v4_widths", $0) } + [("words_v4", base[0])]
            + widths.dropFirst(2).map { ("words_v4_widths", $0) } + [("words_v4", base[1])]
        var seenWidths: Set<Int> = []
        for (set, sample) in order {
            let x = try Tensor(contentsOfNPY: sample)
            let got = try XCTUnwrap(s.run(["x": x])[out])
            let ref = try RealModelData.reference(set, sample, output: out)
            let name = "\(sample.lastPathComponent) (width \(x.shape[3]))"
            seenWidths.insert(x.shape[3])
            XCTAssertEqual(got.shape, [1, x.shape[3] / 8, chars.count + 1], name)
            XCTAssertEqual(got.shape, ref.shape, name)
            guard got.shape == ref.shape else { continue }
            let e = OutputError(got.floatValues(), ref.floatValues())
            XCTAssertTrue(e.withinTolerance, "\(name) vs onnxruntime: \(e.description)")
            let classes = got.shape[2]
            XCTAssertEqual(
                ctcDecode(got.floatValues(), classes: classes, characters: chars),
                ctcDecode(ref.floatValues(), classes: classes, characters: chars), name)
        }
        XCTAssertGreaterThanOrEqual(seenWidths.count, 3, "the data should hold at least 3 widths: \(seenWidths)")
    }

    // MARK: helpers

    private func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] } ?? -1 }

    /// The CTC character list (plus the final space) of a recogniser.
    private func characters(_ model: String) throws -> [String] {
        if model == "ppocr_v4_rec" {
            let m = try session(model).model
            let list = try XCTUnwrap(m.metadata["character"], "the v4 recogniser keeps its characters in metadata_props")
            return list.components(separatedBy: "\n") + [" "]
        }
        let url = try RealModelData.modelURL("ppocr_keys_v1")
        try RealModelData.require([url])
        var lines = try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\r\n")
        if lines.last == "" { lines.removeLast() }
        return lines + [" "]
    }

    /// Decoded text equals onnxruntime's on every sample; prints how many match the labels.
    private func checkText(
        _ results: [(sample: URL, ours: [String: Tensor], reference: [String: Tensor])],
        output: String, chars: [String], labels set: String
    ) throws {
        struct Label: Decodable { var text: String }
        let labels =
            (try? JSONDecoder().decode(
                [String: Label].self,
                from: Data(contentsOf: RealModelData.testData.appendingPathComponent(set).appendingPathComponent("labels.json")))) ?? [:]
        var correct = 0
        for (sample, ours, ref) in results {
            let got = try XCTUnwrap(ours[output]), want = try XCTUnwrap(ref[output])
            let classes = got.shape.last ?? 0
            XCTAssertEqual(classes, chars.count + 1, "classes vs character list")
            let a = ctcDecode(got.floatValues(), classes: classes, characters: chars)
            let b = ctcDecode(want.floatValues(), classes: classes, characters: chars)
            XCTAssertEqual(a, b, "\(sample.lastPathComponent): decoded text differs from onnxruntime's")
            if let l = labels[sample.lastPathComponent], l.text.replacingOccurrences(of: " ", with: "") == a.replacingOccurrences(of: " ", with: "") {
                correct += 1
            }
        }
        print("\(set): \(correct) of \(results.count) words read as labelled (informative)")
    }

    /// The text mask (probability > 0.3, PaddleOCR's DB threshold) has IoU >= 0.99 with onnxruntime's.
    private func checkMasks(_ results: [(sample: URL, ours: [String: Tensor], reference: [String: Tensor])]) throws {
        for (sample, ours, ref) in results {
            let a = try XCTUnwrap(ours["sigmoid_0.tmp_0"]).floatValues()
            let b = try XCTUnwrap(ref["sigmoid_0.tmp_0"]).floatValues()
            guard a.count == b.count else { continue }  // the shape check already failed
            var inter = 0, union = 0
            for (x, y) in zip(a, b) {
                let p = x > 0.3, q = y > 0.3
                if p && q { inter += 1 }
                if p || q { union += 1 }
            }
            let iou = union == 0 ? 1 : Double(inter) / Double(union)
            XCTAssertGreaterThanOrEqual(iou, 0.99, "\(sample.lastPathComponent): text mask IoU \(iou) (\(inter)/\(union))")
        }
    }

    /// `count` samples stacked along dim 0 give what each gives alone (and what onnxruntime gives).
    private func checkBatch(_ model: String, _ set: String, count: Int, output: String) throws {
        let s = try session(model)
        let samples = Array(try RealModelData.samples(set).prefix(count))
        XCTAssertEqual(samples.count, count, "not enough samples in \(set)")
        let inputs = try samples.map { try Tensor(contentsOfNPY: $0) }
        let row = inputs[0].shape
        XCTAssertTrue(inputs.allSatisfy { $0.shape == row }, "samples of one shape")
        let batch = Tensor(shape: [inputs.count] + row.dropFirst(), scalars: inputs.flatMap { $0.scalars(as: Float.self) })
        let batched = try XCTUnwrap(s.run([s.model.inputs[0].name: batch])[output])
        XCTAssertEqual(batched.shape.first, inputs.count)
        let all = batched.floatValues(), size = all.count / inputs.count
        for (i, x) in inputs.enumerated() {
            let single = try XCTUnwrap(s.run([s.model.inputs[0].name: x])[output])
            XCTAssertEqual(Array(single.shape.dropFirst()), Array(batched.shape.dropFirst()))
            let part = Array(all[(i * size)..<((i + 1) * size)])
            let alone = OutputError(part, single.floatValues())
            XCTAssertTrue(alone.withinTolerance, "\(model) batch row \(i) vs its single run: \(alone.description)")
            let ref = try RealModelData.reference(set, samples[i], output: output)
            let e = OutputError(part, ref.floatValues())
            XCTAssertTrue(e.withinTolerance, "\(model) batch row \(i) vs onnxruntime: \(e.description)")
        }
    }
}
