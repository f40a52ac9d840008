import Foundation

/// Where the repository's scripts and the cache are.
enum Paths {
    /// The repository root (this file is `Benchmarks/seed-bench/PeerProcess.swift`).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let peersScript = root.appendingPathComponent("Benchmarks/seed-bench/peers.py")
    static let exportScript = root.appendingPathComponent("Models/paddle_export.py")
    /// `$DNNL_QUANT_CACHE`, default `~/.cache/swift-dnnl-quantization` (as Models/use_venv.py).
    static let cache: URL = {
        if let c = ProcessInfo.processInfo.environment["DNNL_QUANT_CACHE"], !c.isEmpty { return URL(fileURLWithPath: c) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/swift-dnnl-quantization")
    }()
    static let work = cache.appendingPathComponent("seedbench")
    /// The interpreter that starts the Python scripts: they re-execute themselves in the project's
    /// venv (`Models/use_venv.py`), creating it when missing.
    static var python: String { ProcessInfo.processInfo.environment["PYTHON"] ?? "/usr/bin/env" }
    static var pythonPrefix: [String] { ProcessInfo.processInfo.environment["PYTHON"] == nil ? ["python3"] : [] }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs a command to its end; stderr goes to ours. Returns stdout.
@discardableResult
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw BenchError("\(([executable] + arguments).joined(separator: " ")) exited with \(p.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}

/// Runs a Python script of the repository in the project's venv.
@discardableResult
func runPython(_ script: URL, _ arguments: [String]) throws -> String {
    try runCommand(Paths.python, Paths.pythonPrefix + [script.path] + arguments)
}

/// `peers.py serve`: onnxruntime and OpenVINO in one Python process, one JSON request per line.
final class PeerProcess {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer = Data()

    init() throws {
        process.executableURL = URL(fileURLWithPath: Paths.python)
        process.arguments = Paths.pythonPrefix + [Paths.peersScript.path, "serve"]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    deinit {
        if process.isRunning {
            try? input.fileHandleForWriting.write(contentsOf: Data("{\"op\": \"quit\"}\n".utf8))
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    /// Sends one request and returns its answer; an `error` answer throws.
    func request(_ fields: [String: Any]) throws -> [String: Any] {
        let line = try JSONSerialization.data(withJSONObject: fields) + Data("\n".utf8)
        try input.fileHandleForWriting.write(contentsOf: line)
        while true {
            if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let answer = buffer[buffer.startIndex..<nl]
                buffer = Data(buffer[(nl + 1)...])
                guard let obj = try JSONSerialization.jsonObject(with: answer) as? [String: Any] else {
                    throw BenchError("peers.py: not a JSON object: \(String(decoding: answer, as: UTF8.self))")
                }
                if let e = obj["error"] as? String { throw BenchError("peers.py \(fields["op"] ?? ""): \(e)") }
                return obj
            }
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else {
                throw BenchError("peers.py exited (status \(process.isRunning ? "running" : "\(process.terminationStatus)"))")
            }
            buffer += chunk
        }
    }
}
