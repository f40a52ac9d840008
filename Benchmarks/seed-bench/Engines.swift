import DNNL
import Foundation
import Quantization

/// One engine at one precision: ours in process, or a peer in `peers.py`.
struct EngineKey: Hashable, Comparable, CustomStringConvertible {
    enum Engine: String, CaseIterable { case ours, onnxruntime, openvino }
    enum Precision: String, CaseIterable { case fp32, int8 }
    let engine: Engine
    let precision: Precision
    var description: String { "\(engine.rawValue) \(precision.rawValue.uppercased())" }
    static func < (a: Self, b: Self) -> Bool { (a.engine.rawValue, a.precision.rawValue) < (b.engine.rawValue, b.precision.rawValue) }
    static var all: [EngineKey] { Engine.allCases.flatMap { e in Precision.allCases.map { EngineKey(engine: e, precision: $0) } } }
}

/// Timing loop shared by our engine and the children: one untimed run, then runs until
/// `seconds` have passed and at least `minRuns` were made. Returns each run's milliseconds.
func timeRuns(seconds: Double, minRuns: Int, _ body: () throws -> Void) rethrows -> [Double] {
    try body()
    var ms: [Double] = []
    let start = DispatchTime.now().uptimeNanoseconds
    while Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds || ms.count < minRuns {
        let t = DispatchTime.now().uptimeNanoseconds
        try body()
        ms.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
    }
    return ms
}

func medianOf(_ xs: [Double]) -> Double { median(xs) }

func median(_ xs: [Double]) -> Double {
    precondition(!xs.isEmpty)
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Float32 rows of an `.npy` array [N, ...]: row `i` as a tensor [1, ...].
struct Rows {
    let shape: [Int]
    let values: [Float]
    init(npy url: URL) throws {
        let t = try Tensor(contentsOfNPY: url)
        guard t.elementType == .f32, t.shape.count >= 2 else { throw BenchError("\(url.path): expected f32 [N, ...], got \(t)") }
        shape = t.shape
        values = t.floatValues()
    }
    var count: Int { shape[0] }
    var rowCount: Int { shape.dropFirst().reduce(1, *) }
    func row(_ i: Int) -> Tensor { Tensor(shape: [1] + shape.dropFirst(), scalars: Array(values[i * rowCount..<(i + 1) * rowCount])) }
    /// Rows `start..<start + count` as one batch [count, ...].
    func rows(_ start: Int, count n: Int) -> Tensor {
        Tensor(shape: [n] + shape.dropFirst(), scalars: Array(values[(start * rowCount)..<((start + n) * rowCount)]))
    }
    /// Rows `0..<n` as one batch [n, ...].
    func batch(_ n: Int) -> Tensor { rows(0, count: n) }
}

/// Our engine on one model file: a session per thread count.
final class OurEngine {
    let model: Model
    let inputName: String
    private var sessions: [Int: InferenceSession] = [:]

    init(url: URL) throws {
        model = try Model(contentsOf: url)
        guard let input = model.inputs.first else { throw BenchError("\(url.path): no inputs") }
        inputName = input.name
    }

    func session(threads: Int) throws -> InferenceSession {
        if let s = sessions[threads] { return s }
        let s = try InferenceSession(model: model, options: .init(threads: threads))
        sessions[threads] = s
        return s
    }

    func time(input: Tensor, threads: Int, seconds: Double, minRuns: Int) throws -> [Double] {
        let s = try session(threads: threads)
        let feeds = [inputName: input]
        return try timeRuns(seconds: seconds, minRuns: minRuns) { _ = try s.run(feeds) }
    }

    /// The first output for each row, flattened: [rows.count][outputCount].
    func outputs(_ rows: Rows) throws -> [[Float]] {
        let s = try session(threads: 1)
        let name = model.outputs[0].name
        return try (0..<rows.count).map { i in
            guard let y = try s.run([inputName: rows.row(i)])[name] else { throw BenchError("no output \(name)") }
            return y.floatValues()
        }
    }
}

/// Agreement of an INT8 engine with its own FP32 on held-out inputs.
struct Agreement {
    /// Fraction of inputs whose arg-max class is the same.
    let top1: Double
    /// Mean over inputs of the cosine between INT8 and FP32 logits, each centred by its own
    /// mean over the inputs (the input-independent part of the logits removed).
    let centredCosine: Double
    /// The worst input's centred cosine.
    let worstCosine: Double

    init(fp32: [[Float]], int8: [[Float]]) {
        precondition(fp32.count == int8.count && !fp32.isEmpty)
        let n = fp32.count, c = fp32[0].count
        func centred(_ m: [[Float]]) -> [[Double]] {
            var mean = [Double](repeating: 0, count: c)
            for r in m { for j in 0..<c { mean[j] += Double(r[j]) / Double(n) } }
            return m.map { r in (0..<c).map { Double(r[$0]) - mean[$0] } }
        }
        let f = centred(fp32), q = centred(int8)
        var agree = 0
        var cosines: [Double] = []
        for i in 0..<n {
            if fp32[i].indices.max(by: { fp32[i][$0] < fp32[i][$1] }) == int8[i].indices.max(by: { int8[i][$0] < int8[i][$1] }) { agree += 1 }
            var dot = 0.0, nf = 0.0, nq = 0.0
            for j in 0..<c {
                dot += f[i][j] * q[i][j]
                nf += f[i][j] * f[i][j]
                nq += q[i][j] * q[i][j]
            }
            cosines.append(nf > 0 && nq > 0 ? dot / (nf * nq).squareRoot() : 0)
        }
        top1 = Double(agree) / Double(n)
        centredCosine = cosines.reduce(0, +) / Double(n)
        worstCosine = cosines.min() ?? 0
    }
}
