import Foundation

/// Neural operators evaluated in Swift over `Tensor`s (at plan time on constants, at run time
/// through `RuntimeEvaluation`), following the ONNX operator spec: Resize/Upsample and Pad of any
/// mode, Conv/ConvTranspose/Gemm/MatMul with run-time weights, the integer and QLinear operators
/// of onnxruntime's dynamic INT8 files, the losses and Einsum. These are the fallback when the
/// oneDNN lowering cannot take a node (run-time weights, scales, modes oneDNN lacks); naive loops
/// in Double (exact for the integer operators: their sums stay far below 2^53).
enum NeuralEvaluators {
    static func register(_ e: inout [String: ConstantEvaluation.Evaluator]) {
        e["Resize"] = resize
        e["Upsample"] = resize
        e["Pad"] = pad
        e["Conv"] = conv
        e["ConvTranspose"] = convTranspose
        e["Gemm"] = gemm
        e["MatMul"] = matMul
        e["MatMulInteger"] = matMulInteger
        e["ConvInteger"] = convInteger
        e["QLinearMatMul"] = qLinearMatMul
        e["QLinearConv"] = qLinearConv
        e["DynamicQuantizeLinear"] = dynamicQuantizeLinear
        e["NegativeLogLikelihoodLoss"] = { n, x, _ in try loss(n, x, softmax: false) }
        e["SoftmaxCrossEntropyLoss"] = { n, x, _ in try loss(n, x, softmax: true) }
        e["Einsum"] = einsum
    }

    static func fail(_ node: Node, _ message: String) -> GraphError { ConstantEvaluation.fail(node, message) }
    static func input(_ x: [Tensor?], _ i: Int) -> Tensor? { i < x.count ? x[i] : nil }

    /// Values for an output of `type`: integers rounded half to even and saturated (ONNX
    /// saturate_cast), floats as they are.
    static func tensor(_ shape: [Int], _ v: [Double], _ type: ElementType) -> Tensor {
        Tensor(shape: shape, values: type == .f32 ? v : v.map { $0.rounded(.toNearestOrEven) }, elementType: type)
    }
}

// MARK: - Resize / Upsample

extension NeuralEvaluators {
    /// Resize-10..19 and Upsample-7/9 (ONNX reference op_resize.py): separable interpolation
    /// along each resized axis. X of any rank; roi (input 1, tf_crop_and_resize), scales (2) or
    /// sizes (3) with `axes` (opset 18+) and keep_aspect_ratio_policy; modes nearest (every
    /// nearest_mode), linear and cubic (cubic_coeff_a, exclude_outside, antialias); every
    /// coordinate_transformation_mode. Resize-10 and Upsample: scales, asymmetric, nearest floor.
    /// Output: X's element type; the shape is set by scales/sizes (constants at run time).
    static func resize(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        let shape = X.shape, r = shape.count
        let legacy = node.opType == "Upsample" || opset < 11
        let mode = node.string("mode") ?? "nearest"
        guard ["nearest", "linear", "cubic", "bilinear", "trilinear"].contains(mode) else { throw fail(node, "Resize mode '\(mode)'") }
        let interpolation = mode == "nearest" ? "nearest" : mode == "cubic" ? "cubic" : "linear"
        var scalesIn: [Double]?, sizesIn: [Int]?, roiIn: [Double]?
        if legacy {
            guard let s = input(x, 1)?.floatValues() ?? node.floats("scales") else { throw fail(node, "needs scales") }
            scalesIn = s.map(Double.init)
        } else {
            if let t = input(x, 1), t.count > 0 { roiIn = t.doubleValues() }
            if let t = input(x, 3), t.count > 0 {
                sizesIn = t.intValues()
            } else if let t = input(x, 2), t.count > 0 {
                scalesIn = t.floatValues().map(Double.init)
            } else {
                throw fail(node, "needs scales or sizes")
            }
        }
        var axes = Array(0..<r)
        if let a = node.ints("axes"), !legacy {
            axes = []
            for v in a { axes.append(try ConstantEvaluation.axis(v, rank: r, node)) }
            guard Set(axes).count == axes.count else { throw fail(node, "axes \(a) repeat an axis") }
        }
        let n = axes.count
        guard (scalesIn?.count ?? n) == n, (sizesIn?.count ?? n) == n, roiIn == nil || roiIn!.count == 2 * n else {
            throw fail(node, "scales/sizes/roi need \(n) (roi \(2 * n)) values for axes \(axes)")
        }
        var scales = [Double](repeating: 1, count: r), out = shape
        var roi: [Double]? = nil
        if let roiIn {
            var full = [Double](repeating: 0, count: r) + [Double](repeating: 1, count: r)
            for (i, a) in axes.enumerated() { full[a] = roiIn[i]; full[r + a] = roiIn[n + i] }
            roi = full
        }
        if let sizesIn {
            for (i, a) in axes.enumerated() {
                guard sizesIn[i] >= 0 else { throw fail(node, "negative sizes \(sizesIn)") }
                out[a] = sizesIn[i]
                scales[a] = shape[a] > 0 ? Double(sizesIn[i]) / Double(shape[a]) : 1
            }
            let policy = node.string("keep_aspect_ratio_policy") ?? "stretch"
            if policy != "stretch" {
                guard policy == "not_larger" || policy == "not_smaller" else { throw fail(node, "keep_aspect_ratio_policy '\(policy)'") }
                let chosen = axes.map { scales[$0] }
                let s = (policy == "not_larger" ? chosen.min() : chosen.max()) ?? 1
                for a in axes {
                    scales[a] = s
                    let v = (s * Double(shape[a]) + 0.5).rounded(.down)
                    guard v.isFinite, v < Double(ConstantEvaluation.elementLimit) else { throw fail(node, "output too large") }
                    out[a] = Int(v)
                }
            }
        } else if let scalesIn {
            for (i, a) in axes.enumerated() {
                let v = (scalesIn[i] * Double(shape[a])).rounded(.towardZero)
                guard scalesIn[i] > 0, v.isFinite, v < Double(ConstantEvaluation.elementLimit) else {
                    throw fail(node, "scales \(scalesIn) must be positive and finite")
                }
                scales[a] = scalesIn[i]
                out[a] = Int(v)
            }
        }
        _ = try ConstantEvaluation.checkedCount(out, node)
        let ctm = legacy ? "asymmetric" : node.string("coordinate_transformation_mode") ?? "half_pixel"
        let nearestMode = legacy ? "floor" : node.string("nearest_mode") ?? "round_prefer_floor"
        let cubicA = Double(node.float("cubic_coeff_a") ?? -0.75)
        let excludeOutside = node.int("exclude_outside") == 1
        let antialias = node.int("antialias") == 1 && interpolation != "nearest"
        let extrapolation = Double(node.float("extrapolation_value") ?? 0)
        guard
            ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn"]
                .contains(ctm)
        else { throw fail(node, "coordinate_transformation_mode '\(ctm)'") }
        guard ctm != "tf_crop_and_resize" || roi != nil else { throw fail(node, "tf_crop_and_resize needs roi") }
        guard ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"].contains(nearestMode) else {
            throw fail(node, "nearest_mode '\(nearestMode)'")
        }

