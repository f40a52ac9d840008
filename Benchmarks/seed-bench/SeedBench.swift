import ArgumentParser
import DNNL
import Foundation
import Quantization

/// `swift run -c release seed-bench`: the seed's benchmark table (FP32 vs INT8 images/s on the
/// six paddle2onnx-exported CNNs) for our engine next to onnxruntime and OpenVINO on the very same
/// files, measured in interleaved rounds. See Benchmarks/README.md.
@main
struct SeedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed-bench",
        abstract: "The seed's FP32 vs INT8 table for ours, onnxruntime and OpenVINO on the same model files.",
        discussion: """
            For each model (Models/paddle_export.py zoo NAME, exported when missing): our PTQ \
            (default options) and the peers' INT8 (onnxruntime quant_pre_process + quantize_static \
            QDQ u8/s8 per channel; OpenVINO nncf.quantize defaults) from the same calibration \
            samples; then, in each round and for each thread count, every engine timed for \
            --seconds in turn (the order rotates per round). Throughput is batch / median latency; \
            ratios are the median of per-round ratios, with their range. Then INT8-vs-FP32 \
            agreement on held-out inputs, peak RSS (fresh processes) and, for resnet50 and \
            mobilenet_v2, engine overhead vs oneDNN's verbose primitive times. The peers run in \
            Benchmarks/seed-bench/peers.py in the project's venv (installed when missing; skipped \
            with a message when they cannot be).
            """,
        subcommands: [Table.self, RSSChild.self, OverheadChild.self],
        defaultSubcommand: Table.self)
}

/// The seed's INT8/FP32 ratios (Xeon 6271, batch 1, 1 thread).
let seedRatios: [String: Double] = [
    "mobilenet_v1": 2.66, "mobilenet_v2": 2.12, "resnet50": 3.59, "resnet101": 3.67, "vgg16": 2.94, "vgg19": 3.06,
]
let zooNames = ["mobilenet_v1", "mobilenet_v2", "resnet50", "resnet101", "vgg16", "vgg19"]

