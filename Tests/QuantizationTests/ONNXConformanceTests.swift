import Foundation
import XCTest

/// ONNX's own operator test cases (`onnx.backend.test.case.node` of the installed onnx package,
/// about 1900 single-node models with inputs and expected outputs) run on the release CLI by
/// `Tests/conformance/onnx_cases.py` (see `Tests/conformance/README.md`). The test fails when a
/// case of `Tests/conformance/baseline.txt` no longer passes, or when any case gives wrong outputs
/// or crashes (signal, hang, exit without an `Error:` line), except the baseline's `known-wrong`
/// entries. Refusals of unsupported operators and types are counted, not failed.
///
/// Needs `$PYTHON` (Tests/run.sh exports it: the project's venv) with numpy and onnx; without it
/// the test skips, or fails with `DNNL_QUANT_REQUIRE_MODELS=1`.
final class ONNXConformanceTests: XCTestCase {
    private static let work = FileManager.default.temporaryDirectory
        .appendingPathComponent("dnnl-quant-conformance-\(ProcessInfo.processInfo.processIdentifier)")

    override class func tearDown() {
        try? FileManager.default.removeItem(at: work)
        super.tearDown()
    }

    /// `$PYTHON` when it is set and imports what the runner needs; else `PTQData.missing`.
    private func python() throws -> String {
        guard let python = ProcessInfo.processInfo.environment["PYTHON"], !python.isEmpty else {
            throw PTQData.missing("PYTHON is not set: run Tests/run.sh (or source Models/python_env.sh first)")
        }
        let r: ChildResult
        do {
            r = try runChild([python, "-c", "import numpy, onnx, onnx.backend.test.case.node"], work: Self.work)
        } catch {
            throw PTQData.missing("PYTHON=\(python) does not run (\(error))")
        }
        guard r.status == 0 else {
            throw PTQData.missing("PYTHON=\(python) cannot import numpy and onnx: \(r.stderr.suffix(500))")
        }
        return python
    }

    func testONNXNodeCasesAgainstBaseline() throws {
        let python = try python()
        let binary = try PTQData.binary()
        let jobs = min(max(ProcessInfo.processInfo.activeProcessorCount, 2), 8)
        let r = try runChild(
            [
                python, "Tests/conformance/onnx_cases.py", "--engine", "ours", "--binary", binary.path,
                "--check", "--baseline", "Tests/conformance/baseline.txt", "--jobs", String(jobs),
                "--work", Self.work.appendingPathComponent("work").path,
            ], work: Self.work)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let totals = lines.first { $0.hasPrefix("totals:") } ?? "no totals line"
        print("ONNX conformance (\(binary.lastPathComponent), \(jobs) jobs, \(String(format: "%.1f", r.seconds)) s): \(totals)")
        for line in lines where line.hasPrefix("note:") || line.hasPrefix("CHECK") { print("ONNX conformance: \(line)") }
        guard r.status != 2 else {
            throw PTQFailure(description: "Tests/conformance/onnx_cases.py could not run:\n\(r.stderr.suffix(4000))")
        }
        // On failure: the totals, then the CHECK FAILED list (the end of the output) and stderr.
        XCTAssertEqual(
            r.status, 0,
            "ONNX conformance check failed (exit \(r.status)); \(totals)\n\(r.stdout.suffix(8000))\n\(r.stderr.suffix(2000))")
    }
}
