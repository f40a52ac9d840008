import Foundation
import Quantization
import XCTest

/// The single-operator models of `Fixtures/ops/` and onnxruntime's outputs for them (written by
/// `Fixtures/make_operator_fixtures.py`; `cases.json` lists each case's family, opset,
/// tolerance and what it covers).
enum OperatorFixture {
    static let folder = Fixture.folder.appendingPathComponent("ops")

    struct Case: Decodable {
        var family: String
        var opset: Int
        var runs: Int
        var atol: Double
        var rtol: Double
        var what: String
    }

    static func cases() throws -> [String: Case] {
        try JSONDecoder().decode(
            [String: Case].self,
            from: Data(contentsOf: folder.appendingPathComponent("cases.json")))
    }
}

/// Every operator the FP32 engine runs, one tiny model at a time, against onnxruntime: Conv and
/// ConvTranspose variants, Gemm/MatMul, broadcasting binaries, pooling, data movement, Resize,
/// activations, normalisations and RNNs. Each case runs on a fresh session with optimizations
/// on (the default), its runs in order (cases with a dynamic dim re-plan between runs).
final class OperatorTests: XCTestCase {
    static let families = [
        "conv", "matmul", "binary", "pooling", "layout", "resize", "activation",
        "normalization", "rnn", "chain",
    ]

    func testConvolution() throws { try runFamily("conv") }
    func testGemmAndMatMul() throws { try runFamily("matmul") }
    func testBroadcastingBinaries() throws { try runFamily("binary") }
    func testPooling() throws { try runFamily("pooling") }
    func testDataMovement() throws { try runFamily("layout") }
    func testResize() throws { try runFamily("resize") }
    func testActivations() throws { try runFamily("activation") }
    func testNormalizations() throws { try runFamily("normalization") }
    func testRecurrent() throws { try runFamily("rnn") }
    func testChainsThroughBlockedLayouts() throws { try runFamily("chain") }

    // MARK: engine bugs these fixtures found (left out of the family tests above)

    /// Cases that showed an engine bug, each run by a test of its own below, so that the family
    /// tests keep reporting on every other case. A fixed bug turns its test green; the case
    /// can then stay here as a regression test.
    static let bugCases: [String: String] = [
        "avgpool_ceil_include_pad": "testAveragePoolCeilModeWithCountIncludePad",
        "resize_half_pixel_floor_2x": "testResizeHalfPixelFloorAndCeilAtIntegerScales",
        "resize_half_pixel_ceil_2x": "testResizeHalfPixelFloorAndCeilAtIntegerScales",
    ]

    /// AveragePool with ceil_mode 1 and count_include_pad 1: ONNX (and onnxruntime, and the
    /// onnx reference evaluator) divide a window that runs past the end padding by the cells
    /// inside input + pads only; PoolingKernels enlarges the end padding to get ceil_mode's
    /// output size, and oneDNN's averageIncludePadding then counts the extra cells too (the
    /// last row/column come out too small, e.g. 0.337 instead of 0.506).
    func testAveragePoolCeilModeWithCountIncludePad() throws {
        try runCases(["avgpool_ceil_include_pad"])
    }

    /// Resize nearest, half_pixel, integer scale 2, nearest_mode floor or ceil: ResizeKernels
    /// takes the oneDNN resampling path for every half_pixel integer scale, but oneDNN's rule
    /// (source floor((o + 0.5) / s)) equals ONNX's (x = (o + 0.5) / s - 0.5, then the nearest
    /// mode) only for round_prefer_floor/round_prefer_ceil. With floor, output 2 must read input
    /// 0 (floor(0.75)), oneDNN reads 1; with ceil, output 1 must read input 1 (ceil(0.25)),
    /// oneDNN reads 0.
    func testResizeHalfPixelFloorAndCeilAtIntegerScales() throws {
        try runCases(["resize_half_pixel_floor_2x", "resize_half_pixel_ceil_2x"])
    }

