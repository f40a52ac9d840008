import Foundation

/// The real interval a quantised tensor represents: `[-t, t]` for a symmetric threshold `t`,
/// `[0, t]` for a non-negative tensor, or an asymmetric `[min, max]` (``CalibrationMethod/minMax``).
///
/// Ranges made by ``TensorObserver`` are finite, contain 0, and have `max - min >= `
/// ``minimumThreshold``, so `scale = t / 127` (or `/ 255`) is a positive normal `Float` whose
/// inverse is finite.
public struct TensorRange: Sendable, Hashable, Codable, CustomStringConvertible {
    public var min: Float
    public var max: Float

    public init(min: Float, max: Float) {
        self.min = min
        self.max = max
    }

    /// The symmetric threshold `max(|min|, |max|)`.
    public var absMax: Float { Swift.max(abs(min), abs(max)) }

    /// The smallest threshold (and range width) ``TensorObserver`` gives: `2^-118 ≈ 3.3e-36`,
    /// the smallest power of two `t` for which `t / 255` is a normal `Float` and `255 / t` is
    /// finite. A zero threshold (an all-zero or never-observed tensor) becomes this value.
    public static let minimumThreshold: Float = 0x1p-118

    public var description: String { "[\(min), \(max)]" }
}

/// A streaming observer of one tensor's values, for calibration.
///
/// It keeps the count, minimum and maximum of the finite values and a histogram of `|x|` whose
/// size does not depend on how many values it has seen: ``binCount`` bins of width
/// ``binWidth`` `= 2^e`, covering `[0, binCount · 2^e)`. The exponent `e` is the smallest for
/// which the histogram covers the largest `|x|` seen so far; when new data exceed it, `e` grows
/// and bins are merged in pairs. Because every bin edge is a power-of-two multiple, merging is
/// exact: the histogram after any sequence of `observe` calls is the one a single call with all
/// the values would give, whatever the batching and order. The largest `|x|` lies in bin 1024 or
/// above, so the data always span more than half of the bins.
///
/// NaN and ±infinity are counted in ``nonFiniteCount`` and otherwise ignored.
public struct TensorObserver: Sendable {
    /// The number of histogram bins.
    public static let binCount = 2048

    /// The number of finite values observed.
    public private(set) var count = 0
    /// The smallest finite value observed (`+infinity` before any).
    public private(set) var min = Float.infinity
    /// The largest finite value observed (`-infinity` before any).
    public private(set) var max = -Float.infinity
    /// The number of NaN and ±infinity values seen (and ignored).
    public private(set) var nonFiniteCount = 0
    /// The number of values exactly 0 (or -0), also counted in bin 0 of ``histogram``.
    public private(set) var zeroCount = 0
    /// Counts of `|x|` in `[k · binWidth, (k + 1) · binWidth)` for `k` in `0..<binCount`.
    public private(set) var histogram = [Int](repeating: 0, count: binCount)
    /// `e` of ``binWidth`` `= 2^e`; nil while every finite value seen is 0.
    private var binExponent: Int?
    /// The smallest non-zero finite `|x|` (`+infinity` before any): the lower edge of the
    /// first non-empty bin's values, so that a constant tensor's histogram has zero width.
    private var smallestNonZero = Float.infinity

    public init() {}

    /// The width of each histogram bin: a power of two, 0 while every finite value seen is 0.
    public var binWidth: Double {
        binExponent.map { Double(sign: .plus, exponent: $0, significand: 1) } ?? 0
    }

    /// The largest finite `|x|` observed (0 before any).
    public var absMax: Float { count == 0 ? 0 : Swift.max(-min, max) }

    /// Adds the values of a tensor: f32 as they are, other element types converted to `Float`
    /// (``Calibrator`` skips them instead and warns).
    public mutating func observe(_ t: Tensor) {
        guard t.elementType == .f32 else {
            t.floatValues().withUnsafeBufferPointer { observe($0) }
            return
        }
        t.withUnsafeBytes { raw in
            raw.withMemoryRebound(to: Float.self) { observe($0) }
        }
    }

    /// Adds `values`.
    public mutating func observe(_ values: UnsafeBufferPointer<Float>) {
        var lo = min, hi = max, smallest = smallestNonZero
        var finite = 0, zeros = 0
        for v in values where v.isFinite {
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
            finite += 1
            if v == 0 { zeros += 1 } else { smallest = Swift.min(smallest, abs(v)) }
        }
        nonFiniteCount += values.count - finite
        guard finite > 0 else { return }
        count += finite
        zeroCount += zeros
        min = lo
        max = hi
        smallestNonZero = smallest
        let largest = Swift.max(-lo, hi)
        guard largest > 0 else {
            histogram[0] += finite
            return
        }
        let exponent = cover(largest)
        // |x| · 2^-e is exact in Double, so the bin of a value never depends on the batching.
        let inverseWidth = Double(sign: .plus, exponent: -exponent, significand: 1)
        let last = Self.binCount - 1
        histogram.withUnsafeMutableBufferPointer { bins in
            for v in values where v.isFinite {
                bins[Swift.min(Int(Double(abs(v)) * inverseWidth), last)] += 1
            }
        }
    }

