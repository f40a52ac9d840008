import Foundation

/// Decides, per average pool (AveragePool, GlobalAveragePool) whose input is quantized, whether
/// it runs in INT8 or stays FP32, by SQNR measured on calibration samples.
///
/// oneDNN 2.6 pooling on u8/s8 keeps the source's data type and has no output scales
/// (ONEDNN_INT8_NOTES A2, A3): an INT8 average is rounded on its input's grid. Averaging
/// narrows the range (a global average much more), so that grid is coarse for the output; a
/// requantize to the output's own (finer) scale afterwards cannot restore what the rounding
/// lost. So an INT8 pool shares its input's parameters (a pass-through, as MaxPool), and the
/// alternative is the FP32 pool whose output is quantized with its own calibrated range where
/// an INT8 node reads it. Both read the quantized input (the producer writes int8 either way)
/// and are simulated on the samples against the FP32 output `y = pool(x)`:
/// - INT8: `DQ(Q_in(pool(DQ(Q_in(x)))))` (exactly what the u8/s8 primitive computes),
/// - FP32: `DQ(Q_out(pool(DQ(Q_in(x)))))`,
/// and the pool runs INT8 when its SQNR is at most `maxLoss` dB below the FP32 alternative's:
/// by default 0, INT8 only where it costs nothing there. (PP-OCRv4 rec's AveragePool, 0.5 dB
/// below, lowered the model's output SQNR from 16.3 to 15.4 dB in INT8, and with a limit of
/// 6 dB its global average pool too, 2.3 dB below, cost a word of the 300 in its PTQ test.) The decision and both SQNRs are recorded in the report.
enum AveragePoolPrecision {
    /// Per node name: why it runs INT8, or why it stays FP32.
    struct Decisions: Sendable, Equatable {
        var int8: [String: String] = [:]
        var fp32: [String: String] = [:]
    }

    /// One bit of SQNR.
    static let defaultMaxLoss = 0.0

    static func isAveragePool(_ n: Node) -> Bool {
        (n.domain.isEmpty || n.domain == "ai.onnx") && (n.opType == "AveragePool" || n.opType == "GlobalAveragePool")
    }

    /// Why `n` cannot run as an INT8 pool at all (nil when it is a candidate).
    static func int8Problem(_ n: Node, inputQuantized: Bool) -> String? {
        guard inputQuantized else { return "its input is FP32" }
        return int8Hazard(n, zeroPoint: 0)
    }

    /// Why average pool `n` cannot run on int8 values with zero point `zeroPoint` (nil when
    /// it can): ceil_mode with count_include_pad runs on an f32 Swift kernel, and
    /// count_include_pad with padding would average the padding as the zero point, not 0.
    static func int8Hazard(_ n: Node, zeroPoint: Int) -> String? {
        guard n.opType == "AveragePool", n.int("count_include_pad") == 1 else { return nil }
        if n.int("ceil_mode") == 1 { return "average pool with ceil_mode and count_include_pad runs on an f32 Swift kernel" }
        let padded = (n.ints("pads") ?? []).contains { $0 != 0 } || (n.string("auto_pad") ?? "NOTSET") != "NOTSET"
        return zeroPoint != 0 && padded ? "count_include_pad pads with the zero point, not 0" : nil
    }

