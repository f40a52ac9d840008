import Foundation

/// The result of calibration: the range of every calibrated tensor, by tensor name.
///
/// Stored as pretty-printed JSON with sorted keys, for example
///
/// ```json
/// {
///   "method" : "entropy",
///   "ranges" : {
///     "conv1_out" : { "max" : 6.25, "min" : 0 },
///     "input" : { "max" : 2.6399999, "min" : -2.6399999 }
///   },
///   "sampleCount" : 100
/// }
/// ```
public struct CalibrationTable: Sendable, Codable, Equatable {
    /// The method that chose the ranges.
    public var method: CalibrationMethod
    /// The number of samples observed.
    public var sampleCount: Int
    /// The range of each tensor.
    public var ranges: [String: TensorRange]

    public init(method: CalibrationMethod, sampleCount: Int, ranges: [String: TensorRange]) {
        self.method = method
        self.sampleCount = sampleCount
        self.ranges = ranges
    }

    /// The table as pretty-printed JSON with sorted keys. Non-finite values (which
    /// ``TensorObserver`` never gives, but a caller's table may hold) are written as the
    /// strings `"nan"`, `"inf"` and `"-inf"`, which ``init(jsonData:source:)`` rejects.
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return try encoder.encode(self)
        } catch {
            // Not reached: with non-finite floats written as strings, strings, integers and
            // finite floats are all the table holds, and JSONEncoder encodes those.
            return Data("{}".utf8)
        }
    }

    /// The first range that is not finite with `min <= max`, as an error naming `source`.
    func invalidRange(source: String) -> CalibrationError? {
        for (name, range) in ranges.sorted(by: { $0.key < $1.key }) {
            guard range.min.isFinite, range.max.isFinite, range.min <= range.max else {
                return CalibrationError(
                    file: source, message: "invalid calibration table: range of '\(name)' is \(range): it must be finite with min <= max")
            }
        }
        return nil
    }

    /// Writes ``jsonData()`` to `url` atomically: to a temporary file in the same folder, which
    /// then replaces `url`. On error `url` is unchanged and no temporary file is left.
    ///
    /// - Throws: ``CalibrationError`` naming `url` if a range is not finite with `min <= max`
    ///   (nothing is written then), or the folder does not exist or is not writable.
    public func write(to url: URL) throws(CalibrationError) {
        if let bad = invalidRange(source: url.path) { throw bad }
        let data = jsonData()
        do {
            try TensorFile.writeAtomically(to: url) { try data.write(to: $0) }
        } catch {
            throw CalibrationError(file: url.path, message: error.message)
        }
    }

    /// Reads a table written by ``write(to:)``.
    ///
    /// - Throws: ``CalibrationError`` naming the file if it cannot be read, is not JSON, lacks a
    ///   key (`method`, `sampleCount`, `ranges`, or `min`/`max` of a range), has a value of the
    ///   wrong type, an unknown method, a negative sample count, or a range that is not finite
    ///   with `min <= max`.
    public init(contentsOf url: URL) throws(CalibrationError) {
        let data: Data
        do {
            data = try TensorFile.read(url)
        } catch {
            throw CalibrationError(file: url.path, message: error.message)
        }
        try self.init(jsonData: data, source: url.path)
    }

    /// Decodes ``jsonData()``; `source` names the data in errors.
    public init(jsonData data: Data, source: String = "<data>") throws(CalibrationError) {
        func fail(_ message: String) -> CalibrationError {
            CalibrationError(file: source, message: "invalid calibration table: \(message)")
        }
        do {
            self = try JSONDecoder().decode(CalibrationTable.self, from: data)
        } catch let error as DecodingError {
            throw fail(Self.describe(error))
        } catch {
            throw fail("\(error)")
        }
        guard sampleCount >= 0 else { throw fail("negative sampleCount \(sampleCount)") }
        if let bad = invalidRange(source: source) { throw bad }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "the top level" : codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let place = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "missing key '\(key.stringValue)'\(place)"
        case .typeMismatch(let type, let context):
            return "expected \(type) at \(path(context.codingPath))"
        case .valueNotFound(let type, let context):
            return "expected \(type) at \(path(context.codingPath)), found null"
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return "not valid JSON (\(context.debugDescription))"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// An error reading calibration samples or a calibration table.
///
/// ``description`` is `"<file>: <message>"`.
public struct CalibrationError: Error, CustomStringConvertible, Equatable {
    /// The file or folder concerned.
    public let file: String
    /// What went wrong, without the file.
    public let message: String

    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}

/// Observes named tensors over calibration samples and turns them into a ``CalibrationTable``.
///
/// ```swift
/// var calibrator = Calibrator(tensors: names)
/// for sample in try CalibrationReader(directory: folder, inputNames: inputs) {
///     calibrator.observe(try session.run(sample, outputs: names))
/// }
/// let table = calibrator.table(method: .entropy, unsigned: afterReLU)
/// ```
public struct Calibrator: Sendable {
    /// The observer of each calibrated tensor.
    public private(set) var observers: [String: TensorObserver]
    /// The number of ``observe(_:)`` calls.
    public private(set) var sampleCount = 0
    /// How many times each tensor was observed.
    private var observations: [String: Int]
    /// Tensors skipped because they were not f32, with their element type.
    private var skipped: [String: ElementType] = [:]

    /// Calibrates the tensors `tensors` (duplicates are ignored).
    public init(tensors: [String]) {
        observers = Dictionary(tensors.map { ($0, TensorObserver()) }) { first, _ in first }
        observations = observers.mapValues { _ in 0 }
    }

    /// Observes one sample's tensors. Names that are not calibrated are ignored; calibrated
    /// tensors missing from `outputs` are not observed this time; tensors that are not f32 are
    /// skipped (see ``warnings``).
    public mutating func observe(_ outputs: [String: Tensor]) {
        sampleCount += 1
        for (name, tensor) in outputs where observers[name] != nil {
            guard tensor.elementType == .f32 else {
                skipped[name] = tensor.elementType
                continue
            }
            observers[name]?.observe(tensor)
            observations[name, default: 0] += 1
        }
    }

    /// The range of every tensor observed at least once (a tensor with no finite values gets
    /// the guard range of ``TensorObserver/range(_:unsigned:)``). Tensors in `unsigned` are
    /// non-negative by construction; tensors whose observed minimum is `>= 0` are treated as
    /// non-negative too.
    public func table(method: CalibrationMethod, unsigned: Set<String>) -> CalibrationTable {
        var ranges: [String: TensorRange] = [:]
        for (name, observer) in observers where observations[name, default: 0] > 0 {
            ranges[name] = observer.range(method, unsigned: unsigned.contains(name))
        }
        return CalibrationTable(method: method, sampleCount: sampleCount, ranges: ranges)
    }

    /// Problems worth reporting, sorted by tensor name: tensors never observed, tensors that
    /// were not f32, tensors with no finite values, and tensors with NaN or infinite values
    /// (which were ignored).
    public var warnings: [String] {
        var result: [String] = []
        for (name, observer) in observers.sorted(by: { $0.key < $1.key }) {
            if let type = skipped[name] {
                result.append("tensor '\(name)' is \(type), not f32: not calibrated")
            } else if observations[name, default: 0] == 0 {
                result.append("tensor '\(name)' was never observed")
            }
            if observations[name, default: 0] > 0, observer.count == 0 {
                result.append("tensor '\(name)' had no finite values: its range is a placeholder")
            }
            if observer.nonFiniteCount > 0 {
                let total = observer.nonFiniteCount + observer.count
                result.append(
                    "tensor '\(name)' had \(observer.nonFiniteCount) NaN or infinite values "
                        + "of \(total) (ignored)")
            }
        }
        return result
    }
}
