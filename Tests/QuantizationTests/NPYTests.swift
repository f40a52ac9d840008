import Foundation
import Quantization
import XCTest

/// The numpy-written files in `Fixtures/` (see `Fixtures/make_fixtures.py`) and the formulas
/// their values were computed from. Shared by `NPYTests` and `NPZTests`.
enum Fixture {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }
    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    static func f32(_ n: Int) -> [Float] { (0..<n).map { Float($0) * 0.25 - 3 } }
    static func u8(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(($0 * 37 + 11) % 256) } }
    static func s8(_ n: Int) -> [Int8] { (0..<n).map { Int8(($0 * 29) % 256 - 128) } }
    static func s32(_ n: Int) -> [Int32] { (0..<n).map { Int32($0 * 1_000_003 - 1_500_000) } }
    static func i64(_ n: Int) -> [Int64] { (0..<n).map { Int64($0) * 3_000_000_000 - 4_000_000_000 } }

    /// `np.save` output for each fixture name, rebuilt from the formulas.
    static let expectedNPY: [String: Tensor] = [
        "f32_2x3x4.npy": Tensor(shape: [2, 3, 4], scalars: f32(24)),
        "u8_5.npy": Tensor(shape: [5], scalars: u8(5)),
        "s8_3x3.npy": Tensor(shape: [3, 3], scalars: s8(9)),
        "s32_2x2.npy": Tensor(shape: [2, 2], scalars: s32(4)),
        "i64_4.npy": Tensor(shape: [4], scalars: i64(4)),
        "f32_scalar.npy": Tensor(shape: [], scalars: [Float(2.5)]),
        "u8_16d.npy": Tensor(shape: [2] + Array(repeating: 1, count: 14) + [3], scalars: u8(6)),
    ]

    /// The members of `plain.npz` and `compressed.npz`.
    static let expectedNPZ: [String: Tensor] = [
        "a": Tensor(shape: [2, 3], scalars: f32(6)),
        "b": Tensor(shape: [4], scalars: s8(4)),
        "c": Tensor(shape: [2], scalars: i64(2)),
    ]
}

