import Foundation
import TestSupport
import XCTest

/// Runs the INT8 suites again in child processes whose oneDNN is limited to an ISA without
/// VNNI (`ONEDNN_MAX_CPU_ISA` is read once per process, so each ISA needs its own process).
final class ISAMatrixTests: XCTestCase {
    func runChild(_ filter: String, isa: String) throws -> (status: Int32, output: String) { try ISAChild.run(filter, isa: isa) }
    func summary(_ output: String) -> (executed: Int, failures: Int)? { ISAChild.summary(output) }

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
