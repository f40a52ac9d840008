import Foundation

/// An error reading or writing a `.npy` or `.npz` file.
///
/// ``description`` is `"<source>: <message>"`, for example
/// `"weights.npy: unsupported dtype '<f8' (supported: <f4, |u1, |i1, <i4, <i8)"`.
public struct TensorIOError: Error, CustomStringConvertible, Equatable {
    /// What was being read or written: a file path, the `source` passed to an in-memory reader
    /// (`"<data>"` by default), or `"archive.npz[member.npy]"` for a member of an archive.
    public let source: String
    /// What went wrong, without the source.
    public let message: String

    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}

/// File access shared by the `.npy` and `.npz` readers and writers.
enum TensorFile {
    /// Reads a whole file; the error's source is the file's path.
    static func read(_ url: URL) throws(TensorIOError) -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw TensorIOError(source: url.path,
                                message: exists ? "cannot read file (\(error))" : "file does not exist")
        }
    }

    /// Calls `write` with a temporary file in `url`'s folder, then renames that file to `url`,
    /// replacing any existing file atomically. On failure the temporary file is removed and
    /// `url` is left as it was. The data is not `fsync`ed.
    static func writeAtomically(to url: URL, _ write: (URL) throws -> Void) throws(TensorIOError) {
        let folder = url.deletingLastPathComponent()
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder),
              isFolder.boolValue else {
            throw TensorIOError(source: url.path, message: "cannot write: folder \(folder.path) does not exist")
        }
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        func fail(_ message: String) -> TensorIOError {
            try? FileManager.default.removeItem(at: temporary)
            return TensorIOError(source: url.path, message: message)
        }
        do {
            try write(temporary)
        } catch {
            throw fail("cannot write file (\(error))")
        }
        guard rename(temporary.path, url.path) == 0 else {
            throw fail("cannot replace file (\(String(cString: strerror(errno))))")
        }
    }
}