    /// The fixture script and this file agree: every case is run by one of the tests above.
    func testEveryCaseBelongsToATestedFamily() throws {
        let cases = try OperatorFixture.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 100, "cases.json lists too few cases")
        for (name, c) in cases.sorted(by: { $0.key < $1.key }) {
            XCTAssertTrue(Self.families.contains(c.family), "\(name): unknown family '\(c.family)'")
            for ext in ["onnx", "npz"] {
                let url = OperatorFixture.folder.appendingPathComponent("\(name).\(ext)")
                XCTAssertTrue(FileManager.default.fileExists(atPath: url.path), "\(name): \(url.lastPathComponent) is missing")
            }
        }
    }

    /// The same session without graph optimizations gives the same results (a few cases of
    /// each family, so that a pass cannot hide a kernel bug or the other way round).
    func testUnoptimizedSessionAgrees() throws {
        let cases = try OperatorFixture.cases()
        var failed: [String] = []
        for family in Self.families {
            for name in cases.filter({ $0.value.family == family && Self.bugCases[$0.key] == nil }).keys.sorted().prefix(3)
            where !check(name, cases[name]!, options: SessionOptions(optimize: false)) {
                failed.append(name)
            }
        }
        XCTAssertEqual(failed, [], "cases that fail without optimizations")
    }

    // MARK: helpers

    private func runFamily(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try OperatorFixture.cases().filter { $0.value.family == family && Self.bugCases[$0.key] == nil }
        XCTAssertFalse(cases.isEmpty, "no \(family) cases in cases.json", file: file, line: line)
        var failed: [String] = []
        for name in cases.keys.sorted() where !check(name, cases[name]!) { failed.append(name) }
        XCTAssertEqual(failed, [], "\(family): \(failed.count) of \(cases.count) cases failed", file: file, line: line)
    }

    private func runCases(_ names: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try OperatorFixture.cases()
        var failed: [String] = []
        for name in names {
            guard let c = cases[name] else { XCTFail("no case \(name)", file: file, line: line); continue }
            if !check(name, c) { failed.append(name) }
        }
        XCTAssertEqual(failed, [], "\(failed.count) of \(names.count) cases failed", file: file, line: line)
    }

    /// Runs one case; reports every problem with the case's name and returns whether it passed.
    private func check(
        _ name: String, _ c: OperatorFixture.Case,
        options: SessionOptions = SessionOptions()
    ) -> Bool {
        let label = "\(name) (\(c.what), opset \(c.opset))"
        let session: InferenceSession
        let arrays: [String: Tensor]
        do {
            let model = try Model(contentsOf: OperatorFixture.folder.appendingPathComponent(name + ".onnx"))
            arrays = try NPZ.read(contentsOf: OperatorFixture.folder.appendingPathComponent(name + ".npz"))
            session = try InferenceSession(model: model, options: options)
        } catch {
            XCTFail("\(label): \(error)")
            return false
        }
        var ok = true
        for run in 0..<c.runs {
            var feeds: [String: Tensor] = [:], expected: [String: Tensor] = [:]
            for (key, t) in arrays {
                let parts = key.components(separatedBy: "__")
                guard parts.count == 3, parts[0] == "r\(run)" else { continue }
                if parts[1] == "in" { feeds[parts[2]] = t } else { expected[parts[2]] = t }
            }
            let outputs: [String: Tensor]
            do {
                outputs = try session.run(feeds)
            } catch {
                XCTFail("\(label) run \(run): \(error)")
                return false
            }
            for (output, want) in expected.sorted(by: { $0.key < $1.key }) {
                guard let got = outputs[output] else {
                    XCTFail("\(label) run \(run): no output '\(output)' (got \(outputs.keys.sorted()))")
                    ok = false
                    continue
                }
                if let problem = Self.compare(got, want, atol: c.atol, rtol: c.rtol) {
                    XCTFail("\(label) run \(run) output '\(output)': \(problem)")
                    ok = false
                }
            }
        }
        return ok
    }

    /// nil when `got` matches `want` (same shape, every |got - want| <= atol + rtol |want|),
    /// else a description of the worst element.
    static func compare(_ got: Tensor, _ want: Tensor, atol: Double, rtol: Double) -> String? {
        guard got.shape == want.shape else { return "shape \(got.shape), onnxruntime \(want.shape)" }
        guard got.elementType == want.elementType else {
            return "element type \(got.elementType), onnxruntime \(want.elementType)"
        }
        let a = got.doubleValues(), b = want.doubleValues()
        var worst = -1, worstExcess = 0.0, bad = 0, maxDiff = 0.0
        for i in 0..<a.count {
            let d = abs(a[i] - b[i])
            maxDiff = max(maxDiff, d.isNaN ? .infinity : d)
            let excess = d - (atol + rtol * abs(b[i]))
            if excess > 0 || d.isNaN {
                bad += 1
                if worst < 0 || excess > worstExcess || d.isNaN { worst = i; worstExcess = d.isNaN ? .infinity : excess }
            }
        }
        guard worst >= 0 else { return nil }
        var index: [Int] = [], rest = worst
        for dim in got.shape.reversed() { index.insert(rest % dim, at: 0); rest /= dim }
        return "\(bad) of \(a.count) elements off (atol \(atol), rtol \(rtol)); max |diff| \(maxDiff); "
            + "worst at \(index): \(a[worst]) vs onnxruntime \(b[worst]) (shape \(got.shape))"
    }
}
