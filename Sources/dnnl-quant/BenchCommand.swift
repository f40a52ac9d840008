import ArgumentParser
import DNNL
import Foundation
import Quantization

/// `dnnl-quant bench MODEL.onnx [--input NAME=FILE.npy ...] [--threads N] [--batch B]
/// [--seconds S] [--json]`: latency and throughput of one model.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a model's latency and throughput.",
        discussion: """
            Inputs come from --input files (their leading dimension is the batch; --batch repeats or \
            trims it) or, without them, are seeded random data of the declared shape (dynamic \
            dimensions other than the batch then need --input). The first run compiles the plan \
            and is not timed. With --json the last line is one JSON object: model, precision, \
            threads, batch, iterations, latency_ms {median, p90}, throughput (samples/s).
            """)

    @Argument(help: "The ONNX model (FP32 or QDQ).") var model: String
    @Option(name: .long, help: "An input: NAME=FILE.npy (FILE.npy alone for a single-input model).")
    var input: [String] = []
    @Option(name: .long, help: "OpenMP threads.") var threads: Int = 1
    @Option(name: .customLong("int8-without-vnni"), help: int8WithoutVNNIHelp)
    var int8WithoutVnni: SessionOptions.Int8WithoutVNNI = .exact
    @Option(name: .long, help: "Batch size (default: the input files' leading dimension, or 1).") var batch: Int?
    @Option(name: .long, help: "Seconds to measure.") var seconds: Double = 3
    @Flag(name: .long, help: "Print one JSON object on the last line.") var json = false

    func validate() throws {
        try validateThreads(threads)
        if let batch, !(1...65_536).contains(batch) { throw ValidationError("--batch must be in 1...65536, got \(batch)") }
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600], got \(seconds)") }
    }

    func run() throws {
        let m = try Model(contentsOf: URL(fileURLWithPath: model))
        var feeds = try loadInputs(input, model: m)
        for info in m.inputs where feeds[info.name] == nil {
            guard let shape = info.shape else { throw CLIError("input '\(info.name)' has no declared shape: give --input \(info.name)=FILE.npy") }
            var dims: [Int] = []
            for (i, d) in shape.enumerated() {
                if let v = d.value {
                    dims.append(v)
                } else if i == 0 {
                    dims.append(batch ?? 1)
                } else {
                    throw CLIError("input '\(info.name)' has dynamic dimension \(i) (\(d)): give --input \(info.name)=FILE.npy")
                }
            }
            try checkSynthesizable(info.name, dims, info.elementType ?? .f32)
            feeds[info.name] = seededTensor(dims, info.elementType ?? .f32)
        }
        if let batch { feeds = feeds.mapValues { rebatch($0, to: batch) } }
        let effectiveBatch = feeds.values.first?.shape.first ?? 1
        let session = try InferenceSession(model: m, options: sessionOptions(threads: threads, int8WithoutVnni))
        _ = try session.run(feeds)
        var times: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        repeat {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try session.run(feeds)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        } while Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds
        let total = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        times.sort()
        let median = times[times.count / 2], p90 = times[min(times.count - 1, times.count * 9 / 10)]
        let throughput = Double(times.count * effectiveBatch) / total
        let precision = session.precision
        if json {
            let name = String(
                String(data: try JSONEncoder().encode(URL(fileURLWithPath: model).lastPathComponent), encoding: .utf8)!.dropFirst().dropLast())
            print(
                String(
                    format:
                        "{\"model\": \"%@\", \"precision\": \"%@\", \"threads\": %d, \"batch\": %d, \"iterations\": %d, \"latency_ms\": {\"median\": %.4f, \"p90\": %.4f}, \"throughput\": %.3f}",
                    name, precision, threads, effectiveBatch, times.count, median, p90, throughput))
        } else {
            print("\(model): \(precision), \(threads) thread(s), batch \(effectiveBatch)")
            print(String(format: "  %d runs: median %.3f ms, p90 %.3f ms, %.2f samples/s", times.count, median, p90, throughput))
        }
    }
}

/// Seeded uniform [-1, 1) data (f32) or small integers, so runs are repeatable.
/// Checks that a synthesized input of `shape` fits in memory (a declared shape can be absurd).
func checkSynthesizable(_ name: String, _ shape: [Int], _ type: ElementType) throws {
    let limit = Int(clamping: ProcessInfo.processInfo.physicalMemory) / 4
    var bytes = type.byteSize
    for d in shape {
        let (p, overflow) = bytes.multipliedReportingOverflow(by: max(d, 0))
        guard !overflow, p <= limit else {
            throw CLIError("input '\(name)' of declared shape \(shape) is too large to synthesize: give --input \(name)=FILE.npy")
        }
        bytes = p
    }
}

func seededTensor(_ shape: [Int], _ type: ElementType) -> Tensor {
    var state: UInt64 = 0x5EED
    let n = shape.reduce(1, *)
    let values = (0..<n).map { _ -> Double in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }
    return Tensor(shape: shape, values: type == .f32 ? values : values.map { ($0 * 10).rounded() }, elementType: type)
}

/// Repeats or trims a tensor along dim 0 to `batch` samples.
func rebatch(_ t: Tensor, to batch: Int) -> Tensor {
    guard let n = t.shape.first, n != batch, n > 0 else { return t }
    let per = t.byteCount / n
    var out = Tensor(zeros: [batch] + t.shape.dropFirst(), elementType: t.elementType)
    t.withUnsafeBytes { src in
        out.withUnsafeMutableBytes { dst in
            for b in 0..<batch {
                dst.baseAddress!.advanced(by: b * per).copyMemory(from: src.baseAddress!.advanced(by: (b % n) * per), byteCount: per)
            }
        }
    }
    return out
}
