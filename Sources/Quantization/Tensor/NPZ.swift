import Foundation
import ZIPFoundation

/// NumPy `.npz` archives: zip files (stored or deflated, zip64 allowed) whose members are
/// `.npy` files named `KEY.npy`, as written by `numpy.savez` and `numpy.savez_compressed`.
public enum NPZ {
    /// Reads every member of an `.npz` file; see ``read(data:source:)``. Errors name the file's path.
    public static func read(contentsOf url: URL) throws(TensorIOError) -> [String: Tensor] {
        try read(data: TensorFile.read(url), source: url.path)
    }

    /// Decodes every member of an `.npz` archive, keyed by member name without `.npy`
    /// (`"weights.npy"` → `"weights"`, `"a/b.npy"` → `"a/b"`).
    ///
    /// - Parameter source: Names the archive in errors; errors about a member use
    ///   `"source[member.npy]"`.
    /// - Throws: ``TensorIOError`` if the data is not a zip archive, a member is not a file
    ///   ending in `.npy`, two members have the same name, a member is corrupt (bad deflate
    ///   stream or CRC), or a member is not a valid `.npy` file (see ``Tensor/init(npyData:source:)``).
    public static func read(data: Data, source: String) throws(TensorIOError) -> [String: Tensor] {
        let archive: Archive
        do {
            archive = try Archive(data: data, accessMode: .read)
        } catch {
            throw TensorIOError(source: source, message: "not a .npz file (not a zip archive: \(error))")
        }
        var tensors: [String: Tensor] = [:]
        for entry in archive {
            let member = entry.path
            guard entry.type == .file, member.hasSuffix(".npy") else {
                throw TensorIOError(source: source, message: "member '\(member)' is not a .npy file")
            }
            let key = String(member.dropLast(4))
            guard tensors[key] == nil else {
                throw TensorIOError(source: source, message: "duplicate member '\(member)'")
            }
            let memberSource = "\(source)[\(member)]"
            var npy = Data()
            let checksum: CRC32
            do {
                checksum = try archive.extract(entry) { npy.append($0) }
            } catch {
                throw TensorIOError(source: memberSource, message: "corrupt zip member (\(error))")
            }
            // ZIPFoundation computes but does not verify the checksum.
            guard checksum == entry.checksum, npy.count == entry.uncompressedSize else {
                throw TensorIOError(source: memberSource, message: "corrupt zip member (checksum or size mismatch)")
            }
            tensors[key] = try Tensor(npyData: npy, source: memberSource)
        }
        return tensors
    }

    /// Writes `tensors` as an `.npz` archive that `numpy.load` reads: one member `KEY.npy` per
    /// entry (see ``Tensor/npyData()``), in ascending key order, stored or (if `compressed`)
    /// deflated, all with the timestamp 1980-01-02 so the same tensors give the same bytes.
    ///
    /// The write is atomic: the archive is built in a temporary file in the same folder, which
    /// then replaces `url`. On error `url` is unchanged and no temporary file is left.
    ///
    /// - Throws: ``TensorIOError`` if the folder does not exist or is not writable.
    public static func write(
        _ tensors: [String: Tensor], to url: URL,
        compressed: Bool = false
    ) throws(TensorIOError) {
        try TensorFile.writeAtomically(to: url) { temporary in
            let archive = try Archive(url: temporary, accessMode: .create)
            for (key, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
                let npy = tensor.npyData()
                try archive.addEntry(
                    with: key + ".npy", type: .file, uncompressedSize: Int64(npy.count),
                    modificationDate: fixedDate,
                    compressionMethod: compressed ? .deflate : .none
                ) { position, size in
                    npy.subdata(in: Int(position)..<Int(position) + size)
                }
            }
        }
    }

    /// 1980-01-02 00:00 UTC: early in the zip (DOS) date range in every time zone.
    private static let fixedDate = Date(timeIntervalSince1970: 315_619_200)
}