/// Asserts that `body` throws a ``TensorIOError`` whose description contains every string in `parts`.
func assertTensorIOError<T>(
    _ parts: [String], file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> T
) {
    do {
        let result = try body()
        XCTFail("expected an error containing \(parts), got \(result)", file: file, line: line)
    } catch let error as TensorIOError {
        for part in parts where !error.description.contains(part) {
            XCTFail("'\(error)' does not contain '\(part)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected a TensorIOError, got \(error)", file: file, line: line)
    }
}

/// Creates an empty folder for one test and removes it when the test ends.
func makeTemporaryFolder(for test: XCTestCase) throws -> URL {
    let folder = FileManager.default.temporaryDirectory
        .appendingPathComponent("QuantizationTests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
    return folder
}

final class NPYTests: XCTestCase {
    // MARK: Reading numpy-written files

    func testReadsNumpyFilesOfEveryType() throws {
        let f32 = try Tensor(contentsOfNPY: Fixture.url("f32_2x3x4.npy"))
        XCTAssertEqual(f32.shape, [2, 3, 4])
        XCTAssertEqual(f32.elementType, .f32)
        XCTAssertEqual(f32.scalars(as: Float.self), Fixture.f32(24))

        let u8 = try Tensor(contentsOfNPY: Fixture.url("u8_5.npy"))
        XCTAssertEqual(u8.shape, [5])
        XCTAssertEqual(u8.elementType, .u8)
        XCTAssertEqual(u8.scalars(as: UInt8.self), Fixture.u8(5))

        let s8 = try Tensor(contentsOfNPY: Fixture.url("s8_3x3.npy"))
        XCTAssertEqual(s8.shape, [3, 3])
        XCTAssertEqual(s8.elementType, .s8)
        XCTAssertEqual(s8.scalars(as: Int8.self), Fixture.s8(9))

        let s32 = try Tensor(contentsOfNPY: Fixture.url("s32_2x2.npy"))
        XCTAssertEqual(s32.shape, [2, 2])
        XCTAssertEqual(s32.elementType, .s32)
        XCTAssertEqual(s32.scalars(as: Int32.self), Fixture.s32(4))

        let i64 = try Tensor(contentsOfNPY: Fixture.url("i64_4.npy"))
        XCTAssertEqual(i64.shape, [4])
        XCTAssertEqual(i64.elementType, .i64)
        XCTAssertEqual(i64.scalars(as: Int64.self), Fixture.i64(4))
    }

    func testReadsEveryNumpyFixture() throws {
        for (name, tensor) in Fixture.expectedNPY {
            XCTAssertEqual(try Tensor(contentsOfNPY: Fixture.url(name)), tensor, name)
        }
    }

    func testReadsNumpyScalar() throws {
        let scalar = try Tensor(contentsOfNPY: Fixture.url("f32_scalar.npy"))
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.count, 1)
        XCTAssertEqual(scalar.scalars(as: Float.self), [2.5])
    }

    func testReadsNumpyVersion2File() throws {
        XCTAssertEqual(try Fixture.data("f32_3x2_v2.npy")[6], 2)
        let tensor = try Tensor(contentsOfNPY: Fixture.url("f32_3x2_v2.npy"))
        XCTAssertEqual(tensor.shape, [3, 2])
        XCTAssertEqual(tensor.scalars(as: Float.self), Fixture.f32(6))
    }

    func testReadsHandWrittenHeaderVariants() throws {
        let headers = [
            "{'shape': (2, 3), 'fortran_order': False, 'descr': '<u1'}",
            "{\"descr\":\"|u1\",\"fortran_order\":False,\"shape\":(2,3,),}",
            "{ 'descr' : '|u1' , 'fortran_order' : False , 'shape' : ( 2 , 3 ) , }",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 3L), }",
        ]
        for header in headers {
            let tensor = try Tensor(npyData: npy(header: header, payload: [1, 2, 3, 4, 5, 6]))
            XCTAssertEqual(tensor.shape, [2, 3], header)
            XCTAssertEqual(tensor.scalars(as: UInt8.self), [1, 2, 3, 4, 5, 6], header)
        }
        let s8 = try Tensor(
            npyData: npy(
                header: "{'descr': '<i1', 'fortran_order': False, 'shape': (2,)}",
                payload: [0xFF, 0x80]))
        XCTAssertEqual(s8.scalars(as: Int8.self), [-1, -128])
        let empty = try Tensor(
            npyData: npy(
                header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4)}",
                payload: []))
        XCTAssertEqual(empty.shape, [0, 4])
        XCTAssertEqual(empty.count, 0)
    }

    // MARK: Writing

    func testWritesTheSameBytesAsNumpy() throws {
        for (name, tensor) in Fixture.expectedNPY {
            XCTAssertEqual(tensor.npyData(), try Fixture.data(name), name)
        }
    }

    func testRoundTripsEveryTypeThroughAFile() throws {
        let folder = try makeTemporaryFolder(for: self)
        let tensors = [
            Tensor(shape: [2, 2], scalars: [Float.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude]),
            Tensor(shape: [16, 16], scalars: (0...255).map { UInt8($0) }),
            Tensor(shape: [256], scalars: (-128...127).map { Int8($0) }),
            Tensor(shape: [1, 3, 1], scalars: [Int32.min, 0, Int32.max]),
            Tensor(shape: [], scalars: [Int64.min]),
            Tensor(zeros: [3, 0], elementType: .i64),
        ]
        XCTAssertEqual(Set(tensors.map(\.elementType)), Set(ElementType.allCases))
        for (index, tensor) in tensors.enumerated() {
            let url = folder.appendingPathComponent("\(index).npy")
            try tensor.writeNPY(to: url)
            let read = try Tensor(contentsOfNPY: url)
            XCTAssertEqual(read, tensor, "\(tensor)")
        }
    }

    func testHeaderIsPaddedToSixtyFourBytes() throws {
        for shape in [[], [1], [7, 300], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], Array(repeating: 1, count: 40)] {
            let data = Tensor(zeros: shape, elementType: .u8).npyData()
            let dataStart = data.count - shape.reduce(1, *)
            XCTAssertEqual(dataStart % 64, 0, "\(shape)")
            XCTAssertEqual(data[dataStart - 1], UInt8(ascii: "\n"), "\(shape)")
            XCTAssertEqual(Int(data[8]) | Int(data[9]) << 8, dataStart - 10, "\(shape)")
        }
    }

    func testWritesVersion2WhenTheHeaderIsTooLongForVersion1() throws {
        let tensor = Tensor(zeros: Array(repeating: 1, count: 25_000), elementType: .f32)
        let data = tensor.npyData()
        XCTAssertEqual(Array(data[6...7]), [2, 0])
        let headerLength = (0..<4).reduce(0) { $0 | Int(data[8 + $1]) << (8 * $1) }
        XCTAssertGreaterThan(headerLength, 65_535)
        XCTAssertEqual((12 + headerLength) % 64, 0)
        XCTAssertEqual(try Tensor(npyData: data), tensor)
    }

    // MARK: Malformed input

    func testRejectsBadMagic() {
        assertTensorIOError(["<data>", "bad magic"]) { try Tensor(npyData: Data("PK\u{3}\u{4} hello".utf8)) }
        assertTensorIOError(["x.npy", "bad magic"]) { try Tensor(npyData: Data(), source: "x.npy") }
    }

    func testRejectsTruncatedHeader() throws {
        let data = try Fixture.data("u8_5.npy")
        assertTensorIOError(["u8_5.npy", "truncated header"]) { try Tensor(npyData: data.prefix(7), source: "u8_5.npy") }
        assertTensorIOError(["truncated header", "header is 118 bytes"]) { try Tensor(npyData: data.prefix(60)) }
    }

    func testRejectsTruncatedAndTrailingData() throws {
        let data = try Fixture.data("f32_2x3x4.npy")
        assertTensorIOError(["f.npy", "truncated data", "expected 96 bytes", "found 95"]) {
            try Tensor(npyData: data.dropLast(), source: "f.npy")
        }
        assertTensorIOError(["2 unexpected bytes after the data", "expected 96 bytes", "found 98"]) {
            try Tensor(npyData: data + [0, 0])
        }
    }

    /// float64 and bool arrays are read converted, like ONNX tensors of those types.
    func testConvertsFloat64AndBool() throws {
        XCTAssertEqual(try Tensor(contentsOfNPY: Fixture.url("f8.npy")), Tensor(shape: [2], scalars: [Float(1), 2]))
        XCTAssertEqual(try Tensor(contentsOfNPY: Fixture.url("b1.npy")), Tensor(shape: [2], scalars: [UInt8(1), 0]))
        // float16 [1.5, -2, 65504]: 0x3E00, 0xC000, 0x7BFF.
        let header = "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let padded = header + String(repeating: " ", count: 63 - (10 + header.utf8.count) % 64) + "\n"
        data.append(contentsOf: [UInt8(padded.utf8.count & 0xFF), UInt8(padded.utf8.count >> 8)])
        data.append(contentsOf: padded.utf8)
        data.append(contentsOf: [0x00, 0x3E, 0x00, 0xC0, 0xFF, 0x7B])
        XCTAssertEqual(try Tensor(npyData: data), Tensor(shape: [3], scalars: [Float(1.5), -2, 65504]))
    }

    func testRejectsUnsupportedDtypes() {
        for descr in ["'<U3'", "'|O'", "[('x', '<f4')]"] {
            let header = "{'descr': \(descr), 'fortran_order': False, 'shape': (1,), }"
            assertTensorIOError(["unsupported dtype \(descr)"]) { try Tensor(npyData: npy(header: header, payload: [])) }
        }
    }

    func testRejectsBigEndian() {
        assertTensorIOError(["f4_big_endian.npy", "big-endian data is not supported", "'>f4'"]) {
            try Tensor(contentsOfNPY: Fixture.url("f4_big_endian.npy"))
        }
    }

    func testRejectsFortranOrder() {
        assertTensorIOError(["fortran.npy", "fortran_order True"]) { try Tensor(contentsOfNPY: Fixture.url("fortran.npy")) }
    }

    func testRejectsVersion3() {
        assertTensorIOError(["v3.npy", "unsupported .npy version 3.0"]) { try Tensor(contentsOfNPY: Fixture.url("v3.npy")) }
    }

    func testRejectsBadShapesAndKeys() {
        let cases: [(header: String, problem: String)] = [
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", "negative dimension -1"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", "dimension 2.5 is not an integer"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': ('2',), }", "dimension '2' is not an integer"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", "shape must be a tuple, got 3"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", "too many elements"),
            ("{'descr': '<f4', 'fortran_order': False, }", "missing key 'shape'"),
            ("{'descr': '<f4', 'shape': (1,), }", "missing key 'fortran_order'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "unexpected key 'x'"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "duplicate key 'descr'"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "fortran_order must be True or False"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,", "unexpected end of header"),
            ("{'descr': '<f4', 'fortran_order': False 'shape': (1,)}", "expected ',' or '}'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", "unexpected text after the dictionary"),
            ("{'descr: '<f4'}", "invalid header"),
            ("('descr', '<f4')", "not a dictionary"),
        ]
        for (header, problem) in cases {
            assertTensorIOError(["h.npy", problem]) { try Tensor(npyData: npy(header: header, payload: []), source: "h.npy") }
        }
    }

    func testRejectsMissingFile() {
        let url = Fixture.url("no-such-file.npy")
        assertTensorIOError([url.path, "does not exist"]) { try Tensor(contentsOfNPY: url) }
    }

    // MARK: Atomic writes

    func testWriteIntoMissingFolderThrowsAndLeavesNothing() throws {
        let folder = try makeTemporaryFolder(for: self)
        let url = folder.appendingPathComponent("missing/t.npy")
        assertTensorIOError([url.path, "does not exist"]) { try Tensor(zeros: [2], elementType: .f32).writeNPY(to: url) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [])
    }

    func testWriteReplacesAnExistingFileAndLeavesNoTemporaryFile() throws {
        let folder = try makeTemporaryFolder(for: self)
        let url = folder.appendingPathComponent("t.npy")
        try Data("old contents".utf8).write(to: url)
        let tensor = Tensor(shape: [3], scalars: Fixture.s32(3))
        try tensor.writeNPY(to: url)
        XCTAssertEqual(try Data(contentsOf: url), tensor.npyData())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["t.npy"])
    }

    /// A version 1.0 `.npy` file with the given header text (padded as numpy does) and payload.
    private func npy(header: String, payload: [UInt8]) -> Data {
        let length = header.utf8.count + 1
        let padded = length + 64 - (10 + length) % 64
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(padded & 0xFF), UInt8(padded >> 8)])
        data.append(contentsOf: Array(header.utf8) + Array(repeating: UInt8(ascii: " "), count: padded - length) + [0x0A])
        data.append(contentsOf: payload)
        return data
    }
}

