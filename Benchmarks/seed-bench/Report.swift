import DNNL
import Foundation
import Quantization

/// A ratio measured per round: its median and range.
struct RoundRatio {
    let median: Double
    let min: Double
    let max: Double
    init?(_ perRound: [Double]) {
        guard !perRound.isEmpty else { return nil }
        median = medianOf(perRound)
        min = perRound.min()!
        max = perRound.max()!
    }
    var cell: String { String(format: "%.2fx (%.2f-%.2f)", median, min, max) }
    /// Ahead, a tie (0.97-1.0: within the noise of this kind of machine) or behind.
    var verdict: String { median >= 1 ? "ahead" : median >= 0.97 ? "tie" : "behind" }
}

struct Report {
    let results: [ModelResult]
    let threads: [Int]
    let batch: Int
    let rounds: Int
    let engines: [EngineKey.Engine]
    let peerVersions: [String: String]
    let overhead: [String: OverheadReport]
    let heldout: Int
    let calibrationSamples: Int

    func ms(_ r: ModelResult, _ k: EngineKey, _ t: Int) -> [Double]? { r.roundMs[Measurement(key: k, threads: t)] }

    func imagesPerSecond(_ r: ModelResult, _ k: EngineKey, _ t: Int) -> Double? {
        ms(r, k, t).map { Double(batch) * 1000 / median($0) }
    }

    /// Per round: the fastest of `others` (latency) over `key`'s latency.
    func ratio(_ r: ModelResult, _ key: EngineKey, over others: [EngineKey], _ t: Int) -> RoundRatio? {
        guard let mine = ms(r, key, t) else { return nil }
        let theirs = others.compactMap { ms(r, $0, t) }
        guard !theirs.isEmpty else { return nil }
        return RoundRatio(mine.indices.map { i in theirs.map { $0[i] }.min()! / mine[i] })
    }

    var peers: [EngineKey.Engine] { engines.filter { $0 != .ours } }
    static let ours32 = EngineKey(engine: .ours, precision: .fp32)
    static let ours8 = EngineKey(engine: .ours, precision: .int8)

    var machine: String {
        let cpu =
            (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        let peerList = peerVersions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) CPUs, oneDNN \(Platform.oneDNNVersion) (\(Platform.isa)), "
            + "swift-dnnl-quantization \(QuantizationLibrary.version)\(peerList.isEmpty ? "" : ", " + peerList); load average \(load)"
    }