        func coefficients(_ ratio: Double, _ scale: Double) -> [Double] {
            switch interpolation {
            case "nearest":
                if ratio == ratio.rounded(.down) { return [0, 1] }
                switch nearestMode {
                case "round_prefer_ceil": return ratio < 0.5 ? [1, 0] : [0, 1]
                case "floor": return [1, 0]
                case "ceil": return [0, 1]
                default: return ratio <= 0.5 ? [1, 0] : [0, 1]
                }
            case "linear":
                guard antialias else { return [1 - ratio, ratio] }
                let s = Swift.min(scale, 1)
                let start = Int((-1 / s).rounded(.down)) + 1
                let c = (start..<(2 - start)).map { Swift.min(Swift.max(1 - Swift.abs((Double($0) - ratio) * s), 0), 1) }
                let sum = c.reduce(0, +)
                return c.map { $0 / sum }
            default:
                let a = cubicA
                guard antialias else {
                    let t = ratio, u = 1 - ratio
                    return [
                        ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a, ((a + 2) * t - (a + 3)) * t * t + 1,
                        ((a + 2) * u - (a + 3)) * u * u + 1, ((a * (u + 1) - 5 * a) * (u + 1) + 8 * a) * (u + 1) - 4 * a,
                    ]
                }
                let s = Swift.min(scale, 1)
                let start = Int((-2 / s).rounded(.down)) + 1
                let c = (start..<(2 - start)).map { i -> Double in
                    let v = Swift.abs(s * (Double(i) - ratio))
                    if v <= 1 { return (a + 2) * v * v * v - (a + 3) * v * v + 1 }
                    if v < 2 { return a * v * v * v - 5 * a * v * v + 8 * a * v - 4 * a }
                    return 0
                }
                let sum = c.reduce(0, +)
                return c.map { $0 / sum }
            }
        }

        var data = X.doubleValues(), cur = shape
        for a in axes {
            let inLen = cur[a], outLen = out[a], scale = scales[a]
            let identityRoi = roi == nil || (Swift.abs(roi![a]) < 1e-9 && Swift.abs(roi![r + a] - 1) < 1e-9)
            if Swift.abs(scale - 1) <= 1e-9 && outLen == inLen && identityRoi { continue }
            var next = cur
            next[a] = outLen
            let outer = cur[..<a].reduce(1, *), inner = cur[(a + 1)...].reduce(1, *)
            var result = [Double](repeating: 0, count: outer * outLen * inner)
            guard inLen > 0 || outLen == 0 || result.isEmpty else { throw fail(node, "cannot resize an empty axis \(a) to \(outLen)") }
            let outWidth = scale * Double(inLen)
            for j in 0..<outLen where inLen > 0 {
                let y = Double(j)
                var xo: Double
                var extrapolated = false
                switch ctm {
                case "align_corners": xo = outWidth == 1 ? 0 : y * Double(inLen - 1) / (outWidth - 1)
                case "asymmetric": xo = y / scale
                case "tf_crop_and_resize":
                    let r0 = roi![a], r1 = roi![r + a]
                    xo = outWidth == 1 ? (r1 - r0) * Double(inLen - 1) / 2 : y * (r1 - r0) * Double(inLen - 1) / (outWidth - 1)
                    xo += r0 * Double(inLen - 1)
                    extrapolated = xo < 0 || xo > Double(inLen - 1)
                case "pytorch_half_pixel": xo = outWidth == 1 ? -0.5 : (y + 0.5) / scale - 0.5
                case "half_pixel_symmetric":
                    let adjustment = Double(outLen) / outWidth
                    xo = Double(inLen) / 2 * (1 - adjustment) + (y + 0.5) / scale - 0.5
                default: xo = (y + 0.5) / scale - 0.5
                }
                guard xo.isFinite else { throw fail(node, "non-finite source coordinate (scales \(scales))") }
                let xoInt = xo.rounded(.down)
                var c = coefficients(xo == xoInt ? 1 : xo - xoInt, scale)
                let k = c.count, padWidth = (k + 1) / 2
                let xp = xo + Double(padWidth)
                let p = xp.rounded(.down), frac = xp - p
                let offset: Int
                if k % 2 == 0 {
                    offset = frac == 0 ? -(k / 2) : -(k / 2) + 1
                } else {
                    offset = frac <= 0.5 ? -((k - 1) / 2) : -((k - 1) / 2) + 1
                }
                guard Swift.abs(p) < 1e15 else { throw fail(node, "source coordinate out of range") }
                let start = Int(p) + offset - padWidth
                let idx = (0..<k).map { start + $0 }
                if excludeOutside {
                    for (q, i) in idx.enumerated() where i < 0 || i >= inLen { c[q] = 0 }
                    let sum = c.reduce(0, +)
                    if sum != 0 { c = c.map { $0 / sum } }
                }
                let clamped = idx.map { Swift.min(Swift.max($0, 0), inLen - 1) }
                for o in 0..<outer {
                    for i in 0..<inner {
                        let dst = (o * outLen + j) * inner + i
                        if extrapolated { result[dst] = extrapolation; continue }
                        var acc = 0.0
                        for q in 0..<k where c[q] != 0 { acc += c[q] * data[(o * inLen + clamped[q]) * inner + i] }
                        result[dst] = acc
                    }
                }
            }
            data = result
            cur = next
        }
        return [tensor(out, data, X.elementType)]
    }
}

