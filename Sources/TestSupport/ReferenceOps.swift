import Foundation

extension Reference {
    /// Row-major strides of `dims`.
    public static func strides(_ dims: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: dims.count)
        for i in stride(from: dims.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * dims[i + 1] }
        return s
    }

    /// The flat index into a tensor of `dims` for a coordinate of a (possibly larger) broadcast
    /// shape of the same rank: dims of size 1 repeat.
    static func broadcastIndex(_ coord: [Int], dims: [Int], strides s: [Int]) -> Int {
        var idx = 0
        for i in 0..<dims.count where dims[i] != 1 { idx += coord[i] * s[i] }
        return idx
    }

    /// Calls `body` with every coordinate of `dims` in row-major order.
    public static func forEachIndex(_ dims: [Int], _ body: ([Int]) -> Void) {
        let total = dims.reduce(1, *)
        guard total > 0 else { return }
        var coord = [Int](repeating: 0, count: dims.count)
        for _ in 0..<total {
            body(coord)
            var i = dims.count - 1
            while i >= 0 {
                coord[i] += 1
                if coord[i] < dims[i] { break }
                coord[i] = 0
                i -= 1
            }
        }
    }

    /// Batched matmul with broadcasting: a `[..., M, K]`, b `[..., K, N]` (same rank, batch
    /// dims equal or 1), optional bias of the dst's rank (dims equal or 1).
    /// - Returns: dst `[..., M, N]` with broadcast batch dims, and its dims.
    public static func matmul(
        _ a: [Double], aDims: [Int], _ b: [Double], bDims: [Int],
        bias: [Double]? = nil, biasDims: [Int]? = nil
    ) -> (values: [Double], dims: [Int]) {
        let r = aDims.count
        let m = aDims[r - 2], k = aDims[r - 1], n = bDims[r - 1]
        var dDims = (0..<(r - 2)).map { max(aDims[$0], bDims[$0]) }
        dDims += [m, n]
        let sa = strides(aDims), sb = strides(bDims)
        var out = [Double](repeating: 0, count: dDims.reduce(1, *))
        var o = 0
        forEachIndex(dDims) { c in
            var acc = 0.0
            var ca = c, cb = c
            for kk in 0..<k {
                ca[r - 1] = kk; cb[r - 2] = kk; cb[r - 1] = c[r - 1]
                acc +=
                    a[broadcastIndex(ca, dims: aDims, strides: sa)]
                    * b[broadcastIndex(cb, dims: bDims, strides: sb)]
            }
            if let bias, let biasDims {
                acc += bias[broadcastIndex(c, dims: biasDims, strides: strides(biasDims))]
            }
            out[o] = acc
            o += 1
        }
        return (out, dDims)
    }

    /// Inner product: src `[N, K]` (flattened), weights `[OC, K]`, bias `[OC]` -> `[N, OC]`.
    public static func innerProduct(
        _ src: [Double], n: Int, _ weights: [Double], oc: Int,
        bias: [Double]?
    ) -> [Double] {
        let k = src.count / n
        var dst = [Double](repeating: 0, count: n * oc)
        for i in 0..<n {
            for o in 0..<oc {
                var acc = bias?[o] ?? 0
                for j in 0..<k { acc += src[i * k + j] * weights[o * k + j] }
                dst[i * oc + o] = acc
            }
        }
        return dst
    }

    /// Element-wise functions with oneDNN's semantics (primitives/eltwise.md).
    public enum Eltwise: Sendable {
        case relu(alpha: Double), clip(lo: Double, hi: Double), linear(alpha: Double, beta: Double)
        case hardswish, logistic, tanh, geluErf, exp, sqrt, abs, square, swish(alpha: Double)
        case elu(alpha: Double), log, softRelu, pow(alpha: Double, beta: Double), round

        public func callAsFunction(_ x: Double) -> Double {
            switch self {
            case .relu(let a): x > 0 ? x : a * x
            case .clip(let lo, let hi): Swift.min(Swift.max(x, lo), hi)
            case .linear(let a, let b): a * x + b
            case .hardswish: x * Swift.min(Swift.max(x + 3, 0), 6) / 6
            case .logistic: 1 / (1 + Foundation.exp(-x))
            case .tanh: Foundation.tanh(x)
            case .geluErf: 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
            case .exp: Foundation.exp(x)
            case .sqrt: x.squareRoot()
            case .abs: Swift.abs(x)
            case .square: x * x
            case .swish(let a): x / (1 + Foundation.exp(-a * x))
            case .elu(let a): x > 0 ? x : a * (Foundation.exp(x) - 1)
            case .log: Foundation.log(x)
            case .softRelu: Foundation.log(1 + Foundation.exp(x))
            case .pow(let a, let b): a * Foundation.pow(x, b)
            case .round: x.rounded(.toNearestOrEven)
            }
        }
    }

    /// `a op b` with b broadcast (same rank, dims equal or 1) to a's dims.
    public static func binary(
        _ a: [Double], aDims: [Int], _ b: [Double], bDims: [Int],
        _ op: (Double, Double) -> Double
    ) -> [Double] {
        let sb = strides(bDims)
        var out = [Double]()
        out.reserveCapacity(a.count)
        var i = 0
        forEachIndex(aDims) { c in
            out.append(op(a[i], b[broadcastIndex(c, dims: bDims, strides: sb)]))
            i += 1
        }
        return out
    }

    /// Softmax along `axis` of `dims`.
    public static func softmax(_ x: [Double], dims: [Int], axis: Int, log: Bool = false) -> [Double] {
        let outer = dims[..<axis].reduce(1, *), n = dims[axis], inner = dims[(axis + 1)...].reduce(1, *)
        var out = x
        for o in 0..<outer {
            for i in 0..<inner {
                let idx = (0..<n).map { (o * n + $0) * inner + i }
                let m = idx.map { x[$0] }.max()!
                let s = idx.map { Foundation.exp(x[$0] - m) }.reduce(0, +)
                for j in idx { out[j] = log ? (x[j] - m - Foundation.log(s)) : Foundation.exp(x[j] - m) / s }
            }
        }
        return out
    }

    /// Layer normalization over the last dim: `(x - mean) / sqrt(var + eps) * scale + shift`.
    public static func layerNorm(
        _ x: [Double], lastDim c: Int, epsilon: Double,
        scale: [Double]?, shift: [Double]?
    ) -> [Double] {
        var out = x
        for r in 0..<(x.count / c) {
            let row = x[(r * c)..<((r + 1) * c)]
            let mean = row.reduce(0, +) / Double(c)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(c)
            let inv = 1 / (variance + epsilon).squareRoot()
            for j in 0..<c {
                out[r * c + j] = (x[r * c + j] - mean) * inv * (scale?[j] ?? 1) + (shift?[j] ?? 0)
            }
        }
        return out
    }

    /// Batch normalization with given statistics over `[N, C, spatial...]`.
    public static func batchNorm(
        _ x: [Double], n: Int, c: Int, mean: [Double], variance: [Double],
        scale: [Double], shift: [Double], epsilon: Double
    ) -> [Double] {
        let inner = x.count / (n * c)
        var out = x
        for b in 0..<n {
            for ch in 0..<c {
                for i in 0..<inner {
                    let j = (b * c + ch) * inner + i
                    out[j] = (x[j] - mean[ch]) / (variance[ch] + epsilon).squareRoot() * scale[ch] + shift[ch]
                }
            }
        }
        return out
    }

    /// Nearest resampling `[N, C, H, W] -> [N, C, OH, OW]` with oneDNN's rule
    /// `src = floor((dst + 0.5) * in / out)` (equals ONNX asymmetric/floor for integer factors).
    public static func resampleNearest(
        _ x: [Double], n: Int, c: Int, h: Int, w: Int,
        oh: Int, ow: Int
    ) -> [Double] {
        var out = [Double](repeating: 0, count: n * c * oh * ow)
        for p in 0..<(n * c) {
            for y in 0..<oh {
                for xx in 0..<ow {
                    let iy = min(Int(((Double(y) + 0.5) * Double(h) / Double(oh)).rounded(.down)), h - 1)
                    let ix = min(Int(((Double(xx) + 0.5) * Double(w) / Double(ow)).rounded(.down)), w - 1)
                    out[(p * oh + y) * ow + xx] = x[(p * h + iy) * w + ix]
                }
            }
        }
        return out
    }

    /// Concatenation of row-major tensors along `axis`.
    public static func concat(_ parts: [(values: [Double], dims: [Int])], axis: Int) -> [Double] {
        let outer = parts[0].dims[..<axis].reduce(1, *)
        var out = [Double]()
        for o in 0..<outer {
            for p in parts {
                let chunk = p.dims[axis...].reduce(1, *)
                out += p.values[(o * chunk)..<((o + 1) * chunk)]
            }
        }
        return out
    }

    /// Quantize with round half to even and saturation: `sat(round(x * scale) + zeroPoint)`.
    public static func quantize(
        _ x: Double, scale: Double, zeroPoint: Int = 0,
        range: ClosedRange<Int>
    ) -> Int {
        let q = (x * scale).rounded(.toNearestOrEven) + Double(zeroPoint)
        return Int(min(max(q, Double(range.lowerBound)), Double(range.upperBound)))
    }
}
