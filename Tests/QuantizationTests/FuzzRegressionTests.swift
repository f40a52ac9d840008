import Foundation
import XCTest

/// The structured fuzzer (`Tests/fuzz/fuzz.py`, see `Tests/fuzz/README.md`) in CI:
/// - the regression fixtures of `Tests/fuzz/regressions` (each a crash, hang or mismatch the
///   fuzzer once found) are replayed with `--check`: every one must now be a clean error or a
///   run that matches onnxruntime;
/// - a bounded fuzz session (fixed seed, 120 s, 2 jobs) must find no CRASH, HANG or MISMATCH.
///
/// Both drive the release CLI (``PTQData/binary()``) and need `$PYTHON` (Tests/run.sh exports
/// it: the project's venv) with onnx and onnxruntime, and `gdb` and `prlimit` on PATH; without
/// them the tests skip, or fail with `DNNL_QUANT_REQUIRE_MODELS=1`.
final class FuzzRegressionTests: XCTestCase {
    private static let work = FileManager.default.temporaryDirectory
        .appendingPathComponent("dnnl-quant-fuzz-\(ProcessInfo.processInfo.processIdentifier)")
    /// The seed of the CI session: fixed, so that a failure reproduces with the same cases.
    static let seed = 20_261_203

    override class func tearDown() {
        try? FileManager.default.removeItem(at: work)
        super.tearDown()
    }

    /// `$PYTHON` when it is set and imports what the fuzzer needs, with gdb and prlimit on
    /// PATH; else `PTQData.missing`.
    private func python() throws -> String {
        guard let python = ProcessInfo.processInfo.environment["PYTHON"], !python.isEmpty else {
            throw PTQData.missing("PYTHON is not set: run Tests/run.sh (or source Models/python_env.sh first)")
        }
        let r: ChildResult
        do {
            r = try runChild([python, "-c", "import numpy, onnx, onnxruntime"], work: Self.work)
        } catch {
            throw PTQData.missing("PYTHON=\(python) does not run (\(error))")
        }
        guard r.status == 0 else {
            throw PTQData.missing("PYTHON=\(python) cannot import numpy, onnx and onnxruntime: \(r.stderr.suffix(500))")
        }
        for tool in ["gdb", "prlimit"] {
            let which = try runChild(["sh", "-c", "command -v \(tool)"], work: Self.work)
            guard which.status == 0 else { throw PTQData.missing("the fuzzer needs \(tool) on PATH (Tests/run.sh installs it)") }
        }
        return python
    }

    /// Runs the fuzzer with `arguments`; fails with its summary when it exits non-zero.
    private func fuzz(_ arguments: [String], what: String) throws {
        let python = try python()
        let binary = try PTQData.binary()
        let r = try runChild([python, "Tests/fuzz/fuzz.py", "--binary", binary.path] + arguments, work: Self.work)
        let summary = r.stdout.split(separator: "\n").filter {
            $0.hasPrefix("FAIL") || $0.hasPrefix("replayed") || $0.hasPrefix("cases:") || $0.hasPrefix("outcomes:")
                || $0.hasPrefix("distinct findings") || $0.hasPrefix("  [") || $0.hasPrefix("      ")
        }
        print("fuzz \(what) (\(binary.lastPathComponent), \(String(format: "%.1f", r.seconds)) s):\n\(summary.prefix(40).joined(separator: "\n"))")
        XCTAssertEqual(r.status, 0, "fuzz \(what) failed (exit \(r.status)):\n\(r.stdout.suffix(8000))\n\(r.stderr.suffix(3000))")
    }

    /// Every saved finding is fixed: a clean error or outputs that match onnxruntime.
    func testRegressionFixturesReplayClean() throws {
        try fuzz(["--replay", "Tests/fuzz/regressions", "--check"], what: "replay of Tests/fuzz/regressions")
    }

    /// A fixed-seed, two-minute session finds no crash, hang or mismatch.
    func testBoundedFuzzSessionFindsNothing() throws {
        try fuzz(
            [
                "--seconds", "120", "--seed", String(Self.seed), "--check", "--jobs", "2", "--minimize-seconds", "30",
                "--out", Self.work.appendingPathComponent("findings").path,
            ], what: "session (seed \(Self.seed), 120 s)")
    }
}
