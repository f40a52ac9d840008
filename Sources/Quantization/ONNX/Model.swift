import Foundation
import SwiftProtobuf

/// An ONNX model loaded into the graph IR: the graph with its weights, the opsets it was
/// written for and the model's metadata. Immutable, so it can be shared between threads.
///
/// Reading (``init(contentsOf:)``, ``init(serializedData:source:baseDirectory:)``):
/// - initializers and the tensors of `Constant` nodes become ``Graph/initializers`` (the
///   `Constant` nodes are removed; paddle2onnx models keep all weights in them);
/// - graph inputs that are also initializers are not ``inputs``;
/// - tensors of type FLOAT, UINT8, INT8, INT32 and INT64 keep their type; DOUBLE and FLOAT16
///   become ``ElementType/f32``, BOOL ``ElementType/u8`` (0 or 1), INT16 and UINT16
///   ``ElementType/s32``; other types are an error. Data may be in `raw_data`, the typed
///   fields, or an external file (`data_location: EXTERNAL`) relative to the model's folder;
/// - the domain `"ai.onnx"` is written `""` (in ``opsetImports`` and ``Node/domain``);
/// - unnamed nodes are named `"<opType>_<index in the file>"`;
/// - the nodes are sorted topologically (``Graph/sortTopologically()``).
///
/// Every error is a ``GraphError`` whose message starts with ``source``, e.g.
/// `"model.onnx: node Conv 'c1' reads 'x9', which no node, initializer or graph input provides"`.
public final class Model: Sendable {
    public let graph: Graph
    /// The opset version of the default ONNX domain (`""`, also written `"ai.onnx"`).
    public let opsetVersion: Int
    /// Every declared operator domain and its version, the default domain as `""`. Domains
    /// declared but used by no node are kept here and otherwise ignored.
    public let opsetImports: [String: Int]
    /// The model's `metadata_props` (PP-OCR stores its character list under `"character"`).
    public let metadata: [String: String]
    public let producerName: String
    public let producerVersion: String
    /// The ONNX IR version the file declares.
    public let irVersion: Int
    /// The file's path, or `"<memory>"`; errors start with it.
    public let source: String

    /// The inputs the caller provides (initializers excluded).
    public var inputs: [ValueInfo] { graph.inputs }
    public var outputs: [ValueInfo] { graph.outputs }

    /// Creates a model from a graph. `opsetImports` is completed with `"": opsetVersion`
    /// (which wins over an `""` or `"ai.onnx"` entry there).
    public init(
        graph: Graph, opsetVersion: Int, opsetImports: [String: Int] = [:],
        metadata: [String: String] = [:], producerName: String = "swift-dnnl-quantization",
        producerVersion: String = "", irVersion: Int = 8, source: String = "<memory>"
    ) {
        var imports = opsetImports
        imports["ai.onnx"] = nil
        imports[""] = opsetVersion
        self.graph = graph
        self.opsetVersion = opsetVersion
        self.opsetImports = imports
        self.metadata = metadata
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.irVersion = irVersion
        self.source = source
    }

    /// Reads an ONNX model file; external data files are looked up in the file's folder.
    ///
    /// - Throws: ``GraphError`` starting with the file's path: `.invalidModel` for a missing or
    ///   unreadable file, one that is not an ONNX model (truncated, empty, not protobuf, no
    ///   graph), tensors of unsupported types or with missing data; `.unsupportedOperator` for
    ///   subgraphs (If, Loop); `.danglingInput` and `.cycle` from sorting the nodes.
    public convenience init(contentsOf url: URL) throws(GraphError) {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder)
            let reason = !exists ? "file does not exist" : isFolder.boolValue ? "is a folder, not a file" : "cannot read file (\(error))"
            throw GraphError(.invalidModel, "\(url.path): \(reason)")
        }
        try self.init(serializedData: data, source: url.path, baseDirectory: url.deletingLastPathComponent())
    }

    /// Decodes a serialized `ModelProto`; see ``init(contentsOf:)``.
    ///
    /// - Parameters:
    ///   - source: Names the model in errors.
    ///   - baseDirectory: The folder external data locations are relative to; without it a
    ///     model with external data is an error.
    public convenience init(
        serializedData: Data, source: String = "<memory>",
        baseDirectory: URL? = nil
    ) throws(GraphError) {
        var importer = ONNXImporter(source: source, baseDirectory: baseDirectory)
        let m = try importer.importModel(serializedData)
        self.init(
            graph: m.graph, opsetVersion: m.opsetVersion, opsetImports: m.opsetImports,
            metadata: m.metadata, producerName: m.producerName,
            producerVersion: m.producerVersion, irVersion: m.irVersion, source: source)
    }

    /// Encodes the model as an ONNX `ModelProto`: ``irVersion``, every opset of
    /// ``opsetImports``, the producer, ``metadata``, and the graph with its nodes, inputs,
    /// outputs, value infos and initializers (as `raw_data` in each tensor's own type).
    /// Maps, the initializers and value infos are written sorted by name, so the same model
    /// gives the same bytes.
    ///
    /// - Throws: ``GraphError/Kind/invalidModel`` if the model cannot be encoded (protobuf
    ///   messages are limited to 2 GiB).
    public func serializedData() throws(GraphError) -> Data {
        do {
            return try ONNXExporter.modelProto(self).serializedData()
        } catch {
            throw GraphError(.invalidModel, "\(source): cannot encode the model as ONNX (\(error))")
        }
    }

    /// Writes ``serializedData()`` to `url` atomically: to a temporary file in the same
    /// folder, which then replaces `url`. On error `url` is unchanged.
    ///
    /// - Throws: ``GraphError/Kind/invalidModel`` naming `url` if the model cannot be encoded
    ///   or the file cannot be written (for example, the folder does not exist).
    public func write(to url: URL) throws(GraphError) {
        let data = try serializedData()
        do {
            try TensorFile.writeAtomically(to: url) { try data.write(to: $0) }
        } catch {
            throw GraphError(.invalidModel, error.description)
        }
    }
}