    /// Grows ``binWidth`` until `[0, binCount · binWidth)` contains `largest` (> 0).
    /// - Returns: the bin exponent now in use.
    private mutating func cover(_ largest: Float) -> Int {
        // largest = m · 2^E with 1 <= m < 2, so largest < 2^(E+1) = binCount · 2^(E-10).
        let needed = Double(largest).exponent - 10
        guard let current = binExponent else {
            binExponent = needed
            return needed
        }
        guard needed > current else { return current }
        let shift = needed - current
        var merged = [Int](repeating: 0, count: Self.binCount)
        for (k, n) in histogram.enumerated() where n != 0 {
            merged[k >> shift] += n
        }
        histogram = merged
        binExponent = needed
        return needed
    }

    // MARK: Ranges

    /// The range to quantise with `method`.
    ///
    /// - Parameter unsigned: The tensor is non-negative by construction (e.g. after ReLU); it is
    ///   also treated as non-negative when its observed minimum is `>= 0`. A non-negative tensor
    ///   gets `[0, t]` (``CalibrationMethod/minMax``: `[0, max]`), and ``CalibrationMethod/entropy``
    ///   and ``CalibrationMethod/mse`` use 255 levels instead of 127. Negative values seen in a
    ///   tensor declared unsigned count by their magnitude in the histogram.
    ///
    /// Rules that keep every range usable:
    /// - a threshold never exceeds the observed ``absMax`` (a percentile or KL bin edge beyond
    ///   the data is cut back), so a constant tensor `c ≠ 0` gives `t = |c|`;
    /// - a threshold, or ``CalibrationMethod/minMax`` width, below
    ///   ``TensorRange/minimumThreshold`` (an all-zero, empty or never-observed tensor gives 0)
    ///   becomes ``TensorRange/minimumThreshold``.
    /// Below this many observed values, ``CalibrationMethod/entropy`` uses the MSE threshold.
    public static let minimumEntropyCount = 65_536

    public func range(_ method: CalibrationMethod, unsigned: Bool) -> TensorRange {
        let nonNegative = unsigned || (count > 0 && min >= 0)
        let floor = TensorRange.minimumThreshold
        if case .minMax = method {
            var lo = nonNegative || count == 0 ? 0 : Swift.min(min, 0)
            var hi = count == 0 ? 0 : Swift.max(max, 0)
            if hi - lo < floor {
                if nonNegative || lo == 0 { hi = floor } else { lo = -floor }
            }
            return TensorRange(min: lo, max: hi)
        }
        let t = Float(
            Swift.max(
                Swift.min(threshold(method, unsigned: nonNegative), Double(absMax)),
                Double(floor)))
        return TensorRange(min: nonNegative ? 0 : -t, max: t)
    }

    /// The symmetric threshold of `method` before the clamping ``range(_:unsigned:)`` applies.
    func threshold(_ method: CalibrationMethod, unsigned: Bool) -> Double {
        guard count > 0, absMax > 0 else { return 0 }
        switch method {
        case .minMax, .absMax: return Double(absMax)
        case .percentile(let p): return percentileThreshold(p)
        case .entropy:
            // KL needs a populated histogram: on a few thousand values (squeeze-excite gates,
            // [N, C, 1, 1]) it clips far too much (measured on PP-OCR cls: a gate's 0.34 range
            // cut to 0.11, output SQNR 3 dB). Such tensors use the MSE threshold.
            if count < Self.minimumEntropyCount { return mseThreshold(levels: unsigned ? 255 : 127) }
            return entropyThreshold(targetBins: unsigned ? 255 : 128)
        case .mse: return mseThreshold(levels: unsigned ? 255 : 127)
        }
    }

    /// The number of bins up to the last non-empty one (which holds ``absMax``).
    private var occupiedBins: Int {
        (histogram.lastIndex { $0 != 0 } ?? 0) + 1
    }

    /// The interval where the non-zero values of bin `k` lie: `[k, k + 1) · binWidth`, narrowed
    /// to ``absMax`` at the top and to the smallest non-zero `|x|` at the bottom.
    private func edges(_ k: Int, occupied n: Int) -> (lower: Double, upper: Double) {
        let w = binWidth
        let upper = k == n - 1 ? Double(absMax) : Double(k + 1) * w
        return (Swift.min(Swift.max(Double(k) * w, Double(smallestNonZero)), upper), upper)
    }

