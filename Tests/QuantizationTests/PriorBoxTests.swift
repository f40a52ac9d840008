import Foundation
import XCTest

@testable import Quantization

/// Paddle's prior_box as the custom node `paddle.PriorBox`, against `paddle.vision.ops.prior_box`
/// (PaddlePaddle 3.3.1) for four attribute sets (`Fixtures/prior_box/make_prior_box_fixtures.py`
/// wrote `prior_box.json`): flip, clip, steps given or derived, offset, one or two min sizes,
/// with and without max sizes, both aspect-ratio orders.
final class PriorBoxTests: XCTestCase {
    typealias K = PassKit

    struct Case: Decodable {
        var feature: [Int], image: [Int], min_sizes: [Float], max_sizes: [Float], aspect_ratios: [Float], variance: [Float]
        var flip: Bool, clip: Bool, steps: [Float], offset: Float, min_max_aspect_ratios_order: Bool
        var boxes_shape: [Int], boxes: [Float], variances: [Float]
    }

    private func graph(_ c: Case, featureType: ElementType = .f32) -> Graph {
        var attributes: [String: AttributeValue] = [
            "min_sizes": .floats(c.min_sizes), "aspect_ratios": .floats(c.aspect_ratios), "variance": .floats(c.variance),
            "flip": .int(c.flip ? 1 : 0), "clip": .int(c.clip ? 1 : 0), "steps": .floats(c.steps), "offset": .float(c.offset),
            "min_max_aspect_ratios_order": .int(c.min_max_aspect_ratios_order ? 1 : 0),
        ]
        if !c.max_sizes.isEmpty { attributes["max_sizes"] = .floats(c.max_sizes) }
        return Graph(
            name: "prior_box",
            nodes: [
                Node(
                    name: "pb", opType: "PriorBox", domain: "paddle", inputs: ["feature", "image"], outputs: ["boxes", "variances"],
                    attributes: attributes)
            ],
            inputs: [K.value("feature", featureType, c.feature), K.f32("image", c.image)],
            outputs: [K.f32("boxes", c.boxes_shape), K.f32("variances", c.boxes_shape)])
    }

    func testMatchesPaddle() throws {
        let data = try Data(contentsOf: Fixture.url("prior_box/prior_box.json"))
        struct File: Decodable { var cases: [Case] }
        let cases = try JSONDecoder().decode(File.self, from: data).cases
        XCTAssertEqual(cases.count, 4)
        for (i, c) in cases.enumerated() {
            let session = try InferenceSession(model: Model(graph: graph(c), opsetVersion: 13, opsetImports: ["paddle": 1]))
            let out = try session.run(["feature": Tensor(zeros: c.feature, elementType: .f32), "image": Tensor(zeros: c.image, elementType: .f32)])
            let boxes = try XCTUnwrap(out["boxes"]), variances = try XCTUnwrap(out["variances"])
            XCTAssertEqual(boxes.shape, c.boxes_shape, "case \(i)")
            XCTAssertEqual(variances.shape, c.boxes_shape, "case \(i)")
            for (j, (a, b)) in zip(boxes.floatValues(), c.boxes).enumerated() where abs(a - b) > 1e-6 {
                XCTFail("case \(i) box value \(j): \(a) vs paddle \(b)")
                break
            }
            XCTAssertEqual(variances.floatValues(), c.variances, "case \(i)")
        }
    }

    /// An int8 feature map (what a quantized SSD backbone hands on) is read for its shape only:
    /// no step of the plan touches it, and the boxes are the same.
    func testInt8FeatureMapIsNotDequantized() throws {
        let data = try Data(contentsOf: Fixture.url("prior_box/prior_box.json"))
        struct File: Decodable { var cases: [Case] }
        let c = try JSONDecoder().decode(File.self, from: data).cases[1]
        let session = try InferenceSession(model: Model(graph: graph(c, featureType: .u8), opsetVersion: 13, opsetImports: ["paddle": 1]))
        let feeds = ["feature": Tensor(zeros: c.feature, elementType: .u8), "image": Tensor(zeros: c.image, elementType: .f32)]
        let out = try session.run(feeds)
        XCTAssertEqual(out["boxes"]?.shape, c.boxes_shape)
        XCTAssertEqual(try session.nodeReport(for: feeds).filter { $0.node.contains("pb") }.count, 0, "PriorBox runs no step")
        for (a, b) in zip(out["boxes"]!.floatValues(), c.boxes) { XCTAssertEqual(a, b, accuracy: 1e-6) }

        // In a QDQ model the feature map reaches PriorBox through a DequantizeLinear: the
        // engine points PriorBox at the int8 tensor and drops the dequantize.
        var g = graph(c)
        g.inputs[0] = K.value("feature_q", .u8, c.feature)
        g.initializers["s"] = K.scalar(0.1)
        g.initializers["z"] = K.u8([], [128])
        g.nodes.insert(Node(name: "dq", opType: "DequantizeLinear", inputs: ["feature_q", "s", "z"], outputs: ["feature"]), at: 0)
        let qdq = try InferenceSession(model: Model(graph: g, opsetVersion: 13, opsetImports: ["paddle": 1]))
        XCTAssertFalse(qdq.graph.nodes.contains { $0.opType == "DequantizeLinear" }, "\(qdq.graph.nodes.map(\.label))")
        let qfeeds = ["feature_q": Tensor(zeros: c.feature, elementType: .u8), "image": Tensor(zeros: c.image, elementType: .f32)]
        XCTAssertEqual(try qdq.nodeReport(for: qfeeds).count, 0, "no run-time step at all")
        XCTAssertEqual(try qdq.run(qfeeds)["boxes"], out["boxes"])
    }
}
