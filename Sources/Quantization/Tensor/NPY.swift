import Foundation

// NumPy `.npy` files, format 1.0 and 2.0:
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//
// Layout: magic "\x93NUMPY", major and minor version bytes, the header length (little-endian
// UInt16 in 1.0, UInt32 in 2.0), the header (a Python dict literal such as
// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and a final
// '\n'), then the array data.

extension Tensor {
    /// Decodes a `.npy` file (format 1.0 or 2.0).
    ///
    /// Accepted dtypes: `<f4` (``ElementType/f32``), `|u1`/`<u1` (``ElementType/u8``),
    /// `|i1`/`<i1` (``ElementType/s8``), `<i4` (``ElementType/s32``), `<i8` (``ElementType/i64``),
    /// in C order (`fortran_order: False`).
    ///
    /// - Parameters:
    ///   - npyData: The whole file. It must end exactly where the array data ends.
    ///   - source: Names the data in errors, e.g. a file path.
    /// - Throws: ``TensorIOError`` for a bad magic string, a version other than 1.0 or 2.0,
    ///   a truncated or malformed header, a missing or unexpected header key, big-endian or
    ///   other unsupported dtypes, `fortran_order: True`, negative or non-integer dimensions,
    ///   truncated data, and bytes after the data (NumPy ignores those; they are rejected here
    ///   because they mean the file is not what it claims to be).
    public init(npyData: Data, source: String = "<data>") throws(TensorIOError) {
        self = try NPY.decode(npyData, source: source)
    }

    /// Reads a `.npy` file; see ``init(npyData:source:)``. Errors name the file's path.
    public init(contentsOfNPY url: URL) throws(TensorIOError) {
        try self.init(npyData: TensorFile.read(url), source: url.path)
    }

    /// Encodes the tensor as a `.npy` file, byte for byte as `numpy.save` (NumPy 2.x) would:
    /// format 1.0 (2.0 if the header exceeds 65535 bytes), dtype `<f4`, `|u1`, `|i1`, `<i4` or
    /// `<i8`, `fortran_order: False`, the header padded with spaces and `'\n'` so that the data
    /// starts at a multiple of 64 bytes.
    public func npyData() -> Data {
        NPY.encode(self)
    }

    /// Writes ``npyData()`` to `url` atomically: to a temporary file in the same folder, which
    /// then replaces `url`. On error `url` is unchanged and no temporary file is left.
    ///
    /// - Throws: ``TensorIOError`` if the folder does not exist or is not writable.
    public func writeNPY(to url: URL) throws(TensorIOError) {
        let data = npyData()
        try TensorFile.writeAtomically(to: url) { try data.write(to: $0) }
    }
}

enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    static let alignment = 64

    /// NumPy's `descr` for each element type, as `numpy.save` writes it.
    static func descr(of type: ElementType) -> String {
        switch type {
        case .f32: "<f4"
        case .u8: "|u1"
        case .s8: "|i1"
        case .s32: "<i4"
        case .i64: "<i8"
        }
    }

    static func elementType(descr: String) -> ElementType? {
        switch descr {
        case "<u1": .u8
        case "<i1": .s8
        default: ElementType.allCases.first { NPY.descr(of: $0) == descr } ?? converted[descr]?.type
        }
    }

    /// Dtypes read by converting each element: float64 and float16 to f32 (rounded to nearest),
    /// bool to u8 (0/1), like ONNX tensors of those types (ONNXImporter).
    static let converted: [String: (type: ElementType, size: Int)] = ["<f8": (.f32, 8), "<f2": (.f32, 2), "|b1": (.u8, 1)]

    static func encode(_ tensor: Tensor) -> Data {
        let dims = tensor.shape.map(String.init)
        let shape = dims.count == 1 ? "(\(dims[0]),)" : "(\(dims.joined(separator: ", ")))"
        var header = "{'descr': '\(descr(of: tensor.elementType))', 'fortran_order': False, 'shape': \(shape), }"
        // Like NumPy, leave room to grow the first dimension in place.
        if let first = dims.first {
            header += String(repeating: " ", count: max(0, 21 - first.count))
        }
        func paddedLength(lengthFieldSize: Int) -> Int {
            let unpadded = magic.count + 2 + lengthFieldSize + header.utf8.count + 1
            return header.utf8.count + 1 + alignment - unpadded % alignment
        }
        var (version, lengthFieldSize) = (UInt8(1), 2)
        if paddedLength(lengthFieldSize: 2) > 0xFFFF {
            (version, lengthFieldSize) = (2, 4)
        }
        let headerLength = paddedLength(lengthFieldSize: lengthFieldSize)

        var data = Data(capacity: magic.count + 2 + lengthFieldSize + headerLength + tensor.byteCount)
        data.append(contentsOf: magic + [version, 0])
        data.append(contentsOf: (0..<lengthFieldSize).map { UInt8(truncatingIfNeeded: headerLength >> (8 * $0)) })
        data.append(contentsOf: header.utf8)
        data.append(contentsOf: repeatElement(UInt8(ascii: " "), count: headerLength - header.utf8.count - 1))
        data.append(UInt8(ascii: "\n"))
        tensor.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    static func decode(_ data: Data, source: String) throws(TensorIOError) -> Tensor {
        func fail(_ message: String) -> TensorIOError { TensorIOError(source: source, message: message) }
        let bytes = { (offset: Int) in data[data.startIndex + offset] }

        let magicCount = min(data.count, magic.count)
        guard magicCount > 0, data.prefix(magicCount).elementsEqual(magic.prefix(magicCount)) else {
            throw fail("not a .npy file (bad magic string)")
        }
        guard data.count >= magic.count + 2 else {
            throw fail("truncated header: file ends after \(data.count) bytes")
        }
        let (major, minor) = (bytes(6), bytes(7))
        let lengthFieldSize: Int
        switch (major, minor) {
        case (1, 0): lengthFieldSize = 2
        case (2, 0): lengthFieldSize = 4
        default: throw fail("unsupported .npy version \(major).\(minor) (supported: 1.0, 2.0)")
        }
        let headerStart = magic.count + 2 + lengthFieldSize
        guard data.count >= headerStart else {
            throw fail("truncated header: file ends after \(data.count) bytes")
        }
        let headerLength = (0..<lengthFieldSize).reduce(0) { $0 | Int(bytes(8 + $1)) << (8 * $1) }
        let dataStart = headerStart + headerLength
        guard data.count >= dataStart else {
            throw fail(
                "truncated header: header is \(headerLength) bytes but the file ends "
                    + "after \(data.count - headerStart)")
        }
        let header = try NPYHeader(
            Array(data[data.startIndex + headerStart..<data.startIndex + dataStart]), source: source)

        let expected = header.byteCount
        let found = data.count - dataStart
        let what = "\(header.descr) shape \(header.shapeText)"
        guard found >= expected else {
            throw fail("truncated data: expected \(expected) bytes for \(what), found \(found)")
        }
        guard found == expected else {
            throw fail(
                "\(found - expected) unexpected bytes after the data "
                    + "(expected \(expected) bytes for \(what), found \(found))")
        }
        var tensor = Tensor(zeros: header.shape, elementType: header.elementType)
        data.withUnsafeBytes { source in
            let raw = UnsafeRawBufferPointer(rebasing: source[dataStart...])
            tensor.withUnsafeMutableBytes { out in
                switch header.descr {
                case "<f8":
                    for i in 0..<header.count {
                        out.storeBytes(of: Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)), toByteOffset: 4 * i, as: Float.self)
                    }
                case "<f2":
                    for i in 0..<header.count {
                        out.storeBytes(
                            of: halfToFloat(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)), toByteOffset: 4 * i, as: Float.self)
                    }
                case "|b1":
                    for i in 0..<header.count { out[i] = raw[i] == 0 ? 0 : 1 }
                default:
                    out.copyMemory(from: raw)
                }
            }
        }
        return tensor
    }
}

