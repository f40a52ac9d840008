import ArgumentParser
import Foundation
import Quantization

/// `dnnl-quant inspect MODEL.onnx [--input NAME=FILE.npy ...] [--threads N] [--json]`: what the
/// model is and how this library runs it.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model and how each of its nodes runs.",
        discussion: """
            Prints the model file, producer, opsets, metadata keys (long values truncated), inputs \
            and outputs (symbolic dimensions by name), the operator counts of the original graph, \
            what each optimization pass applied or skipped, then, for one set of input shapes, \
            the per-node report (oneDNN implementation, layout and precision of each node), the \
            node count by precision (fp32, int8, Swift kernel) and the plan's buffer bytes. \
            Input shapes come from --input files or, without them, from the declared shapes with \
            a dynamic dimension 0 set to 1; when another dimension is dynamic and has no --input \
            file the per-node report is skipped with a note. With --json everything is printed \
            as one JSON object.
            """)

    @Argument(help: "The ONNX model (FP32 or QDQ).") var model: String
    @Option(name: .long, help: "An input: NAME=FILE.npy (FILE.npy alone for a single-input model); only its shape matters.")
    var input: [String] = []
    @Option(name: .long, help: "OpenMP threads for compiling the plan.") var threads: Int = 1
    @Option(name: .customLong("int8-without-vnni"), help: int8WithoutVNNIHelp)
    var int8WithoutVnni: SessionOptions.Int8WithoutVNNI = .exact
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    /// Longest metadata value printed in full; longer ones are cut to this many characters.
    static let metadataPreview = 60

    func validate() throws {
        try validateThreads(threads)
    }

    func run() throws {
        let url = URL(fileURLWithPath: model)
        let m = try Model(contentsOf: url)
        let feeds = try loadInputs(input, model: m)
        var report = InspectReport(model: m, path: model)

        // The session: optimization passes, then a plan for one set of shapes.
        let session: InferenceSession
        do { session = try InferenceSession(model: m, options: sessionOptions(threads: threads, int8WithoutVnni)) } catch {
            report.error = error.description
            emit(report)
            throw error
        }
        report.addPasses(session)
        switch shapes(for: m, given: feeds) {
        case .failure(let note):
            report.planNote = note
        case .success(let all):
            do {
                report.planInputs = m.inputs.map { ($0.name, all[$0.name]!.shape, all[$0.name]!.elementType) }
                report.addPlan(
                    session: session, notes: try session.nodeReport(for: all),
                    bytes: try session.planByteCount(for: all))
            } catch {
                report.error = error.description
                emit(report)
                throw error
            }
        }
        emit(report)
    }

    /// The inputs of the plan: the --input files, then declared shapes (dynamic dim 0 -> 1).
    func shapes(for m: Model, given feeds: [String: Tensor]) -> Result<[String: Tensor], PlanNote> {
        var all = feeds
        var missing: [String] = []
        for info in m.inputs where all[info.name] == nil {
            guard let shape = info.shape else {
                missing.append("'\(info.name)' has no declared shape")
                continue
            }
            var dims: [Int] = []
            var dynamic: [String] = []
            for (i, d) in shape.enumerated() {
                if let v = d.value {
                    dims.append(v)
                } else if i == 0 {
                    dims.append(1)
                } else {
                    dynamic.append("\(i) (\(d))")
                }
            }
            if !dynamic.isEmpty {
                missing.append(
                    "'\(info.name)' \(info.shapeText) has dynamic dimension\(dynamic.count > 1 ? "s" : "") \(dynamic.joined(separator: ", "))")
                continue
            }
            do { try checkSynthesizable(info.name, dims, info.elementType ?? .f32) } catch {
                missing.append("'\(info.name)' \(info.shapeText) is too large to synthesize")
                continue
            }
            all[info.name] = seededTensor(dims, info.elementType ?? .f32)
        }
        guard missing.isEmpty else {
            let example = m.inputs.filter { all[$0.name] == nil }.map { "--input \($0.name)=FILE.npy" }.joined(separator: " ")
            return .failure(PlanNote("the per-node report needs --input: input \(missing.joined(separator: "; ")); give \(example)"))
        }
        return .success(all)
    }

    func emit(_ report: InspectReport) {
        if json {
            print(report.jsonText())
        } else {
            print(report.text(), terminator: "")
        }
    }
}

struct PlanNote: Error { let text: String; init(_ text: String) { self.text = text } }

extension ValueInfo {
    /// `f32 [p2o.DynamicDimension.0, 3, ?, ?]`.
    var shapeText: String {
        "\(elementType?.rawValue ?? "?") " + (shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "[unknown rank]")
    }
    var jsonObject: [String: Any] {
        var o: [String: Any] = ["name": name, "element_type": elementType?.rawValue ?? NSNull()]
        o["shape"] = shape.map { $0.map { d -> Any in d.value.map { $0 as Any } ?? d.description } } ?? NSNull()
        return o
    }
}

