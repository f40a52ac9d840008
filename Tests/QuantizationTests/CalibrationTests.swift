import Foundation
import Quantization
import TestSupport
import XCTest

/// `count` samples of N(0, sigma²) (Box–Muller on a seeded generator).
private func gaussian(_ count: Int, sigma: Double = 1, seed: UInt64) -> [Float] {
    var random = SeededRandom(seed: seed)
    var values: [Float] = []
    values.reserveCapacity(count)
    while values.count < count {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &random)
        let v = Double.random(in: 0..<1, using: &random)
        let r = (-2 * log(u)).squareRoot() * sigma
        values.append(Float(r * cos(2 * .pi * v)))
        if values.count < count { values.append(Float(r * sin(2 * .pi * v))) }
    }
    return values
}

private func observer(_ values: [Float]) -> TensorObserver {
    var observer = TensorObserver()
    values.withUnsafeBufferPointer { observer.observe($0) }
    return observer
}

/// The `p` percentile of `values`: the smallest value with at least `p`% of the values at or below
/// it (NumPy's `method="inverted_cdf"`). The histogram estimate lies in the same bin as this value.
private func exactPercentile(_ values: [Float], _ p: Double) -> Double {
    let sorted = values.map(Double.init).sorted()
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[max(rank, 1) - 1]
}

private let symmetricMethods: [CalibrationMethod] = [.absMax, .entropy, .percentile(99.99), .mse]
private let allMethods: [CalibrationMethod] = [.minMax] + symmetricMethods

final class CalibrationTests: XCTestCase {
    // MARK: CalibrationMethod

    func testMethodNamesAndCodableForm() throws {
        XCTAssertEqual(CalibrationMethod(name: "minmax", percentile: nil), .minMax)
        XCTAssertEqual(CalibrationMethod(name: "AbsMax", percentile: 99), .absMax)
        XCTAssertEqual(CalibrationMethod(name: "entropy", percentile: nil), .entropy)
        XCTAssertEqual(CalibrationMethod(name: "mse", percentile: nil), .mse)
        XCTAssertEqual(CalibrationMethod(name: "percentile", percentile: 99.9), .percentile(99.9))
        XCTAssertEqual(CalibrationMethod(name: "percentile", percentile: nil), .percentile(99.99))
        XCTAssertNil(CalibrationMethod(name: "percentile", percentile: 0))
        XCTAssertNil(CalibrationMethod(name: "percentile", percentile: 100.5))
        XCTAssertNil(CalibrationMethod(name: "percentile", percentile: .nan))
        XCTAssertNil(CalibrationMethod(name: "histogram", percentile: nil))
        for name in CalibrationMethod.names {
            XCTAssertNotNil(CalibrationMethod(name: name, percentile: nil), name)
        }
        XCTAssertEqual(CalibrationMethod.percentile(99.99).description, "percentile(99.99)")

        for method in allMethods + [.percentile(99.9), .percentile(100)] {
            let data = try JSONEncoder().encode([method])
            XCTAssertEqual(try JSONDecoder().decode([CalibrationMethod].self, from: data), [method])
            XCTAssertEqual(String(decoding: data, as: UTF8.self), "[\"\(method)\"]")
        }
        for bad in ["\"percentile\"", "\"percentile(0)\"", "\"percentile(x)\"", "\"kmeans\"", "3"] {
            XCTAssertThrowsError(try JSONDecoder().decode([CalibrationMethod].self, from: Data("[\(bad)]".utf8)), bad)
        }
    }

    // MARK: Observer basics

