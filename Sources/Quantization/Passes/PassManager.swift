import Foundation

/// An ordered list of passes, declared in `Pipelines`.
struct PassPipeline: Sendable {
    let name: String
    let passes: [any GraphPass]
}

/// The pipelines of the library, in one place. Canonicalization runs first in each, so every
/// later pass sees one form of each exporter idiom.
enum Pipelines {
    /// What a session runs on any model (`InferenceSession`). On an FP32 model it is the FP32
    /// pipeline (BatchNorm and affine folding, activation patterns, post-op fusion); on a QDQ
    /// model it is also the QDQ-to-INT8 pipeline (``QATConverter``): `qdq-normalization` brings
    /// the forms exporters write to one, `qdq-fusion` turns Q/DQ pairs around units into INT8
    /// kernels before the FP32 fusions see what is left.
    static func engine(opset: Int) -> PassPipeline {
        PassPipeline(
            name: "engine",
            passes: [
                Canonicalization(), ConstantFolding(opset: opset), ActivationPatternFusion(), LayerNormFusion(),
                QDQNormalization(), QDQFusion(), ConvScaleShiftFolding(), PostOpFusion(), DeadNodeElimination(),
            ])
    }

    /// PTQ, before calibration: the FP32 graph the QDQ model is written on (BatchNorm and
    /// affine ops folded into convolutions; activation patterns left as the exporter wrote
    /// them, so onnxruntime runs the result).
    static func ptqPrepare(opset: Int) -> PassPipeline {
        PassPipeline(
            name: "ptq-prepare",
            passes: [
                Canonicalization(), ConstantFolding(opset: opset), ConvScaleShiftFolding(),
            ])
    }

    /// PTQ placement's view of the prepared graph: activation patterns fused as the engine
    /// fuses them (a HardSwish is one unit member, not four nodes).
    static let ptqAnalysis = PassPipeline(name: "ptq-analysis", passes: [ActivationPatternFusion()])

    /// PTQ, after calibration: the QDQ model (opset >= 13, Q/DQ around what placement chose).
    static func qdqWrite(
        placement: QuantizationPlacement, params: [String: QuantParams], opset: Int,
        shapes: [String: [Int]], perChannelWeights: Bool
    ) -> PassPipeline {
        PassPipeline(
            name: "qdq-write",
            passes: [
                OpsetUpgrade(from: opset, shapes: shapes),
                QDQInsertion(placement: placement, params: params, perChannelWeights: perChannelWeights),
            ])
    }
}

/// Runs pipelines and keeps what each pass did; with a dump directory, writes the graph after
/// each pass as `NN-pass.dot` (Graphviz), numbered in the order the passes ran.
struct PassManager {
    var dumpDirectory: URL?
    /// Names of passes to skip (`SessionOptions.disabledPasses`).
    var disabled: Set<String> = []
    private(set) var reports: [PassReport] = []
    private var dumped = 0

    init(dumpDirectory: URL? = nil, disabled: Set<String> = []) {
        self.dumpDirectory = dumpDirectory
        self.disabled = disabled
    }

    /// Runs `pipeline` on `graph`.
    /// - Returns: the reports of this pipeline's passes.
    /// - Throws: the first pass's `GraphError`.
    @discardableResult
    mutating func run(_ pipeline: PassPipeline, on graph: inout Graph) throws(GraphError) -> [PassReport] {
        if dumped == 0 { dump(graph, "input") }
        var mine: [PassReport] = []
        for pass in pipeline.passes where !disabled.contains(pass.name) {
            mine.append(try pass.apply(&graph))
            dump(graph, "\(pipeline.name).\(pass.name)")
        }
        reports += mine
        return mine
    }

    /// Writes `graph` as the next `NN-name.dot` (best effort: a dump that cannot be written is
    /// skipped with a warning on standard error).
    mutating func dump(_ graph: Graph, _ name: String) {
        guard let dir = dumpDirectory else { return }
        let file = String(format: "%02d-", dumped) + name + ".dot"
        dumped += 1
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try graph.dot(title: name).write(to: dir.appendingPathComponent(file), atomically: true, encoding: .utf8)
        } catch {
            FileHandle.standardError.write("warning: --dump-each-pass: cannot write \(file): \(error.localizedDescription)\n".data(using: .utf8)!)
        }
    }
}