/// Converts a ``Model`` to a `ModelProto`.
enum ONNXExporter {
    static func modelProto(_ model: Model) -> Onnx_ModelProto {
        var proto = Onnx_ModelProto()
        proto.irVersion = Int64(model.irVersion)
        proto.producerName = model.producerName
        if !model.producerVersion.isEmpty { proto.producerVersion = model.producerVersion }
        proto.opsetImport = model.opsetImports.sorted { $0.key < $1.key }.map { domain, version in
            var opset = Onnx_OperatorSetIdProto()
            opset.domain = domain
            opset.version = Int64(version)
            return opset
        }
        proto.metadataProps = model.metadata.sorted { $0.key < $1.key }.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        proto.graph = graphProto(model.graph)
        return proto
    }

    static func graphProto(_ graph: Graph) -> Onnx_GraphProto {
        var proto = Onnx_GraphProto()
        proto.name = graph.name
        proto.node = graph.nodes.map(nodeProto)
        proto.input = graph.inputs.map(valueInfoProto)
        proto.output = graph.outputs.map(valueInfoProto)
        proto.valueInfo = graph.valueInfo.sorted { $0.key < $1.key }.map { valueInfoProto($0.value) }
        proto.initializer = graph.initializers.sorted { $0.key < $1.key }.map { tensorProto($0.value, name: $0.key) }
        return proto
    }

    static func nodeProto(_ node: Node) -> Onnx_NodeProto {
        var proto = Onnx_NodeProto()
        proto.name = node.name
        proto.opType = node.opType
        if !node.domain.isEmpty { proto.domain = node.domain }
        proto.input = node.inputs
        proto.output = node.outputs
        proto.attribute = node.attributes.sorted { $0.key < $1.key }.map { name, value in
            var attribute = Onnx_AttributeProto()
            attribute.name = name
            switch value {
            case .int(let v): attribute.type = .int; attribute.i = Int64(v)
            case .float(let v): attribute.type = .float; attribute.f = v
            case .string(let v): attribute.type = .string; attribute.s = Data(v.utf8)
            case .ints(let v): attribute.type = .ints; attribute.ints = v.map { Int64($0) }
            case .floats(let v): attribute.type = .floats; attribute.floats = v
            case .strings(let v): attribute.type = .strings; attribute.strings = v.map { Data($0.utf8) }
            case .tensor(let v): attribute.type = .tensor; attribute.t = tensorProto(v, name: "")
            }
            return attribute
        }
        return proto
    }

    static func valueInfoProto(_ info: ValueInfo) -> Onnx_ValueInfoProto {
        var proto = Onnx_ValueInfoProto()
        proto.name = info.name
        var type = Onnx_TypeProto.Tensor()
        if let elementType = info.elementType { type.elemType = Int32(dataType(elementType).rawValue) }
        if let shape = info.shape {
            var shapeProto = Onnx_TensorShapeProto()
            shapeProto.dim = shape.map { dimension in
                var dim = Onnx_TensorShapeProto.ShapeDimension()
                switch dimension {
                case .fixed(let v): dim.dimValue = Int64(v)
                case .symbolic("?"): break  // unnamed
                case .symbolic(let name): dim.dimParam = name
                }
                return dim
            }
            type.shape = shapeProto
        }
        proto.type.tensorType = type
        return proto
    }

    static func dataType(_ type: ElementType) -> Onnx_TensorProto.DataType {
        switch type {
        case .f32: .float
        case .u8: .uint8
        case .s8: .int8
        case .s32: .int32
        case .i64: .int64
        }
    }

    static func tensorProto(_ tensor: Tensor, name: String) -> Onnx_TensorProto {
        var proto = Onnx_TensorProto()
        if !name.isEmpty { proto.name = name }
        proto.dims = tensor.shape.map { Int64($0) }
        proto.dataType = Int32(dataType(tensor.elementType).rawValue)
        proto.rawData = tensor.withUnsafeBytes { Data($0) }
        return proto
    }
}
