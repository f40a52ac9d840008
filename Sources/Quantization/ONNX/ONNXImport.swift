import Foundation
import SwiftProtobuf

/// Converts a decoded `ModelProto` into a ``Model``: the graph IR, opsets and metadata.
///
/// Every error is a ``GraphError`` whose message starts with `"<source>: "`.
struct ONNXImporter {
    /// Names the model in errors: its path, or `"<memory>"`.
    let source: String
    /// The folder that external data locations are relative to; nil for a model read from memory.
    let baseDirectory: URL?
    /// External data files read so far, by location (one file usually holds many tensors).
    private var externalFiles: [String: Data] = [:]

    init(source: String, baseDirectory: URL?) {
        self.source = source
        self.baseDirectory = baseDirectory
    }

    func error(_ kind: GraphError.Kind, _ message: String) -> GraphError {
        GraphError(kind, "\(source): \(message)")
    }

    // MARK: Model

    /// The parts of a ``Model`` read from the file.
    struct Imported {
        var graph: Graph
        var opsetVersion: Int
        var opsetImports: [String: Int]
        var metadata: [String: String]
        var producerName: String
        var producerVersion: String
        var irVersion: Int
    }

    mutating func importModel(_ data: Data) throws(GraphError) -> Imported {
        guard !data.isEmpty else {
            throw self.error(.invalidModel, "not an ONNX model (the file is empty)")
        }
        let proto: Onnx_ModelProto
        do {
            proto = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw self.error(.invalidModel, "not an ONNX model (protobuf decoding failed: \(error))")
        }
        guard proto.hasGraph else {
            throw self.error(.invalidModel, "not an ONNX model (it has no graph)")
        }
        guard !proto.graph.node.isEmpty || !proto.graph.output.isEmpty else {
            throw self.error(.invalidModel, "not an ONNX model (its graph has no nodes and no outputs)")
        }
        guard !proto.graph.output.isEmpty else {
            throw self.error(.invalidModel, "the graph has no outputs (ONNX requires at least one)")
        }

        var opsets: [String: Int] = [:]
        for opset in proto.opsetImport {
            let domain = Self.normalizedDomain(opset.domain)
            opsets[domain] = max(opsets[domain] ?? 0, Int(opset.version))
        }
        guard let opsetVersion = opsets[""] else {
            throw self.error(.invalidModel, "the model declares no opset version for the default ONNX domain")
        }
        guard opsetVersion <= Self.newestOpset else {
            throw self.error(
                .unsupportedOperator, "the model's opset \(opsetVersion) is newer than this library supports (<= \(Self.newestOpset))")
        }

        var metadata: [String: String] = [:]
        for entry in proto.metadataProps { metadata[entry.key] = entry.value }

        var graph = try importGraph(proto.graph)
        do {
            try graph.sortTopologically()
        } catch {
            throw self.error(error.kind, error.message)
        }
        return Imported(
            graph: graph, opsetVersion: opsetVersion, opsetImports: opsets,
            metadata: metadata, producerName: proto.producerName,
            producerVersion: proto.producerVersion, irVersion: Int(proto.irVersion))
    }

    /// The newest default-domain opset read: the newest onnx 1.23.2 defines (its operator
    /// schemas, reference implementation and node test cases, which the conformance runner and
    /// the fuzzer check against). A later opset may change operator semantics; `99` is a typo.
    /// (The ONNX node cases of opsets 24...28 pass today, so the bound is not 23.)
    static let newestOpset = 28

    /// `"ai.onnx"` is another name of the default domain `""`.
    static func normalizedDomain(_ domain: String) -> String {
        domain == "ai.onnx" ? "" : domain
    }

    // MARK: Graph

