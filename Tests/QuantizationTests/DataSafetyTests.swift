import Foundation
import XCTest

@testable import Quantization

/// Files and flags cannot make the library read outside a model's folder, replace a user's
/// input, leave a mix of old and new outputs, or write a quantized model that computes
/// something else than the FP32 model without saying so.
final class DataSafetyTests: XCTestCase {
    typealias K = PassKit

    private var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(for: self)
    }

    // MARK: external data

    /// A model whose initializer `W` [2, 2] is stored in the external file `location`.
    private func externalDataModel(location: String) throws -> URL {
        let g = Graph(
            name: "ext", nodes: [Node(name: "mm", opType: "MatMul", inputs: ["x", "W"], outputs: ["y"])],
            inputs: [K.f32("x", [1, 2])], outputs: [K.f32("y", [1, 2])], initializers: ["W": K.floats([2, 2], [1, 2, 3, 4])])
        var proto = try Onnx_ModelProto(serializedBytes: try Model(graph: g, opsetVersion: 13).serializedData())
        var w = proto.graph.initializer[0]
        w.rawData = Data()
        w.floatData = []
        w.dataLocation = .external
        var entry = Onnx_StringStringEntryProto()
        entry.key = "location"
        entry.value = location
        w.externalData = [entry]
        proto.graph.initializer[0] = w
        let url = folder.appendingPathComponent("model.onnx")
        try proto.serializedData().write(to: url)
        return url
    }

    private func floatBytes(_ v: [Float]) -> Data { v.withUnsafeBytes { Data($0) } }

    func testExternalDataInsideTheFolderIsRead() throws {
        try floatBytes([1, 2, 3, 4]).write(to: folder.appendingPathComponent("w.bin"))
        let m = try Model(contentsOf: try externalDataModel(location: "w.bin"))
        XCTAssertEqual(m.graph.initializers["W"]?.floatValues(), [1, 2, 3, 4])
    }

    func testExternalDataThroughASymbolicLinkOutsideTheFolderIsRefused() throws {
        let outside = try makeTemporaryFolder(for: self)
        let secret = outside.appendingPathComponent("secret.bin")
        try floatBytes([9, 9, 9, 9]).write(to: secret)
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("w.bin"), withDestinationURL: secret)
        let url = try externalDataModel(location: "w.bin")
        XCTAssertThrowsError(try Model(contentsOf: url)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("outside the model's folder"), text)
            XCTAssertTrue(text.contains("initializer 'W'"), text)
        }
        // A linked folder is caught the same way.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("w.bin"))
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("data"), withDestinationURL: outside)
        XCTAssertThrowsError(try Model(contentsOf: try externalDataModel(location: "data/secret.bin")))
    }

    // MARK: quantize

    /// Writes the residual test model and `count` calibration samples; returns (model, folder).
    private func quantizeFixtures(count: Int = 4) throws -> (model: URL, calibration: URL) {
        let model = folder.appendingPathComponent("fp32.onnx")
        try Model(graph: QuantizerTests.residualGraph(), opsetVersion: 13).write(to: model)
        let calibration = folder.appendingPathComponent("calib")
        try FileManager.default.createDirectory(at: calibration, withIntermediateDirectories: true)
        for (i, s) in QuantizerTests.samples(count).enumerated() {
            try s["x"]!.writeNPY(to: calibration.appendingPathComponent("s\(i).npy"))
        }
        return (model, calibration)
    }

    func testQuantizeRefusesToReplaceTheModel() throws {
        let (model, calibration) = try quantizeFixtures()
        let before = try Data(contentsOf: model)
        // The same file by another spelling, and through a hard link.
        let dotted = model.deletingLastPathComponent().appendingPathComponent("./" + model.lastPathComponent).path
        let link = folder.appendingPathComponent("link.onnx")
        try FileManager.default.linkItem(at: model, to: link)
        for output in [model.path, dotted, link.path] {
            let r = try CLI.run(["quantize", model.path, "--calibration", calibration.path, "--output", output])
            XCTAssertFalse(r.signalled, r.stderr)
            XCTAssertNotEqual(r.status, 0, "--output \(output) replaced the model: \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("same file as the model"), r.stderr)
            XCTAssertEqual(try Data(contentsOf: model), before, "the FP32 model changed")
        }
        let r = try CLI.run([
            "quantize", model.path, "--calibration", calibration.path, "--output", folder.appendingPathComponent("q.onnx").path,
            "--report", folder.appendingPathComponent("q.onnx").path,
        ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--report"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("q.onnx").path))
    }

    func testQuantizeRefusesAModelBelowTheSQNRFloor() throws {
        let (model, calibration) = try quantizeFixtures()
        let out = folder.appendingPathComponent("int8.onnx")
        // Far above what 8 bits can give: refused, nothing written.
        let refused = try CLI.run(["quantize", model.path, "--calibration", calibration.path, "--output", out.path, "--min-output-sqnr", "150"])
        XCTAssertFalse(refused.signalled, refused.stderr)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("below the floor of 150.0 dB"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("'logits'"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        // The default floor (10 dB) lets an accurate model through.
        let accepted = try CLI.run(["quantize", model.path, "--calibration", calibration.path, "--output", out.path])
        XCTAssertEqual(accepted.status, 0, accepted.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.path))
    }

    /// One sample with a huge element sets the input's range alone: `quantize` warns and names
    /// it, and the reported output SQNR is not flattered by that sample (it is at most the SQNR
    /// measured independently on the other samples, plus a little).
    func testOutlierCalibrationSampleIsReportedAndDoesNotHideALowSQNR() throws {
        var samples = QuantizerTests.samples(8)
        var values = samples[5]["x"]!.floatValues()
        values[17] = 1e30
        samples[5]["x"] = K.floats([1, 3, 8, 8], values)
        let model = Model(graph: QuantizerTests.residualGraph(), opsetVersion: 13)
        var options = PostTrainingQuantizer.Options(calibration: .minMax)
        options.analysisSamples = 8
        let result = try PostTrainingQuantizer(options).quantize(model, calibrationData: samples)
        let warning = result.report.warnings.first { $0.contains("outlier") }
        XCTAssertNotNil(warning, "\(result.report.warnings)")
        XCTAssertTrue(warning?.contains("calibration sample 6") ?? false, warning ?? "")
        XCTAssertTrue(warning?.contains("'x'") ?? false, warning ?? "")

        let s32 = try InferenceSession(model: model), s8 = try InferenceSession(model: result.model)
        var sx = 0.0, se = 0.0
        for (i, s) in samples.enumerated() where i != 5 {
            let a = try s32.run(s)["logits"]!.floatValues(), b = try s8.run(s)["logits"]!.floatValues()
            for (x, y) in zip(a, b) { sx += Double(x * x); se += Double((x - y) * (x - y)) }
        }
        let measured = se == 0 ? 200 : 10 * log10(sx / se)
        let reported = try XCTUnwrap(result.report.outputSQNR["logits"])
        XCTAssertLessThanOrEqual(reported, measured + 3, "reported \(reported) dB, measured without the outlier \(measured) dB")
    }

    // MARK: run

    func testRunWritesAllOutputsOrNone() throws {
        let g = Graph(
            name: "two",
            nodes: [
                Node(name: "r", opType: "Relu", inputs: ["x"], outputs: ["a"]),
                Node(name: "s", opType: "Sigmoid", inputs: ["x"], outputs: ["b"]),
            ], inputs: [K.f32("x", [1, 3])], outputs: [K.f32("a", [1, 3]), K.f32("b", [1, 3])])
        let model = folder.appendingPathComponent("two.onnx")
        try Model(graph: g, opsetVersion: 13).write(to: model)
        let input = folder.appendingPathComponent("x.npy")
        try K.floats([1, 3], [-1, 0, 2]).writeNPY(to: input)
        let out = folder.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out.appendingPathComponent("b.npy"), withIntermediateDirectories: true)
        let old = Data("earlier output".utf8)
        try old.write(to: out.appendingPathComponent("a.npy"))
        let r = try CLI.run(["run", model.path, "--input", "x=\(input.path)", "--output-dir", out.path])
        XCTAssertFalse(r.signalled, r.stderr)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("b.npy"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("a.npy")), old, "a.npy was replaced although b.npy failed")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: out.path)), ["a.npy", "b.npy"], "temporary files left")
    }
}