    /// The value below which `p` percent of `|x|` lies, assuming values spread evenly within a
    /// bin (apart from the exact zeros of bin 0).
    private func percentileThreshold(_ p: Double) -> Double {
        guard p < 100 else { return Double(absMax) }
        let target = Swift.max(p, 0) / 100 * Double(count)
        let n = occupiedBins
        if target <= Double(zeroCount) { return 0 }
        var below = Double(zeroCount)
        for k in 0..<n {
            let inBin = Double(histogram[k] - (k == 0 ? zeroCount : 0))
            guard inBin > 0 else { continue }
            if below + inBin >= target {
                let (lower, upper) = edges(k, occupied: n)
                return lower + (target - below) / inBin * (upper - lower)
            }
            below += inBin
        }
        return Double(absMax)
    }

    /// TensorRT's / Paddle's KL calibration on the `|x|` histogram.
    ///
    /// For each candidate `i` (the number of bins kept, from `targetBins` to the occupied bins,
    /// skipping `i` whose bin `i - 1` is empty as Paddle does): `P` is `hist[0..<i]` with the
    /// counts beyond it added to bin `i - 1`; `Q` merges `hist[0..<i]` (without those outliers)
    /// into `targetBins` equal groups of bins and spreads each group's count evenly over the
    /// bins where `P` is non-zero. The threshold is `(i + 0.5) · binWidth` for the `i`
    /// minimising `KL(P || Q) = Σ p ln(p / q)` over `p > 0` (with `P`, `Q` normalised; `q > 0`
    /// wherever `p > 0`, so no smoothing is needed).
    private func entropyThreshold(targetBins: Int) -> Double {
        let n = occupiedBins
        guard n > targetBins else { return Double(absMax) }
        // Prefix sums: counts, h ln h, and the number of non-empty bins.
        var sum = [Double](repeating: 0, count: n + 1)
        var hLogH = [Double](repeating: 0, count: n + 1)
        var nonEmpty = [Int](repeating: 0, count: n + 1)
        for k in 0..<n {
            let h = Double(histogram[k])
            sum[k + 1] = sum[k] + h
            hLogH[k + 1] = hLogH[k] + (h > 0 ? h * log(h) : 0)
            nonEmpty[k + 1] = nonEmpty[k] + (h > 0 ? 1 : 0)
        }
        let total = sum[n]
        var best = n, bestKL = Double.infinity
        for i in targetBins...n where histogram[i - 1] != 0 {
            let last = Double(histogram[i - 1]) + (total - sum[i])
            // Σ p ln p with p = P / total.
            let selfTerm = (hLogH[i - 1] + last * log(last)) / total - log(total)
            // Σ p ln q: q is constant over the non-empty bins of each group.
            var cross = 0.0
            for j in 0..<targetBins {
                let start = j * i / targetBins, end = (j + 1) * i / targetBins
                var pMass = sum[end] - sum[start]
                if end == i { pMass += total - sum[i] }
                guard pMass > 0 else { continue }
                let q = (sum[end] - sum[start]) / Double(nonEmpty[end] - nonEmpty[start]) / sum[i]
                cross += pMass / total * log(q)
            }
            let kl = selfTerm - cross
            if kl < bestKL {
                bestKL = kl
                best = i
            }
        }
        return (Double(best) + 0.5) * binWidth
    }

    /// The threshold `t = s · absMax`, `s` in `0.30...1.00` step 0.01 and then step 0.001 within
    /// ±0.01 of the best, minimising the expected squared error of quantising `|x|` to `levels`
    /// steps of `t / levels`: `(x - t)²` for `x > t`, `step² / 12` for `x <= t` (0 for exact
    /// zeros), with values spread evenly within each bin (a bin whose values all have the same
    /// magnitude, as in a constant tensor, gets its exact error).
    private func mseThreshold(levels: Int) -> Double {
        let n = occupiedBins
        let top = Double(absMax)
        func error(_ t: Double) -> Double {
            let step = t / Double(levels)
            let rounding = step * step / 12
            var total = 0.0
            for k in 0..<n {
                let h = Double(histogram[k] - (k == 0 ? zeroCount : 0))
                guard h > 0 else { continue }
                let (a, b) = edges(k, occupied: n)
                let width = b - a
                guard width > 0 else {
                    // All of the bin's values are |x| = a (e.g. a constant tensor): exact error.
                    let q = a >= t ? t : (a / step).rounded(.toNearestOrEven) * step
                    total += h * (a - q) * (a - q)
                    continue
                }
                let inside = Swift.min(Swift.max(t - a, 0), width)
                total += h * inside / width * rounding
                if b > t {
                    let from = Swift.max(a, t) - t, to = b - t
                    total += h / width * (to * to * to - from * from * from) / 3
                }
            }
            return total / Double(count)
        }
        func search(_ scales: some Sequence<Double>, best: inout (s: Double, error: Double)) {
            for s in scales {
                let e = error(s * top)
                if e < best.error { best = (s, e) }
            }
        }
        var best = (s: 1.0, error: Double.infinity)
        search((30...100).map { Double($0) / 100 }, best: &best)
        let coarse = best.s
        search((-10...10).map { coarse + Double($0) / 1000 }.filter { $0 > 0 && $0 <= 1 }, best: &best)
        return best.s * top
    }
}