    func testMinMaxIsExactAndAbsMaxIsSymmetric() {
        var random = SeededRandom(seed: 1)
        var values = random.floats(10_000, in: -3.0...7.0)
        values[17] = -3.25
        values[9_000] = 7.5
        let o = observer(values)
        XCTAssertEqual(o.count, 10_000)
        XCTAssertEqual(o.min, -3.25)
        XCTAssertEqual(o.max, 7.5)
        XCTAssertEqual(o.absMax, 7.5)
        XCTAssertEqual(o.range(.minMax, unsigned: false), TensorRange(min: -3.25, max: 7.5))
        XCTAssertEqual(o.range(.absMax, unsigned: false), TensorRange(min: -7.5, max: 7.5))
        // Declared non-negative: the lower bound is 0 whatever was seen.
        XCTAssertEqual(o.range(.minMax, unsigned: true), TensorRange(min: 0, max: 7.5))
        XCTAssertEqual(o.range(.absMax, unsigned: true), TensorRange(min: 0, max: 7.5))

        // Observed minimum >= 0: non-negative without being declared; minMax widens to contain 0.
        let positive = observer(values.map { $0 + 4 })
        XCTAssertEqual(positive.range(.minMax, unsigned: false), TensorRange(min: 0, max: 11.5))
        XCTAssertEqual(positive.range(.absMax, unsigned: false), TensorRange(min: 0, max: 11.5))
        // All negative: minMax widens up to 0.
        let negative = observer(values.map { $0 - 8 })
        XCTAssertEqual(negative.range(.minMax, unsigned: false), TensorRange(min: -11.25, max: 0))
        XCTAssertEqual(negative.range(.absMax, unsigned: false), TensorRange(min: -11.25, max: 11.25))
    }

    func testHistogramCountsEveryFiniteValueAndCoversTheMaximum() {
        let values = gaussian(50_000, sigma: 3, seed: 2)
        let o = observer(values)
        XCTAssertEqual(o.histogram.count, TensorObserver.binCount)
        XCTAssertEqual(o.histogram.reduce(0, +), values.count)
        // Bin width is a power of two and the largest |x| lies in the upper half of the bins.
        let w = o.binWidth
        XCTAssertEqual(w.significand, 1)
        let lastBin = o.histogram.lastIndex { $0 != 0 }!
        XCTAssertEqual(lastBin, Int(Double(o.absMax) / w))
        XCTAssertGreaterThanOrEqual(lastBin, 1024)
        // Spot-check bin contents against a direct count.
        for k in [0, 100, 700, lastBin] {
            let direct = values.filter { Int(Double(abs($0)) / w) == k }.count
            XCTAssertEqual(o.histogram[k], direct, "bin \(k)")
        }
    }

    // MARK: Percentile

    func testPercentileMatchesTheSortedArrayWithinOneBin() {
        let signed = gaussian(100_000, sigma: 2, seed: 3)
        var random = SeededRandom(seed: 4)
        // Non-negative: exponential with a spike of exact zeros, as after ReLU.
        let nonNegative: [Float] = (0..<100_000).map { i in
            i % 3 == 0 ? 0 : Float(-log(Double.random(in: Double.ulpOfOne..<1, using: &random)))
        }
        for (name, values) in [("signed", signed), ("non-negative", nonNegative)] {
            let o = observer(values)
            let magnitudes = values.map(abs)
            for p in [10.0, 50, 90, 99, 99.9, 99.99] {
                let got = Double(o.range(.percentile(p), unsigned: false).max)
                let reference = exactPercentile(magnitudes, p)
                XCTAssertEqual(got, reference, accuracy: o.binWidth, "\(name) p\(p)")
            }
            XCTAssertEqual(o.range(.percentile(100), unsigned: false).max, o.absMax, name)
        }
        // A percentile inside the zero spike is 0, so the guard threshold applies.
        XCTAssertEqual(
            observer(nonNegative).range(.percentile(20), unsigned: false),
            TensorRange(min: 0, max: TensorRange.minimumThreshold))
    }

    // MARK: Entropy

