import Foundation

/// Normalization operators evaluated in Swift over `Tensor`s (at plan time on constants, at run time
/// through `RuntimeEvaluation`), following the ONNX operator spec. These are the fallback when the
/// oneDNN lowering cannot take a node (run-time scale, bias, mean or variance; modes without a
/// primitive); computed in Double, outputs f32.
enum NormalizationEvaluators {
    static func register(_ e: inout [String: ConstantEvaluation.Evaluator]) {
        e["LayerNormalization"] = layerNorm
        e["RMSNormalization"] = rmsNorm
        e["GroupNormalization"] = groupNorm
        e["InstanceNormalization"] = instanceNorm
        e["BatchNormalization"] = batchNorm
        e["MeanVarianceNormalization"] = meanVarianceNorm
        e["LpNormalization"] = lpNorm
        e["LRN"] = lrn
    }

    /// Values of `t` broadcast (NumPy rules) to `shape`; throws when they do not broadcast.
    static func broadcastValues(_ node: Node, _ t: Tensor, to shape: [Int], _ what: String) throws(GraphError) -> [Double] {
        guard t.shape.count <= shape.count, Broadcast.shape(t.shape, shape) == shape else {
            throw GraphError(.shapeMismatch, "node \(node.label): \(what) of shape \(t.shape) does not broadcast to \(shape)")
        }
        let v = t.doubleValues()
        return Broadcast.indices(of: t.shape, in: shape).map { v[$0] }
    }

    /// The tensor `i` of `x` when present.
    static func optional(_ x: [Tensor?], _ i: Int) -> Tensor? { i < x.count ? x[i] : nil }

    /// LayerNormalization-17 (and the RMS variant, opset 23): normalizes over the dims from
    /// `axis` (default -1) on. Inputs X, Scale, B (optional; LayerNorm only), broadcast to X.
    /// Outputs Y (X's shape), Mean and InvStdDev (X.shape[..<axis] + 1s); stash_type 1 (f32).
    static func layerNorm(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        try normalizeTrailing(node, x, rms: false)
    }

    /// RMSNormalization-23: Y = X / sqrt(mean(X², dims axis...) + epsilon) * Scale.
    static func rmsNorm(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        try normalizeTrailing(node, x, rms: true)
    }