/// The validated contents of a `.npy` header.
private struct NPYHeader {
    /// The file's dtype (`<f4`, `|b1`, ...) and the element type it is read as.
    let descr: String
    let elementType: ElementType
    let count: Int
    let shape: [Int]
    let shapeText: String
    let byteCount: Int

    init(_ bytes: [UInt8], source: String) throws(TensorIOError) {
        func fail(_ message: String) -> TensorIOError { TensorIOError(source: source, message: message) }
        var parser = PythonLiteralParser(bytes: bytes, source: source)
        guard case .dict(let entries) = try parser.parseAll() else {
            throw fail("invalid header: not a dictionary")
        }
        var values: [String: PythonLiteral] = [:]
        for (key, value) in entries {
            guard ["descr", "fortran_order", "shape"].contains(key) else {
                throw fail("invalid header: unexpected key '\(key)'")
            }
            guard values.updateValue(value, forKey: key) == nil else {
                throw fail("invalid header: duplicate key '\(key)'")
            }
        }
        func value(_ key: String) throws(TensorIOError) -> PythonLiteral {
            guard let value = values[key] else { throw fail("invalid header: missing key '\(key)'") }
            return value
        }

        let descr = try value("descr")
        if case .string(let name) = descr, name.hasPrefix(">") {
            throw fail("big-endian data is not supported (dtype '\(name)')")
        }
        guard case .string(let name) = descr, let type = NPY.elementType(descr: name) else {
            let supported = ElementType.allCases.map { NPY.descr(of: $0) }.joined(separator: ", ")
            throw fail("unsupported dtype \(descr) (supported: \(supported))")
        }

        switch try value("fortran_order") {
        case .bool(false): break
        case .bool(true): throw fail("fortran_order True (column-major) arrays are not supported")
        case let other: throw fail("invalid header: fortran_order must be True or False, got \(other)")
        }

        let shapeValue = try value("shape")
        guard case .tuple(let dims) = shapeValue else {
            throw fail("invalid header: shape must be a tuple, got \(shapeValue)")
        }
        var shape: [Int] = []
        for dim in dims {
            guard case .number(let text) = dim,
                let n = Int(text.hasSuffix("L") ? String(text.dropLast()) : text)
            else {
                throw fail("invalid shape \(shapeValue): dimension \(dim) is not an integer")
            }
            guard n >= 0 else { throw fail("invalid shape \(shapeValue): negative dimension \(n)") }
            shape.append(n)
        }
        guard var byteCount = Tensor.byteCount(of: shape, elementType: type) else {
            throw fail("invalid shape \(shapeValue): too many elements")
        }
        self.count = shape.reduce(1, *)
        if let c = NPY.converted[name] {
            guard case (let b, false) = count.multipliedReportingOverflow(by: c.size) else {
                throw fail("invalid shape \(shapeValue): too many elements")
            }
            byteCount = b
        }
        self.descr = name
        self.elementType = type
        self.shape = shape
        self.shapeText = shapeValue.description
        self.byteCount = byteCount
    }
}

/// The subset of Python literals that can appear in a `.npy` header.
private indirect enum PythonLiteral: CustomStringConvertible {
    case string(String)
    /// The literal's text, e.g. `3`, `-1`, `2.5` or `3L` (Python 2).
    case number(String)
    case bool(Bool)
    case none
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case dict([(String, PythonLiteral)])

    /// Python's `repr`, for error messages.
    var description: String {
        switch self {
        case .string(let s): "'\(s)'"
        case .number(let text): text
        case .bool(let b): b ? "True" : "False"
        case .none: "None"
        case .tuple(let items) where items.count == 1: "(\(items[0]),)"
        case .tuple(let items): "(\(items.map(\.description).joined(separator: ", ")))"
        case .list(let items): "[\(items.map(\.description).joined(separator: ", "))]"
        case .dict(let entries): "{\(entries.map { "'\($0)': \($1)" }.joined(separator: ", "))}"
        }
    }
}