final class TensorTests: XCTestCase {
    func testBasics() {
        let tensor = Tensor(shape: [2, 3], scalars: Fixture.s32(6))
        XCTAssertEqual(tensor.count, 6)
        XCTAssertEqual(tensor.byteCount, 24)
        XCTAssertEqual(tensor.description, "Tensor(s32, shape: [2, 3])")
        XCTAssertEqual(ElementType.allCases.map(\.byteSize), [4, 1, 1, 4, 8])

        let zeros = Tensor(zeros: [4, 5], elementType: .f32)
        XCTAssertEqual(zeros.scalars(as: Float.self), Array(repeating: 0, count: 20))
        zeros.withUnsafeBytes { XCTAssertEqual(Int(bitPattern: $0.baseAddress) % 64, 0) }
        XCTAssertEqual(Tensor(zeros: [], elementType: .i64).count, 1)
    }

    func testEqualityComparesShapeTypeAndBytes() {
        let a = Tensor(shape: [4], scalars: [1, 2, 3, 4] as [Int32])
        XCTAssertEqual(a, Tensor(shape: [4], scalars: [1, 2, 3, 4] as [Int32]))
        XCTAssertNotEqual(a, Tensor(shape: [4], scalars: [1, 2, 3, 5] as [Int32]))
        XCTAssertNotEqual(a, a.reshaped([2, 2]))
        XCTAssertNotEqual(a, Tensor(shape: [4], scalars: [1, 2, 3, 4] as [Float]))
    }

