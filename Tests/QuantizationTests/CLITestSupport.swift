import Foundation
import XCTest

/// One `dnnl-quant` process: its exit status (or signal) and output.
struct CLIResult {
    var status: Int32
    var signalled: Bool
    var stdout: String
    var stderr: String
}

/// The debug `dnnl-quant` executable that `swift build` put beside the test bundle.
enum CLI {
    static func url() throws -> URL {
        let candidates = [
            Bundle.main.bundleURL,
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL.deletingLastPathComponent(),
            RealModelData.repository.appendingPathComponent(".build/debug"),
        ].map { $0.appendingPathComponent("dnnl-quant") }
        guard let url = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw RealModelData.Missing(description: "dnnl-quant not found (looked in \(candidates.map(\.path))): run swift build first")
        }
        return url
    }

    /// Runs `dnnl-quant arguments...` (or another `executable`) to completion (stderr is drained
    /// on another thread, so a chatty child cannot block on a full pipe).
    static func run(_ arguments: [String], executable: URL? = nil) throws -> CLIResult {
        let p = Process()
        p.executableURL = try executable ?? url()
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        nonisolated(unsafe) var e = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { e = err.fileHandleForReading.readDataToEndOfFile() }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return CLIResult(
            status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal,
            stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}
