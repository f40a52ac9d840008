import DNNL
import Foundation

extension QuantParams {
    /// Reorder attributes that quantize f32 into these parameters (`q = x / scale + zp`).
    func quantizeAttributes() throws(DNNLError) -> PrimitiveAttributes {
        let a = try PrimitiveAttributes()
        try a.setOutputScales([1 / scale])
        if zeroPoint != 0 { try a.setZeroPoints([Int32(zeroPoint)], for: .dst) }
        return a
    }

    /// Reorder attributes that dequantize these parameters to f32 (`x = scale (q - zp)`).
    func dequantizeAttributes() throws(DNNLError) -> PrimitiveAttributes {
        let a = try PrimitiveAttributes()
        try a.setOutputScales([scale])
        if zeroPoint != 0 { try a.setZeroPoints([Int32(zeroPoint)], for: .src) }
        return a
    }
}

/// QuantizeLinear / DequantizeLinear (ONNX opset 10-19): on constants at plan time, at run
/// time as oneDNN reorders with output scales and zero points (round half to even, saturate):
/// quantize `q = sat(round(x / scale) + zp)`, dequantize `x = scale * (q - zp)`.
enum QuantizeKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        r["QuantizeLinear"] = quantize
        r["DequantizeLinear"] = dequantize
    }

    /// Per-tensor or per-axis parameters of a Q/DQ node (constants).
    static func parameters(_ node: Node, _ constant: (String?) -> Tensor?) throws(GraphError) -> (
        scales: [Float], zeroPoints: [Int], type: ElementType, axis: Int?
    ) {
        guard let s = constant(node.input(1)) else {
            throw GraphError(.unsupportedAttribute, "node \(node.label): the scale must be constant")
        }
        let zpT = constant(node.input(2))
        if node.input(2) != nil && zpT == nil {
            throw GraphError(.unsupportedAttribute, "node \(node.label): the zero point must be constant")
        }
        let type = zpT?.elementType ?? .u8
        let scales = s.floatValues()
        let zps = zpT?.intValues() ?? [Int](repeating: 0, count: scales.count)
        // QuantizeLinear divides by the scale; DequantizeLinear multiplies (0: an all-zero channel).
        let dequantize = node.opType == "DequantizeLinear"
        guard !scales.isEmpty, scales.allSatisfy({ $0.isFinite && ($0 > 0 || (dequantize && $0 == 0)) }) else {
            throw GraphError(
                .unsupportedAttribute, "node \(node.label): scales must be \(dequantize ? "non-negative" : "positive") and finite")
        }
        guard zps.count == scales.count else {
            throw GraphError(.unsupportedAttribute, "node \(node.label): \(zps.count) zero points for \(scales.count) scales")
        }
        return (scales, zps, type, scales.count > 1 ? (node.int("axis") ?? 1) : nil)
    }

    /// Plan-time evaluation (weights, biases).
    static func evaluate(_ node: Node, _ x: [Tensor?], _ opset: Int) throws -> [Tensor] {
        let p = try parameters(node) { name in name.flatMap { n in node.inputs.firstIndex(of: n).flatMap { x[$0] } } }
        let t = x[0]!  // present: ConstantEvaluation.checked requires inputs 0 and 1
        let axis = p.axis.map { $0 < 0 ? $0 + t.shape.count : $0 }
        if let a = axis {
            guard a >= 0, a < t.shape.count, t.shape[a] == p.scales.count, p.zeroPoints.count == p.scales.count else {
                throw GraphError(.shapeMismatch, "node \(node.label): \(p.scales.count) scales for axis \(a) of \(t.shape)")
            }
        }
        let inner = axis.map { t.shape[($0 + 1)...].reduce(1, *) } ?? 1
        let channels = axis.map { t.shape[$0] } ?? 1
        func channel(_ i: Int) -> Int { axis == nil ? 0 : (i / inner) % channels }
        let v = t.doubleValues()
        if node.opType == "DequantizeLinear" {
            let out = v.enumerated().map { i, q in Double(p.scales[channel(i)]) * (q - Double(p.zeroPoints[channel(i)])) }
            return [Tensor(shape: t.shape, values: out, elementType: .f32)]
        }
        let lo = Double(p.type == .u8 ? 0 : -128), hi = Double(p.type == .u8 ? 255 : 127)
        let out = v.enumerated().map { i, x in
            min(max((x / Double(p.scales[channel(i)])).rounded(.toNearestOrEven) + Double(p.zeroPoints[channel(i)]), lo), hi)
        }
        return [Tensor(shape: t.shape, values: out, elementType: p.type)]
    }

    static func quantize(_ node: Node, _ l: Lowering) throws {
        let p = try parameters(node, l.constant)
        guard p.axis == nil else { throw l.fail(.unsupportedAttribute, "per-axis quantization of a run-time tensor") }
        guard p.type == .u8 || p.type == .s8 else { throw l.fail(.unsupportedAttribute, "quantization to \(p.type)") }
        let src = try l.slot(node.inputs[0])
        let q = QuantParams(scale: p.scales[0], zeroPoint: p.zeroPoints[0], type: p.type)
        l.define(node.outputs[0], .slot(try quantize(src, q, name: node.outputs[0], l)))
    }

    /// Emits `q = sat(round(x / scale) + zp)` into a new slot; rank-4 results are stored
    /// channels-last (NHWC), the layout oneDNN's INT8 convolutions use.
    static func quantize(_ src: Int, _ q: QuantParams, name: String, _ l: Lowering) throws(GraphError) -> Int {
        let shape = l.slots[src].shape
        let md = try l.wrap { () throws(DNNLError) in
            try MemoryDescriptor(
                dims: shape.isEmpty ? [1] : shape, dataType: q.dataType,
                tag: FormatTag.channelsLast(rank: shape.count) ?? FormatTag.plain(rank: max(shape.count, 1)))
        }
        let dst = l.newSlot(name, shape: shape, md)
        let attr = try l.wrap { () throws(DNNLError) in try q.quantizeAttributes() }
        try l.reorder(from: src, to: dst, attributes: attr, label: "\(l.where_()) quantize")
        l.note("reorder quantize f32 -> \(q.type) (\(q))", .int8)
        return dst
    }

    static func dequantize(_ node: Node, _ l: Lowering) throws {
        let p = try parameters(node, l.constant)
        guard p.axis == nil else { throw l.fail(.unsupportedAttribute, "per-axis dequantization of a run-time tensor") }
        let src = try l.slot(node.inputs[0])
        let q = QuantParams(scale: p.scales[0], zeroPoint: p.zeroPoints[0], type: l.descriptor(src).dataType.elementType)
        l.define(node.outputs[0], .slot(try dequantize(src, q, name: node.outputs[0], l)))
    }

    /// Emits `x = scale * (q - zp)` into a new f32 slot of the same layout.
    static func dequantize(_ src: Int, _ q: QuantParams, name: String, _ l: Lowering) throws(GraphError) -> Int {
        let md = try l.wrap { () throws(DNNLError) in try l.descriptor(src).with(dataType: .f32) }
        let dst = l.newSlot(name, shape: l.slots[src].shape, md)
        let attr = try l.wrap { () throws(DNNLError) in try q.dequantizeAttributes() }
        try l.reorder(from: src, to: dst, attributes: attr, label: "\(l.where_()) dequantize")
        l.note("reorder dequantize \(q.type) -> f32 (\(q))", .int8)
        return dst
    }
}
