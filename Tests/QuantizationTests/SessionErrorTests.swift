import Foundation
import Quantization
import XCTest

/// How sessions and `dnnl-quant run` fail: bad inputs, unsupported operators, operators that
/// need constant inputs, and bad command lines. Every error names the file, node, input or flag
/// at fault; the command line exits non-zero without crashing and writes no partial output.
final class SessionErrorTests: XCTestCase {
    // MARK: models

    private var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(for: self)
    }

    /// Writes `graph` as an ONNX file and reads it back, so that the model's source is a path.
    private func model(
        _ name: String, _ graph: Graph, opset: Int = 13,
        imports: [String: Int] = [:]
    ) throws -> Model {
        let url = folder.appendingPathComponent(name + ".onnx")
        try Model(graph: graph, opsetVersion: opset, opsetImports: imports).write(to: url)
        let m = try Model(contentsOf: url)
        XCTAssertEqual(m.source, url.path)
        return m
    }

    private func f32(_ name: String, _ dims: [ShapeDimension]) -> ValueInfo {
        ValueInfo(name: name, elementType: .f32, shape: dims)
    }

    /// `y = x + b`: x [N, 3, 4] and b [3, 4] (N dynamic).
    private func addModel() throws -> Model {
        let dims: [ShapeDimension] = [.symbolic("N"), .fixed(3), .fixed(4)]
        return try model(
            "add",
            Graph(
                name: "add", nodes: [Node(name: "add", opType: "Add", inputs: ["x", "b"], outputs: ["y"])],
                inputs: [f32("x", dims), f32("b", [.fixed(3), .fixed(4)])], outputs: [f32("y", dims)]))
    }

    private func floats(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { Float($0) * 0.5 - 2 })
    }

    private func assertBadInput(
        _ m: Model, _ session: InferenceSession, _ feeds: [String: Tensor],
        mentions parts: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let out = try session.run(feeds)
            XCTFail("expected a badInput error mentioning \(parts), got outputs \(out.keys.sorted())", file: file, line: line)
        } catch {
            XCTAssertEqual(error.kind, .badInput, "\(error)", file: file, line: line)
            for part in [m.source] + parts where !error.description.contains(part) {
                XCTFail("'\(error)' does not mention '\(part)'", file: file, line: line)
            }
        }
    }

    // MARK: bad inputs

    func testWrongInputName() throws {
        let m = try addModel(), s = try InferenceSession(model: m)
        assertBadInput(m, s, ["x": floats([2, 3, 4]), "b": floats([3, 4]), "z": floats([3, 4])], mentions: ["'z'"])
    }

    func testMissingInput() throws {
        let m = try addModel(), s = try InferenceSession(model: m)
        assertBadInput(m, s, ["x": floats([2, 3, 4])], mentions: ["'b'", "missing"])
    }

    func testWrongRank() throws {
        let m = try addModel(), s = try InferenceSession(model: m)
        assertBadInput(m, s, ["x": floats([3, 4]), "b": floats([3, 4])], mentions: ["'x'", "rank 2"])
        assertBadInput(m, s, ["x": floats([1, 2, 3, 4]), "b": floats([3, 4])], mentions: ["'x'", "rank 4"])
    }

    func testWrongFixedDimension() throws {
        let m = try addModel(), s = try InferenceSession(model: m)
        assertBadInput(m, s, ["x": floats([2, 5, 4]), "b": floats([3, 4])], mentions: ["'x'", "dim 1", "5"])
        assertBadInput(m, s, ["x": floats([2, 3, 4]), "b": floats([3, 3])], mentions: ["'b'", "dim 1"])
    }

    func testWrongElementType() throws {
        let m = try addModel(), s = try InferenceSession(model: m)
        let u8 = Tensor(shape: [2, 3, 4], scalars: [UInt8](repeating: 7, count: 24))
        assertBadInput(m, s, ["x": u8, "b": floats([3, 4])], mentions: ["'x'", "u8", "f32"])
        let i64 = Tensor(shape: [3, 4], scalars: [Int64](repeating: 1, count: 12))
        assertBadInput(m, s, ["x": floats([2, 3, 4]), "b": i64], mentions: ["'b'", "i64"])
    }

    /// A zero-element input gives zero-element outputs (like onnxruntime), computed by the
    /// Swift evaluators: no oneDNN primitive sees it.
    func testEmptyTensor() throws {
        let m = try addModel(), s = try InferenceSession(model: m)
        let out = try s.run(["x": Tensor(zeros: [0, 3, 4], elementType: .f32), "b": floats([3, 4])])
        XCTAssertEqual(out.values.first?.shape, [0, 3, 4])
        XCTAssertEqual(try s.nodeReport(for: ["x": Tensor(zeros: [0, 3, 4], elementType: .f32), "b": floats([3, 4])]).first?.precision, .swift)
    }

    /// A rejected call leaves the session usable.
    func testSessionWorksAfterBadInputs() throws {
        let m = try addModel(), s = try InferenceSession(model: m)
        assertBadInput(m, s, ["x": floats([2, 5, 4]), "b": floats([3, 4])], mentions: ["'x'"])
        let y = try XCTUnwrap(s.run(["x": floats([2, 3, 4]), "b": floats([3, 4])])["y"])
        let x = floats([2, 3, 4]).scalars(as: Float.self), b = floats([3, 4]).scalars(as: Float.self)
        XCTAssertEqual(y.scalars(as: Float.self), x.indices.map { x[$0] + b[$0 % 12] })
    }

    // MARK: unsupported operators

    func testUnsupportedOperatorFailsAtSessionCreation() throws {
        let m = try model(
            "nms",
            Graph(
                name: "nms",
                nodes: [
                    Node(name: "relu", opType: "Relu", inputs: ["boxes"], outputs: ["r"]),
                    Node(name: "suppress", opType: "NonMaxSuppression", inputs: ["r", "scores"], outputs: ["selected"]),
                ],
                inputs: [f32("boxes", [.fixed(1), .fixed(4), .fixed(4)]), f32("scores", [.fixed(1), .fixed(1), .fixed(4)])],
                outputs: [ValueInfo(name: "selected", elementType: .i64, shape: [.symbolic("K"), .fixed(3)])]), opset: 11)
        assertCreationFails(m, mentions: ["NonMaxSuppression 'suppress'", "opset 11"])
    }

    /// An attribute no version of the operator defines is refused (onnxruntime: "Unrecognized
    /// attribute"), naming node and attribute; the attributes of older versions are accepted.
    func testUnknownAttributeFailsAtSessionCreation() throws {
        let bad = Graph(
            name: "typo", nodes: [Node(name: "act", opType: "LeakyRelu", inputs: ["x"], outputs: ["y"], attributes: ["alpah": .float(0.2)])],
            inputs: [f32("x", [.fixed(2)])], outputs: [f32("y", [.fixed(2)])])
        assertCreationFails(try model("typo", bad), mentions: ["LeakyRelu 'act'", "'alpah'", "alpha"], kind: .invalidModel)
        let old = Graph(
            name: "old", nodes: [Node(name: "add", opType: "Add", inputs: ["x", "x"], outputs: ["y"], attributes: ["broadcast": .int(0)])],
            inputs: [f32("x", [.fixed(2)])], outputs: [f32("y", [.fixed(2)])])
        XCTAssertNoThrow(try InferenceSession(model: try model("old", old)))
    }

    func testCustomDomainOperatorFailsAtSessionCreation() throws {
        let m = try model(
            "custom",
            Graph(
                name: "custom",
                nodes: [Node(name: "mine", opType: "Relu", domain: "com.example", inputs: ["x"], outputs: ["y"])],
                inputs: [f32("x", [.fixed(2)])], outputs: [f32("y", [.fixed(2)])]),
            imports: ["com.example": 1])
        assertCreationFails(m, mentions: ["Relu 'mine'", "com.example", "opset 13"])
    }

    private func assertCreationFails(
        _ m: Model, mentions parts: [String], kind: GraphError.Kind = .unsupportedOperator, file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            _ = try InferenceSession(model: m)
            XCTFail("expected an \(kind) error", file: file, line: line)
        } catch {
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            for part in [m.source] + parts where !error.description.contains(part) {
                XCTFail("'\(error)' does not mention '\(part)'", file: file, line: line)
            }
        }
    }

    // MARK: operators that need constant inputs

    /// Each model is valid and accepted at creation; its first run fails naming the node and
    /// the run-time input it cannot take.
    func testOperatorsNeedingConstantsGivenRunTimeValues() throws {
        let cases: [(String, Graph, [String: Tensor], [String])] = [
            (
                "reshape_computed_shape",
                Graph(
                    name: "reshape_computed_shape",
                    nodes: [
                        Node(name: "plus", opType: "Add", inputs: ["s", "zero"], outputs: ["s2"]),
                        Node(name: "r", opType: "Reshape", inputs: ["x", "s2"], outputs: ["y"]),
                    ],
                    inputs: [f32("x", [.fixed(4)]), ValueInfo(name: "s", elementType: .i64, shape: [.fixed(2)])],
                    outputs: [f32("y", [.fixed(2), .fixed(2)])],
                    initializers: ["zero": Tensor(shape: [2], scalars: [Int64(0), 0])]),
                ["x": floats([4]), "s": Tensor(shape: [2], scalars: [Int64(2), 2])], ["Reshape 'r'", "'s2'", "sets the output shape"]
            )
        ]
        for (name, graph, feeds, parts) in cases {
            let m = try model(name, graph)
            let s: InferenceSession
            do { s = try InferenceSession(model: m) } catch {
                XCTFail("\(name): creation should succeed, got \(error)")
                continue
            }
            do {
                let out = try s.run(feeds)
                XCTFail("\(name): expected an error naming \(parts), got \(out.keys.sorted())")
            } catch {
                XCTAssertNotEqual(error.kind, .badInput, "\(name): \(error)")
                XCTAssertNotEqual(error.kind, .runtime, "\(name): a oneDNN error instead of a clear one: \(error)")
                for part in parts where !error.description.contains(part) {
                    XCTFail("\(name): '\(error)' does not mention \(part)")
                }
            }
        }
    }

    // MARK: dnnl-quant run

    private func runCLI(_ arguments: [String]) throws -> CLIResult { try CLI.run(arguments) }

    /// A one-input model (`y = Relu(x)`, x [1, 3]) and an input file for it.
    private func cliFixtures() throws -> (model: URL, input: URL) {
        let m = try model(
            "relu",
            Graph(
                name: "relu", nodes: [Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["y"])],
                inputs: [f32("x", [.fixed(1), .fixed(3)])], outputs: [f32("y", [.fixed(1), .fixed(3)])]))
        let input = folder.appendingPathComponent("x.npy")
        try Tensor(shape: [1, 3], scalars: [Float(-1), 0, 2]).writeNPY(to: input)
        return (URL(fileURLWithPath: m.source), input)
    }

    private func files(under url: URL) -> [String] {
        (FileManager.default.enumerator(atPath: url.path)?.allObjects as? [String]) ?? []
    }

    /// Runs `dnnl-quant run` expecting a clean failure that mentions `parts` on stderr and
    /// leaves `outputDir` without files.
    private func assertCLIFails(
        _ arguments: [String], mentions parts: [String], outputDir: URL,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let r = try runCLI(["run"] + arguments)
        XCTAssertFalse(r.signalled, "dnnl-quant crashed (signal \(r.status)): \(r.stderr)", file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "dnnl-quant should fail: \(r.stdout)", file: file, line: line)
        for part in parts where !r.stderr.contains(part) {
            XCTFail("stderr '\(r.stderr)' does not mention '\(part)'", file: file, line: line)
        }
        XCTAssertEqual(files(under: outputDir), [], "partial output in \(outputDir.path)", file: file, line: line)
    }

    func testCLIRunsAValidModel() throws {
        let (modelURL, input) = try cliFixtures()
        let out = folder.appendingPathComponent("out")
        let r = try runCLI(["run", modelURL.path, "--input", "x=\(input.path)", "--output-dir", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(
            try Tensor(contentsOfNPY: out.appendingPathComponent("y.npy")),
            Tensor(shape: [1, 3], scalars: [Float(0), 0, 2]))
    }

    func testCLITruncatedModel() throws {
        let (modelURL, input) = try cliFixtures()
        let data = try Data(contentsOf: modelURL)
        let truncated = folder.appendingPathComponent("truncated.onnx")
        try data.prefix(data.count * 6 / 10).write(to: truncated)
        let out = folder.appendingPathComponent("out")
        try assertCLIFails(
            [truncated.path, "--input", "x=\(input.path)", "--output-dir", out.path],
            mentions: [truncated.path], outputDir: out)
    }

    func testCLINotAnONNXFile() throws {
        let (_, input) = try cliFixtures()
        let out = folder.appendingPathComponent("out")
        // An .npy file and a text file given as the model.
        try assertCLIFails(
            [input.path, "--input", "x=\(input.path)", "--output-dir", out.path],
            mentions: [input.path], outputDir: out)
        let text = folder.appendingPathComponent("notes.onnx")
        try Data("this is not a model\n".utf8).write(to: text)
        try assertCLIFails(
            [text.path, "--input", "x=\(input.path)", "--output-dir", out.path],
            mentions: [text.path], outputDir: out)
        let missing = folder.appendingPathComponent("missing.onnx")
        try assertCLIFails(
            [missing.path, "--input", "x=\(input.path)", "--output-dir", out.path],
            mentions: [missing.path], outputDir: out)
    }

    func testCLIMissingInputFile() throws {
        let (modelURL, _) = try cliFixtures()
        let out = folder.appendingPathComponent("out")
        let missing = folder.appendingPathComponent("nowhere.npy")
        try assertCLIFails(
            [modelURL.path, "--input", "x=\(missing.path)", "--output-dir", out.path],
            mentions: ["--input", missing.path], outputDir: out)
    }

    func testCLIWrongInputName() throws {
        let (modelURL, input) = try cliFixtures()
        let out = folder.appendingPathComponent("out")
        try assertCLIFails(
            [modelURL.path, "--input", "image=\(input.path)", "--output-dir", out.path],
            mentions: ["--input", "'image'", modelURL.path], outputDir: out)
    }

    func testCLIOutputDirUnderARegularFile() throws {
        let (modelURL, input) = try cliFixtures()
        let blocker = folder.appendingPathComponent("blocker")
        try Data("a file, not a folder".utf8).write(to: blocker)
        let out = blocker.appendingPathComponent("out")
        let r = try runCLI(["run", modelURL.path, "--input", "x=\(input.path)", "--output-dir", out.path])
        XCTAssertFalse(r.signalled, "dnnl-quant crashed: \(r.stderr)")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--output-dir"), r.stderr)
        XCTAssertTrue(r.stderr.contains(out.path), r.stderr)
        XCTAssertEqual(try String(contentsOf: blocker, encoding: .utf8), "a file, not a folder")
        XCTAssertEqual(
            Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)),
            ["relu.onnx", "x.npy", "blocker"], "no other files were written")
    }
}