    func testEntropyOnAGaussianIsBetween2Point5And4Point5Sigma() {
        for (sigma, count, seed) in [(1.0, 100_000, UInt64(5)), (0.05, 200_000, 6), (40, 50_000, 7)] {
            let o = observer(gaussian(count, sigma: sigma, seed: seed))
            let range = o.range(.entropy, unsigned: false)
            XCTAssertEqual(range.min, -range.max)
            let t = Double(range.max) / sigma
            XCTAssertTrue((2.5...4.5).contains(t), "σ \(sigma), n \(count): threshold \(t)σ")
            XCTAssertLessThan(range.max, o.absMax)
        }
        // With many samples TensorRT's KL moves into the thin Gaussian tail: a NumPy transcription of
        // TensorRT's algorithm gives 4.4σ at 10⁶ and 5.0σ at 4·10⁶ samples (absMax 5.0σ, 5.35σ).
        let large = observer(gaussian(1_000_000, seed: 5))
        let t1M = Double(large.range(.entropy, unsigned: false).max)
        XCTAssertTrue((3.5...5.0).contains(t1M) && t1M < Double(large.absMax), "10⁶ samples: \(t1M)σ")
        // Half-normal (non-negative, 255 target bins): still clips the tail.
        let halfNormal = observer(gaussian(500_000, seed: 8).map(abs))
        let t = Double(halfNormal.range(.entropy, unsigned: false).max)
        XCTAssertTrue((2.5...4.5).contains(t), "half-normal threshold \(t)σ")
    }

    /// The observer computes KL with prefix sums; this is the definition, evaluated directly.
    func testEntropyMatchesADirectKLSearch() {
        for (values, targetBins) in [
            (gaussian(300_000, sigma: 1.5, seed: 9), 128),
            (gaussian(300_000, seed: 10).map { max($0, 0) }, 255),
        ] {
            let o = observer(values)
            let hist = o.histogram.map(Double.init)
            let n = hist.lastIndex { $0 != 0 }! + 1
            let total = hist.reduce(0, +)
            var best = -1, bestKL = Double.infinity
            for i in targetBins...n where hist[i - 1] != 0 {
                var p = Array(hist[0..<i])
                p[i - 1] += hist[i...].reduce(0, +)
                let sliced = Array(hist[0..<i])
                var q = [Double](repeating: 0, count: i)
                for j in 0..<targetBins {
                    let group = (j * i / targetBins)..<((j + 1) * i / targetBins)
                    let mass = group.map { sliced[$0] }.reduce(0, +)
                    let nonZero = group.filter { p[$0] != 0 }.count
                    for k in group where p[k] != 0 { q[k] = mass / Double(nonZero) }
                }
                let qTotal = q.reduce(0, +)
                var kl = 0.0
                for k in 0..<i where p[k] > 0 {
                    kl += p[k] / total * log((p[k] / total) / (q[k] / qTotal))
                }
                if kl < bestKL { (best, bestKL) = (i, kl) }
            }
            let expected = min((Double(best) + 0.5) * o.binWidth, Double(o.absMax))
            let got = o.range(.entropy, unsigned: targetBins == 255).max
            XCTAssertEqual(Double(got), expected, accuracy: expected * 1e-6, "target bins \(targetBins)")
        }
    }

    // MARK: MSE

    func testMSEMatchesABruteForceQuantizationError() {
        // Brute force over the samples: the error of round-to-nearest with 127 steps of t/127,
        // clipped at t, for every candidate on a 0.005 grid; the histogram search must land on
        // a threshold whose true error is within 1% of the best.
        let values = gaussian(100_000, sigma: 2, seed: 11)
        let o = observer(values)
        let absMax = Double(o.absMax)
        func trueError(_ t: Double) -> Double {
            let step = t / 127
            var sum = 0.0
            for v in values {
                let x = Double(v)
                let q = (min(max(x, -t), t) / step).rounded(.toNearestOrEven) * step
                sum += (x - q) * (x - q)
            }
            return sum / Double(values.count)
        }
        let bestBrute = stride(from: 0.3, through: 1.0, by: 0.005).map { trueError($0 * absMax) }.min()!
        let t = Double(o.range(.mse, unsigned: false).max)
        XCTAssertLessThanOrEqual(trueError(t), bestBrute * 1.01, "mse threshold \(t) of absMax \(absMax)")
        XCTAssertLessThan(t, absMax)
        XCTAssertGreaterThan(t / 2, 2.5, "a Gaussian's MSE-optimal 8-bit threshold is near 4σ")
    }

