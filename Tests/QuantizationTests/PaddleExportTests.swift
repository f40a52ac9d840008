import Foundation
import TestSupport
import XCTest

@testable import Quantization

/// Graphs written by a real exporter: a ResNet stem + bottleneck blocks, a MobileNet-V2 stem
/// + inverted-residual blocks and a 3-D CNN block (Conv3D) built with `paddle.nn` and exported
/// by paddle2onnx (opset 13), as
/// `Models/paddle_export.py blocks` makes them (`$DNNL_QUANT_CACHE/paddle/blocks`: the model,
/// an input, onnxruntime's FP32 output for it, 8 calibration samples). paddle2onnx wraps ops in
/// `Identity` nodes (`Add -> Identity -> Relu`, `BN -> Identity -> Clip -> Identity`); after
/// canonicalization every Conv must absorb its BN, activation and residual sum, in FP32 and INT8.
final class PaddleExportTests: XCTestCase {
    private struct Export {
        let model: Model
        let input: String
        let output: String
        let x: Tensor
        let reference: Tensor
        let calibration: URL
    }

    private func export(_ name: String) throws -> Export {
        let dir = RealModelData.cache.appendingPathComponent("paddle/blocks")
        let files = ["onnx", "json", "input.npy", "output.npy"].map { dir.appendingPathComponent("\(name).\($0)") }
        try RealModelData.require(files + [dir.appendingPathComponent("\(name).calib")])
        struct Info: Decodable { struct IO: Decodable { var name: String }; var input: IO; var output: IO }
        let info = try JSONDecoder().decode(Info.self, from: Data(contentsOf: files[1]))
        return Export(
            model: try Model(contentsOf: files[0]), input: info.input.name, output: info.output.name,
            x: try Tensor(contentsOfNPY: files[2]), reference: try Tensor(contentsOfNPY: files[3]),
            calibration: dir.appendingPathComponent("\(name).calib"))
    }

    /// Ops the engine must have fused away: none of them may be left in the optimized graph.
    private static let fusedAway: Set<String> = ["Identity", "BatchNormalization", "Relu", "Clip", "Add"]

    private func checkFP32(_ name: String, convs: Int) throws {
        let e = try export(name)
        XCTAssertGreaterThan(
            e.model.graph.nodes.filter { $0.opType == "Identity" }.count, 0,
            "\(name): the export has no Identity nodes: it no longer shows what this test is about")
        let session = try InferenceSession(model: e.model)
        let left = session.graph.nodes.filter { Self.fusedAway.contains($0.opType) }.map(\.label)
        XCTAssertEqual(left, [], "\(name): not fused into a convolution")
        // A Conv with nothing after it to fuse (a shortcut whose BN was folded, the residual of
        // another conv's sum) stays a plain Conv.
        XCTAssertEqual(
            session.graph.nodes.filter { $0.opType == "FusedConv" || $0.opType == "Conv" }.count, convs,
            "\(K.opTypes(session.graph))")
        let y = try XCTUnwrap(try session.run([e.input: e.x])[e.output])
        let ref = e.reference.floatValues()
        let range = Double((ref.max() ?? 0) - (ref.min() ?? 0))
        XCTAssertGreaterThan(range, 0)
        assertClose(y.floatValues(), ref.map(Double.init), atol: 1e-4 * range, rtol: 0, "\(name) FP32 vs onnxruntime")
    }

    func testResNetBlockFP32FusesEveryBatchNormActivationAndResidual() throws {
        try checkFP32("resnet_block", convs: 8)
    }

    func testMobileNetV2BlockFP32FusesEveryBatchNormAndReLU6() throws {
        try checkFP32("mobilenetv2_block", convs: 10)
    }

    /// Paddle's fused_conv3d: `paddle.nn.Conv3D` + BatchNorm3D + ReLU and a residual unit on a
    /// [1, 4, 8, 16, 16] clip; every BN, ReLU and the residual Add fuse into 3-D convolutions.
    func testConv3DBlockFP32FusesBatchNormActivationAndResidual() throws {
        try checkFP32("conv3d_block", convs: 3)
    }

    /// PTQ: the QDQ model runs every Conv as an INT8 primitive with its activation and sum
    /// fused, no FP32 step sits between the first and the last INT8 convolution, and the INT8
    /// result agrees with the QDQ reference semantics (the same QDQ graph run unfused: FP32
    /// convolutions on dequantized values) and with FP32.
    private func checkINT8(_ name: String, convs: Int) throws {
        let e = try export(name)
        let reader = try CalibrationReader(directory: e.calibration, inputNames: [e.input])
        let q = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(e.model, calibrationData: reader)
        let units = q.report.nodes.filter { $0.opType == "Conv" }
        XCTAssertEqual(units.count, convs, "\(name): \(q.report.nodes.filter { $0.precision != "int8" }.map { "\($0.node): \($0.reason ?? "")" })")
        let session = try InferenceSession(model: q.model)
        XCTAssertEqual(session.graph.nodes.filter { $0.opType == "QConv" }.count, convs, "\(K.opTypes(session.graph))")
        let left = session.graph.nodes.filter { Self.fusedAway.contains($0.opType) }.map(\.label)
        XCTAssertEqual(left, [], "\(name): left between INT8 convolutions")
        let steps = try session.nodeReport(for: [e.input: e.x])
        let convSteps = steps.indices.filter { steps[$0].node.hasPrefix("QConv") }
        if let first = convSteps.first, let last = convSteps.last {
            let fp32 = steps[first...last].filter { $0.precision != .int8 }.map { "\($0.node): \($0.detail)" }
            XCTAssertEqual(fp32, [], "\(name): FP32 steps between INT8 convolutions")
        }
        let y = try XCTUnwrap(try session.run([e.input: e.x])[e.output]).floatValues()
        let qdq = try InferenceSession(model: q.model, options: .init(optimize: false))
        let yRef = try XCTUnwrap(try qdq.run([e.input: e.x])[e.output]).floatValues()
        let fp32 = e.reference.floatValues()
        func relativeL2(_ a: [Float], _ b: [Float]) -> Double {
            let num = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            return (num / max(b.reduce(0.0) { $0 + Double($1) * Double($1) }, 1e-30)).squareRoot()
        }
        let vsQDQ = relativeL2(y, yRef), vsFP32 = relativeL2(y, fp32)
        print("paddle2onnx \(name): INT8 relative L2 vs QDQ reference \(vsQDQ), vs FP32 \(vsFP32)")
        // The INT8 kernels and the reference differ only in where results are rounded (one
        // output step per requantization); the quantization error itself is what vsFP32 shows.
        XCTAssertLessThan(vsQDQ, 0.02, "\(name): INT8 kernels vs the QDQ reference")
        XCTAssertLessThan(vsFP32, 0.1, "\(name): INT8 vs FP32")
    }

    func testResNetBlockINT8RunsEveryConvolutionInINT8() throws {
        try checkINT8("resnet_block", convs: 8)
    }

    func testMobileNetV2BlockINT8RunsEveryConvolutionInINT8() throws {
        try checkINT8("mobilenetv2_block", convs: 10)
    }

    func testConv3DBlockINT8RunsEveryConvolutionInINT8() throws {
        try checkINT8("conv3d_block", convs: 3)
    }

    private typealias K = PassKit
}