// MARK: - Pad

extension NeuralEvaluators {
    /// Pad-2..25: modes constant (value attribute or constant_value input), reflect, edge, wrap;
    /// pads as attribute (opset < 11) or input 1, optional `axes` input 3 (opset 18+); negative
    /// pads crop (the padded result is cropped, as onnxruntime). Output: X's element type.
    static func pad(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        let shape = X.shape, r = shape.count
        guard let raw = node.ints("pads") ?? input(x, 1)?.intValues() else { throw fail(node, "needs pads") }
        var axes = Array(0..<r)
        if let a = input(x, 3)?.intValues() {
            axes = []
            for v in a { axes.append(try ConstantEvaluation.axis(v, rank: r, node)) }
            guard Set(axes).count == axes.count else { throw fail(node, "axes \(a) repeat an axis") }
        }
        guard raw.count == 2 * axes.count else { throw fail(node, "pads \(raw) need \(2 * axes.count) values") }
        let limit = ConstantEvaluation.elementLimit
        guard raw.allSatisfy({ Swift.abs($0) <= limit }) else { throw fail(node, "pads \(raw) are too large") }
        var begin = [Int](repeating: 0, count: r), end = begin
        for (i, a) in axes.enumerated() { begin[a] = raw[i]; end[a] = raw[axes.count + i] }
        let out = (0..<r).map { shape[$0] + begin[$0] + end[$0] }
        guard out.allSatisfy({ $0 >= 0 }) else { throw fail(node, "pads \(raw) crop more than the input \(shape)") }
        _ = try ConstantEvaluation.checkedCount(out, node)
        let mode = node.string("mode") ?? "constant"
        guard ["constant", "reflect", "edge", "wrap"].contains(mode) else { throw fail(node, "Pad mode '\(mode)'") }
        let value = node.float("value").map(Double.init) ?? input(x, 2)?.doubleValues().first ?? 0
        let maps: [[Int]] = try (0..<r).map { d throws(GraphError) in
            let n = shape[d]
            return try (0..<out[d]).map { o throws(GraphError) in
                let i = o - begin[d]
                if i >= 0 && i < n { return i }
                if mode == "constant" { return -1 }
                guard n > 0 else { throw fail(node, "\(mode) pad of an empty axis \(d)") }
                switch mode {
                case "edge": return Swift.min(Swift.max(i, 0), n - 1)
                case "wrap": return ((i % n) + n) % n
                default:
                    if n == 1 { return 0 }
                    let period = 2 * (n - 1), m = ((i % period) + period) % period
                    return m < n ? m : period - m
                }
            }
        }
        let v = X.doubleValues()
        let values = Broadcast.indices(of: shape, in: out, maps: maps).map { $0 < 0 ? value : v[$0] }
        return [Tensor(shape: out, values: values, elementType: X.elementType)]
    }
}

// MARK: - Conv, ConvTranspose, Gemm, MatMul

extension NeuralEvaluators {
    /// Spatial geometry of a convolution: per spatial dim the strides, dilations, pads and the
    /// output size.
    struct ConvGeometry {
        var kernel: [Int], strides: [Int], dilations: [Int], padBegin: [Int], padEnd: [Int], out: [Int], group: Int
    }

