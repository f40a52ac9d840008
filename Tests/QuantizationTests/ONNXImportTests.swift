import Foundation
import Quantization
import XCTest

/// The onnx-written models in `Fixtures/onnx/` (see `Fixtures/make_onnx_fixtures.py`, which
/// lists what each holds).
private enum ONNXFixture {
    static let folder = Fixture.folder.appendingPathComponent("onnx")
    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }
    static func load(_ name: String) throws(GraphError) -> Model { try Model(contentsOf: url(name)) }
}

/// Asserts that `body` throws a ``GraphError`` of `kind` whose description contains every
/// string in `parts`.
private func assertGraphError<T>(
    _ kind: GraphError.Kind, _ parts: [String],
    file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> T
) {
    do {
        let result = try body()
        XCTFail("expected a \(kind) error containing \(parts), got \(result)", file: file, line: line)
    } catch let error as GraphError {
        XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
        for part in parts where !error.description.contains(part) {
            XCTFail("'\(error)' does not contain '\(part)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected a GraphError, got \(error)", file: file, line: line)
    }
}

final class ONNXImportTests: XCTestCase {
    // MARK: Reading onnx-written models

    func testReadsModelProperties() throws {
        let model = try ONNXFixture.load("weights.onnx")
        XCTAssertEqual(model.source, ONNXFixture.url("weights.onnx").path)
        XCTAssertEqual(model.opsetVersion, 13)
        XCTAssertEqual(model.irVersion, 8)
        XCTAssertEqual(model.producerName, "make_onnx_fixtures")
        XCTAssertEqual(model.producerVersion, "1.0")
        XCTAssertEqual(model.graph.name, "weights")
    }

    func testReadsMetadataProps() throws {
        let model = try ONNXFixture.load("weights.onnx")
        XCTAssertEqual(model.metadata, ["character": "a\nb\nc", "author": "fixture"])
    }

    func testKeepsDeclaredButUnusedOpsetDomain() throws {
        let model = try ONNXFixture.load("weights.onnx")
        XCTAssertEqual(model.opsetImports, ["": 13, "com.example.unused": 2])
        XCTAssertFalse(model.graph.nodes.contains { $0.domain == "com.example.unused" })
    }

    func testReadsInitializersOfEveryConvertedType() throws {
        let inits = try ONNXFixture.load("weights.onnx").graph.initializers
        XCTAssertEqual(inits["w"], Tensor(shape: [2, 3], scalars: (0..<6).map { Float($0) * 0.5 - 1 }))
        XCTAssertEqual(inits["w_typed"], Tensor(shape: [3], scalars: [Float(0.25), 0.5, 0.75]))
        XCTAssertEqual(inits["u8"], Tensor(shape: [4], scalars: [UInt8(0), 1, 128, 255]))
        XCTAssertEqual(inits["s8"], Tensor(shape: [3], scalars: [Int8(-128), 0, 127]))
        XCTAssertEqual(inits["s32"], Tensor(shape: [2], scalars: [Int32(-70000), 70000]))
        XCTAssertEqual(inits["i64"], Tensor(shape: [2], scalars: [Int64(-5_000_000_000), 5_000_000_000]))
        XCTAssertEqual(inits["b"], Tensor(shape: [3], scalars: [UInt8(1), 0, 1]))
        XCTAssertEqual(inits["i16"], Tensor(shape: [2], scalars: [Int32(-300), 300]))
        XCTAssertEqual(inits["u16"], Tensor(shape: [2], scalars: [Int32(0), 65535]))
    }

    func testConvertsFloat16AndDoubleToF32() throws {
        let inits = try ONNXFixture.load("weights.onnx").graph.initializers
        XCTAssertEqual(inits["h"], Tensor(shape: [4], scalars: [Float(1), -2, 0.5, 65504]))
        XCTAssertEqual(inits["h_typed"], Tensor(shape: [2], scalars: [Float(1.5), -0.25]))
        XCTAssertEqual(inits["d"], Tensor(shape: [3], scalars: [Float(0.1), -2.5, 1e10]))
        XCTAssertEqual(inits["d_typed"], Tensor(shape: [1], scalars: [Float(3.25)]))
    }

    func testConstantNodesBecomeInitializers() throws {
        let graph = try ONNXFixture.load("weights.onnx").graph
        XCTAssertFalse(graph.nodes.contains { $0.opType == "Constant" })
        XCTAssertEqual(graph.initializers["c_tensor"], Tensor(shape: [3], scalars: [Float(1), 2, 3]))
        XCTAssertEqual(graph.initializers["c_float"], Tensor(shape: [], scalars: [Float(2.5)]))
        XCTAssertEqual(graph.initializers["c_floats"], Tensor(shape: [2], scalars: [Float(0.5), 1.5]))
        XCTAssertEqual(graph.initializers["c_int"], Tensor(shape: [], scalars: [Int64(7)]))
        XCTAssertEqual(graph.initializers["c_ints"], Tensor(shape: [3], scalars: [Int64(1), -2, 3]))
        XCTAssertEqual(graph.initializers.count, 13 + 5)
    }

    func testGraphInputThatIsAnInitializerIsNotAnInput() throws {
        let model = try ONNXFixture.load("weights.onnx")
        XCTAssertEqual(model.inputs.map(\.name), ["x"])
        XCTAssertNotNil(model.graph.initializers["w"])
    }

    func testReadsDynamicDimensions() throws {
        let model = try ONNXFixture.load("weights.onnx")
        let dims: [ShapeDimension] = [.symbolic("batch"), .symbolic("?"), .fixed(3)]
        XCTAssertEqual(model.inputs, [ValueInfo(name: "x", elementType: .f32, shape: dims)])
        XCTAssertEqual(model.outputs, [ValueInfo(name: "z", elementType: .f32, shape: dims)])
        XCTAssertEqual(model.graph.valueInfo, ["y": ValueInfo(name: "y", elementType: .f32, shape: dims)])
    }

    func testSortsNodesListedOutOfOrder() throws {
        let graph = try ONNXFixture.load("weights.onnx").graph
        XCTAssertEqual(graph.nodes.map(\.name), ["add", "mul"])
        XCTAssertEqual(graph.nodes[0], Node(name: "add", opType: "Add", inputs: ["x", "w"], outputs: ["y"]))
        XCTAssertEqual(graph.nodes[1], Node(name: "mul", opType: "Mul", inputs: ["y", "c_tensor"], outputs: ["z"]))
    }

    func testReadsEveryAttributeKind() throws {
        let model = try ONNXFixture.load("attributes.onnx")
        XCTAssertEqual(model.opsetImports, ["": 13, "com.example": 1])
        let node = try XCTUnwrap(model.graph.nodes.first)
        XCTAssertEqual(node.name, "attrs")
        XCTAssertEqual(node.domain, "com.example")
        XCTAssertEqual(
            node.attributes,
            [
                "i": .int(5), "f": .float(0.25), "s": .string("héllo"), "ints": .ints([1, 2, 3]),
                "floats": .floats([0.5, -1]), "strings": .strings(["a", "bc"]),
                "t": .tensor(Tensor(shape: [2], scalars: [Int64(10), 20])),
            ])
    }

    func testNamesUnnamedNodes() throws {
        let graph = try ONNXFixture.load("attributes.onnx").graph
        XCTAssertEqual(graph.nodes.map(\.name), ["attrs", "Relu_1"])
    }

    func testReadsExternalData() throws {
        let model = try ONNXFixture.load("external.onnx")
        XCTAssertEqual(model.graph.initializers["ew"], Tensor(shape: [2, 2], scalars: [Float(1), 2, 3, 4]))
    }

    func testReadsExternalDataFromMemoryWithBaseDirectory() throws {
        let data = try Data(contentsOf: ONNXFixture.url("external.onnx"))
        let model = try Model(serializedData: data, baseDirectory: ONNXFixture.folder)
        XCTAssertEqual(model.source, "<memory>")
        XCTAssertEqual(model.graph.initializers["ew"], Tensor(shape: [2, 2], scalars: [Float(1), 2, 3, 4]))
    }

    // MARK: Errors in the graph

    func testRejectsCycleNamingNodes() {
        assertGraphError(.cycle, ["cycle.onnx: ", "Relu 'r1'", "Relu 'r2'"]) {
            try ONNXFixture.load("cycle.onnx")
        }
    }

    func testRejectsDanglingInputNamingNodeAndValue() {
        assertGraphError(.danglingInput, ["dangling.onnx: ", "Relu 'r1'", "'nowhere'"]) {
            try ONNXFixture.load("dangling.onnx")
        }
    }

    func testRejectsSubgraphs() {
        assertGraphError(.unsupportedOperator, ["subgraph.onnx: ", "node branch (If) has a subgraph"]) {
            try ONNXFixture.load("subgraph.onnx")
        }
    }

    func testRejectsUnsupportedTensorType() {
        assertGraphError(.invalidModel, ["unsupported_type.onnx: ", "initializer 's'", "data type STRING"]) {
            try ONNXFixture.load("unsupported_type.onnx")
        }
    }

    func testRejectsRawDataOfWrongSize() {
        assertGraphError(.invalidModel, ["bad_raw_size.onnx: ", "initializer 'short'", "8 bytes", "expected 12"]) {
            try ONNXFixture.load("bad_raw_size.onnx")
        }
    }

    // MARK: Files that are not models

    func testRejectsTruncatedFile() {
        assertGraphError(.invalidModel, ["truncated.onnx: ", "not an ONNX model"]) {
            try ONNXFixture.load("truncated.onnx")
        }
    }

    func testRejectsRandomBytes() {
        assertGraphError(.invalidModel, ["random.bin: ", "not an ONNX model"]) {
            try ONNXFixture.load("random.bin")
        }
    }

    func testRejectsEmptyFile() {
        assertGraphError(.invalidModel, ["empty.onnx: ", "not an ONNX model", "empty"]) {
            try ONNXFixture.load("empty.onnx")
        }
    }

    func testRejectsNPYFile() {
        assertGraphError(.invalidModel, ["f32_2x3x4.npy: ", "not an ONNX model"]) {
            try Model(contentsOf: Fixture.url("f32_2x3x4.npy"))
        }
    }

    func testRejectsMissingFile() {
        assertGraphError(.invalidModel, ["no_such_model.onnx: ", "does not exist"]) {
            try ONNXFixture.load("no_such_model.onnx")
        }
    }

    func testRejectsFolder() {
        assertGraphError(.invalidModel, ["onnx: ", "folder"]) {
            try Model(contentsOf: ONNXFixture.folder)
        }
    }

    func testRejectsProtobufWithoutGraph() {
        // ir_version = 8 and nothing else: valid protobuf, not a model.
        assertGraphError(.invalidModel, ["nograph.onnx: ", "no graph"]) {
            try Model(serializedData: Data([0x08, 0x08]), source: "nograph.onnx")
        }
        // An empty graph (field 7, length 0).
        assertGraphError(.invalidModel, ["emptygraph.onnx: ", "no nodes and no outputs"]) {
            try Model(serializedData: Data([0x08, 0x08, 0x3A, 0x00]), source: "emptygraph.onnx")
        }
    }

    func testDamagedModelsThrowRatherThanCrash() throws {
        let data = try Data(contentsOf: ONNXFixture.url("weights.onnx"))
        var variants = (0..<data.count).map { data.prefix($0) }
        for i in data.indices {
            for value: UInt8 in [0x00, 0x7F, 0xFF, data[i] ^ 0x01] {
                var damaged = data
                damaged[i] = value
                variants.append(damaged)
            }
        }
        for variant in variants {
            do {
                _ = try Model(serializedData: Data(variant), source: "damaged.onnx")
            } catch {
                XCTAssertTrue(error.description.hasPrefix("damaged.onnx: "), "\(error)")
            }
        }
    }

    // MARK: External data errors

    func testRejectsMissingExternalFile() {
        assertGraphError(.invalidModel, ["missing_external.onnx: ", "initializer 'mw'", "'missing.bin'", "does not exist"]) {
            try ONNXFixture.load("missing_external.onnx")
        }
    }

    func testRejectsShortExternalFile() {
        assertGraphError(.invalidModel, ["short_external.onnx: ", "initializer 'sw'", "'external.onnx.data'", "only 32 bytes"]) {
            try ONNXFixture.load("short_external.onnx")
        }
    }

    func testRejectsExternalDataWithoutBaseDirectory() throws {
        let data = try Data(contentsOf: ONNXFixture.url("external.onnx"))
        assertGraphError(.invalidModel, ["<memory>: ", "initializer 'ew'", "'external.onnx.data'"]) {
            try Model(serializedData: data)
        }
    }

    // MARK: Writing

    func testRoundTripsOnnxWrittenModel() throws {
        let folder = try makeTemporaryFolder(for: self)
        let original = try ONNXFixture.load("weights.onnx")
        let url = folder.appendingPathComponent("copy.onnx")
        try original.write(to: url)
        let copy = try Model(contentsOf: url)
        assertSameModel(copy, original)
        // No temporary file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["copy.onnx"])
    }

    func testRoundTripsSwiftBuiltModel() throws {
        let attributes: [String: AttributeValue] = [
            "i": .int(-3), "f": .float(1.5), "s": .string("NCHW ✓"), "ints": .ints([0, 1, -1]),
            "floats": .floats([]), "strings": .strings(["x", ""]),
            "t": .tensor(Tensor(shape: [2, 1], scalars: [Int8(-1), 1])),
        ]
        let graph = Graph(
            name: "built",
            nodes: [
                Node(name: "conv", opType: "Conv", inputs: ["in", "w", ""], outputs: ["c"], attributes: attributes),
                Node(name: "q", opType: "QuantizeLinear", domain: "com.microsoft", inputs: ["c", "scale", "zp"], outputs: ["out"]),
            ],
            inputs: [ValueInfo(name: "in", elementType: .f32, shape: [.symbolic("n"), .fixed(3), .symbolic("?")])],
            outputs: [ValueInfo(name: "out", elementType: .u8, shape: nil)],
            initializers: [
                "w": Tensor(shape: [2, 3], scalars: (0..<6).map { Float($0) - 2.5 }),
                "scale": Tensor(shape: [], scalars: [Float(0.1)]),
                "zp": Tensor(shape: [], scalars: [UInt8(128)]),
                "s32": Tensor(shape: [0], scalars: [Int32]()),
                "i64": Tensor(shape: [1, 1], scalars: [Int64.min]),
            ],
            valueInfo: ["c": ValueInfo(name: "c", elementType: nil, shape: [.fixed(1)])])
        let model = Model(
            graph: graph, opsetVersion: 17, opsetImports: ["com.microsoft": 1],
            metadata: ["character": "x\ny"], producerVersion: "0.1")
        XCTAssertEqual(model.opsetImports, ["": 17, "com.microsoft": 1])

        let data = try model.serializedData()
        XCTAssertEqual(try model.serializedData(), data, "encoding is deterministic")
        let copy = try Model(serializedData: data)
        assertSameModel(copy, model)
        XCTAssertEqual(copy.producerName, "swift-dnnl-quantization")
        XCTAssertEqual(copy.irVersion, 8)
    }

    func testWriteToMissingFolderFails() throws {
        let model = try ONNXFixture.load("attributes.onnx")
        let url = URL(fileURLWithPath: "/nonexistent-folder-\(UUID().uuidString)/m.onnx")
        assertGraphError(.invalidModel, ["m.onnx", "does not exist"]) {
            try model.write(to: url)
        }
    }

    private func assertSameModel(_ a: Model, _ b: Model, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.graph.name, b.graph.name, file: file, line: line)
        XCTAssertEqual(a.graph.nodes, b.graph.nodes, file: file, line: line)
        XCTAssertEqual(a.graph.inputs, b.graph.inputs, file: file, line: line)
        XCTAssertEqual(a.graph.outputs, b.graph.outputs, file: file, line: line)
        XCTAssertEqual(a.graph.valueInfo, b.graph.valueInfo, file: file, line: line)
        XCTAssertEqual(a.graph.initializers, b.graph.initializers, file: file, line: line)
        XCTAssertEqual(a.metadata, b.metadata, file: file, line: line)
        XCTAssertEqual(a.opsetVersion, b.opsetVersion, file: file, line: line)
        XCTAssertEqual(a.opsetImports, b.opsetImports, file: file, line: line)
        XCTAssertEqual(a.producerName, b.producerName, file: file, line: line)
        XCTAssertEqual(a.producerVersion, b.producerVersion, file: file, line: line)
        XCTAssertEqual(a.irVersion, b.irVersion, file: file, line: line)
    }
}
