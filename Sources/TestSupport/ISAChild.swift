import Foundation
import XCTest

/// Runs XCTest suites again in child processes whose oneDNN is limited to another ISA
/// (`ONEDNN_MAX_CPU_ISA` is read once per process, so each ISA needs its own process).
public enum ISAChild {
    /// The XCTest bundle executable running the current test.
    public static func testBinary() throws -> String {
        let candidates = [ProcessInfo.processInfo.arguments.first, Bundle.main.executablePath]
        guard
            let path = candidates.compactMap({ $0 }).first(where: {
                $0.hasSuffix(".xctest") && FileManager.default.isExecutableFile(atPath: $0)
            })
        else { throw XCTSkip("not running from an XCTest bundle executable") }
        return path
    }

    /// Runs `filter` (`Module.Class`) in a child with `ONEDNN_MAX_CPU_ISA=isa` and `extra`
    /// environment; returns its exit status and output (standard output and error).
    public static func run(_ filter: String, isa: String, environment extra: [String: String] = [:]) throws -> (
        status: Int32, output: String
    ) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try testBinary())
        p.arguments = [filter]
        var env = ProcessInfo.processInfo.environment
        env["ONEDNN_MAX_CPU_ISA"] = isa
        env.merge(extra) { _, new in new }
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// "Executed N tests, with F failures" of the last summary line of a child's output.
    public static func summary(_ output: String) -> (executed: Int, failures: Int)? {
        guard let line = output.split(separator: "\n").last(where: { $0.contains("Executed ") }) else { return nil }
        let nums = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        return nums.count >= 2 ? (nums[0], nums[1]) : nil
    }
}