    // MARK: Outliers

    func testOutliersAreClippedByEntropyPercentileAndMSEButNotAbsMax() {
        var values = gaussian(1_000_000, seed: 12)
        values[1234] = 30
        values[777_777] = -30
        let o = observer(values)
        XCTAssertEqual(o.range(.absMax, unsigned: false).max, 30)
        XCTAssertEqual(o.range(.minMax, unsigned: false), TensorRange(min: -30, max: 30))
        let entropy = o.range(.entropy, unsigned: false).max
        let percentile = o.range(.percentile(99.99), unsigned: false).max
        let mse = o.range(.mse, unsigned: false).max
        XCTAssertTrue((2.5...6).contains(entropy), "entropy \(entropy)")
        XCTAssertTrue((3.5...4.5).contains(percentile), "percentile \(percentile)")  // 99.99% of N(0,1): 3.89
        XCTAssertLessThan(mse, 15, "mse")
    }

    // MARK: Streaming

    func testManySmallGrowingBatchesMatchOneBatch() {
        // 100 batches whose magnitude grows, so the histogram is re-binned many times.
        var batches: [[Float]] = []
        for k in 0..<100 {
            let scale = Float(1 + Double(k) * 0.3)
            batches.append(gaussian(2_000, seed: 100 + UInt64(k)).map { $0 * scale * (k % 2 == 0 ? 1 : -0.5) })
        }
        batches[0] = batches[0].map { $0 * 1e-3 }
        let whole = observer(batches.flatMap { $0 })
        var streamed = TensorObserver()
        var widths: Set<Double> = []
        for batch in batches {
            batch.withUnsafeBufferPointer { streamed.observe($0) }
            widths.insert(streamed.binWidth)
        }
        XCTAssertGreaterThan(widths.count, 5, "the range grew several times")
        XCTAssertEqual(streamed.count, whole.count)
        XCTAssertEqual(streamed.min, whole.min)
        XCTAssertEqual(streamed.max, whole.max)
        XCTAssertEqual(streamed.binWidth, whole.binWidth)
        XCTAssertEqual(streamed.histogram, whole.histogram)
        for method in allMethods {
            for unsigned in [false, true] {
                let a = streamed.range(method, unsigned: unsigned), b = whole.range(method, unsigned: unsigned)
                XCTAssertEqual(Double(a.max), Double(b.max), accuracy: 2 * whole.binWidth, "\(method)")
                XCTAssertEqual(Double(a.min), Double(b.min), accuracy: 2 * whole.binWidth, "\(method)")
            }
        }
        // Reversed order (shrinking ranges) gives the same histogram too.
        var reversed = TensorObserver()
        for batch in batches.reversed() { batch.withUnsafeBufferPointer { reversed.observe($0) } }
        XCTAssertEqual(reversed.histogram, whole.histogram)
    }

    func testMemoryDoesNotGrowWithTheNumberOfValues() {
        var o = TensorObserver()
        let size = MemoryLayout<TensorObserver>.size
        for k in 0..<300 {
            let batch = gaussian(1_000, sigma: Double(k + 1), seed: 200 + UInt64(k))
            batch.withUnsafeBufferPointer { o.observe($0) }
            XCTAssertEqual(o.histogram.count, TensorObserver.binCount)
        }
        XCTAssertEqual(o.count, 300_000)
        XCTAssertEqual(MemoryLayout<TensorObserver>.size, size)
        XCTAssertLessThanOrEqual(o.histogram.capacity, 2 * TensorObserver.binCount)
    }