/// Everything `inspect` prints, gathered first so the text and JSON forms say the same.
struct InspectReport {
    struct NodeEntry {
        var node: String
        var notes: [String]
        var precision: Precision
        var fp32Reason: String?
    }

    let model: Model
    let path: String
    var fileBytes: Int?
    var passes: [PassReport] = []
    var optimizedOps: [(String, Int)] = []
    var optimizedNodeCount = 0
    var planInputs: [(String, [Int], ElementType)]?
    var planNote: PlanNote?
    var nodes: [NodeEntry] = []
    var foldedNodes = 0
    var planBytes: Int?
    var error: String?

    init(model: Model, path: String) {
        self.model = model
        self.path = path
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        fileBytes = (attrs?[.size] as? NSNumber)?.intValue
    }

    static func opCounts(_ g: Graph) -> [(String, Int)] {
        var c: [String: Int] = [:]
        for n in g.nodes { c[n.domain.isEmpty ? n.opType : "\(n.domain).\(n.opType)", default: 0] += 1 }
        return c.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    }

    var originalOps: [(String, Int)] { Self.opCounts(model.graph) }

    /// Whether the model carries quantization (QDQ) nodes.
    var hasQDQ: Bool {
        model.graph.nodes.contains { $0.opType == "QuantizeLinear" || $0.opType == "DequantizeLinear" }
    }

    var weightCount: (tensors: Int, elements: Int, bytes: Int) {
        model.graph.initializers.values.reduce((0, 0, 0)) { ($0.0 + 1, $0.1 + $1.count, $0.2 + $1.byteCount) }
    }

    mutating func addPasses(_ session: InferenceSession) {
        passes = session.passReports
        optimizedOps = Self.opCounts(session.graph)
        optimizedNodeCount = session.graph.nodes.count
    }

    mutating func addPlan(session: InferenceSession, notes: [NodeExecution], bytes: Int) {
        planBytes = bytes
        var order: [String] = []
        var byNode: [String: [NodeExecution]] = [:]
        for n in notes {
            if byNode[n.node] == nil { order.append(n.node) }
            byNode[n.node, default: []].append(n)
        }
        let reason = hasQDQ || session.precision != "fp32" ? "not quantized (reasons come with the quantizer)" : "FP32 model"
        nodes = order.map { node in
            let steps = byNode[node]!
            let kinds = steps.map(\.precision)
            // A node is INT8 when any of its steps is, FP32 when any runs in oneDNN on f32.
            let p: Precision = kinds.contains(.int8) ? .int8 : kinds.contains(.fp32) ? .fp32 : .swift
            // oneDNN's own reason for an FP32 fallback is in the node's notes.
            let why = steps.contains(where: \.isFP32Fallback) ? "oneDNN has no INT8 kernel for it: FP32 fallback" : reason
            return NodeEntry(node: node, notes: steps.map(\.detail), precision: p, fp32Reason: p == .int8 ? nil : why)
        }
        foldedNodes = max(0, session.graph.nodes.count - order.count)
    }

    var precisionCounts: [(Precision, Int)] {
        Precision.allCases.map { p in (p, nodes.filter { $0.precision == p }.count) }
    }

    static func metadataPreview(_ value: String) -> String {
        let flat = value.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
        let limit = Inspect.metadataPreview
        return flat.count <= limit ? flat : String(flat.prefix(limit)) + "..."
    }

    var opsets: [(String, Int)] {
        model.opsetImports.sorted { $0.key < $1.key }.map { ($0.key.isEmpty ? "ai.onnx" : $0.key, $0.value) }
    }

    static func bytesText(_ b: Int) -> String {
        b >= 1 << 20
            ? String(format: "%d bytes (%.1f MiB)", b, Double(b) / 1048576)
            : b >= 1 << 10 ? String(format: "%d bytes (%.1f KiB)", b, Double(b) / 1024) : "\(b) bytes"
    }

    // MARK: text

