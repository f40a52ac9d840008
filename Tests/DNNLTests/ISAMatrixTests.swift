import Foundation
import XCTest

/// Runs the INT8 suites again in child processes whose oneDNN is limited to an ISA without
/// VNNI (`ONEDNN_MAX_CPU_ISA` is read once per process, so each ISA needs its own process).
final class ISAMatrixTests: XCTestCase {
    /// The XCTest bundle executable running this test.
    var testBinary: String {
        get throws {
            let candidates = [ProcessInfo.processInfo.arguments.first, Bundle.main.executablePath]
            guard
                let path = candidates.compactMap({ $0 }).first(where: {
                    $0.hasSuffix(".xctest") && FileManager.default.isExecutableFile(atPath: $0)
                })
            else { throw XCTSkip("not running from an XCTest bundle executable") }
            return path
        }
    }

    /// Runs `filter` (Module.Class) in a child with `ONEDNN_MAX_CPU_ISA=isa`; returns its
    /// exit status and output.
    func runChild(_ filter: String, isa: String) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try testBinary)
        p.arguments = [filter]
        var env = ProcessInfo.processInfo.environment
        env["ONEDNN_MAX_CPU_ISA"] = isa
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// "Executed N tests, with F failures" of the last summary line.
    func summary(_ output: String) -> (executed: Int, failures: Int)? {
        guard let line = output.split(separator: "\n").last(where: { $0.contains("Executed ") }) else { return nil }
        let nums = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        return nums.count >= 2 ? (nums[0], nums[1]) : nil
    }

    func testInt8KernelsAreExactWithTheRuleOnCPUsWithoutVNNI() throws {
        for isa in ["AVX2", "AVX512_CORE"] {
            let (status, output) = try runChild("DNNLTests.Int8KernelTests", isa: isa)
            let s = summary(output)
            XCTAssertEqual(status, 0, "Int8KernelTests under \(isa):\n\(output)")
            XCTAssertEqual(s?.failures, 0, "under \(isa)")
            XCTAssertGreaterThanOrEqual(s?.executed ?? 0, 7, "under \(isa)")
        }
    }

    func testWithoutTheRuleResultsAreWrongOnCPUsWithoutVNNI() throws {
        for (isa, name) in [("AVX2", "avx2"), ("AVX512_CORE", "avx512_core")] {
            let (status, output) = try runChild("DNNLTests.PreVNNIHazardTests", isa: isa)
            XCTAssertEqual(status, 0, "PreVNNIHazardTests under \(isa):\n\(output)")
            XCTAssertTrue(output.contains("ISA in use: \(name)\n"), "child did not run on \(name):\n\(output)")
            XCTAssertFalse(output.contains("skipped"), "hazard tests were skipped under \(isa):\n\(output)")
            XCTAssertEqual(summary(output)?.executed, 2, "under \(isa)")
        }
    }
}