    // MARK: Non-finite, zero, constant

    func testNaNAndInfinityAreCountedAndIgnored() {
        let clean = gaussian(20_000, seed: 13)
        var dirty = clean
        dirty.insert(.nan, at: 5)
        dirty.insert(.infinity, at: 100)
        dirty.insert(-.infinity, at: 0)
        dirty.append(-.nan)
        let a = observer(clean), b = observer(dirty)
        XCTAssertEqual(b.nonFiniteCount, 4)
        XCTAssertEqual(b.count, clean.count)
        XCTAssertEqual(b.histogram, a.histogram)
        for method in allMethods {
            XCTAssertEqual(b.range(method, unsigned: false), a.range(method, unsigned: false), "\(method)")
        }
        let onlyNaN = observer([.nan, .infinity])
        XCTAssertEqual(onlyNaN.count, 0)
        XCTAssertEqual(onlyNaN.nonFiniteCount, 2)
        for method in allMethods {
            let r = onlyNaN.range(method, unsigned: false)
            XCTAssertTrue(r.min.isFinite && r.max.isFinite && r.max - r.min > 0, "\(method): \(r)")
        }
    }

    func testAllZeroConstantAndEmptyTensorsGiveFinitePositiveRanges() {
        let epsilon = TensorRange.minimumThreshold
        XCTAssertGreaterThan(epsilon / 255, 0)
        XCTAssertTrue((epsilon / 255).isNormal)
        XCTAssertTrue((255 / epsilon).isFinite)

        let zeros = observer([Float](repeating: 0, count: 1000) + [-0.0])
        XCTAssertEqual(zeros.binWidth, 0)
        XCTAssertEqual(zeros.histogram[0], 1001)
        for method in allMethods {
            for unsigned in [false, true] {
                XCTAssertEqual(zeros.range(method, unsigned: unsigned), TensorRange(min: 0, max: epsilon), "\(method)")
                // Nothing observed: [-ε, ε] unless non-negative (minMax: [0, ε]).
                let empty =
                    method == .minMax || unsigned
                    ? TensorRange(min: 0, max: epsilon)
                    : TensorRange(min: -epsilon, max: epsilon)
                XCTAssertEqual(TensorObserver().range(method, unsigned: unsigned), empty, "empty \(method)")
            }
        }
        // Zeros first, then data: the zeros stay in bin 0.
        var late = TensorObserver()
        [Float](repeating: 0, count: 10).withUnsafeBufferPointer { late.observe($0) }
        [Float](arrayLiteral: 1, 2, 3).withUnsafeBufferPointer { late.observe($0) }
        XCTAssertEqual(late.histogram, observer([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]).histogram)

        let positive = observer([Float](repeating: 3.7, count: 500))
        let negative = observer([Float](repeating: -0.02, count: 500))
        for method in symmetricMethods {
            XCTAssertEqual(positive.range(method, unsigned: false), TensorRange(min: 0, max: 3.7), "\(method)")
            XCTAssertEqual(negative.range(method, unsigned: false), TensorRange(min: -0.02, max: 0.02), "\(method)")
        }
        XCTAssertEqual(positive.range(.minMax, unsigned: false), TensorRange(min: 0, max: 3.7))
        XCTAssertEqual(negative.range(.minMax, unsigned: false), TensorRange(min: -0.02, max: 0))
        // Subnormal data: the threshold is raised to the guard.
        let subnormal = Float.leastNormalMagnitude / 16
        let tiny = observer([subnormal, -subnormal / 8])
        XCTAssertEqual(tiny.range(.absMax, unsigned: false), TensorRange(min: -epsilon, max: epsilon))
        XCTAssertEqual(tiny.range(.minMax, unsigned: false), TensorRange(min: -epsilon, max: subnormal))
        // Extremes stay finite.
        let huge = observer([Float.greatestFiniteMagnitude, -1, 0.5])
        for method in allMethods {
            let r = huge.range(method, unsigned: false)
            XCTAssertTrue(r.min.isFinite && r.max.isFinite && r.max > r.min, "\(method): \(r)")
        }
    }