/// A recursive-descent parser for ``PythonLiteral``s: strings, numbers, `True`/`False`/`None`,
/// tuples, lists and dicts with string keys, with optional trailing commas and any whitespace.
private struct PythonLiteralParser {
    let bytes: [UInt8]
    let source: String
    var position = 0
    /// Bytes of names (`True`) and numbers (`-1`, `2.5e3`, `3L`).
    private static let wordBytes = Set("_.+-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    /// Parses one literal that must span all of `bytes`, apart from surrounding whitespace.
    mutating func parseAll() throws(TensorIOError) -> PythonLiteral {
        let value = try parseValue()
        skipWhitespace()
        guard position == bytes.count else { throw error("unexpected text after the dictionary") }
        return value
    }

    private func error(_ message: String) -> TensorIOError {
        TensorIOError(source: source, message: "invalid header: \(message) at offset \(position)")
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) {
            position += 1
        }
    }

    /// Skips whitespace and returns the next byte without consuming it (nil at the end).
    private mutating func peek() -> UInt8? {
        skipWhitespace()
        return position < bytes.count ? bytes[position] : nil
    }

    private mutating func parseValue() throws(TensorIOError) -> PythonLiteral {
        guard let byte = peek() else { throw error("unexpected end of header") }
        switch byte {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "("):
            let (items, sawComma) = try parseItems(closing: ")")
            // `(x)` is just x in Python; a tuple of one needs a comma.
            return items.count == 1 && !sawComma ? items[0] : .tuple(items)
        case UInt8(ascii: "["):
            return .list(try parseItems(closing: "]").items)
        case UInt8(ascii: "{"):
            return try parseDict()
        default:
            let word = take { Self.wordBytes.contains($0) }
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            case let text where text.first.map { $0.isNumber || $0 == "-" || $0 == "+" } == true:
                return .number(text)
            default:
                throw error(word.isEmpty ? "unexpected character '\(Unicode.Scalar(byte))'" : "unexpected '\(word)'")
            }
        }
    }

    /// Consumes the longest run of bytes matching `predicate`.
    private mutating func take(while predicate: (UInt8) -> Bool) -> String {
        let start = position
        while position < bytes.count, predicate(bytes[position]) { position += 1 }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private mutating func parseString() throws(TensorIOError) -> String {
        let quote = bytes[position]
        position += 1
        var result: [UInt8] = []
        while position < bytes.count, bytes[position] != quote {
            if bytes[position] == UInt8(ascii: "\\") { position += 1 }
            if position < bytes.count { result.append(bytes[position]) }
            position += 1
        }
        guard position < bytes.count else { throw error("unterminated string") }
        position += 1
        return String(decoding: result, as: UTF8.self)
    }

    /// Parses `open item, item, … close` (the opening bracket is next), allowing a trailing comma.
    private mutating func parseItems(closing: Unicode.Scalar) throws(TensorIOError) -> (items: [PythonLiteral], sawComma: Bool) {
        position += 1
        var items: [PythonLiteral] = []
        var sawComma = false
        while peek() != UInt8(ascii: closing) {
            items.append(try parseValue())
            if try !consumeSeparator(closing: closing) { break }
            sawComma = true
        }
        position += 1
        return (items, sawComma)
    }

    private mutating func parseDict() throws(TensorIOError) -> PythonLiteral {
        position += 1
        var entries: [(String, PythonLiteral)] = []
        while peek() != UInt8(ascii: "}") {
            guard case .string(let key) = try parseValue() else { throw error("dictionary key is not a string") }
            guard peek() == UInt8(ascii: ":") else { throw error("expected ':'") }
            position += 1
            entries.append((key, try parseValue()))
            if try !consumeSeparator(closing: "}") { break }
        }
        position += 1
        return .dict(entries)
    }

    /// After an item: consumes a comma and returns true, or returns false if `closing` is next.
    private mutating func consumeSeparator(closing: Unicode.Scalar) throws(TensorIOError) -> Bool {
        switch peek() {
        case UInt8(ascii: ","): position += 1; return true
        case UInt8(ascii: closing): return false
        default: throw error(peek() == nil ? "unexpected end of header" : "expected ',' or '\(closing)'")
        }
    }
}