    mutating func importGraph(_ proto: Onnx_GraphProto) throws(GraphError) -> Graph {
        var initializers: [String: Tensor] = [:]
        for tensor in proto.initializer {
            guard !tensor.name.isEmpty else {
                throw error(.invalidModel, "an initializer has no name")
            }
            guard initializers[tensor.name] == nil else {
                throw error(.invalidModel, "initializer '\(tensor.name)' is defined twice")
            }
            initializers[tensor.name] = try self.tensor(tensor, label: "initializer '\(tensor.name)'")
        }
        if let sparse = proto.sparseInitializer.first {
            throw error(.invalidModel, "sparse initializer '\(sparse.values.name)' is not supported")
        }

        // Unique names for unnamed nodes, so that errors can point at them.
        var usedNames = Set(proto.node.map(\.name))
        var nodes: [Node] = []
        nodes.reserveCapacity(proto.node.count)
        for (index, nodeProto) in proto.node.enumerated() {
            var name = nodeProto.name
            if name.isEmpty {
                name = "\(nodeProto.opType)_\(index)"
                var suffix = 1
                while usedNames.contains(name) {
                    name = "\(nodeProto.opType)_\(index)_\(suffix)"
                    suffix += 1
                }
                usedNames.insert(name)
            }
            let node = try self.node(nodeProto, name: name)
            do { try AttributeValidation.checkArity(node) } catch { throw self.error(error.kind, error.message) }
            if node.opType == "Constant" && node.domain.isEmpty {
                let output = node.outputs.first ?? ""
                guard node.outputs.count == 1, !output.isEmpty else {
                    throw error(.invalidModel, "node \(node.label) must have exactly one output")
                }
                guard initializers[output] == nil else {
                    throw error(
                        .invalidModel, "node \(node.label) writes '\(output)', which is also an initializer or the output of another Constant")
                }
                initializers[output] = try constantValue(node)
            } else {
                nodes.append(node)
            }
        }

        var inputs: [ValueInfo] = []
        for input in proto.input where initializers[input.name] == nil {
            inputs.append(self.valueInfo(input))
        }
        let outputs = proto.output.map { self.valueInfo($0) }
        var valueInfo: [String: ValueInfo] = [:]
        for info in proto.valueInfo { valueInfo[info.name] = self.valueInfo(info) }

        return Graph(
            name: proto.name, nodes: nodes, inputs: inputs, outputs: outputs,
            initializers: initializers, valueInfo: valueInfo)
    }

    /// The tensor a `Constant` node produces.
    func constantValue(_ node: Node) throws(GraphError) -> Tensor {
        guard node.attributes.count == 1, let (key, value) = node.attributes.first else {
            throw error(.invalidModel, "node \(node.label) must have exactly one value attribute, it has \(node.attributes.count)")
        }
        switch (key, value) {
        case ("value", .tensor(let t)):
            return t
        case ("value_float", .float(let v)):
            return Tensor(shape: [], scalars: [v])
        case ("value_floats", .floats(let v)):
            return Tensor(shape: [v.count], scalars: v)
        case ("value_int", .int(let v)):
            return Tensor(shape: [], scalars: [Int64(v)])
        case ("value_ints", .ints(let v)):
            return Tensor(shape: [v.count], scalars: v.map { Int64($0) })
        default:
            throw error(
                .unsupportedAttribute,
                "node \(node.label) has attribute '\(key)', which is not supported (supported: value, value_float, value_floats, value_int, value_ints)"
            )
        }
    }

    // MARK: Nodes and attributes

    mutating func node(_ proto: Onnx_NodeProto, name: String) throws(GraphError) -> Node {
        var node = Node(
            name: name, opType: proto.opType, domain: Self.normalizedDomain(proto.domain),
            inputs: proto.input, outputs: proto.output)
        for attribute in proto.attribute {
            guard node.attributes[attribute.name] == nil else {
                throw error(.invalidModel, "node \(node.label) has attribute '\(attribute.name)' twice")
            }
            node.attributes[attribute.name] = try self.attribute(attribute, of: node)
        }
        return node
    }