    static func positiveInts(_ node: Node, _ key: String, count: Int) throws(GraphError) -> [Int] {
        let v = node.ints(key) ?? [Int](repeating: 1, count: count)
        guard v.count == count, v.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }) else { throw fail(node, "\(key) \(v) for \(count) spatial dims") }
        return v
    }

    /// Conv-1..22 geometry (auto_pad NOTSET/SAME_UPPER/SAME_LOWER/VALID) of X [N, C, D...] and
    /// W [M, C/group, K...].
    static func convGeometry(_ node: Node, _ xs: [Int], _ ws: [Int]) throws(GraphError) -> ConvGeometry {
        guard xs.count >= 3, ws.count == xs.count else { throw fail(node, "Conv of input \(xs) and weights \(ws)") }
        let sd = xs.count - 2
        let group = node.int("group") ?? 1
        guard group > 0, xs[1] % group == 0, ws[0] % group == 0, ws[1] * group == xs[1] else {
            throw GraphError(.shapeMismatch, "node \(node.label): input \(xs), weights \(ws) and group \(group) do not match")
        }
        let kernel = Array(ws[2...])
        let strides = try positiveInts(node, "strides", count: sd), dilations = try positiveInts(node, "dilations", count: sd)
        var pads = node.ints("pads") ?? [Int](repeating: 0, count: 2 * sd)
        guard pads.count == 2 * sd, pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else { throw fail(node, "pads \(pads)") }
        let autoPad = node.string("auto_pad") ?? "NOTSET"
        var out = [Int](repeating: 0, count: sd)
        for i in 0..<sd {
            let effective = (kernel[i] - 1) * dilations[i] + 1, d = xs[i + 2]
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                let target = (d + strides[i] - 1) / strides[i]
                let needed = Swift.max(0, (target - 1) * strides[i] + effective - d)
                pads[i] = autoPad == "SAME_LOWER" ? (needed + 1) / 2 : needed / 2
                pads[i + sd] = needed - pads[i]
            case "VALID": pads[i] = 0; pads[i + sd] = 0
            case "NOTSET": break
            default: throw fail(node, "auto_pad '\(autoPad)'")
            }
            let span = d + pads[i] + pads[i + sd] - effective
            guard span >= 0 else { throw GraphError(.shapeMismatch, "node \(node.label): kernel \(kernel) larger than the padded input \(xs)") }
            out[i] = span / strides[i] + 1
        }
        return ConvGeometry(
            kernel: kernel, strides: strides, dilations: dilations, padBegin: Array(pads[..<sd]), padEnd: Array(pads[sd...]), out: out,
            group: group)
    }

    /// All coordinates of `shape`, row-major.
    static func coordinates(_ shape: [Int]) -> [[Int]] {
        let total = shape.reduce(1, *)
        var result: [[Int]] = []
        result.reserveCapacity(total)
        var c = [Int](repeating: 0, count: shape.count)
        for _ in 0..<total {
            result.append(c)
            Broadcast.advance(&c, in: shape)
        }
        return result
    }

    /// Naive grouped N-D convolution: Y[n, m, o] = bias[m] + Σ X[n, g·C/G + c, o·s - pb + k·d] W[m, c, k].
    /// `bias` (M values) optional; `wOffset(m)` subtracted from W (ConvInteger/QLinearConv).
    static func convolve(
        _ node: Node, _ xv: [Double], _ xs: [Int], _ wv: [Double], _ ws: [Int], bias: [Double]?, _ g: ConvGeometry
    ) throws(GraphError) -> (values: [Double], shape: [Int]) {
        let n = xs[0], c = xs[1], m = ws[0], cg = c / g.group, mg = m / g.group
        let inSpatial = Array(xs[2...]), sd = inSpatial.count
        let outShape = [n, m] + g.out
        let total = try ConstantEvaluation.checkedCount(outShape, node)
        let outSize = g.out.reduce(1, *), inSize = inSpatial.reduce(1, *), kSize = g.kernel.reduce(1, *)
        let inStrides = Broadcast.strides(inSpatial)
        let kernelCoords = coordinates(g.kernel), outCoords = coordinates(g.out)
        var y = [Double](repeating: 0, count: total)
        // For each output position and kernel position: the flat input offset, or -1 (padding).
        var offsets = [Int](repeating: -1, count: outSize * kSize)
        for (oi, o) in outCoords.enumerated() {
            for (ki, k) in kernelCoords.enumerated() {
                var flat = 0
                for d in 0..<sd {
                    let i = o[d] * g.strides[d] - g.padBegin[d] + k[d] * g.dilations[d]
                    if i < 0 || i >= inSpatial[d] { flat = -1; break }
                    flat += i * inStrides[d]
                }
                offsets[oi * kSize + ki] = flat
            }
        }
        for b in 0..<n {
            for oc in 0..<m {
                let gi = oc / Swift.max(mg, 1)
                for oi in 0..<outSize {
                    var acc = bias?[oc] ?? 0
                    for ic in 0..<cg {
                        let xBase = (b * c + gi * cg + ic) * inSize, wBase = (oc * cg + ic) * kSize
                        for ki in 0..<kSize {
                            let off = offsets[oi * kSize + ki]
                            if off >= 0 { acc += xv[xBase + off] * wv[wBase + ki] }
                        }
                    }
                    y[(b * m + oc) * outSize + oi] = acc
                }
            }
        }
        return (y, outShape)
    }

    static func biasValues(_ node: Node, _ t: Tensor?, _ m: Int) throws(GraphError) -> [Double]? {
        guard let t else { return nil }
        guard t.count == m else { throw GraphError(.shapeMismatch, "node \(node.label): bias of \(t.count) values for \(m) channels") }
        return t.doubleValues()
    }

    /// Conv-1..22: X [N, C, D...], W [M, C/group, K...], optional B [M]; f32.
    static func conv(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard let W = input(x, 1) else { throw fail(node, "needs weights") }
        let X = x[0]!
        let g = try convGeometry(node, X.shape, W.shape)
        let r = try convolve(node, X.doubleValues(), X.shape, W.doubleValues(), W.shape, bias: try biasValues(node, input(x, 2), W.shape[0]), g)
        return [Tensor(shape: r.shape, values: r.values, elementType: .f32)]
    }

    /// ConvTranspose-1..22 (ONNX reference op_conv_transpose.py): X [N, C, D...], W [C, M/group, K...],
    /// optional B [M]; strides, dilations, pads or auto_pad, output_padding, output_shape.
    static func convTranspose(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard let W = input(x, 1) else { throw fail(node, "needs weights") }
        let X = x[0]!
        let xs = X.shape, ws = W.shape
        guard xs.count >= 3, ws.count == xs.count else { throw fail(node, "ConvTranspose of input \(xs) and weights \(ws)") }
        let sd = xs.count - 2, group = node.int("group") ?? 1
        guard group > 0, xs[1] == ws[0], ws[0] % group == 0 else {
            throw GraphError(.shapeMismatch, "node \(node.label): input \(xs), weights \(ws) and group \(group) do not match")
        }
        let kernel = Array(ws[2...])
        let strides = try positiveInts(node, "strides", count: sd), dilations = try positiveInts(node, "dilations", count: sd)
        let outputPadding = node.ints("output_padding") ?? [Int](repeating: 0, count: sd)
        guard outputPadding.count == sd, outputPadding.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else {
            throw fail(node, "output_padding \(outputPadding)")
        }
        let autoPad = node.string("auto_pad") ?? "NOTSET"
        var outSpatial: [Int]? = node.ints("output_shape").map { Array($0.suffix(sd)) }
        if let o = outSpatial, o.count != sd || o.contains(where: { $0 < 0 || $0 > 1 << 24 }) { throw fail(node, "output_shape \(o)") }
        var pads = node.ints("pads")
        if let p = pads, p.count != 2 * sd || p.contains(where: { $0 < 0 || $0 > 1 << 20 }) { throw fail(node, "pads \(p)") }
        var full = [Int](repeating: 0, count: sd)
        for i in 0..<sd {
            let span: Int = (kernel[i] - 1) * dilations[i] + 1
            full[i] = strides[i] * (xs[i + 2] - 1) + outputPadding[i] + span
        }
        if pads == nil && (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
            let target: [Int] = outSpatial ?? (0..<sd).map { (i: Int) -> Int in xs[i + 2] * strides[i] }
            var p = [Int](repeating: 0, count: 2 * sd)
            for i in 0..<sd {
                let total = full[i] - target[i]
                let half: Int = Int((Double(total) / 2).rounded(.down))
                p[i] = autoPad == "SAME_UPPER" ? half : total - half
                p[i + sd] = total - p[i]
            }
            pads = p
            outSpatial = target
        }
        let pd = pads ?? [Int](repeating: 0, count: 2 * sd)
        let out: [Int] = outSpatial ?? (0..<sd).map { (i: Int) -> Int in full[i] - pd[i] - pd[i + sd] }
        guard out.allSatisfy({ $0 >= 0 }) else { throw fail(node, "output spatial size \(out) is negative") }
        let n = xs[0], c = xs[1], mg = ws[1], m = mg * group, cg = c / group
        let outShape = [n, m] + out
        let total = try ConstantEvaluation.checkedCount(outShape, node)
        let bias = try biasValues(node, input(x, 2), m)
        let inSpatial = Array(xs[2...]), inSize = inSpatial.reduce(1, *), outSize = out.reduce(1, *), kSize = kernel.reduce(1, *)
        let outStrides = Broadcast.strides(out)
        let inCoords = coordinates(inSpatial), kernelCoords = coordinates(kernel)
        var offsets = [Int](repeating: -1, count: inSize * kSize)
        for (ii, i) in inCoords.enumerated() {
            for (ki, k) in kernelCoords.enumerated() {
                var flat = 0
                for d in 0..<sd {
                    let o = i[d] * strides[d] + k[d] * dilations[d] - pd[d]
                    if o < 0 || o >= out[d] { flat = -1; break }
                    flat += o * outStrides[d]
                }
                offsets[ii * kSize + ki] = flat
            }
        }
        let xv = X.doubleValues(), wv = W.doubleValues()
        var y = [Double](repeating: 0, count: total)
        for b in 0..<n {
            for gi in 0..<group {
                for ic in 0..<cg {
                    let ch = gi * cg + ic
                    for om in 0..<mg {
                        let oc = gi * mg + om
                        let yBase = (b * m + oc) * outSize, wBase = (ch * mg + om) * kSize, xBase = (b * c + ch) * inSize
                        for ii in 0..<inSize {
                            let xval = xv[xBase + ii]
                            if xval == 0 { continue }
                            for ki in 0..<kSize {
                                let off = offsets[ii * kSize + ki]
                                if off >= 0 { y[yBase + off] += xval * wv[wBase + ki] }
                            }
                        }
                    }
                }
            }
        }
        if let bias { for i in 0..<total { y[i] += bias[(i / Swift.max(outSize, 1)) % m] } }
        return [Tensor(shape: outShape, values: y, elementType: .f32)]
    }

    /// Gemm-7..13: Y [M, N] = alpha · A' B' + beta · C, A' = transA ? Aᵀ : A (2-D), C broadcast to [M, N].
    static func gemm(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard let B = input(x, 1) else { throw fail(node, "needs B") }
        let A = x[0]!
        guard A.shape.count == 2, B.shape.count == 2 else { throw fail(node, "Gemm of \(A.shape) and \(B.shape) (2-D only)") }
        let ta = node.int("transA") == 1, tb = node.int("transB") == 1
        let m = ta ? A.shape[1] : A.shape[0], k = ta ? A.shape[0] : A.shape[1]
        let kb = tb ? B.shape[1] : B.shape[0], n = tb ? B.shape[0] : B.shape[1]
        guard k == kb else { throw GraphError(.shapeMismatch, "node \(node.label): Gemm of \(A.shape) and \(B.shape) (transA \(ta), transB \(tb))") }
        let count = try ConstantEvaluation.checkedCount([m, n], node)
        let alpha = Double(node.float("alpha") ?? 1), beta = Double(node.float("beta") ?? 1)
        let av = A.doubleValues(), bv = B.doubleValues()
        var y = [Double](repeating: 0, count: count)
        if let C = input(x, 2) {
            guard C.shape.count <= 2, Broadcast.shape(C.shape, [m, n]) == [m, n] else {
                throw GraphError(.shapeMismatch, "node \(node.label): C \(C.shape) does not broadcast to [\(m), \(n)]")
            }
            let cv = C.doubleValues()
            for (i, j) in Broadcast.indices(of: C.shape, in: [m, n]).enumerated() { y[i] = beta * cv[j] }
        }
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k { acc += av[ta ? p * m + i : i * k + p] * bv[tb ? j * k + p : p * n + j] }
                y[i * n + j] += alpha * acc
            }
        }
        return [Tensor(shape: [m, n], values: y, elementType: .f32)]
    }

    /// NumPy matmul of `a` and `b` (1-D operands promoted, batch dims broadcast), in Double, with
    /// `aOffset(row)` / `bOffset(col)` subtracted from the operands (integer zero points).
    static func matmulValues(
        _ node: Node, _ a: [Double], _ aShape: [Int], _ b: [Double], _ bShape: [Int],
        aOffset: (Int) -> Double = { _ in 0 }, bOffset: (Int) -> Double = { _ in 0 }
    ) throws(GraphError) -> (values: [Double], shape: [Int], m: Int, n: Int) {
        guard !aShape.isEmpty, !bShape.isEmpty else { throw fail(node, "MatMul of a scalar") }
        let a2 = aShape.count == 1 ? [1] + aShape : aShape, b2 = bShape.count == 1 ? bShape + [1] : bShape
        let m = a2[a2.count - 2], k = a2[a2.count - 1], kb = b2[b2.count - 2], n = b2[b2.count - 1]
        guard k == kb, let batch = Broadcast.shape(Array(a2.dropLast(2)), Array(b2.dropLast(2))) else {
            throw GraphError(.shapeMismatch, "node \(node.label): MatMul of \(aShape) and \(bShape)")
        }
        var shape = batch + [m, n]
        let total = try ConstantEvaluation.checkedCount(shape, node)
        let ia = Broadcast.indices(of: Array(a2.dropLast(2)), in: batch), ib = Broadcast.indices(of: Array(b2.dropLast(2)), in: batch)
        var y = [Double](repeating: 0, count: total)
        for (bi, (pa, pb)) in zip(ia, ib).enumerated() {
            let aBase = pa * m * k, bBase = pb * k * n, yBase = bi * m * n
            for i in 0..<m {
                let ao = aOffset(i)
                for j in 0..<n {
                    let bo = bOffset(j)
                    var acc = 0.0
                    for p in 0..<k { acc += (a[aBase + i * k + p] - ao) * (b[bBase + p * n + j] - bo) }
                    y[yBase + i * n + j] = acc
                }
            }
        }
        if aShape.count == 1 { shape.remove(at: shape.count - 2) }
        if bShape.count == 1 { shape.removeLast() }
        return (y, shape, m, n)
    }

    /// MatMul-1..13 of any element type (integers exact up to 2^53); output A's type.
    static func matMul(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard let B = input(x, 1) else { throw fail(node, "needs B") }
        let A = x[0]!
        let r = try matmulValues(node, A.doubleValues(), A.shape, B.doubleValues(), B.shape)
        return [tensor(r.shape, r.values, A.elementType)]
    }

    /// A zero point: scalar, or `count` values along one axis (per row / column / channel).
    static func zeroPoints(_ node: Node, _ t: Tensor?, _ count: Int, _ what: String) throws(GraphError) -> [Double] {
        guard let t else { return [0] }
        let v = t.doubleValues()
        guard v.count == 1 || v.count == count else { throw fail(node, "\(what) has \(v.count) values (1 or \(count))") }
        return v
    }

    /// MatMulInteger-10: u8/s8 A and B with zero points (scalar, or per row of A [M] / per column
    /// of B [N]); s32 output.
    static func matMulInteger(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard let B = input(x, 1) else { throw fail(node, "needs B") }
        let A = x[0]!
        let m = A.shape.count >= 2 ? A.shape[A.shape.count - 2] : 1, n = B.shape.count >= 2 ? B.shape[B.shape.count - 1] : 1
        let az = try zeroPoints(node, input(x, 2), m, "a_zero_point"), bz = try zeroPoints(node, input(x, 3), n, "b_zero_point")
        let r = try matmulValues(
            node, A.doubleValues(), A.shape, B.doubleValues(), B.shape, aOffset: { az.count == 1 ? az[0] : az[$0] },
            bOffset: { bz.count == 1 ? bz[0] : bz[$0] })
        return [tensor(r.shape, r.values, .s32)]
    }

    /// Quantizes `v` (already in units of the output scale) to `type` (u8 or s8): round half to even, add
    /// the zero point, saturate.
    static func requantize(_ v: [Double], zeroPoint: (Int) -> Double, type: ElementType) -> [Double] {
        let (lo, hi): (Double, Double) = type == .s8 ? (-128, 127) : (0, 255)
        return v.enumerated().map { i, t in Swift.min(Swift.max((t + zeroPoint(i)).rounded(.toNearestOrEven), lo), hi) }
    }

    /// QLinearMatMul-10/21: Y = saturate(rint((a - a_zp)(b - b_zp) · a_scale b_scale / y_scale) + y_zp);
    /// scales and zero points scalar or per row (a) / per column (b); output y_zero_point's type (u8/s8).
    static func qLinearMatMul(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard x.count >= 8, let A = x[0], let aS = x[1], let B = x[3], let bS = x[4], let yS = x[6] else {
            throw fail(node, "needs a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point")
        }
        let m = A.shape.count >= 2 ? A.shape[A.shape.count - 2] : 1, n = B.shape.count >= 2 ? B.shape[B.shape.count - 1] : 1
        let az = try zeroPoints(node, x[2], m, "a_zero_point"), bz = try zeroPoints(node, x[5], n, "b_zero_point")
        let yz = try zeroPoints(node, x[7], 1, "y_zero_point")
        let av = aS.floatValues(), bvS = bS.floatValues(), ys = yS.floatValues()
        guard av.count == 1 || av.count == m, bvS.count == 1 || bvS.count == n, ys.count == 1 else {
            throw fail(node, "scales of \(av.count)/\(bvS.count)/\(ys.count) values")
        }
        let r = try matmulValues(
            node, A.doubleValues(), A.shape, B.doubleValues(), B.shape, aOffset: { az.count == 1 ? az[0] : az[$0] },
            bOffset: { bz.count == 1 ? bz[0] : bz[$0] })
        let type = x[7]?.elementType ?? A.elementType
        let scaled = r.values.enumerated().map { i, v -> Double in
            let row = (i / Swift.max(r.n, 1)) % Swift.max(r.m, 1), col = i % Swift.max(r.n, 1)
            let factor = av[av.count == 1 ? 0 : row] * bvS[bvS.count == 1 ? 0 : col] / ys[0]
            return v * Double(factor)
        }
        return [tensor(r.shape, requantize(scaled, zeroPoint: { _ in yz[0] }, type: type), type)]
    }

    /// ConvInteger-10: u8/s8 x and w, x_zero_point scalar, w_zero_point scalar or per output channel; s32 output.
    static func convInteger(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard let W = input(x, 1) else { throw fail(node, "needs w") }
        let X = x[0]!
        let g = try convGeometry(node, X.shape, W.shape)
        let r = try convolve(
            node, try shifted(node, X, input(x, 2), 1), X.shape, try shifted(node, W, input(x, 3), W.shape[0]), W.shape, bias: nil, g)
        return [tensor(r.shape, r.values, .s32)]
    }

    /// `t`'s values minus a zero point: scalar, or one per index of dim 0 (`count` values).
    static func shifted(_ node: Node, _ t: Tensor, _ zp: Tensor?, _ count: Int) throws(GraphError) -> [Double] {
        let z = try zeroPoints(node, zp, count, "zero point")
        let v = t.doubleValues()
        if z.count == 1 { return v.map { $0 - z[0] } }
        let inner = t.count / Swift.max(count, 1)
        return v.enumerated().map { i, e in e - z[Swift.min(i / Swift.max(inner, 1), count - 1)] }
    }

    /// QLinearConv-10: conv of (x - x_zp) and (w - w_zp) plus the s32 bias B, times
    /// x_scale · w_scale (scalar or per output channel) / y_scale, rounded half to even, plus y_zp,
    /// saturated to y_zero_point's type.
    static func qLinearConv(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard x.count >= 8, let X = x[0], let xS = x[1], let W = x[3], let wS = x[4], let yS = x[6] else {
            throw fail(node, "needs x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point")
        }
        let g = try convGeometry(node, X.shape, W.shape)
        let m = W.shape[0]
        let ws = wS.floatValues(), xs = xS.floatValues(), ys = yS.floatValues()
        guard xs.count == 1, ys.count == 1, ws.count == 1 || ws.count == m else {
            throw fail(node, "scales of \(xs.count)/\(ws.count)/\(ys.count) values")
        }
        let yz = try zeroPoints(node, x[7], 1, "y_zero_point")
        let r = try convolve(
            node, try shifted(node, X, x[2], 1), X.shape, try shifted(node, W, x[5], m), W.shape, bias: try biasValues(node, input(x, 8), m), g)
        let outSize = g.out.reduce(1, *)
        let scaled = r.values.enumerated().map { i, v -> Double in
            let ch = (i / Swift.max(outSize, 1)) % m
            return v * Double(xs[0] * ws[ws.count == 1 ? 0 : ch] / ys[0])
        }
        let type = x[7]?.elementType ?? X.elementType
        return [tensor(r.shape, requantize(scaled, zeroPoint: { _ in yz[0] }, type: type), type)]
    }

    /// DynamicQuantizeLinear-11 (in f32, as the spec): scale = (max(0, max x) - min(0, min x)) / 255,
    /// zero point = saturate(rint(-min / scale)), y = saturate(rint(x / scale) + zp); outputs y (u8),
    /// y_scale (f32 scalar), y_zero_point (u8 scalar).
    static func dynamicQuantizeLinear(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        let X = x[0]!
        let v = X.floatValues()
        let hi = Swift.max(0, v.max() ?? 0), lo = Swift.min(0, v.min() ?? 0)
        let scale: Float = (hi == lo ? 1 : hi - lo) / 255
        let zp = Swift.min(Swift.max(Float(0) - lo / scale, 0), 255).rounded(.toNearestOrEven)
        let y = v.map { Double(Swift.min(Swift.max(($0 / scale).rounded(.toNearestOrEven) + zp, 0), 255)) }
        return [
            Tensor(shape: X.shape, values: y, elementType: .u8), Tensor(shape: [], scalars: [scale]),
            Tensor(shape: [], values: [Double(zp)], elementType: .u8),
        ]
    }
}