    func testObservesF32Tensors() {
        let values = gaussian(600, seed: 14)
        var o = TensorObserver()
        o.observe(Tensor(shape: [2, 3, 100], scalars: values))
        XCTAssertEqual(o.histogram, observer(values).histogram)
        XCTAssertEqual(o.min, values.min())
    }

    // MARK: Calibrator

    func testCalibratorTableAndWarnings() {
        var calibrator = Calibrator(tensors: ["signed", "relu", "declared", "never", "nan", "ids"])
        for k in 0..<5 {
            let g = gaussian(1_000, seed: 300 + UInt64(k))
            var withNaN = g
            withNaN[k] = .nan
            calibrator.observe([
                "signed": Tensor(shape: [1000], scalars: g),
                "relu": Tensor(shape: [1000], scalars: g.map { max($0, 0) }),
                "declared": Tensor(shape: [1000], scalars: g.map { $0 - 0.5 }),
                "nan": Tensor(shape: [1000], scalars: withNaN),
                "ids": Tensor(shape: [2], scalars: [Int64(1), 2]),
                "not calibrated": Tensor(shape: [1], scalars: [Float(1e6)]),
            ])
        }
        XCTAssertEqual(calibrator.sampleCount, 5)
        let table = calibrator.table(method: .absMax, unsigned: ["declared"])
        XCTAssertEqual(table.method, .absMax)
        XCTAssertEqual(table.sampleCount, 5)
        XCTAssertEqual(Set(table.ranges.keys), ["signed", "relu", "declared", "nan"])
        let signed = table.ranges["signed"]!, relu = table.ranges["relu"]!, declared = table.ranges["declared"]!
        XCTAssertEqual(signed.min, -signed.max)
        XCTAssertEqual(relu.min, 0, "observed minimum 0: non-negative")
        XCTAssertEqual(declared.min, 0, "declared non-negative")
        XCTAssertEqual(declared.max, calibrator.observers["declared"]!.absMax)
        XCTAssertEqual(calibrator.observers["nan"]!.nonFiniteCount, 5)
        XCTAssertEqual(calibrator.observers["signed"]!.count, 5000)

        let warnings = calibrator.warnings
        XCTAssertEqual(warnings.count, 3, "\(warnings)")
        XCTAssertTrue(warnings.contains { $0.contains("'ids'") && $0.contains("i64") }, "\(warnings)")
        XCTAssertTrue(
            warnings.contains { $0.contains("'nan'") && $0.contains("5 NaN or infinite values of 5000") },
            "\(warnings)")
        XCTAssertTrue(warnings.contains { $0.contains("'never'") && $0.contains("never observed") }, "\(warnings)")

        let entropy = calibrator.table(method: .entropy, unsigned: [])
        XCTAssertEqual(entropy.ranges["relu"]!.min, 0)
        XCTAssertLessThanOrEqual(entropy.ranges["relu"]!.max, relu.max)
    }

    // MARK: CalibrationTable

