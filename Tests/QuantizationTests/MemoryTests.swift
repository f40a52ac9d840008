import Foundation
import XCTest

@testable import Quantization

/// No memory grows with the number of runs, and nothing leaks: resident memory stays flat over
/// 10,000 runs of a session, and valgrind's memcheck finds 0 bytes definitely lost (and no
/// invalid reads or writes) in `dnnl-quant run`, `quantize`, an INT8 `run` and an error path.
final class MemoryTests: XCTestCase {
    typealias K = PassKit

    /// Resident set size of this process in bytes (`/proc/self/statm`, second field, in pages).
    private func residentBytes() throws -> Int {
        let text = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
        let fields = text.split(separator: " ")
        let pages = try XCTUnwrap(fields.count > 1 ? Int(fields[1]) : nil, text)
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func testResidentMemoryIsFlatOverTenThousandRuns() throws {
        let fp32 = Model(graph: QuantizerTests.residualGraph(), opsetVersion: 13)
        let int8 = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(fp32, calibrationData: QuantizerTests.samples(4)).model
        for (label, model) in [("fp32", fp32), ("int8", int8)] {
            let session = try InferenceSession(model: model)
            let feeds = QuantizerTests.samples(8)
            for i in 0..<1000 { _ = try session.run(feeds[i % 8]) }
            let warm = try residentBytes()
            for i in 0..<10_000 { _ = try session.run(feeds[i % 8]) }
            let after = try residentBytes()
            print("MemoryTests \(label): resident \(warm / 1024) KiB after 1,000 runs, \(after / 1024) KiB after 11,000 runs")
            // A leak of one tensor per run (40 bytes of logits + its header) would add > 1 MiB.
            XCTAssertLessThan(after - warm, 1 << 20, "\(label): resident memory grew by \(after - warm) bytes over 10,000 runs")
        }
    }

    // MARK: valgrind

    private func valgrind() throws -> URL {
        for path in ["/usr/bin/valgrind", "/usr/local/bin/valgrind"] where FileManager.default.isExecutableFile(atPath: path) {
            return URL(fileURLWithPath: path)
        }
        let message = "valgrind is not installed (apt-get install valgrind; Tests/run.sh does)"
        if RealModelData.required { throw RealModelData.Missing(description: message + " (DNNL_QUANT_REQUIRE_MODELS=1)") }
        throw XCTSkip(message)
    }

    /// Runs `dnnl-quant arguments` under memcheck; returns the exit status and the log.
    private func memcheck(_ arguments: [String], in folder: URL) throws -> (status: Int32, log: String) {
        let log = folder.appendingPathComponent("memcheck-\(UUID().uuidString).log")
        let p = Process()
        p.executableURL = try valgrind()
        p.arguments =
            [
                // Short superblocks: oneDNN's JIT kernels otherwise exhaust VEX's temporary storage.
                "--vex-guest-max-insns=25", "--leak-check=full", "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                "--error-exitcode=99",
                "--log-file=\(log.path)", try CLI.url().path,
            ] + arguments
        let stderr = folder.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: stderr.path, contents: nil)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: stderr)
        try p.run()
        p.waitUntilExit()
        let text = (try? String(contentsOf: stderr, encoding: .utf8)) ?? ""
        return (p.terminationStatus, ((try? String(contentsOf: log, encoding: .utf8)) ?? "") + "\nstderr:\n" + text)
    }

    private func assertClean(_ r: (status: Int32, log: String), status: Int32, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, status, "\(what): exit \(r.status) (99 = memcheck errors)\n\(r.log.suffix(3000))", file: file, line: line)
        let noLeak = r.log.contains("definitely lost: 0 bytes in 0 blocks") || r.log.contains("All heap blocks were freed")
        XCTAssertTrue(noLeak, "\(what):\n\(r.log.suffix(3000))", file: file, line: line)
        XCTAssertTrue(r.log.contains("ERROR SUMMARY: 0 errors"), "\(what):\n\(r.log.suffix(3000))", file: file, line: line)
        if let summary = r.log.split(separator: "\n").first(where: { $0.contains("definitely lost") || $0.contains("All heap blocks") }) {
            print("MemoryTests valgrind \(what): \(summary.drop { $0 != " " }.trimmingCharacters(in: .whitespaces))")
        }
    }

    func testValgrindFindsNoLeakInRunQuantizeAndErrors() throws {
        _ = try valgrind()
        let folder = try makeTemporaryFolder(for: self)
        let model = folder.appendingPathComponent("fp32.onnx")
        try Model(graph: QuantizerTests.residualGraph(), opsetVersion: 13).write(to: model)
        let calibration = folder.appendingPathComponent("calib")
        try FileManager.default.createDirectory(at: calibration, withIntermediateDirectories: true)
        for (i, s) in QuantizerTests.samples(4).enumerated() { try s["x"]!.writeNPY(to: calibration.appendingPathComponent("s\(i).npy")) }
        let input = calibration.appendingPathComponent("s0.npy")
        let int8 = folder.appendingPathComponent("int8.onnx")

        assertClean(
            try memcheck(["run", model.path, "--input", input.path, "--output-dir", folder.appendingPathComponent("o1").path], in: folder), status: 0,
            "run fp32")
        // Valgrind emulates a CPU without AVX-512 (oneDNN picks AVX2 kernels, less accurate in
        // INT8): the SQNR floor is not what this test checks.
        let quantize = ["quantize", model.path, "--calibration", calibration.path, "--output", int8.path, "--min-output-sqnr=-100"]
        assertClean(try memcheck(quantize, in: folder), status: 0, "quantize")
        assertClean(
            try memcheck(["run", int8.path, "--input", input.path, "--output-dir", folder.appendingPathComponent("o2").path], in: folder), status: 0,
            "run int8")
        // Error paths: an input of the wrong shape (after the model is loaded), a model that is not ONNX.
        let wrong = folder.appendingPathComponent("wrong.npy")
        try K.random([1, 3, 4, 4], seed: 1).writeNPY(to: wrong)
        assertClean(
            try memcheck(["run", int8.path, "--input", wrong.path, "--output-dir", folder.appendingPathComponent("o3").path], in: folder), status: 1,
            "run with a bad input")
        assertClean(
            try memcheck(["run", input.path, "--input", input.path, "--output-dir", folder.appendingPathComponent("o4").path], in: folder), status: 1,
            "run on a non-model")
    }
}
