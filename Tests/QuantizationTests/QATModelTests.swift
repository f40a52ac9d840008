import Foundation
import Quantization
import XCTest

/// A real quantization-aware-trained model (issue 9): a small CNN (4 Conv including a depthwise
/// one and a residual Add, 2 MatMul) trained on 4000 real MNIST digits with Paddle's QAT, as
/// `Models/qat_mnist.py` makes it (`$DNNL_QUANT_CACHE/qat/mnist`): the QDQ model
/// (`mnist_qat.onnx`: s8 per-tensor weights behind DequantizeLinear, every Conv/MatMul input
/// through QuantizeLinear -> DequantizeLinear with zero point 0), its FP32 twin
/// (`mnist_fp32.onnx`, paddle2onnx), the 1000 held-out digits (`heldout.npz`, never trained on)
/// and onnxruntime's accuracies on them (`mnist.json`). The issue's bars: our INT8 accuracy
/// within 0.3 points of onnxruntime's on the same QDQ file and at least the FP32 twin's minus
/// 0.5 points, every Conv/MatMul an INT8 unit; the FP32 twin within 0.1 points of onnxruntime.
final class QATModelTests: XCTestCase {
    private struct Info: Decodable {
        struct Accuracy: Decodable {
            var ort_fp32: Double
            var ort_qdq: Double
            var ort_qdq_disable_all: Double
        }
        var accuracy: Accuracy
    }

    private struct Fixture {
        let qat: URL
        let fp32: URL
        let info: Info
        /// [1000, 1, 28, 28] float32, pixel / 255.
        let x: Tensor
        let labels: [Int]
    }

    private static let batch = 100

    private func fixture() throws -> Fixture {
        let dir = RealModelData.cache.appendingPathComponent("qat/mnist")
        let files = ["mnist_qat.onnx", "mnist_fp32.onnx", "heldout.npz", "mnist.json"].map { dir.appendingPathComponent($0) }
        if let m = files.first(where: { !FileManager.default.fileExists(atPath: $0.path) }) {
            throw PTQData.missing("QAT MNIST model missing (\(m.path)): run Models/qat_mnist.py (Tests/prepare_fixtures.sh)")
        }
        let info = try JSONDecoder().decode(Info.self, from: Data(contentsOf: files[3]))
        let npz = try NPZ.read(contentsOf: files[2])
        let x = try XCTUnwrap(npz["x"], "heldout.npz has no x"), y = try XCTUnwrap(npz["y"], "heldout.npz has no y")
        XCTAssertEqual(x.shape, [1000, 1, 28, 28])
        XCTAssertEqual(x.elementType, .f32)
        XCTAssertEqual(y.shape, [1000])
        return Fixture(qat: files[0], fp32: files[1], info: info, x: x, labels: y.intValues())
    }

    /// The held-out digits in batches of `batch` along dim 0.
    private func batches(_ x: Tensor) -> [Tensor] {
        let values = x.floatValues(), per = x.shape.dropFirst().reduce(1, *)
        return stride(from: 0, to: x.shape[0], by: Self.batch).map { start in
            let n = min(Self.batch, x.shape[0] - start)
            return Tensor(shape: [n] + Array(x.shape.dropFirst()), scalars: Array(values[(start * per)..<((start + n) * per)]))
        }
    }

    /// Accuracy of `session` on the held-out digits (argmax of the 10 logits).
    private func accuracy(_ session: InferenceSession, model: Model, _ f: Fixture) throws -> Double {
        let input = model.inputs[0].name, output = model.outputs[0].name
        var predictions: [Int] = []
        for xb in batches(f.x) {
            let logits = try XCTUnwrap(try session.run([input: xb])[output], "no output \(output)")
            XCTAssertEqual(logits.shape, [xb.shape[0], 10])
            let v = logits.floatValues()
            for r in 0..<xb.shape[0] {
                let row = v[(r * 10)..<((r + 1) * 10)]
                predictions.append((row.indices.max { row[$0] < row[$1] } ?? -1) - r * 10)
            }
        }
        XCTAssertEqual(predictions.count, f.labels.count)
        return Double(zip(predictions, f.labels).filter { $0 == $1 }.count) / Double(f.labels.count)
    }

    /// The QDQ model on our INT8 engine: every Conv and MatMul of the file runs as an INT8 unit
    /// (the report's step for it is `.int8`), and the accuracy meets the issue's bars.
    func testQDQModelRunsInINT8WithinOnnxruntimesAccuracy() throws {
        let f = try fixture()
        let model = try Model(contentsOf: f.qat)
        let units = model.graph.nodes.filter { ["Conv", "MatMul", "Gemm"].contains($0.opType) }
        XCTAssertEqual(units.count, 6, "the file's Conv/MatMul nodes: \(units.map(\.label))")
        XCTAssertGreaterThan(model.graph.nodes.filter { $0.opType == "DequantizeLinear" }.count, 0, "not a QDQ file")
        let session = try InferenceSession(model: model)

        let steps = try session.nodeReport(for: [model.inputs[0].name: batches(f.x)[0]])
        print("QATModelTests: plan of \(f.qat.lastPathComponent) (batch \(Self.batch)):")
        for s in steps {
            print("  \(s.precision.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) \(s.node): \(s.detail)")
        }
        for unit in units {
            let mine = steps.filter { $0.node.contains("'\(unit.name)'") }
            XCTAssertFalse(mine.isEmpty, "\(unit.label) has no step of its own in the plan (fused into an FP32 node or renamed)")
            for s in mine {
                XCTAssertEqual(s.precision, .int8, "\(unit.label) runs as \(s.node): \(s.detail)")
            }
        }

        let ours = try accuracy(session, model: model, f)
        let a = f.info.accuracy
        print(
            "QATModelTests: held-out accuracy, ours INT8 \(ours), onnxruntime QDQ \(a.ort_qdq) (ORT_DISABLE_ALL "
                + "\(a.ort_qdq_disable_all)), onnxruntime FP32 twin \(a.ort_fp32)")
        XCTAssertLessThanOrEqual(abs(ours - a.ort_qdq), 0.003 + 1e-9, "ours INT8 \(ours) vs onnxruntime's \(a.ort_qdq) on the same QDQ file")
        XCTAssertGreaterThanOrEqual(ours, a.ort_fp32 - 0.005 - 1e-9, "ours INT8 \(ours) vs the FP32 twin's \(a.ort_fp32) under onnxruntime")
    }

    /// The FP32 twin (paddle2onnx, before QAT) on our engine: within 0.1 points of onnxruntime.
    func testFP32TwinMatchesOnnxruntimesAccuracy() throws {
        let f = try fixture()
        let model = try Model(contentsOf: f.fp32)
        let ours = try accuracy(try InferenceSession(model: model), model: model, f)
        print("QATModelTests: FP32 twin held-out accuracy, ours \(ours), onnxruntime \(f.info.accuracy.ort_fp32)")
        XCTAssertLessThanOrEqual(abs(ours - f.info.accuracy.ort_fp32), 0.001 + 1e-9, "FP32 twin: ours \(ours) vs onnxruntime")
    }
}