    mutating func attribute(_ proto: Onnx_AttributeProto, of node: Node) throws(GraphError) -> AttributeValue {
        var type = proto.type
        if type == .undefined {
            // IR version 1 did not require the type; infer it from the field that is set.
            if proto.hasF {
                type = .float
            } else if proto.hasI {
                type = .int
            } else if proto.hasS {
                type = .string
            } else if proto.hasT {
                type = .tensor
            } else if proto.hasG {
                type = .graph
            } else if !proto.floats.isEmpty {
                type = .floats
            } else if !proto.ints.isEmpty {
                type = .ints
            } else if !proto.strings.isEmpty {
                type = .strings
            } else if !proto.graphs.isEmpty {
                type = .graphs
            }
        }
        switch type {
        case .int: return .int(Int(proto.i))
        case .float: return .float(proto.f)
        case .string: return .string(String(decoding: proto.s, as: UTF8.self))
        case .ints: return .ints(proto.ints.map { Int($0) })
        case .floats: return .floats(proto.floats)
        case .strings: return .strings(proto.strings.map { String(decoding: $0, as: UTF8.self) })
        case .tensor:
            return .tensor(try tensor(proto.t, label: "node \(node.label) attribute '\(proto.name)'"))
        case .graph, .graphs:
            throw error(
                .unsupportedOperator,
                "node \(node.name) (\(node.opType)) has a subgraph; subgraphs (attribute '\(proto.name)', as in If, Loop and Scan) are not supported")
        default:
            throw error(.unsupportedAttribute, "node \(node.label) has attribute '\(proto.name)' of type \(type), which is not supported")
        }
    }

    // MARK: Value infos

    func valueInfo(_ proto: Onnx_ValueInfoProto) -> ValueInfo {
        guard case .tensorType(let type)? = proto.type.value else {
            return ValueInfo(name: proto.name, elementType: nil, shape: nil)
        }
        let elementType = Onnx_TensorProto.DataType(rawValue: Int(type.elemType)).flatMap(Self.nativeElementType)
        var shape: [ShapeDimension]?
        if type.hasShape {
            shape = type.shape.dim.map { dim in
                switch dim.value {
                case .dimValue(let v)? where v >= 0: .fixed(Int(v))
                case .dimParam(let p)? where !p.isEmpty: .symbolic(p)
                default: .symbolic("?")
                }
            }
        }
        return ValueInfo(name: proto.name, elementType: elementType, shape: shape)
    }

    /// The element type that holds an ONNX data type without conversion.
    static func nativeElementType(_ type: Onnx_TensorProto.DataType) -> ElementType? {
        switch type {
        case .float, .double, .float16: .f32  // computed in f32 (converted at load)
        case .uint8, .bool: .u8  // bool as 0/1
        case .int8: .s8
        case .int32: .s32
        case .int64: .i64
        default: nil
        }
    }

    // MARK: Tensors