    func testTableRoundTripsThroughJSON() throws {
        var random = SeededRandom(seed: 15)
        var ranges: [String: TensorRange] = [:]
        for k in 0..<50 {
            let t = Float.random(in: 1e-3...100, using: &random)
            ranges["t\(k)"] = k % 2 == 0 ? TensorRange(min: -t, max: t) : TensorRange(min: 0, max: t)
        }
        ranges["edge"] = TensorRange(min: -Float.greatestFiniteMagnitude, max: TensorRange.minimumThreshold)
        for method in allMethods + [.percentile(99.9)] {
            let table = CalibrationTable(method: method, sampleCount: 123, ranges: ranges)
            let url = try makeTemporaryFolder(for: self).appendingPathComponent("table.json")
            try table.write(to: url)
            XCTAssertEqual(try CalibrationTable(contentsOf: url), table)
            let text = try String(contentsOf: url, encoding: .utf8)
            XCTAssertTrue(text.contains("\"method\" : \"\(method)\""), text)
            let keys = ["\"method\"", "\"ranges\"", "\"sampleCount\""].map { text.range(of: $0)!.lowerBound }
            XCTAssertEqual(keys, keys.sorted(), "sorted keys")
            let folder = url.deletingLastPathComponent()
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["table.json"])
        }
    }

    func testTableErrorsNameTheFile() throws {
        let folder = try makeTemporaryFolder(for: self)
        func assertError(_ json: String, _ parts: [String], line: UInt = #line) {
            let url = folder.appendingPathComponent("t\(line).json")
            try? Data(json.utf8).write(to: url)
            assertCalibrationError([url.path] + parts, line: line) { try CalibrationTable(contentsOf: url) }
        }
        assertError("{\"method\": \"entropy\", ", ["not valid JSON"])
        assertError("{\"method\": \"entropy\", \"sampleCount\": 1}", ["missing key 'ranges'"])
        assertError(
            "{\"method\": \"entropy\", \"sampleCount\": 1, \"ranges\": {\"x\": {\"min\": 0}}}",
            ["missing key 'max'", "ranges.x"])
        assertError("{\"method\": \"kmeans\", \"sampleCount\": 1, \"ranges\": {}}", ["unknown calibration method"])
        assertError("{\"method\": \"mse\", \"sampleCount\": \"many\", \"ranges\": {}}", ["sampleCount"])
        assertError(
            "{\"method\": \"mse\", \"sampleCount\": 1, \"ranges\": {\"x\": {\"min\": 2, \"max\": 1}}}",
            ["range of 'x'", "min <= max"])
        let missing = folder.appendingPathComponent("absent.json")
        assertCalibrationError([missing.path, "does not exist"]) { try CalibrationTable(contentsOf: missing) }
        let table = CalibrationTable(method: .mse, sampleCount: 0, ranges: [:])
        let unwritable = folder.appendingPathComponent("no/such/folder/t.json")
        assertCalibrationError([unwritable.path, "does not exist"]) { try table.write(to: unwritable) }
    }

    // MARK: CalibrationReader

    func testReaderReadsSamplesInNameOrder() throws {
        let folder = try makeTemporaryFolder(for: self)
        for k in [3, 1, 10, 2] {
            try NPZ.write(
                [
                    "ids": Tensor(shape: [2], scalars: [Int64(k), 0]),
                    "x": Tensor(shape: [1], scalars: [Float(k)]),
                ],
                to: folder.appendingPathComponent(String(format: "%03d.npz", k)))
        }
        try Data("notes".utf8).write(to: folder.appendingPathComponent("README.txt"))
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("sub.npz"),
            withIntermediateDirectories: false)
        let reader = try CalibrationReader(directory: folder, inputNames: ["x", "ids"])
        XCTAssertEqual(reader.files.map(\.lastPathComponent), ["001.npz", "002.npz", "003.npz", "010.npz"])
        XCTAssertEqual(reader.map { $0["x"]!.scalars(as: Float.self)[0] }, [1, 2, 3, 10])
        XCTAssertEqual(reader.map { Set($0.keys) }, Array(repeating: ["x", "ids"], count: 4))
        let limited = try CalibrationReader(directory: folder, inputNames: ["x", "ids"], limit: 2)
        XCTAssertEqual(Array(limited).count, 2)
        XCTAssertEqual(try limited.sample(at: 1)["ids"]!.scalars(as: Int64.self), [2, 0])

        // A single-input model takes .npy and .npz samples.
        let single = try makeTemporaryFolder(for: self)
        try Tensor(shape: [2], scalars: [Float(1), 2]).writeNPY(to: single.appendingPathComponent("a.npy"))
        try NPZ.write(["in": Tensor(shape: [1], scalars: [Float(5)])], to: single.appendingPathComponent("b.npz"))
        let samples = Array(try CalibrationReader(directory: single, inputNames: ["in"]))
        XCTAssertEqual(
            samples,
            [
                ["in": Tensor(shape: [2], scalars: [Float(1), 2])],
                ["in": Tensor(shape: [1], scalars: [Float(5)])],
            ])
    }

    func testReaderErrorsNameTheFolderOrFile() throws {
        let folder = try makeTemporaryFolder(for: self)
        let missing = folder.appendingPathComponent("missing")
        assertCalibrationError([missing.path, "does not exist"]) {
            try CalibrationReader(directory: missing, inputNames: ["x"])
        }
        assertCalibrationError([folder.path, "no .npy or .npz samples in \(folder.path)"]) {
            try CalibrationReader(directory: folder, inputNames: ["x"])
        }
        let x = Tensor(shape: [1], scalars: [Float(1)])

        let npy = folder.appendingPathComponent("0.npy")
        try x.writeNPY(to: npy)
        assertCalibrationError([npy.path, "name the inputs: use .npz", "'a', 'b'"]) {
            try CalibrationReader(directory: folder, inputNames: ["a", "b"])
        }
        assertCalibrationError([npy.path, "not a folder"]) { try CalibrationReader(directory: npy, inputNames: ["x"]) }
        assertCalibrationError([folder.path, "at least 1"]) {
            try CalibrationReader(directory: folder, inputNames: ["x"], limit: 0)
        }
        try FileManager.default.removeItem(at: npy)

        let npz = folder.appendingPathComponent("1.npz")
        try NPZ.write(["a": x], to: npz)
        assertCalibrationError([npz.path, "missing input 'b'"]) {
            try CalibrationReader(directory: folder, inputNames: ["a", "b"])
        }
        try NPZ.write(["a": x, "b": x, "c": x], to: npz)
        assertCalibrationError([npz.path, "unknown key 'c'", "the model's inputs are 'a', 'b'"]) {
            try CalibrationReader(directory: folder, inputNames: ["a", "b"])
        }
        try NPZ.write(["arr_0": x], to: npz)
        assertCalibrationError([npz.path, "missing input 'x'", "unknown key 'arr_0'"]) {
            try CalibrationReader(directory: folder, inputNames: ["x"])
        }
        try Data("not a zip".utf8).write(to: npz)
        assertCalibrationError([npz.path, "not a zip archive"]) {
            try CalibrationReader(directory: folder, inputNames: ["x"])
        }
        // A bad file after good ones is still found before iteration starts.
        try NPZ.write(["x": x], to: folder.appendingPathComponent("0.npz"))
        try Data("junk".utf8).write(to: folder.appendingPathComponent("2.npy"))
        assertCalibrationError([npz.path]) { try CalibrationReader(directory: folder, inputNames: ["x"]) }
        try FileManager.default.removeItem(at: npz)
        assertCalibrationError([folder.appendingPathComponent("2.npy").path, "magic"]) {
            try CalibrationReader(directory: folder, inputNames: ["x"])
        }
        XCTAssertEqual(try CalibrationReader(directory: folder, inputNames: ["x"], limit: 1).count, 1)
    }
}

func assertCalibrationError<T>(
    _ parts: [String], file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> T
) {
    do {
        let result = try body()
        XCTFail("expected an error containing \(parts), got \(result)", file: file, line: line)
    } catch let error as CalibrationError {
        for part in parts where !error.description.contains(part) {
            XCTFail("'\(error)' does not contain '\(part)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected a CalibrationError, got \(error)", file: file, line: line)
    }
}
