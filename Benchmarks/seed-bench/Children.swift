import ArgumentParser
import DNNL
import Foundation
import Quantization

/// `seed-bench rss MODEL INPUT.npy --threads T`: peak resident memory of our engine on one model
/// in a fresh process (loads it, compiles the plan, runs it 5 times; prints `peak_rss_kib N`).
struct RSSChild: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rss", abstract: "(internal) peak RSS of one model", shouldDisplay: false)
    @Argument var model: String
    @Argument var input: String
    @Option var threads = 1

    func run() throws {
        let engine = try OurEngine(url: URL(fileURLWithPath: model))
        let x = try Tensor(contentsOfNPY: URL(fileURLWithPath: input))
        _ = try engine.time(input: x, threads: threads, seconds: 0, minRuns: 5)
        print("peak_rss_kib \(peakRSSKiB())")
    }
}

/// Peak resident set size of this process (`VmHWM` of /proc/self/status), KiB.
func peakRSSKiB() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
}

/// `seed-bench overhead MODEL INPUT.npy --threads T --rounds R --runs K`: in each round, K runs
/// with oneDNN's verbose log off (wall time) then K runs with it on (`dnnl_set_verbose(1)`:
/// every primitive execution prints its time). Prints `seed-bench,wall,MS` per quiet run and
/// `seed-bench,end` after each verbose run, between oneDNN's `onednn_verbose,exec,...` lines; the
/// parent adds them up (``OverheadReport``).
struct OverheadChild: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "overhead", abstract: "(internal) engine overhead", shouldDisplay: false)
    @Argument var model: String
    @Argument var input: String
    @Option var threads = 1
    @Option var rounds = 5
    @Option var runs = 20

    func run() throws {
        let engine = try OurEngine(url: URL(fileURLWithPath: model))
        let x = try Tensor(contentsOfNPY: URL(fileURLWithPath: input))
        let session = try engine.session(threads: threads)
        let feeds = [engine.inputName: x]
        for _ in 0..<3 { _ = try session.run(feeds) }
        for _ in 0..<rounds {
            Platform.setVerbose(0)
            for _ in 0..<runs {
                let ms = try timeRuns(seconds: 0, minRuns: 1) { _ = try session.run(feeds) }
                emit("seed-bench,wall,\(ms[0])")
            }
            Platform.setVerbose(1)
            for _ in 0..<runs {
                _ = try session.run(feeds)
                emit("seed-bench,end")
            }
            Platform.setVerbose(0)
        }
    }

    /// Writes a line to fd 1 after flushing C stdio (where oneDNN's verbose lines wait), so that
    /// the markers and oneDNN's lines stay in order.
    func emit(_ line: String) {
        fflush(nil)
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }
}

/// What the overhead child printed: wall time per quiet run against the sum of primitive times
/// per verbose run (oneDNN 2.6: `onednn_verbose,exec,cpu,KIND,IMPL,...,TIME_MS`).
struct OverheadReport {
    var wallMedian = 0.0
    var primitiveMedian = 0.0
    var overhead: Double { wallMedian / primitiveMedian - 1 }
    /// Per run: executions and milliseconds by primitive kind (the median run's).
    var kinds: [(kind: String, count: Int, ms: Double)] = []
    /// Reorders per run, and those with an f32 side.
    var reorders = 0
    var f32Reorders = 0
    /// Primitives (not reorders) with an f32 src in the INT8 model (FP32 islands).
    var f32Primitives = 0

    init(childOutput: String) throws {
        var walls: [Double] = [], sums: [Double] = []
        var current: [(String, String, Double)] = []
        var runs: [[(String, String, Double)]] = []
        for line in childOutput.split(separator: "\n") {
            if line.hasPrefix("seed-bench,wall,") {
                walls.append(Double(line.dropFirst("seed-bench,wall,".count)) ?? 0)
            } else if line == "seed-bench,end" {
                sums.append(current.reduce(0) { $0 + $1.2 })
                runs.append(current)
                current = []
            } else if line.hasPrefix("onednn_verbose,exec,") || line.hasPrefix("dnnl_verbose,exec,") {
                let f = line.split(separator: ",", omittingEmptySubsequences: false)
                guard f.count >= 11, let ms = Double(f[f.count - 1]) else { continue }
                current.append((String(f[3]), String(f[6]), ms))
            }
        }
        guard !walls.isEmpty, !sums.isEmpty else { throw BenchError("overhead: no runs in the child's output") }
        guard median(sums) > 0 else { throw BenchError("overhead: no oneDNN verbose lines in the child's output") }
        wallMedian = median(walls)
        primitiveMedian = median(sums)
        let mid = runs.sorted { $0.reduce(0) { $0 + $1.2 } < $1.reduce(0) { $0 + $1.2 } }[runs.count / 2]
        var byKind: [String: (Int, Double)] = [:]
        for (kind, mds, ms) in mid {
            byKind[kind, default: (0, 0)].0 += 1
            byKind[kind, default: (0, 0)].1 += ms
            if kind == "reorder" {
                reorders += 1
                if mds.contains("_f32:") { f32Reorders += 1 }
            } else if mds.hasPrefix("src_f32") {
                f32Primitives += 1
            }
        }
        kinds = byKind.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.ms > $1.ms }
    }
}
