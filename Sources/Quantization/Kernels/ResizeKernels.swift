import DNNL
import Foundation

/// Resize (and Upsample) in nearest mode: a oneDNN resampling primitive when every scale is an
/// integer (oneDNN's rule equals ONNX's then), else a Swift kernel with the ONNX coordinate
/// transformation and nearest rounding modes (ONNX Resize-11..19).
enum ResizeKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        r["Resize"] = resize
        r["Upsample"] = resize
    }

    static func resize(_ node: Node, _ l: Lowering) throws {
        let mode = node.string("mode") ?? "nearest"
        guard mode == "nearest" else { throw l.fail(.unsupportedAttribute, "Resize mode '\(mode)' (only nearest)") }
        let s = try l.slot(node.inputs[0])
        let shape = l.slots[s].shape
        var out: [Int]
        var scales: [Float]
        if node.opType == "Upsample" || l.opset < 11 {
            guard let sc = l.constant(node.input(1))?.floatValues() ?? node.floats("scales") else {
                throw l.fail(.unsupportedAttribute, "scales must be constant")
            }
            scales = sc
            out = zip(shape, sc).map { Int(saturating: Double((Float($0) * $1).rounded(.down))) }
        } else if let sizes = l.constant(node.input(3)), sizes.count > 0 {
            out = sizes.intValues()
            scales = zip(out, shape).map { Float($0) / Float($1) }
        } else if let sc = l.constant(node.input(2)), sc.count > 0 {
            scales = sc.floatValues()
            out = zip(shape, scales).map { Int(saturating: Double((Float($0) * $1).rounded(.down))) }
        } else {
            throw l.fail(.unsupportedAttribute, "Resize needs constant scales or sizes")
        }
        _ = try ConstantEvaluation.checkedCount(out, node)
        guard shape.count >= 2, out.count == shape.count, out[0] == shape[0], out[1] == shape[1] else {
            throw l.fail(.unsupportedAttribute, "Resize of batch or channel dims (\(shape) -> \(out))")
        }
        let integer = zip(out, shape).allSatisfy { o, i in i > 0 && o % i == 0 } && shape.count >= 3
        // Upsample (and Resize before opset 11): asymmetric coordinates, floor (ONNX Upsample-9).
        let legacy = node.opType == "Upsample" || l.opset < 11
        let ctm = legacy ? "asymmetric" : node.string("coordinate_transformation_mode") ?? "half_pixel"
        let nearestMode = legacy ? "floor" : node.string("nearest_mode") ?? "round_prefer_floor"
        // oneDNN rounds half-pixel coordinates half away from zero: at integer scales that
        // equals ONNX round_prefer_floor/ceil (no exact halves occur), not floor or ceil.
        let halfPixel = ctm == "half_pixel" || ctm == "pytorch_half_pixel"
        let dnnlMatches =
            integer
            && ((ctm == "asymmetric" && nearestMode == "floor")
                || (halfPixel && nearestMode.hasPrefix("round_prefer")))
        if dnnlMatches {
            let pd = try l.wrap { () throws(DNNLError) in
                try PrimitiveDescriptor.resampling(
                    .nearest, src: l.descriptor(s),
                    dst: MemoryDescriptor(dims: out, dataType: l.descriptor(s).dataType, tag: .any), engine: l.engine)
            }
            let dst = l.newSlot(node.outputs[0], shape: out, pd.dst)
            try l.emit(pd, [(.src, s), (.dst, dst)], label: "\(l.where_()) resampling")
            l.note("\(pd.implementation) nearest resampling (\(pd.dst.dataType))", Precision(pd.dst.dataType))
            l.define(node.outputs[0], .slot(dst))
            return
        }
        // ONNX: x_original = f(x_resized); then nearest rounding.
        func source(_ o: Int, _ d: Int) -> Int {
            let scale = Double(scales[d]), inLen = Double(shape[d]), outLen = Double(out[d])
            let x: Double =
                switch ctm {
                case "asymmetric": Double(o) / scale
                case "align_corners": outLen == 1 ? 0 : Double(o) * (inLen - 1) / (outLen - 1)
                case "pytorch_half_pixel": outLen > 1 ? (Double(o) + 0.5) / scale - 0.5 : 0
                default: (Double(o) + 0.5) / scale - 0.5  // half_pixel, tf_half_pixel_for_nn
                }
            let r: Double =
                switch nearestMode {
                case "floor": x.rounded(.down)
                case "ceil": x.rounded(.up)
                case "round_prefer_ceil": (x + 0.5).rounded(.down)
                default: x == x.rounded(.down) + 0.5 ? x.rounded(.down) : x.rounded()  // round_prefer_floor
                }
            return min(max(Int(saturating: r), 0), shape[d] - 1)
        }
        let maps = (0..<shape.count).map { d in (0..<out[d]).map { source($0, d) } }
        let dst = try l.emitIndexCopy(
            "resize", from: try l.plain(s), to: node.outputs[0], shape: out,
            index: Broadcast.indices(of: shape, in: out, maps: maps))
        l.note("Swift kernel (nearest resize, \(ctm)/\(nearestMode), \(l.descriptor(dst).dataType))", .swift)
        l.define(node.outputs[0], .slot(dst))
    }
}