// MARK: - Losses

extension NeuralEvaluators {
    /// NegativeLogLikelihoodLoss-12..22 and SoftmaxCrossEntropyLoss-12/13: input [N, C, D...]
    /// (log-probabilities, or scores for SCE: log_softmax over C first), target [N, D...] of
    /// class indices, optional weight [C]; ignore_index; reduction none (loss [N, D...]), sum or
    /// mean (Σ w·loss / Σ w over the targets not ignored). SCE's optional second output is the
    /// log-probabilities.
    static func loss(_ node: Node, _ x: [Tensor?], softmax: Bool) throws(GraphError) -> [Tensor] {
        guard let T = input(x, 1) else { throw fail(node, "needs a target") }
        let X = x[0]!
        guard X.shape.count >= 2, T.shape == [X.shape[0]] + Array(X.shape[2...]) else {
            throw GraphError(.shapeMismatch, "node \(node.label): input \(X.shape) and target \(T.shape)")
        }
        let n = X.shape[0], c = X.shape[1], d = X.shape[2...].reduce(1, *)
        var v = X.doubleValues()
        if softmax {
            for b in 0..<n {
                for s in 0..<d {
                    var mx = -Double.infinity
                    for k in 0..<c { mx = Swift.max(mx, v[(b * c + k) * d + s]) }
                    var sum = 0.0
                    for k in 0..<c { sum += Foundation.exp(v[(b * c + k) * d + s] - mx) }
                    let lse = mx + Foundation.log(sum)
                    for k in 0..<c { v[(b * c + k) * d + s] -= lse }
                }
            }
        }
        let weights = input(x, 2)?.doubleValues()
        if let weights, weights.count != c { throw fail(node, "weight has \(weights.count) values for \(c) classes") }
        let ignore = node.int("ignore_index")
        let reduction = node.string("reduction") ?? "mean"
        guard ["none", "sum", "mean"].contains(reduction) else { throw fail(node, "reduction '\(reduction)'") }
        let targets = T.intValues()
        var losses = [Double](repeating: 0, count: n * d)
        var weightSum = 0.0
        for b in 0..<n {
            for s in 0..<d {
                let t = targets[b * d + s]
                if let ignore, t == ignore { continue }
                guard t >= 0, t < c else { throw fail(node, "target \(t) is outside 0..<\(c)") }
                let w = weights?[t] ?? 1
                losses[b * d + s] = -v[(b * c + t) * d + s] * w
                weightSum += w
            }
        }
        let result: Tensor
        switch reduction {
        case "none": result = Tensor(shape: T.shape, values: losses, elementType: .f32)
        case "sum": result = Tensor(shape: [], values: [losses.reduce(0, +)], elementType: .f32)
        default: result = Tensor(shape: [], values: [losses.reduce(0, +) / weightSum], elementType: .f32)
        }
        return softmax ? [result, Tensor(shape: X.shape, values: v, elementType: .f32)] : [result]
    }
}

