import ArgumentParser
import Foundation
import Quantization

/// An error of the command line: a message naming the file or flag at fault.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// `NAME=FILE.npy` pairs (or a bare `FILE.npy` for a single-input model).
func loadInputs(_ specs: [String], model: Model) throws -> [String: Tensor] {
    var feeds: [String: Tensor] = [:]
    for spec in specs {
        let name: String, path: String
        if let eq = spec.firstIndex(of: "="), !spec.hasPrefix("/") || spec[..<eq].contains("/") == false {
            name = String(spec[..<eq]); path = String(spec[spec.index(after: eq)...])
        } else {
            guard model.inputs.count == 1 else {
                throw CLIError(
                    "--input \(spec): name the input (NAME=FILE.npy); the model has inputs \(model.inputs.map(\.name).joined(separator: ", "))")
            }
            name = model.inputs[0].name; path = spec
        }
        guard feeds[name] == nil else { throw CLIError("--input \(spec): input '\(name)' is given twice") }
        guard model.inputs.contains(where: { $0.name == name }) else {
            throw CLIError(
                "--input \(spec): '\(name)' is not an input of \(model.source) (inputs: \(model.inputs.map(\.name).joined(separator: ", ")))")
        }
        do { feeds[name] = try Tensor(contentsOfNPY: URL(fileURLWithPath: path)) } catch {
            throw CLIError("--input \(spec): \(error)")
        }
    }
    return feeds
}

/// The file name of an output: every character outside `[A-Za-z0-9._-]` becomes `_`.
func outputFileName(_ name: String) -> String {
    String(name.map { c in (c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-")) ? c : "_" }) + ".npy"
}

/// `dnnl-quant run MODEL.onnx --input NAME=FILE.npy ... --output-dir DIR [--threads N]`
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on inputs from .npy files and write every output as DIR/NAME.npy.",
        discussion: "The leading dimension of each input file is the batch; the whole batch runs in one call.")

    @Argument(help: "The ONNX model (FP32 or QDQ).") var model: String
    @Option(name: .long, help: "An input: NAME=FILE.npy (FILE.npy alone for a single-input model).")
    var input: [String] = []
    @Option(name: .customLong("output-dir"), help: "Folder for the outputs (created if missing).")
    var outputDir: String
    @Option(name: .long, help: "OpenMP threads.") var threads: Int = 1
    @Option(name: .customLong("int8-without-vnni"), help: int8WithoutVNNIHelp)
    var int8WithoutVnni: SessionOptions.Int8WithoutVNNI = .exact

    func validate() throws {
        try validateThreads(threads)
    }

    func run() throws {
        let m = try Model(contentsOf: URL(fileURLWithPath: model))
        // Output file names are checked before running: distinct, not too long.
        var byFile: [String: String] = [:]
        for o in m.outputs {
            let f = outputFileName(o.name)
            if let other = byFile[f] { throw CLIError("outputs '\(other)' and '\(o.name)' of \(model) would both be written to \(f)") }
            guard f.utf8.count <= 255 else { throw CLIError("output '\(o.name.prefix(40))...' of \(model): its file name is longer than 255 bytes") }
            byFile[f] = o.name
        }
        let feeds = try loadInputs(input, model: m)
        let dir = URL(fileURLWithPath: outputDir)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), !isDir.boolValue {
            throw CLIError("--output-dir \(outputDir): exists and is not a folder")
        }
        let session = try InferenceSession(model: m, options: sessionOptions(threads: threads, int8WithoutVnni))
        let outputs = try session.run(feeds)
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw CLIError("--output-dir \(outputDir): cannot create it (\(error.localizedDescription))")
        }
        // All or nothing: every output goes to a temporary file first; only when all are written
        // are they renamed into place, so a failed write leaves no mix of new and old outputs.
        var written: [(temporary: URL, url: URL, line: String)] = []
        func removeTemporaries() { for w in written { try? FileManager.default.removeItem(at: w.temporary) } }
        for o in m.outputs {
            guard let t = outputs[o.name] else { continue }
            let url = dir.appendingPathComponent(outputFileName(o.name))
            let temporary = dir.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
            do {
                try checkOutputPath(url)
                try t.writeNPY(to: temporary)
            } catch {
                removeTemporaries()
                throw CLIError("output '\(o.name)' -> \(url.path): \(error.message); no output was written")
            }
            written.append((temporary, url, "\(o.name): \(t.elementType) \(t.shape) -> \(url.path)"))
        }
        for (i, w) in written.enumerated() where rename(w.temporary.path, w.url.path) != 0 {
            let reason = String(cString: strerror(errno))
            for rest in written[i...] { try? FileManager.default.removeItem(at: rest.temporary) }
            throw CLIError("cannot move output into \(w.url.path) (\(reason))")
        }
        for w in written { print(w.line) }
    }
}