    /// Measures every candidate on `samples` (FP32 graph `graph`) and decides.
    /// - Parameters:
    ///   - params: the parameters each tensor gets when every candidate runs INT8.
    ///   - table: calibrated ranges (the pool outputs' own ranges).
    ///   - observed: observed (min-max) ranges: a skewed signed output gets u8 with a zero
    ///     point, as `PostTrainingQuantizer.params` gives it.
    static func decide(
        candidates: [String], graph: Graph, opset: Int, params: [String: QuantParams], table: CalibrationTable,
        observed: CalibrationTable? = nil,
        samples: [[String: Tensor]], maxLoss: Double?
    ) throws -> Decisions {
        var d = Decisions()
        guard let maxLoss else {
            for c in candidates { d.fp32[c] = "average pool kept FP32 (INT8 average pools disabled)" }
            return d
        }
        let nodes = candidates.compactMap { c in graph.nodes.first { $0.name == c } }
        var measured: [(node: Node, p: QuantParams, own: QuantParams)] = []
        for n in nodes {
            guard let p = params[n.inputs[0]], let r = table.ranges[n.outputs[0]] else {
                d.fp32[n.name] = "average pool kept FP32 (no calibrated range)"; continue
            }
            if let why = int8Hazard(n, zeroPoint: p.zeroPoint) {
                d.fp32[n.name] = "average pool kept FP32 (\(why))"; continue
            }
            // The parameters the FP32 pool's output gets (unsigned when its input is).
            let own = PostTrainingQuantizer.params(
                min: r.min, max: r.max, unsigned: p.type == .u8 && p.zeroPoint == 0, observedMin: observed?.ranges[n.outputs[0]]?.min)
            measured.append((n, p, own))
        }
        guard !measured.isEmpty else { return d }
        guard !samples.isEmpty else {
            for m in measured { d.fp32[m.node.name] = "average pool kept FP32 (no samples to measure SQNR)" }
            return d
        }
        var g = graph
        let existing = Set(g.outputs.map(\.name))
        let wanted = Set(measured.flatMap { [$0.node.inputs[0], $0.node.outputs[0]] }).subtracting(existing)
        g.outputs += wanted.sorted().map { ValueInfo(name: $0, elementType: .f32, shape: nil) }
        let session = try InferenceSession(model: Model(graph: g, opsetVersion: opset))
        var pools: [String: InferenceSession] = [:]
        var signal: [String: Double] = [:], noise8: [String: Double] = [:], noise32: [String: Double] = [:]
        for s in samples {
            let r = try session.run(s)
            for m in measured {
                guard let x = r[m.node.inputs[0]], let y = r[m.node.outputs[0]] else { continue }
                let pool = try pools[m.node.name] ?? single(m.node, opset: opset)
                pools[m.node.name] = pool
                let xq = Tensor(shape: x.shape, scalars: x.floatValues().map { fake($0, m.p) })
                guard let y8 = try pool.run(["x": xq])["y"] else { continue }
                let yv = y.floatValues(), y8v = y8.floatValues()
                guard yv.count == y8v.count else { continue }
                for i in yv.indices {
                    let v = Double(yv[i])
                    signal[m.node.name, default: 0] += v * v
                    noise8[m.node.name, default: 0] += pow(v - Double(fake(y8v[i], m.p)), 2)
                    noise32[m.node.name, default: 0] += pow(v - Double(fake(y8v[i], m.own)), 2)
                }
            }
        }
        func db(_ s: Double, _ e: Double) -> Double { e == 0 ? 200 : 10 * log10(max(s, 1e-30) / e) }
        for m in measured {
            let n = m.node.name, sx = signal[n] ?? 0
            let int8 = db(sx, noise8[n] ?? 0), fp32 = db(sx, noise32[n] ?? 0)
            let text = String(
                format: "average pool: INT8 SQNR %.1f dB (input scale %g) vs %.1f dB kept FP32 (own scale %g), limit %.1f dB loss",
                int8, m.p.scale, fp32, m.own.scale, maxLoss)
            if int8 >= fp32 - maxLoss { d.int8[n] = text } else { d.fp32[n] = text }
        }
        return d
    }

    /// `DQ(Q(v))` with round half to even and saturation.
    static func fake(_ v: Float, _ p: QuantParams) -> Float {
        let q = (v / p.scale).rounded(.toNearestOrEven) + Float(p.zeroPoint)
        let c = min(max(q, Float(p.range.lowerBound)), Float(p.range.upperBound))
        return (c - Float(p.zeroPoint)) * p.scale
    }

    /// A session running only `node` (FP32) from `x` to `y`.
    private static func single(_ node: Node, opset: Int) throws -> InferenceSession {
        var n = node
        n.inputs = ["x"]
        n.outputs = ["y"]
        let g = Graph(
            name: "pool", nodes: [n], inputs: [ValueInfo(name: "x", elementType: .f32, shape: nil)],
            outputs: [ValueInfo(name: "y", elementType: .f32, shape: nil)], initializers: [:])
        return try InferenceSession(model: Model(graph: g, opsetVersion: opset), options: .init(optimize: false))
    }
}