// MARK: - Einsum

extension NeuralEvaluators {
    /// Einsum-12: explicit (`->`) or implicit output (labels seen once, alphabetical, after the
    /// ellipsis dims), `...` broadcast across operands, repeated labels (diagonals), sums over the
    /// labels not in the output. Output: the first operand's element type.
    static func einsum(_ node: Node, _ x: [Tensor?], _ opset: Int) throws(GraphError) -> [Tensor] {
        guard let equation = node.string("equation")?.filter({ !$0.isWhitespace }), !equation.isEmpty else {
            throw fail(node, "needs an equation")
        }
        let operands = x.compactMap { $0 }
        let parts = equation.components(separatedBy: "->")
        guard parts.count <= 2 else { throw fail(node, "equation '\(equation)'") }
        let terms = parts[0].components(separatedBy: ",")
        guard terms.count == operands.count, operands.count == x.count else {
            throw fail(node, "equation '\(equation)' has \(terms.count) operands, the node \(x.count)")
        }
        // Labels: letters as themselves, ellipsis dims as "0", "1", ... (right-aligned).
        var ellipsisRank = 0
        var parsed: [[String]] = []
        for (t, op) in zip(terms, operands) {
            let hasEllipsis = t.contains("...")
            let letters = t.replacingOccurrences(of: "...", with: "")
            guard letters.allSatisfy({ $0.isLetter && $0.isASCII }), t.components(separatedBy: "...").count <= 2 else {
                throw fail(node, "equation term '\(t)'")
            }
            let e = op.shape.count - letters.count
            guard e >= 0, hasEllipsis || e == 0 else { throw fail(node, "term '\(t)' for an operand of rank \(op.shape.count)") }
            ellipsisRank = Swift.max(ellipsisRank, e)
            parsed.append([])
            for ch in t.replacingOccurrences(of: "...", with: "#") {
                if ch == "#" {
                    parsed[parsed.count - 1] += (0..<e).map { "\(ellipsisRank - e + $0)#" }
                } else {
                    parsed[parsed.count - 1].append(String(ch))
                }
            }
        }
        // Ellipsis labels right-aligned: relabel each operand's ellipsis dims against the widest.
        for (i, op) in operands.enumerated() {
            let e = op.shape.count - parsed[i].filter { !$0.hasSuffix("#") }.count
            var k = 0
            parsed[i] = parsed[i].map { l in
                guard l.hasSuffix("#") else { return l }
                defer { k += 1 }
                return "\(ellipsisRank - e + k)#"
            }
        }
        var sizes: [String: Int] = [:]
        for (labels, op) in zip(parsed, operands) {
            for (l, d) in zip(labels, op.shape) {
                if let s = sizes[l], s != d {
                    if l.hasSuffix("#") && (s == 1 || d == 1) { sizes[l] = Swift.max(s, d); continue }
                    throw GraphError(.shapeMismatch, "node \(node.label): label \(l) has sizes \(s) and \(d)")
                }
                if sizes[l] == nil { sizes[l] = d }
            }
        }
        let ellipsisLabels = (0..<ellipsisRank).map { "\($0)#" }
        var output: [String]
        if parts.count == 2 {
            output = []
            let o = parts[1]
            guard o.components(separatedBy: "...").count <= 2 else { throw fail(node, "output '\(o)'") }
            for ch in o.replacingOccurrences(of: "...", with: "#") {
                if ch == "#" {
                    output += ellipsisLabels
                } else {
                    guard sizes[String(ch)] != nil, !output.contains(String(ch)) else { throw fail(node, "output label '\(ch)'") }
                    output.append(String(ch))
                }
            }
        } else {
            var counts: [String: Int] = [:]
            for labels in parsed { for l in labels where !l.hasSuffix("#") { counts[l, default: 0] += 1 } }
            output = ellipsisLabels + counts.filter { $0.value == 1 }.map(\.key).sorted()
        }
        let summed = Array(Set(sizes.keys).subtracting(output)).sorted()
        let all = output + summed
        let outShape = output.map { sizes[$0]! }  // every output label has a size (checked above)
        let allShape = all.map { sizes[$0]! }
        let outCount = try ConstantEvaluation.checkedCount(outShape, node)
        _ = try ConstantEvaluation.checkedCount(allShape, node)
        let position = Dictionary(uniqueKeysWithValues: all.enumerated().map { ($0.element, $0.offset) })
        // For each operand: per dim, the counter it reads (nil for a broadcast size-1 dim) and its stride.
        let reads: [[(Int?, Int)]] = zip(parsed, operands).map { labels, op in
            let strides = Broadcast.strides(op.shape)
            return labels.enumerated().map { d, l in (op.shape[d] == 1 && sizes[l]! != 1 ? nil : position[l], strides[d]) }
        }
        let values = operands.map { $0.doubleValues() }
        var y = [Double](repeating: 0, count: outCount)
        let summedCount = summed.map { sizes[$0]! }.reduce(1, *)
        var coord = [Int](repeating: 0, count: all.count)
        for oi in 0..<outCount {
            var acc = 0.0
            for _ in 0..<summedCount {
                var prod = 1.0
                for (k, r) in reads.enumerated() {
                    var idx = 0
                    for (p, s) in r { if let p { idx += coord[p] * s } }
                    prod *= values[k][idx]
                }
                acc += prod
                Broadcast.advance(&coord, in: allShape)
            }
            y[oi] = acc
            if summedCount == 0 { Broadcast.advance(&coord, in: allShape) }
        }
        return [tensor(outShape, y, operands[0].elementType)]
    }
}