    /// Converts a `TensorProto`; `label` names it in errors (`"initializer 'w'"`).
    mutating func tensor(_ proto: Onnx_TensorProto, label: String) throws(GraphError) -> Tensor {
        let typeName: String
        let dataType = Onnx_TensorProto.DataType(rawValue: Int(proto.dataType))
        if let dataType { typeName = Self.typeName(dataType) } else { typeName = "\(proto.dataType)" }

        var shape: [Int] = []
        for d in proto.dims {
            guard d >= 0 else {
                throw error(.invalidModel, "\(label) has a negative dimension in its shape \(proto.dims)")
            }
            shape.append(Int(d))
        }
        guard let dataType, let target = Self.storedElementType(dataType) else {
            throw error(
                .invalidModel,
                "\(label) has data type \(typeName), which is not supported (supported: FLOAT, UINT8, INT8, INT32, INT64, DOUBLE, BOOL, INT16, UINT16, FLOAT16)"
            )
        }
        guard let sourceSize = Self.byteSize(dataType),
            Tensor.byteCount(of: shape, elementType: target) != nil,
            Tensor.byteCount(of: shape, elementType: .i64) != nil
        else {
            throw error(.invalidModel, "\(label) has an impossibly large shape \(shape)")
        }
        let count = shape.reduce(1, *)

        let raw: Data?
        if proto.dataLocation == .external {
            raw = try readExternal(proto, label: label)
        } else if proto.hasRawData {
            raw = proto.rawData
        } else {
            raw = nil
        }

        if let raw {
            guard raw.count == count * sourceSize else {
                throw error(.invalidModel, "\(label) (\(typeName), shape \(shape)) has \(raw.count) bytes of data, expected \(count * sourceSize)")
            }
            var result = Tensor(zeros: shape, elementType: target)
            let converted = raw.withUnsafeBytes { src in
                result.withUnsafeMutableBytes { dst in
                    Self.convert(raw: src, type: dataType, count: count, into: dst)
                }
            }
            // Not reached: storedElementType accepted the type, and convert handles all it accepts.
            guard converted else { throw error(.invalidModel, "\(label) has data type \(typeName), which is not supported") }
            return result
        }

        // Typed fields.
        func checkCount(_ n: Int, _ field: String) throws(GraphError) {
            guard n == count else {
                throw error(.invalidModel, "\(label) (\(typeName), shape \(shape)) has \(n) values in \(field), expected \(count)")
            }
        }
        let result: Tensor
        switch dataType {
        case .float:
            try checkCount(proto.floatData.count, "float_data")
            result = Tensor(shape: shape, scalars: proto.floatData)
        case .double:
            try checkCount(proto.doubleData.count, "double_data")
            result = Tensor(shape: shape, scalars: proto.doubleData.map { Float($0) })
        case .int64:
            try checkCount(proto.int64Data.count, "int64_data")
            result = Tensor(shape: shape, scalars: proto.int64Data)
        case .int32, .int16:
            try checkCount(proto.int32Data.count, "int32_data")
            result = Tensor(shape: shape, scalars: proto.int32Data)
        case .uint16:
            try checkCount(proto.int32Data.count, "int32_data")
            result = Tensor(shape: shape, scalars: proto.int32Data.map { Int32(UInt16(truncatingIfNeeded: $0)) })
        case .uint8:
            try checkCount(proto.int32Data.count, "int32_data")
            result = Tensor(shape: shape, scalars: proto.int32Data.map { UInt8(truncatingIfNeeded: $0) })
        case .bool:
            try checkCount(proto.int32Data.count, "int32_data")
            result = Tensor(shape: shape, scalars: proto.int32Data.map { UInt8($0 != 0 ? 1 : 0) })
        case .int8:
            try checkCount(proto.int32Data.count, "int32_data")
            result = Tensor(shape: shape, scalars: proto.int32Data.map { Int8(truncatingIfNeeded: $0) })
        case .float16:
            try checkCount(proto.int32Data.count, "int32_data")
            result = Tensor(shape: shape, scalars: proto.int32Data.map { halfToFloat(UInt16(truncatingIfNeeded: $0)) })
        default:
            // Not reached: storedElementType accepted the type above, and it accepts only these.
            throw error(.invalidModel, "\(label) has data type \(typeName), which is not supported")
        }
        return result
    }

    /// The element type a tensor of this ONNX type is stored as, or nil if it cannot be.
    static func storedElementType(_ type: Onnx_TensorProto.DataType) -> ElementType? {
        switch type {
        case .float, .double, .float16: .f32
        case .uint8, .bool: .u8
        case .int8: .s8
        case .int32, .int16, .uint16: .s32
        case .int64: .i64
        default: nil
        }
    }

    /// Bytes per element in `raw_data`, for the types ``storedElementType(_:)`` accepts.
    static func byteSize(_ type: Onnx_TensorProto.DataType) -> Int? {
        switch type {
        case .uint8, .int8, .bool: 1
        case .int16, .uint16, .float16: 2
        case .float, .int32: 4
        case .int64, .double: 8
        default: nil
        }
    }

    /// ONNX's name for a data type, e.g. `FLOAT16`.
    static func typeName(_ type: Onnx_TensorProto.DataType) -> String {
        switch type {
        case .float8E4M3Fn: "FLOAT8E4M3FN"
        case .float8E4M3Fnuz: "FLOAT8E4M3FNUZ"
        case .float8E5M2: "FLOAT8E5M2"
        case .float8E5M2Fnuz: "FLOAT8E5M2FNUZ"
        case .float8E8M0: "FLOAT8E8M0"
        case .float4E2M1: "FLOAT4E2M1"
        case .float6E2M3: "FLOAT6E2M3"
        case .float6E3M2: "FLOAT6E3M2"
        default: "\(type)".uppercased()
        }
    }

