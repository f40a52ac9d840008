import Dispatch
import Foundation
import Synchronization
import XCTest

@testable import Quantization

/// Sessions used from several threads and tasks at once compute exactly what they compute
/// alone: several sessions run in parallel, one session serializes its callers, and plans made
/// for new shapes under contention are the same plans.
final class ConcurrencyTests: XCTestCase {
    typealias K = PassKit

    /// An FP32 and an INT8 (PTQ) version of the residual test model.
    private func models() throws -> [Model] {
        var g = QuantizerTests.residualGraph()
        g.inputs[0].shape![0] = .symbolic("N")
        g.outputs[0].shape![0] = .symbolic("N")
        let fp32 = Model(graph: g, opsetVersion: 13)
        let int8 = try PostTrainingQuantizer(.init(calibration: .minMax)).quantize(fp32, calibrationData: QuantizerTests.samples(4)).model
        return [fp32, int8]
    }

    private func inputs(_ n: Int, batch: Int = 1) -> [[String: Tensor]] {
        (0..<n).map { ["x": K.random([batch, 3, 8, 8], seed: 900 + UInt64($0))] }
    }

    /// 4 sessions (FP32 and INT8, 1 and 2 threads) on 4 threads at once, 25 runs each, give the
    /// bytes the same sessions give run one after another.
    func testFourSessionsOnFourThreadsMatchRunningAlone() throws {
        let ms = try models()
        let configs = [(ms[0], 1), (ms[1], 1), (ms[0], 2), (ms[1], 2)]
        let feeds = inputs(25)
        let alone = try configs.map { m, t in
            let s = try InferenceSession(model: m, options: .init(threads: t))
            return try feeds.map { try s.run($0)["logits"]! }
        }
        let sessions = try configs.map { m, t in try InferenceSession(model: m, options: .init(threads: t)) }
        let results = Mutex([[Tensor]](repeating: [], count: 4))
        let failures = Mutex([String]())
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            var mine: [Tensor] = []
            for f in feeds {
                do { mine.append(try sessions[i].run(f)["logits"]!) } catch { failures.withLock { $0.append("\(i): \(error)") } }
            }
            results.withLock { $0[i] = mine }
        }
        XCTAssertEqual(failures.withLock { $0 }, [])
        let together = results.withLock { $0 }
        for i in 0..<4 { XCTAssertEqual(together[i], alone[i], "session \(i) (threads \(configs[i].1)) differs when run beside others") }
    }

    /// One session shared by 16 tasks (different inputs and batch sizes, so plans are compiled
    /// while other tasks run): every result equals the sequential one.
    func testOneSessionFromManyTasksIsSerialized() async throws {
        let m = try models()[1]
        let feeds = (0..<16).map { i in ["x": K.random([1 + i % 3, 3, 8, 8], seed: 700 + UInt64(i))] }
        let reference = try InferenceSession(model: m)
        let expected = try feeds.map { try reference.run($0)["logits"]! }
        let shared = try InferenceSession(model: m)
        let got = try await withThrowingTaskGroup(of: (Int, Tensor).self) { group in
            for (i, f) in feeds.enumerated() {
                group.addTask { (i, try shared.run(f)["logits"]!) }
            }
            var out = [Tensor?](repeating: nil, count: feeds.count)
            for try await (i, t) in group { out[i] = t }
            return out
        }
        for i in 0..<feeds.count { XCTAssertEqual(got[i], expected[i], "task \(i) (batch \(1 + i % 3))") }
    }
}
