import Foundation
import XCTest

/// `seed-bench` (Benchmarks/seed-bench) end to end on one zoo model, briefly: it exports the
/// model when missing, quantizes it with ours, onnxruntime and OpenVINO (installed into the venv
/// by peers.py), times every engine and prints the table and its JSON. Speed is not asserted
/// (a benchmark, not a timed test); what is checked is that the comparison is sound: every
/// engine ran, the peers' FP32 of the same file gives our FP32 outputs (top-1 100%, cosine
/// 0.9999), INT8 agreements are in range, and the overhead child parsed oneDNN's verbose lines.
final class SeedBenchSmokeTests: XCTestCase {
    func testSeedBenchRunsEveryEngineOnMobileNetV2() throws {
        let binary = RealModelData.repository.appendingPathComponent(".build/release/seed-bench")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            let message = "seed-bench is not built (\(binary.path)): swift build -c release --product seed-bench"
            if RealModelData.required { throw RealModelData.Missing(description: message + " (DNNL_QUANT_REQUIRE_MODELS=1)") }
            throw XCTSkip(message)
        }
        let r = try CLI.run(
            ["--models", "mobilenet_v2", "--threads", "1", "--rounds", "1", "--seconds", "0.2", "--heldout", "8", "--json"], executable: binary)
        let o = r.stdout, stderr = r.stderr
        XCTAssertEqual(r.status, 0, "seed-bench failed:\n\(stderr.suffix(3000))")
        XCTAssertTrue(o.contains("| mobilenet_v2 |"), "no table row:\n\(o)")
        let line = try XCTUnwrap(o.split(separator: "\n").last, "no output")
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "last line is not JSON: \(line)")
        let model = try XCTUnwrap((json["models"] as? [[String: Any]])?.first)
        let speed = try XCTUnwrap(model["speed"] as? [[String: Any]])
        let ran = Set(speed.map { "\($0["engine"] ?? "") \($0["precision"] ?? "")" })
        XCTAssertEqual(
            ran,
            ["ours fp32", "ours int8", "onnxruntime fp32", "onnxruntime int8", "openvino fp32", "openvino int8"],
            "engines that ran; stderr:\n\(stderr.suffix(2000))")
        for s in speed { XCTAssertGreaterThan((s["images_per_s"] as? Double) ?? 0, 0, "\(s)") }
        // The same FP32 file through each peer must give our FP32 results.
        let fp32 = try XCTUnwrap(model["fp32_vs_ours"] as? [String: [String: Double]])
        XCTAssertEqual(Set(fp32.keys), ["onnxruntime", "openvino"])
        for (engine, a) in fp32 {
            XCTAssertEqual(a["top1"], 1, "\(engine) FP32 vs our FP32")
            XCTAssertGreaterThan(a["centred_cosine"] ?? 0, 0.9999, "\(engine) FP32 vs our FP32")
        }
        let agreement = try XCTUnwrap(model["agreement"] as? [String: [String: Double]])
        XCTAssertEqual(Set(agreement.keys), ["ours", "onnxruntime", "openvino"])
        for (engine, a) in agreement {
            XCTAssertTrue((0...1).contains(a["top1"] ?? -1), "\(engine): \(a)")
            XCTAssertTrue((-1...1).contains(a["centred_cosine"] ?? -2), "\(engine): \(a)")
        }
        let rss = try XCTUnwrap(model["peak_rss_kib"] as? [String: Int])
        XCTAssertEqual(rss.count, 6, "\(rss)")
        let overhead = try XCTUnwrap((json["overhead"] as? [String: [String: Double]])?["mobilenet_v2"])
        XCTAssertGreaterThan(overhead["primitive_ms"] ?? 0, 0, "\(overhead)")
        XCTAssertGreaterThanOrEqual(overhead["wall_ms"] ?? 0, 0.5 * (overhead["primitive_ms"] ?? 0), "\(overhead)")
    }
}