    /// Converts little-endian `raw_data` of `type` into the stored element type's bytes.
    /// - Returns: false (nothing written) for a type ``storedElementType(_:)`` does not accept.
    static func convert(
        raw src: UnsafeRawBufferPointer, type: Onnx_TensorProto.DataType, count: Int,
        into dst: UnsafeMutableRawBufferPointer
    ) -> Bool {
        switch type {
        case .float, .uint8, .int8, .int32, .int64:
            if count > 0 { dst.copyMemory(from: src) }
        case .bool:
            for i in 0..<count { dst[i] = src[i] != 0 ? 1 : 0 }
        case .double:
            for i in 0..<count {
                let v = src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)
                dst.storeBytes(of: Float(v), toByteOffset: 4 * i, as: Float.self)
            }
        case .float16:
            for i in 0..<count {
                let h = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                dst.storeBytes(of: halfToFloat(h), toByteOffset: 4 * i, as: Float.self)
            }
        case .int16:
            for i in 0..<count {
                let v = src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)
                dst.storeBytes(of: Int32(v), toByteOffset: 4 * i, as: Int32.self)
            }
        case .uint16:
            for i in 0..<count {
                let v = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                dst.storeBytes(of: Int32(v), toByteOffset: 4 * i, as: Int32.self)
            }
        default:
            return false
        }
        return true
    }

    // MARK: External data

    /// The bytes of a tensor stored in an external file (`data_location: EXTERNAL`).
    mutating func readExternal(_ proto: Onnx_TensorProto, label: String) throws(GraphError) -> Data {
        var entries: [String: String] = [:]
        for entry in proto.externalData { entries[entry.key] = entry.value }
        guard let location = entries["location"], !location.isEmpty else {
            throw error(.invalidModel, "\(label) stores its data externally but names no location")
        }
        let components = location.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        guard !location.hasPrefix("/"), !components.contains("..") else {
            throw error(.invalidModel, "\(label) stores its data in '\(location)', which is not a path inside the model's folder")
        }
        guard let baseDirectory else {
            throw error(
                .invalidModel, "\(label) stores its data in external file '\(location)', but the model was read from memory without a base directory")
        }
        func number(_ key: String) throws(GraphError) -> Int? {
            guard let text = entries[key] else { return nil }
            guard let n = Int(text), n >= 0 else {
                throw error(.invalidModel, "\(label) has an invalid external data \(key) '\(text)'")
            }
            return n
        }
        let offset = try number("offset") ?? 0
        let length = try number("length")

        let url = baseDirectory.appendingPathComponent(location)
        let file: Data
        if let cached = externalFiles[location] {
            file = cached
        } else {
            // The lexical check above is not enough: a file inside the folder may be a symbolic
            // link to anywhere (or sit under a linked folder). Resolve both and compare.
            let folder = baseDirectory.resolvingSymlinksInPath().standardizedFileURL.path
            let target = url.resolvingSymlinksInPath().standardizedFileURL.path
            guard target.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/") else {
                throw error(
                    .invalidModel,
                    "\(label) stores its data in '\(location)', which resolves to \(target), outside the model's folder \(folder) (a symbolic link?)")
            }
            do {
                file = try Data(contentsOf: url, options: .mappedIfSafe)
            } catch {
                let exists = FileManager.default.fileExists(atPath: url.path)
                throw self.error(
                    .invalidModel,
                    "\(label) stores its data in external file '\(location)' (\(url.path)), which \(exists ? "cannot be read (\(error))" : "does not exist")"
                )
            }
            externalFiles[location] = file
        }
        let end = length.map { offset.addingReportingOverflow($0) }
        guard offset <= file.count, end.map({ !$0.overflow && $0.partialValue <= file.count }) ?? true else {
            let range = end.map { $0.overflow ? "\(offset)..<(overflow)" : "\(offset)..<\($0.partialValue)" } ?? "\(offset)..<end"
            throw error(.invalidModel, "\(label) needs bytes \(range) of external file '\(location)', which has only \(file.count) bytes")
        }
        let start = file.startIndex + offset
        return file.subdata(in: start..<(length.map { start + $0 } ?? file.endIndex))
    }
}

/// Converts IEEE 754 half-precision bits to a `Float` (exact; NaN payloads kept).
func halfToFloat(_ h: UInt16) -> Float {
    let sign: UInt32 = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    switch exponent {
    case 0:
        // Zero or subnormal: mantissa * 2^-24.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign != 0 ? -magnitude : magnitude
    case 0x1F:
        return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
    default:
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
    }
}