struct Table: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "table", abstract: "Measure and print the table (default).")

    @Option(help: "Comma-separated zoo models.") var models = zooNames.joined(separator: ",")
    @Option(help: "Comma-separated thread counts.") var threads = "1,2"
    @Option(help: "Batch size (the models are rewritten to this batch).") var batch = 1
    @Option(help: "Interleaved rounds.") var rounds = 5
    @Option(help: "Seconds per engine per round.") var seconds = 1.0
    @Option(help: "Calibration samples (the same for every engine).") var calibrationSamples = 16
    @Option(help: "Held-out inputs for INT8-vs-FP32 agreement (0: skip).") var heldout = 200
    @Flag(help: "Skip onnxruntime and OpenVINO.") var noPeers = false
    @Flag(help: "Skip the peak-RSS processes.") var noMemory = false
    @Flag(help: "Skip the engine-overhead measurement.") var noOverhead = false
    @Flag(help: "Print one JSON object with every measurement on the last line.") var json = false

    func validate() throws {
        let names = models.split(separator: ",").map(String.init)
        guard !names.isEmpty, names.allSatisfy(zooNames.contains) else {
            throw ValidationError("--models: each of \(zooNames.joined(separator: ", ")), got \(models)")
        }
        guard !threadList.isEmpty, threadList.allSatisfy({ (1...Platform.maxThreadCount).contains($0) }) else {
            throw ValidationError("--threads: counts in 1...\(Platform.maxThreadCount), got \(threads)")
        }
        guard (1...64).contains(batch), batch <= calibrationSamples else {
            throw ValidationError("--batch must be in 1...64 and at most --calibration-samples")
        }
        guard rounds >= 1, seconds > 0, (1...1000).contains(calibrationSamples), (0...10000).contains(heldout) else {
            throw ValidationError("--rounds >= 1, --seconds > 0, --calibration-samples 1...1000, --heldout 0...10000")
        }
    }

    var threadList: [Int] { threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() throws {
        let names = models.split(separator: ",").map(String.init)
        let fm = FileManager.default
        try fm.createDirectory(at: Paths.work.appendingPathComponent("data"), withIntermediateDirectories: true)

        // Models (paddle2onnx exports) and data (image-like samples, disjoint seeds).
        let zoo = Paths.cache.appendingPathComponent("paddle/zoo")
        let missing = names.filter { !fm.fileExists(atPath: zoo.appendingPathComponent("\($0).onnx").path) }
        if !missing.isEmpty {
            log("exporting \(missing.joined(separator: ", ")) with Models/paddle_export.py zoo ...")
            try runPython(Paths.exportScript, ["zoo"] + missing)
        }
        func data(_ name: String, _ n: Int, _ seed: Int) throws -> URL {
            let url = Paths.work.appendingPathComponent("data/\(name)\(n)_seed\(seed).npy")
            if !fm.fileExists(atPath: url.path) { try runPython(Paths.peersScript, ["data", url.path, "\(n)", "\(seed)"]) }
            return url
        }
        let calibURL = try data("calib", calibrationSamples, 11)
        let heldoutURL = heldout > 0 ? try data("heldout", heldout, 12) : nil
        let timingURL = try data("timing", batch, 13)
        let calib = try Rows(npy: calibURL)
        let timing = try Rows(npy: timingURL).batch(batch)

        var peers: PeerProcess?
        var peerVersions: [String: String] = [:]
        if !noPeers {
            do {
                let p = try PeerProcess()
                let v = try p.request(["op": "versions"])
                for k in ["onnxruntime", "openvino", "nncf"] { if let s = v[k] as? String { peerVersions[k] = s } }
                if let m = v["missing"] as? [String: String], !m.isEmpty {
                    for (k, e) in m.sorted(by: { $0.key < $1.key }) { log("\(k) is not available (\(e)): skipped") }
                }
                peers = p
            } catch { log("the peers could not start (\(error)): skipped") }
        }
        var engines: [EngineKey.Engine] = [.ours]
        if peerVersions["onnxruntime"] != nil { engines.append(.onnxruntime) }
        if peerVersions["openvino"] != nil && peerVersions["nncf"] != nil { engines.append(.openvino) }

        var results: [ModelResult] = []
        for name in names {
            log("\(name): preparing")
            var fp32 = zoo.appendingPathComponent("\(name).onnx")
            if batch != 1, let p = peers {
                let out = Paths.work.appendingPathComponent("models/\(name).b\(batch).onnx")
                fp32 = URL(fileURLWithPath: try p.request(["op": "rebatch", "fp32": fp32.path, "batch": batch, "out": out.path])["path"] as! String)
            } else if batch != 1 {
                throw BenchError("--batch > 1 rewrites the models with peers.py: run without --no-peers")
            }
            var result = ModelResult(name: name)
            result.ours = try prepareOurs(fp32: fp32, name: name, calib: calib, result: &result)
            var files: [EngineKey: URL] = [:]
            files[EngineKey(engine: .ours, precision: .fp32)] = fp32
            files[EngineKey(engine: .ours, precision: .int8)] = result.ours.int8URL
            for e in engines where e != .ours {
                files[EngineKey(engine: e, precision: .fp32)] = fp32
                let ext = e == .openvino ? "xml" : "onnx"
                // Named by the FP32 file's size and date: a re-exported model is quantized again.
                let out = Paths.work.appendingPathComponent("\(e.rawValue)/\(name).\(try fileStamp(fp32)).c\(calibrationSamples).int8.\(ext)")
                try fm.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
                let t0 = Date()
                do {
                    _ = try peers!.request([
                        "op": "quantize", "engine": e.rawValue, "fp32": fp32.path, "calib": calibURL.path, "out": out.path, "batch": batch,
                    ])
                    files[EngineKey(engine: e, precision: .int8)] = out
                    result.quantizeSeconds[e.rawValue] = Date().timeIntervalSince(t0)
                } catch { log("\(name): \(e.rawValue) INT8 failed (\(error)): left out") }
            }
            let keys = files.keys.sorted()
            try measureSpeed(result: &result, keys: keys, files: files, peers: peers, timing: timing, timingURL: timingURL)
            if let heldoutURL {
                if batch == 1 {
                    try measureAgreement(result: &result, keys: keys, peers: peers, heldoutURL: heldoutURL)
                } else {
                    log("\(name): agreement is measured at batch 1 only (run without --batch for it)")
                }
            }
            if !noMemory { measureMemory(result: &result, keys: keys, files: files, timingURL: timingURL) }
            for k in keys where k.engine != .ours {
                for t in threadList { _ = try? peers?.request(["op": "unload", "id": peerID(k, name, t)]) }
            }
            result.ours.engines = [:]
            results.append(result)
            printModel(result)
        }
        var overhead: [String: OverheadReport] = [:]
        if !noOverhead {
            for r in results where ["resnet50", "mobilenet_v2"].contains(r.name) {
                log("\(r.name): engine overhead (INT8, 1 thread)")
                let out = try runCommand(selfPath(), ["overhead", r.ours.int8URL.path, timingURL.path, "--threads", "1", "--rounds", "\(rounds)"])
                overhead[r.name] = try OverheadReport(childOutput: out)
            }
        }
        let report = Report(
            results: results, threads: threadList, batch: batch, rounds: rounds, engines: engines,
            peerVersions: peerVersions, overhead: overhead, heldout: heldout, calibrationSamples: calibrationSamples)
        report.printTables()
        if json { print(report.json()) }
    }

    // MARK: - steps

    func prepareOurs(fp32: URL, name: String, calib: Rows, result: inout ModelResult) throws -> OursState {
        let model = try Model(contentsOf: fp32)
        let inputName = model.inputs[0].name
        let t0 = Date()
        // Batches of --batch samples (the model is rewritten to that batch): the same samples
        // the peers get.
        let q = try PostTrainingQuantizer().quantize(
            model, calibrationData: (0..<(calib.count / batch)).lazy.map { [inputName: calib.rows($0 * batch, count: batch)] })
        result.quantizeSeconds["ours"] = Date().timeIntervalSince(t0)
        let url = Paths.work.appendingPathComponent("ours/\(name).b\(batch).c\(calibrationSamples).int8.onnx")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try q.model.write(to: url)
        var s = OursState(int8URL: url)
        s.engines[.fp32] = try OurEngine(url: fp32)
        s.engines[.int8] = try OurEngine(url: url)
        return s
    }

    func peerID(_ k: EngineKey, _ model: String, _ threads: Int) -> String { "\(model)/\(k.engine.rawValue)/\(k.precision.rawValue)/\(threads)" }

    func measureSpeed(
        result: inout ModelResult, keys: [EngineKey], files: [EngineKey: URL], peers: PeerProcess?, timing: Tensor, timingURL: URL
    ) throws {
        for k in keys where k.engine != .ours {
            for t in threadList {
                _ = try peers!.request([
                    "op": "load", "id": peerID(k, result.name, t), "engine": k.engine.rawValue, "model": files[k]!.path, "threads": t,
                ])
            }
        }
        for r in 0..<rounds {
            log("\(result.name): round \(r + 1)/\(rounds)")
            for t in threadList {
                // Rotate the order each round so that no engine always follows the same one.
                let order = (0..<keys.count).map { keys[($0 + r) % keys.count] }
                for k in order {
                    let ms: [Double]
                    if k.engine == .ours {
                        ms = try result.ours.engines[k.precision]!.time(input: timing, threads: t, seconds: seconds, minRuns: 3)
                    } else {
                        let a = try peers!.request([
                            "op": "time", "id": peerID(k, result.name, t), "input": timingURL.path, "seconds": seconds, "min_runs": 3,
                        ])
                        ms = (a["ms"] as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } ?? []
                    }
                    result.roundMs[Measurement(key: k, threads: t), default: []].append(median(ms))
                    Thread.sleep(forTimeInterval: 0.05)  // let spinning worker threads of the last engine go idle
                }
            }
        }
    }

    func measureAgreement(result: inout ModelResult, keys: [EngineKey], peers: PeerProcess?, heldoutURL: URL) throws {
        log("\(result.name): \(heldout) held-out inputs through every engine")
        let rows = try Rows(npy: heldoutURL)
        var outputs: [EngineKey: [[Float]]] = [:]
        for k in keys {
            if k.engine == .ours {
                outputs[k] = try result.ours.engines[k.precision]!.outputs(rows)
            } else {
                let out = Paths.work.appendingPathComponent("outputs/\(result.name).\(k.engine.rawValue).\(k.precision.rawValue).npy")
                _ = try peers!.request(["op": "outputs", "id": peerID(k, result.name, threadList[0]), "inputs": heldoutURL.path, "out": out.path])
                let y = try Rows(npy: out)
                outputs[k] = (0..<y.count).map { Array(y.values[$0 * y.rowCount..<($0 + 1) * y.rowCount]) }
            }
        }
        for e in Set(keys.map(\.engine)) {
            if let f = outputs[EngineKey(engine: e, precision: .fp32)], let q = outputs[EngineKey(engine: e, precision: .int8)] {
                result.agreement[e] = Agreement(fp32: f, int8: q)
            }
        }
        // FP32 engines against ours: they run the same file, so this checks the comparison itself.
        if let ours = outputs[EngineKey(engine: .ours, precision: .fp32)] {
            for e in Set(keys.map(\.engine)) where e != .ours {
                if let f = outputs[EngineKey(engine: e, precision: .fp32)] { result.fp32VsOurs[e] = Agreement(fp32: ours, int8: f) }
            }
        }
    }

    func measureMemory(result: inout ModelResult, keys: [EngineKey], files: [EngineKey: URL], timingURL: URL) {
        for k in keys {
            do {
                let out: String
                if k.engine == .ours {
                    out = try runCommand(selfPath(), ["rss", files[k]!.path, timingURL.path, "--threads", "\(threadList[0])"])
                } else {
                    out = try runPython(
                        Paths.peersScript, ["rss", k.engine.rawValue, k.precision.rawValue, files[k]!.path, timingURL.path, "\(threadList[0])"])
                }
                if let v = out.split(separator: "\n").last?.split(separator: " ").last, let kib = Int(v) { result.peakRSSKiB[k] = kib }
            } catch { log("\(result.name): peak RSS of \(k) failed (\(error))") }
        }
    }
}

/// A short stamp of a file's size and modification time.
func fileStamp(_ url: URL) throws -> String {
    let a = try FileManager.default.attributesOfItem(atPath: url.path)
    let size = (a[.size] as? NSNumber)?.intValue ?? 0
    let date = Int((a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
    return String(size, radix: 36) + "-" + String(date, radix: 36)
}

/// This executable's path (for the child processes).
func selfPath() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("seed-bench: \(message)\n".utf8))
}

struct Measurement: Hashable {
    let key: EngineKey
    let threads: Int
}

struct OursState {
    let int8URL: URL
    var engines: [EngineKey.Precision: OurEngine] = [:]
}

struct ModelResult {
    let name: String
    var ours = OursState(int8URL: URL(fileURLWithPath: "/"))
    /// Per (engine, threads): the median latency (ms) of each round.
    var roundMs: [Measurement: [Double]] = [:]
    var agreement: [EngineKey.Engine: Agreement] = [:]
    var fp32VsOurs: [EngineKey.Engine: Agreement] = [:]
    var peakRSSKiB: [EngineKey: Int] = [:]
    var quantizeSeconds: [String: Double] = [:]
}