    func testCopyOnWrite() {
        let original = Tensor(shape: [3], scalars: [1, 2, 3] as [Int64])
        var copy = original
        var reshaped = original.reshaped([1, 3])
        copy.withUnsafeMutableBytes { $0.storeBytes(of: 42, toByteOffset: 8, as: Int64.self) }
        XCTAssertEqual(copy.scalars(as: Int64.self), [1, 42, 3])
        XCTAssertEqual(original.scalars(as: Int64.self), [1, 2, 3])
        XCTAssertEqual(reshaped.scalars(as: Int64.self), [1, 2, 3])
        reshaped.withUnsafeMutableBytes { $0.storeBytes(of: 7, as: Int64.self) }
        XCTAssertEqual(reshaped.shape, [1, 3])
        XCTAssertEqual(reshaped.scalars(as: Int64.self), [7, 2, 3])
        XCTAssertEqual(original.scalars(as: Int64.self), [1, 2, 3])

        var unique = Tensor(zeros: [2], elementType: .u8)
        let before = unique.withUnsafeBytes { $0.baseAddress }
        let after = unique.withUnsafeMutableBytes { UnsafeRawPointer($0.baseAddress) }
        XCTAssertEqual(before, after, "a uniquely referenced buffer is mutated in place")
    }
}
