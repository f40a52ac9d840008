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
            throw TensorIOError(
                source: url.path,
                message: exists ? "cannot read file (\(error))" : "file does not exist")
        }
    }

    /// Checks that `url` can be replaced by a regular file: its folder exists, and it is absent
    /// or a regular file (never a directory, device, FIFO or symbolic link, which a rename
    /// would replace: writing "to /dev/null" must not destroy /dev/null).
    /// - Throws: `TensorIOError` naming `url` and what is wrong.
    static func checkWritable(_ url: URL) throws(TensorIOError) {
        guard !url.lastPathComponent.isEmpty, url.path != "/" else {
            throw TensorIOError(source: url.path, message: "cannot write: not a file name")
        }
        let folder = url.deletingLastPathComponent()
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder),
            isFolder.boolValue
        else {
            throw TensorIOError(source: url.path, message: "cannot write: folder \(folder.path) does not exist")
        }
        var st = stat()
        if lstat(url.path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            let what =
                switch st.st_mode & S_IFMT {
                case S_IFDIR: "a folder"
                case S_IFLNK: "a symbolic link"
                case S_IFCHR, S_IFBLK: "a device"
                case S_IFIFO: "a FIFO"
                default: "not a regular file"
                }
            throw TensorIOError(source: url.path, message: "cannot write: \(url.path) is \(what); give a regular file's path")
        }
    }

    /// Calls `write` with a temporary file in `url`'s folder, then renames that file to `url`,
    /// replacing any existing file atomically. On failure the temporary file is removed and
    /// `url` is left as it was. The data is not `fsync`ed.
    static func writeAtomically(to url: URL, _ write: (URL) throws -> Void) throws(TensorIOError) {
        try checkWritable(url)
        let folder = url.deletingLastPathComponent()
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

/// Checks, before any work, that an output file can be written at `url` (its folder exists and
/// it is absent or a regular file).
/// - Throws: `TensorIOError` naming the path.
public func checkOutputPath(_ url: URL) throws(TensorIOError) {
    try TensorFile.checkWritable(url)
}

/// True when both paths name the same existing file (same device and inode, so links and
/// `./x` vs `x` count), or the same path when neither exists yet.
public func isSameFile(_ a: URL, _ b: URL) -> Bool {
    var sa = stat(), sb = stat()
    if stat(a.path, &sa) == 0, stat(b.path, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
    return a.standardizedFileURL.path == b.standardizedFileURL.path
}

/// Writes `data` to `url` through a temporary file in the same folder and a rename.
/// - Throws: `TensorIOError` naming the path.
public func writeAtomically(_ data: Data, to url: URL) throws(TensorIOError) {
    try TensorFile.writeAtomically(to: url) { try data.write(to: $0) }
}
