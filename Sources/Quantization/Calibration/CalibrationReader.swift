import Foundation

/// The samples of a calibration folder: one sample per file, in file-name order.
///
/// A sample is an `.npz` archive with one member per model input, named after the input
/// (`numpy.savez("0001.npz", input_ids=..., attention_mask=...)`), or, for a model with one
/// input, an `.npy` file holding that input. Other files, hidden files and folders are ignored.
/// Files are sorted by name (plain string order, so number them with leading zeros).
///
/// Every sample is read and checked when the reader is created, so that a bad file is reported
/// before calibration starts; iterating reads each file again (samples are not kept in memory).
/// Shapes and element types are not checked here.
public struct CalibrationReader: Sequence, Sendable {
    /// The sample files, sorted by name (at most `limit`).
    public let files: [URL]
    /// The model's input names.
    public let inputNames: [String]

    /// Lists and checks the samples of `directory`.
    ///
    /// - Parameters:
    ///   - inputNames: The model's inputs; every `.npz` must have exactly these keys.
    ///   - limit: Use only the first `limit` files (by name); nil for all.
    /// - Throws: ``CalibrationError`` naming the folder if it does not exist, is not a folder,
    ///   holds no `.npy` or `.npz` file, or `limit < 1`; naming the file if it cannot be read or
    ///   decoded, is an `.npy` while the model has several inputs, or is an `.npz` missing an
    ///   input or with a key that is not an input.
    public init(directory: URL, inputNames: [String], limit: Int? = nil) throws(CalibrationError) {
        func fail(_ message: String) -> CalibrationError {
            CalibrationError(file: directory.path, message: message)
        }
        guard !inputNames.isEmpty else { throw fail("the model has no inputs to calibrate") }
        if let limit, limit < 1 { throw fail("the sample limit must be at least 1, got \(limit)") }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isFolder) else {
            throw fail("calibration folder does not exist")
        }
        guard isFolder.boolValue else { throw fail("not a folder (expected a folder of .npy or .npz samples)") }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw fail("cannot list the folder (\(error.localizedDescription))")
        }
        var files = names.filter { name in
            let ext = (name as NSString).pathExtension.lowercased()
            return !name.hasPrefix(".") && (ext == "npy" || ext == "npz")
        }.sorted().map { directory.appendingPathComponent($0) }.filter { url in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) && !isFolder.boolValue
        }
        guard !files.isEmpty else { throw fail("no .npy or .npz samples in \(directory.path)") }
        if let limit { files = Array(files.prefix(limit)) }
        self.files = files
        self.inputNames = inputNames
        for file in files {
            _ = try Self.read(file, inputNames: inputNames)
        }
    }

    /// The number of samples.
    public var count: Int { files.count }
    public var underestimatedCount: Int { files.count }

    /// Reads sample `index` (0-based, in ``files`` order), keyed by input name.
    /// - Throws: ``CalibrationError`` naming the file (see ``read(_:inputNames:)``), or the
    ///   folder when `index` is not in `0..<count`.
    public func sample(at index: Int) throws(CalibrationError) -> [String: Tensor] {
        guard files.indices.contains(index) else {
            let folder = files.first?.deletingLastPathComponent().path ?? "calibration folder"
            throw CalibrationError(file: folder, message: "no sample \(index): there are \(files.count) (0..<\(files.count))")
        }
        return try Self.read(files[index], inputNames: inputNames)
    }

    /// Reads one sample file, keyed by input name.
    ///
    /// - Throws: ``CalibrationError`` naming `file`; see ``init(directory:inputNames:limit:)``.
    public static func read(_ file: URL, inputNames: [String]) throws(CalibrationError) -> [String: Tensor] {
        func fail(_ message: String) -> CalibrationError { CalibrationError(file: file.path, message: message) }
        func converted(_ error: TensorIOError) -> CalibrationError {
            // Errors about an archive member name it: "a.npz[x.npy]: ...".
            fail(error.source == file.path ? error.message : error.description)
        }
        let inputs = inputNames.map { "'\($0)'" }.joined(separator: ", ")
        if file.pathExtension.lowercased() == "npy" {
            guard inputNames.count == 1 else {
                throw fail(
                    "a .npy sample holds one tensor but the model has \(inputNames.count) inputs "
                        + "(\(inputs)): name the inputs: use .npz with one key per input")
            }
            do {
                return [inputNames[0]: try Tensor(contentsOfNPY: file)]
            } catch {
                throw converted(error)
            }
        }
        let tensors: [String: Tensor]
        do {
            tensors = try NPZ.read(contentsOf: file)
        } catch {
            throw converted(error)
        }
        let missing = inputNames.filter { tensors[$0] == nil }
        let unknown = tensors.keys.filter { !inputNames.contains($0) }.sorted()
        guard missing.isEmpty, unknown.isEmpty else {
            var problems: [String] = []
            if !missing.isEmpty {
                problems.append("missing input \(missing.map { "'\($0)'" }.joined(separator: ", "))")
            }
            if !unknown.isEmpty {
                problems.append("unknown key \(unknown.map { "'\($0)'" }.joined(separator: ", "))")
            }
            throw fail("\(problems.joined(separator: "; ")) (the model's inputs are \(inputs))")
        }
        return tensors
    }

    public func makeIterator() -> Iterator {
        Iterator(reader: self)
    }

    /// Reads the samples one at a time.
    ///
    /// Every file was read successfully when the reader was created; one that has since become
    /// unreadable is skipped with a warning on standard error naming it, and recorded in
    /// ``skipped`` (use ``sample(at:)``, or `PostTrainingQuantizer.quantize(_:describe:next:)`
    /// with it, to handle that as an error instead).
    public struct Iterator: IteratorProtocol {
        let reader: CalibrationReader
        var index = 0
        /// The samples skipped so far because they could no longer be read.
        public private(set) var skipped: [CalibrationError] = []

        public mutating func next() -> [String: Tensor]? {
            while index < reader.files.count {
                defer { index += 1 }
                do {
                    return try reader.sample(at: index)
                } catch {
                    skipped.append(error)
                    FileHandle.standardError.write(Data("warning: \(error) (changed after it was checked; sample skipped)\n".utf8))
                }
            }
            return nil
        }
    }
}