    func text() -> String {
        var s = ""
        func line(_ t: String = "") { s += t + "\n" }
        line("model: \(path)" + (fileBytes.map { " (\(Self.bytesText($0)))" } ?? ""))
        let producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        line("producer: \(producer.isEmpty ? "(none)" : producer), ONNX IR version \(model.irVersion)")
        line("opsets: " + opsets.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        if model.metadata.isEmpty {
            line("metadata: (none)")
        } else {
            line("metadata:")
            for (k, v) in model.metadata.sorted(by: { $0.key < $1.key }) {
                line("  \(k) (\(v.count) chars): \(Self.metadataPreview(v))")
            }
        }
        line("inputs:")
        for i in model.inputs { line("  \(i.name): \(i.shapeText)") }
        line("outputs:")
        for o in model.outputs { line("  \(o.name): \(o.shapeText)") }
        let w = weightCount
        line("weights: \(w.tensors) tensors, \(w.elements) values, \(Self.bytesText(w.bytes))")
        line(
            "operators (original graph, \(model.graph.nodes.count) nodes; Constant nodes became weights at import): "
                + originalOps.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        if !passes.isEmpty || !optimizedOps.isEmpty {
            line()
            line("optimization passes:")
            if passes.isEmpty { line("  (none run)") }
            for p in passes {
                line("  \(p)")
                for a in p.applied { line("    applied: \(a)") }
                for k in p.skipped { line("    skipped: \(k)") }
            }
            line("operators (optimized graph, \(optimizedNodeCount) nodes): " + optimizedOps.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        }
        if let planNote {
            line()
            line("note: \(planNote.text)")
        }
        if let planInputs, planBytes != nil {
            line()
            line("per-node report for " + planInputs.map { "\($0.0) \($0.2.rawValue) \($0.1)" }.joined(separator: ", ") + ":")
            let width = min(48, nodes.map(\.node.count).max() ?? 0)
            for n in nodes {
                let pad = String(repeating: " ", count: max(0, width - n.node.count))
                line("  \(n.node)\(pad)  \(n.notes.joined(separator: "; "))")
            }
            line()
            let counts = precisionCounts.map { "\($0.0.rawValue == "swift" ? "Swift kernel" : $0.0.rawValue) \($0.1)" }.joined(separator: ", ")
            line(
                "nodes by precision: \(counts)"
                    + (foldedNodes > 0
                        ? " (\(foldedNodes) more without a step of their own: shape arithmetic folded at plan time or absorbed by a neighbour)" : ""))
            let reasons = Dictionary(grouping: nodes.compactMap(\.fp32Reason), by: { $0 }).mapValues(\.count)
            for (r, c) in reasons.sorted(by: { $0.key < $1.key }) { line("why not INT8: \(r) (\(c) nodes)") }
            line("plan buffers: \(Self.bytesText(planBytes!))")
        }
        return s  // an error goes to stderr only (ArgumentParser prints what run() throws)
    }

    // MARK: JSON

    func jsonObject() -> [String: Any] {
        var o: [String: Any] = [:]
        o["model"] = path
        o["file_bytes"] = fileBytes ?? NSNull()
        o["producer"] = ["name": model.producerName, "version": model.producerVersion]
        o["ir_version"] = model.irVersion
        o["opsets"] = Dictionary(uniqueKeysWithValues: opsets.map { ($0.0, $0.1) })
        o["metadata"] = Dictionary(
            uniqueKeysWithValues: model.metadata.map { k, v in
                (k, ["length": v.count, "preview": Self.metadataPreview(v)] as [String: Any])
            })
        o["inputs"] = model.inputs.map(\.jsonObject)
        o["outputs"] = model.outputs.map(\.jsonObject)
        let w = weightCount
        o["weights"] = ["tensors": w.tensors, "values": w.elements, "bytes": w.bytes]
        o["original_nodes"] = model.graph.nodes.count
        o["original_ops"] = Dictionary(uniqueKeysWithValues: originalOps)
        o["passes"] = passes.map { ["pass": $0.pass, "applied": $0.applied, "skipped": $0.skipped] as [String: Any] }
        o["optimized_nodes"] = optimizedNodeCount
        o["optimized_ops"] = Dictionary(uniqueKeysWithValues: optimizedOps)
        if let planNote { o["note"] = planNote.text }
        if let planInputs, let planBytes {
            o["plan_inputs"] = planInputs.map { ["name": $0.0, "shape": $0.1, "element_type": $0.2.rawValue] as [String: Any] }
            o["nodes"] = nodes.map { n -> [String: Any] in
                [
                    "node": n.node, "notes": n.notes, "precision": n.precision.rawValue,
                    "fp32_reason": n.fp32Reason ?? NSNull(),
                ]
            }
            o["precision_counts"] = Dictionary(uniqueKeysWithValues: precisionCounts.map { ($0.0.rawValue, $0.1) })
            o["folded_nodes"] = foldedNodes
            o["plan_bytes"] = planBytes
        }
        if let error { o["error"] = error }
        return o
    }

    func jsonText() -> String {
        do {
            let data = try JSONSerialization.data(withJSONObject: jsonObject(), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self)
        } catch {
            return "{\"error\": \"cannot encode the report as JSON\"}"
        }
    }
}