    static func normalizeTrailing(_ node: Node, _ x: [Tensor?], rms: Bool) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        guard let scaleT = optional(x, 1) else { throw fail(node, "needs a Scale input") }
        let shape = X.shape, r = shape.count
        guard r > 0 else { throw fail(node, "input is a scalar") }
        let ax = try ConstantEvaluation.axis(node.int("axis") ?? -1, rank: r, node)
        let eps = Double(node.float("epsilon") ?? 1e-5)
        let rows = shape[..<ax].reduce(1, *), cols = shape[ax...].reduce(1, *)
        let v = X.doubleValues()
        let scale = try broadcastValues(node, scaleT, to: shape, "Scale")
        let bias = try optional(x, 2).map { t throws(GraphError) in try broadcastValues(node, t, to: shape, "B") }
        var y = [Double](repeating: 0, count: v.count)
        var means = [Double](repeating: 0, count: rows), invStd = [Double](repeating: 0, count: rows)
        for row in 0..<rows where cols > 0 {
            let base = row * cols
            var mean = 0.0
            if !rms {
                for i in base..<(base + cols) { mean += v[i] }
                mean /= Double(cols)
            }
            var variance = 0.0
            for i in base..<(base + cols) { variance += (v[i] - mean) * (v[i] - mean) }
            variance /= Double(cols)
            let inv = 1 / (variance + eps).squareRoot()
            means[row] = mean
            invStd[row] = inv
            for i in base..<(base + cols) { y[i] = (v[i] - mean) * inv * scale[i] + (bias?[i] ?? 0) }
        }
        let reduced = Array(shape[..<ax]) + [Int](repeating: 1, count: r - ax)
        let out = Tensor(shape: shape, values: y, elementType: .f32)
        if rms { return [out] }
        return [out, Tensor(shape: reduced, values: means, elementType: .f32), Tensor(shape: reduced, values: invStd, elementType: .f32)]
    }

    /// Mean and population variance of `v[base + k * stride]`-style groups given as index lists.
    static func meanVariance(_ v: [Double], _ indices: some Collection<Int>) -> (Double, Double) {
        guard !indices.isEmpty else { return (0, 0) }
        var mean = 0.0
        for i in indices { mean += v[i] }
        mean /= Double(indices.count)
        var variance = 0.0
        for i in indices { variance += (v[i] - mean) * (v[i] - mean) }
        return (mean, variance / Double(indices.count))
    }

    /// GroupNormalization-18/21: X [N, C, ...], num_groups G dividing C; mean and variance per
    /// (n, group) over the group's channels and spatial dims; scale and bias of C values
    /// (opset 21) or G values (opset 18, per group).
    static func groupNorm(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        guard let scaleT = optional(x, 1), let biasT = optional(x, 2) else { throw fail(node, "needs scale and bias inputs") }
        guard X.shape.count >= 2 else { throw fail(node, "input rank \(X.shape.count) < 2") }
        let n = X.shape[0], c = X.shape[1], spatial = X.shape[2...].reduce(1, *)
        guard let g = node.int("num_groups"), g > 0, c % g == 0 else { throw fail(node, "num_groups must divide the \(c) channels") }
        let scale = scaleT.doubleValues(), bias = biasT.doubleValues()
        guard (scale.count == c && bias.count == c) || (scale.count == g && bias.count == g) else {
            throw GraphError(.shapeMismatch, "node \(node.label): scale/bias of \(scale.count)/\(bias.count) values, need \(c) (or \(g))")
        }
        let perChannel = scale.count == c
        let eps = Double(node.float("epsilon") ?? 1e-5)
        let v = X.doubleValues()
        var y = [Double](repeating: 0, count: v.count)
        let groupSize = c / g * spatial
        for b in 0..<n {
            for gi in 0..<g {
                let base = (b * c + gi * (c / g)) * spatial
                let (mean, variance) = meanVariance(v, base..<(base + groupSize))
                let inv = 1 / (variance + eps).squareRoot()
                for k in 0..<groupSize {
                    let ch = gi * (c / g) + k / max(spatial, 1)
                    let p = perChannel ? ch : gi
                    y[base + k] = (v[base + k] - mean) * inv * scale[p] + bias[p]
                }
            }
        }
        return [Tensor(shape: X.shape, values: y, elementType: .f32)]
    }

    /// InstanceNormalization-6/22: X [N, C, ...]; per (n, c) over the spatial dims; scale and B of C.
    static func instanceNorm(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        guard let scaleT = optional(x, 1), let biasT = optional(x, 2) else { throw fail(node, "needs scale and B inputs") }
        guard X.shape.count >= 2 else { throw fail(node, "input rank \(X.shape.count) < 2") }
        let n = X.shape[0], c = X.shape[1], spatial = X.shape[2...].reduce(1, *)
        let scale = scaleT.doubleValues(), bias = biasT.doubleValues()
        guard scale.count == c, bias.count == c else {
            throw GraphError(.shapeMismatch, "node \(node.label): scale/B of \(scale.count)/\(bias.count) values for \(c) channels")
        }
        let eps = Double(node.float("epsilon") ?? 1e-5)
        let v = X.doubleValues()
        var y = [Double](repeating: 0, count: v.count)
        for b in 0..<n {
            for ch in 0..<c {
                let base = (b * c + ch) * spatial
                let (mean, variance) = meanVariance(v, base..<(base + spatial))
                let inv = 1 / (variance + eps).squareRoot()
                for i in base..<(base + spatial) { y[i] = (v[i] - mean) * inv * scale[ch] + bias[ch] }
            }
        }
        return [Tensor(shape: X.shape, values: y, elementType: .f32)]
    }

    /// BatchNormalization-9..15: X [N, C, ...], scale, B, input_mean, input_var of C values.
    /// Inference: Y = scale (X - mean) / sqrt(var + epsilon) + B. training_mode = 1 (opset 14+):
    /// Y from the batch's mean and population variance over every dim but 1, and outputs
    /// running_mean / running_var = input * momentum + batch * (1 - momentum).
    static func batchNorm(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        guard x.count >= 5, let sT = x[1], let bT = x[2], let mT = x[3], let vT = x[4] else {
            throw fail(node, "needs X, scale, B, mean and var")
        }
        let c = X.shape.count >= 2 ? X.shape[1] : 1
        let n = X.shape.first ?? 1, spatial = X.shape.count > 2 ? X.shape[2...].reduce(1, *) : 1
        let s = sT.doubleValues(), bias = bT.doubleValues(), mean = mT.doubleValues(), variance = vT.doubleValues()
        guard [s.count, bias.count, mean.count, variance.count].allSatisfy({ $0 == c }) else {
            throw GraphError(.shapeMismatch, "node \(node.label): scale/B/mean/var need \(c) values each")
        }
        let eps = Double(node.float("epsilon") ?? 1e-5)
        let training = opset >= 14 && node.int("training_mode") == 1
        let v = X.doubleValues()
        var useMean = mean, useVar = variance
        var outputs: [Tensor] = []
        if training {
            let momentum = Double(node.float("momentum") ?? 0.9)
            for ch in 0..<c {
                var idx: [Int] = []
                for b in 0..<n {
                    let start = (b * c + ch) * spatial
                    idx += start..<(start + spatial)
                }
                (useMean[ch], useVar[ch]) = meanVariance(v, idx)
            }
            let runMean = (0..<c).map { mean[$0] * momentum + useMean[$0] * (1 - momentum) }
            let runVar = (0..<c).map { variance[$0] * momentum + useVar[$0] * (1 - momentum) }
            outputs = [
                Tensor(shape: mT.shape, values: runMean, elementType: .f32), Tensor(shape: vT.shape, values: runVar, elementType: .f32),
            ]
        }
        var y = [Double](repeating: 0, count: v.count)
        for i in 0..<v.count {
            let ch = (i / max(spatial, 1)) % max(c, 1)
            y[i] = s[ch] * (v[i] - useMean[ch]) / (useVar[ch] + eps).squareRoot() + bias[ch]
        }
        return [Tensor(shape: X.shape, values: y, elementType: .f32)] + outputs
    }

    /// Indices of `shape` grouped by the coordinates outside `axes` (each group: one reduction).
    static func reductionGroups(_ shape: [Int], axes: Set<Int>) -> [[Int]] {
        let kept = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let keptStrides = Broadcast.strides(kept)
        var groups = [[Int]](repeating: [], count: kept.reduce(1, *))
        var coord = [Int](repeating: 0, count: shape.count)
        for i in 0..<shape.reduce(1, *) {
            var g = 0
            for d in 0..<shape.count where !axes.contains(d) { g += coord[d] * keptStrides[d] }
            groups[g].append(i)
            Broadcast.advance(&coord, in: shape)
        }
        return groups
    }

    static func normalizedAxes(_ node: Node, _ axes: [Int], rank: Int) throws(GraphError) -> Set<Int> {
        var s: Set<Int> = []
        for a in axes { s.insert(try ConstantEvaluation.axis(a, rank: rank, node)) }
        return s
    }

    /// MeanVarianceNormalization-13: Y = (X - E[X]) / (sqrt(E[X²] - E[X]²) + 1e-9) over `axes`
    /// (default [0, 2, 3]).
    static func meanVarianceNorm(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        let axes = try normalizedAxes(node, node.ints("axes") ?? [0, 2, 3], rank: X.shape.count)
        let v = X.doubleValues()
        var y = [Double](repeating: 0, count: v.count)
        for group in reductionGroups(X.shape, axes: axes) where !group.isEmpty {
            var m = 0.0, m2 = 0.0
            for i in group { m += v[i]; m2 += v[i] * v[i] }
            m /= Double(group.count); m2 /= Double(group.count)
            let std = Swift.max(m2 - m * m, 0).squareRoot()
            for i in group { y[i] = (v[i] - m) / (std + 1e-9) }
        }
        return [Tensor(shape: X.shape, values: y, elementType: .f32)]
    }

    /// LpNormalization-1/22: X / ||X||_p along `axis` (default -1), p 1 or 2 (default 2); 0 where
    /// the norm is 0.
    static func lpNorm(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        let ax = try ConstantEvaluation.axis(node.int("axis") ?? -1, rank: X.shape.count, node)
        let p = node.int("p") ?? 2
        guard p == 1 || p == 2 else { throw fail(node, "p = \(p) (1 or 2)") }
        let v = X.doubleValues()
        var y = [Double](repeating: 0, count: v.count)
        for group in reductionGroups(X.shape, axes: [ax]) {
            var norm = 0.0
            for i in group { norm += p == 1 ? Swift.abs(v[i]) : v[i] * v[i] }
            if p == 2 { norm = norm.squareRoot() }
            for i in group { y[i] = norm == 0 ? 0 : v[i] / norm }
        }
        return [Tensor(shape: X.shape, values: y, elementType: .f32)]
    }

    /// LRN-13: X [N, C, ...]; Y = X / (bias + alpha / size * Σ X²)^beta over channels
    /// c - floor((size-1)/2) ... c + ceil((size-1)/2).
    static func lrn(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        guard X.shape.count >= 2 else { throw fail(node, "input rank \(X.shape.count) < 2") }
        guard let size = node.int("size"), size > 0 else { throw fail(node, "size must be positive") }
        let alpha = Double(node.float("alpha") ?? 1e-4), beta = Double(node.float("beta") ?? 0.75)
        let bias = Double(node.float("bias") ?? 1)
        let n = X.shape[0], c = X.shape[1], spatial = X.shape[2...].reduce(1, *)
        let lo = (size - 1) / 2, hi = (size - 1) - lo
        let v = X.doubleValues()
        var y = [Double](repeating: 0, count: v.count)
        for b in 0..<n {
            for ch in 0..<c {
                let first = Swift.max(0, ch - lo), last = Swift.min(c - 1, ch + hi)
                for s in 0..<spatial {
                    var sum = 0.0
                    if first <= last { for k in first...last { let t = v[(b * c + k) * spatial + s]; sum += t * t } }
                    let i = (b * c + ch) * spatial + s
                    y[i] = v[i] / Foundation.pow(bias + alpha / Double(size) * sum, beta)
                }
            }
        }
        return [Tensor(shape: X.shape, values: y, elementType: .f32)]
    }

    static func fail(_ node: Node, _ message: String) -> GraphError { ConstantEvaluation.fail(node, message) }
}