    func printTables() {
        print("\n# seed-bench: batch \(batch), \(rounds) interleaved rounds, \(calibrationSamples) calibration samples")
        print(machine)
        let short: [EngineKey.Engine: String] = [.ours: "ours", .onnxruntime: "ORT", .openvino: "OV"]
        for t in threads {
            print("\n## \(t) thread\(t == 1 ? "" : "s"): images/s (median of rounds); ratios are medians of per-round ratios (range)\n")
            var header = ["model", "ours FP32", "ours INT8", "INT8/FP32", "seed"]
            for p in peers { header += ["\(short[p]!) FP32", "\(short[p]!) INT8"] }
            if !peers.isEmpty { header += ["ours INT8 / best peer INT8", "ours FP32 / best peer FP32"] }
            print("| " + header.joined(separator: " | ") + " |")
            print("|" + header.map { _ in " --- |" }.joined())
            for r in results {
                func ips(_ k: EngineKey) -> String { imagesPerSecond(r, k, t).map { String(format: "%.1f", $0) } ?? "-" }
                var row = [r.name, ips(Self.ours32), ips(Self.ours8)]
                let own = ratio(r, Self.ours8, over: [Self.ours32], t)
                let seed = seedRatios[r.name] ?? 0
                row.append(own.map { $0.cell + (t == 1 && $0.median < seed ? " below seed" : "") } ?? "-")
                row.append(String(format: "%.2f", seed))
                for p in peers { row += [ips(EngineKey(engine: p, precision: .fp32)), ips(EngineKey(engine: p, precision: .int8))] }
                if !peers.isEmpty {
                    let i8 = ratio(r, Self.ours8, over: peers.map { EngineKey(engine: $0, precision: .int8) }, t)
                    let f32 = ratio(r, Self.ours32, over: peers.map { EngineKey(engine: $0, precision: .fp32) }, t)
                    row.append(i8.map { "\($0.cell) \($0.verdict)" } ?? "-")
                    row.append(f32.map { "\($0.cell)\($0.median < 0.95 ? " below 0.95" : "")" } ?? "-")
                }
                print("| " + row.joined(separator: " | ") + " |")
            }
        }
        if results.contains(where: { !$0.agreement.isEmpty }) {
            print("\n## INT8 vs the same engine's FP32 on \(heldout) held-out inputs: top-1 agreement, centred cosine of logits (mean, worst)\n")
            let header = ["model"] + engines.map { "\(short[$0]!) top-1" } + engines.map { "\(short[$0]!) cosine" }
            print("| " + header.joined(separator: " | ") + " |")
            print("|" + header.map { _ in " --- |" }.joined())
            for r in results {
                let top = engines.map { e in r.agreement[e].map { String(format: "%.1f%%", 100 * $0.top1) } ?? "-" }
                let cos = engines.map { e in r.agreement[e].map { String(format: "%.4f (%.3f)", $0.centredCosine, $0.worstCosine) } ?? "-" }
                print("| " + ([r.name] + top + cos).joined(separator: " | ") + " |")
            }
            let checks = results.flatMap { r in
                r.fp32VsOurs.map { "\(r.name) \(short[$0.key]!) \(String(format: "%.1f%%, %.5f", 100 * $0.value.top1, $0.value.centredCosine))" }
            }
            if !checks.isEmpty { print("\nFP32 of each peer vs our FP32 (same file; top-1, cosine): " + checks.sorted().joined(separator: "; ")) }
        }
        if results.contains(where: { !$0.peakRSSKiB.isEmpty }) {
            print("\n## Peak resident memory (MiB, a fresh process per engine: load, compile, 5 runs at \(threads[0]) thread(s)), FP32 / INT8\n")
            print("| model | " + engines.map { short[$0]! }.joined(separator: " | ") + " |")
            print("|" + ([" --- |"] + engines.map { _ in " --- |" }).joined())
            for r in results {
                let cells = engines.map { e -> String in
                    let f = r.peakRSSKiB[EngineKey(engine: e, precision: .fp32)], q = r.peakRSSKiB[EngineKey(engine: e, precision: .int8)]
                    return "\(f.map { String($0 / 1024) } ?? "-") / \(q.map { String($0 / 1024) } ?? "-")"
                }
                print("| \(r.name) | " + cells.joined(separator: " | ") + " |")
            }
        }
        if !overhead.isEmpty {
            print("\n## Engine overhead, ours INT8, 1 thread: wall time vs the sum of oneDNN primitive times (ONEDNN_VERBOSE), medians\n")
            print("| model | wall ms | primitives ms | overhead | reorders/run (f32 side) | f32-src primitives | time by primitive kind |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for (name, o) in overhead.sorted(by: { $0.key < $1.key }) {
                let kinds = o.kinds.prefix(5).map { String(format: "%@ %d: %.2f", $0.kind, $0.count, $0.ms) }.joined(separator: ", ")
                print(
                    String(
                        format: "| %@ | %.3f | %.3f | %.1f%% | %d (%d) | %d | %@ |", name, o.wallMedian, o.primitiveMedian, 100 * o.overhead,
                        o.reorders, o.f32Reorders, o.f32Primitives, kinds))
            }
        }
    }

    func json() -> String {
        var models: [[String: Any]] = []
        for r in results {
            var speed: [[String: Any]] = []
            for (m, v) in r.roundMs.sorted(by: { ($0.key.threads, $0.key.key) < ($1.key.threads, $1.key.key) }) {
                speed.append([
                    "engine": m.key.engine.rawValue, "precision": m.key.precision.rawValue, "threads": m.threads, "round_median_ms": v,
                    "images_per_s": Double(batch) * 1000 / median(v),
                ])
            }
            var agreement: [String: Any] = [:]
            for (e, a) in r.agreement { agreement[e.rawValue] = ["top1": a.top1, "centred_cosine": a.centredCosine, "worst_cosine": a.worstCosine] }
            var fp32VsOurs: [String: Any] = [:]
            for (e, a) in r.fp32VsOurs {
                fp32VsOurs[e.rawValue] = ["top1": a.top1, "centred_cosine": a.centredCosine, "worst_cosine": a.worstCosine]
            }
            var rss: [String: Int] = [:]
            for (k, v) in r.peakRSSKiB { rss["\(k.engine.rawValue)_\(k.precision.rawValue)"] = v }
            models.append([
                "model": r.name, "speed": speed, "agreement": agreement, "fp32_vs_ours": fp32VsOurs, "peak_rss_kib": rss,
                "quantize_seconds": r.quantizeSeconds,
            ])
        }
        var over: [String: Any] = [:]
        for (n, o) in overhead {
            over[n] = [
                "wall_ms": o.wallMedian, "primitive_ms": o.primitiveMedian, "overhead": o.overhead.isFinite ? o.overhead : -1, "reorders": o.reorders,
            ]
        }
        let obj: [String: Any] = [
            "machine": machine, "batch": batch, "rounds": rounds, "threads": threads, "models": models, "overhead": over,
            "heldout": heldout, "calibration_samples": calibrationSamples,
        ]
        do {
            return String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self)
        } catch {
            return "{\"error\": \"the results could not be encoded as JSON: \(error)\"}"
        }
    }
}

func printModel(_ r: ModelResult) {
    let parts = r.roundMs.sorted { ($0.key.threads, $0.key.key) < ($1.key.threads, $1.key.key) }
        .map { String(format: "%@@%d %.2f ms", $0.key.key.description, $0.key.threads, median($0.value)) }
    log("\(r.name): " + parts.joined(separator: ", "))
}
