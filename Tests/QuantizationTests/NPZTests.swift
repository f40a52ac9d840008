import Foundation
import Quantization
import XCTest

final class NPZTests: XCTestCase {
    // MARK: Reading numpy-written archives

    func testReadsNumpySavez() throws {
        let tensors = try NPZ.read(contentsOf: Fixture.url("plain.npz"))
        XCTAssertEqual(tensors, Fixture.expectedNPZ)
        XCTAssertEqual(tensors["a"]?.scalars(as: Float.self), Fixture.f32(6))
        XCTAssertEqual(tensors["b"]?.scalars(as: Int8.self), Fixture.s8(4))
        XCTAssertEqual(tensors["c"]?.scalars(as: Int64.self), Fixture.i64(2))
    }

    func testReadsNumpySavezCompressed() throws {
        XCTAssertEqual(try NPZ.read(contentsOf: Fixture.url("compressed.npz")), Fixture.expectedNPZ)
        XCTAssertEqual(try NPZ.read(data: Fixture.data("compressed.npz"), source: "c.npz"), Fixture.expectedNPZ)
    }

    // MARK: Writing

    func testRoundTripsPlainAndCompressed() throws {
        let folder = try makeTemporaryFolder(for: self)
        let tensors = Fixture.expectedNPY.reduce(into: [String: Tensor]()) { $0[String($1.key.dropLast(4))] = $1.value }
            .merging(["big": Tensor(zeros: [100, 100], elementType: .f32), "nested/key": Tensor(zeros: [0], elementType: .u8)]) { $1 }
        var sizes: [Bool: Int] = [:]
        for compressed in [false, true] {
            let url = folder.appendingPathComponent("t\(compressed).npz")
            try NPZ.write(tensors, to: url, compressed: compressed)
            XCTAssertEqual(try NPZ.read(contentsOf: url), tensors)
            sizes[compressed] = try Data(contentsOf: url).count
        }
        XCTAssertLessThan(sizes[true]!, sizes[false]! / 10, "compressed archives are deflated")
    }

    func testWritesMembersInKeyOrderAndDeterministically() throws {
        let folder = try makeTemporaryFolder(for: self)
        let tensors = ["m": Fixture.expectedNPZ["a"]!, "z": Fixture.expectedNPZ["b"]!, "a": Fixture.expectedNPZ["c"]!]
        let first = folder.appendingPathComponent("1.npz"), second = folder.appendingPathComponent("2.npz")
        try NPZ.write(tensors, to: first)
        try NPZ.write(tensors, to: second)
        let data = try Data(contentsOf: first)
        XCTAssertEqual(data, try Data(contentsOf: second))
        let offsets = ["a.npy", "m.npy", "z.npy"].map { data.range(of: Data($0.utf8))!.lowerBound }
        XCTAssertEqual(offsets, offsets.sorted())
    }

    func testWritesAndReadsAnEmptyArchive() throws {
        let url = try makeTemporaryFolder(for: self).appendingPathComponent("empty.npz")
        try NPZ.write([:], to: url)
        XCTAssertEqual(try NPZ.read(contentsOf: url), [:])
    }

    // MARK: Malformed input

    func testRejectsDataThatIsNotAZip() {
        assertTensorIOError(["u8_5.npy", "not a zip archive"]) { try NPZ.read(contentsOf: Fixture.url("u8_5.npy")) }
        assertTensorIOError(["x.npz", "not a zip archive"]) { try NPZ.read(data: Data(), source: "x.npz") }
    }

    func testRejectsMembersThatAreNotNPY() {
        assertTensorIOError(["not_npy_member.npz", "member 'readme.txt' is not a .npy file"]) {
            try NPZ.read(contentsOf: Fixture.url("not_npy_member.npz"))
        }
    }

    func testNamesTheMemberInNPYErrors() {
        assertTensorIOError(["bad_member.npz[bad.npy]", "unsupported dtype '<u8'"]) {
            try NPZ.read(contentsOf: Fixture.url("bad_member.npz"))
        }
    }

    func testRejectsCorruptMembers() throws {
        var data = try Fixture.data("plain.npz")
        let member = data.range(of: Data([0x93] + Array("NUMPY".utf8)))!.lowerBound  // a.npy, stored
        data[member + 130] ^= 0xFF  // in the array data, after the 128-byte header
        assertTensorIOError(["p.npz[a.npy]", "corrupt zip member"]) { try NPZ.read(data: data, source: "p.npz") }
    }

    func testRejectsMissingFile() {
        let url = Fixture.url("no-such-file.npz")
        assertTensorIOError([url.path, "does not exist"]) { try NPZ.read(contentsOf: url) }
    }

    // MARK: Atomic writes

    func testWriteIntoMissingFolderThrowsAndLeavesNothing() throws {
        let folder = try makeTemporaryFolder(for: self)
        let url = folder.appendingPathComponent("missing/t.npz")
        assertTensorIOError([url.path, "does not exist"]) { try NPZ.write(Fixture.expectedNPZ, to: url) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [])
    }

    func testWriteReplacesAnExistingFileAndLeavesNoTemporaryFile() throws {
        let folder = try makeTemporaryFolder(for: self)
        let url = folder.appendingPathComponent("t.npz")
        try NPZ.write(["old": Tensor(zeros: [1], elementType: .u8)], to: url)
        try NPZ.write(Fixture.expectedNPZ, to: url, compressed: true)
        XCTAssertEqual(try NPZ.read(contentsOf: url), Fixture.expectedNPZ)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["t.npz"])
    }
}
