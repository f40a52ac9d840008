import Foundation

/// Paddle's `prior_box` (SSD anchor boxes) as a custom-domain ONNX node, `PriorBox` in domain
/// ``domain`` (paddle2onnx 2.1 cannot export it). Inputs: the feature map `Input` [N, C, H, W]
/// and the image `Image` [N, C, IH, IW]; only their shapes are read, so an int8 (u8/s8)
/// feature map is never dequantized. Outputs: `Boxes` and `Variances`, f32 [H, W, P, 4]
/// (normalized x_min, y_min, x_max, y_max; the variance 4-vector repeated), computed once per
/// plan (constants of the plan).
///
/// Attributes (Paddle's names and defaults): `min_sizes` (floats, required), `max_sizes`
/// (floats, one per min size or none), `aspect_ratios` (floats, default [1]), `variance`
/// (4 floats, default [0.1, 0.1, 0.2, 0.2]), `flip` (int 0/1: add 1/ar), `clip` (int 0/1: clamp
/// to [0, 1]), `steps` (floats [step_w, step_h]; 0 = image size / feature size), `offset`
/// (float, default 0.5), `min_max_aspect_ratios_order` (int 0/1: the min, max, then the other
/// ratios, as Caffe's SSD). Source: PaddlePaddle `phi/kernels/cpu/prior_box_kernel.cc` and
/// `paddle.vision.ops.prior_box` (the tests compare with it).
enum PriorBoxKernels {
    static let domain = "paddle"
    static let opType = "PriorBox"

    static func isPriorBox(_ node: Node) -> Bool { node.domain == domain && node.opType == opType }

    /// Aspect ratios 1, then each given ratio not yet present (and its inverse with `flip`).
    static func expandedAspectRatios(_ given: [Float], flip: Bool) -> [Float] {
        var out: [Float] = [1]
        for ar in given where !out.contains(where: { abs($0 - ar) < 1e-6 }) {
            out.append(ar)
            if flip { out.append(1 / ar) }
        }
        return out
    }

    /// The boxes and variances for a feature map of `feature` shape over an image of `image` shape.
    static func evaluate(_ node: Node, feature: [Int], image: [Int]) throws(GraphError) -> (boxes: Tensor, variances: Tensor) {
        func fail(_ m: String) -> GraphError { GraphError(.unsupportedAttribute, "node \(node.label): \(m)") }
        guard feature.count == 4, image.count == 4 else { throw fail("PriorBox needs 4-D Input and Image, got \(feature) and \(image)") }
        guard let minSizes = node.floats("min_sizes"), !minSizes.isEmpty, minSizes.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw fail("PriorBox needs positive min_sizes")
        }
        let maxSizes = node.floats("max_sizes") ?? []
        guard maxSizes.isEmpty || maxSizes.count == minSizes.count, maxSizes.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw fail("max_sizes must be positive, one per min size (\(minSizes.count)), got \(maxSizes)")
        }
        let given = node.floats("aspect_ratios") ?? [1]
        guard given.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw fail("aspect_ratios must be positive, got \(given)") }
        let variance = node.floats("variance") ?? [0.1, 0.1, 0.2, 0.2]
        guard variance.count == 4 else { throw fail("variance needs 4 values, got \(variance)") }
        let steps = node.floats("steps") ?? [0, 0]
        guard steps.count == 2, steps.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw fail("steps needs 2 values >= 0, got \(steps)") }
        let offset = node.float("offset") ?? 0.5
        let flip = (node.int("flip") ?? 0) != 0, clip = (node.int("clip") ?? 0) != 0
        let minMaxOrder = (node.int("min_max_aspect_ratios_order") ?? 0) != 0
        let ratios = expandedAspectRatios(given, flip: flip)

        let (fh, fw, ih, iw) = (feature[2], feature[3], image[2], image[3])
        guard fh > 0, fw > 0, ih > 0, iw > 0 else { throw fail("PriorBox needs non-empty feature map and image, got \(feature) and \(image)") }
        let stepW = steps[0] == 0 || steps[1] == 0 ? Float(iw) / Float(fw) : steps[0]
        let stepH = steps[0] == 0 || steps[1] == 0 ? Float(ih) / Float(fh) : steps[1]
        let priors = ratios.count * minSizes.count + maxSizes.count
        let shape = [fh, fw, priors, 4]
        _ = try ConstantEvaluation.checkedCount(shape, node)
        var boxes: [Float] = []
        boxes.reserveCapacity(fh * fw * priors * 4)
        for h in 0..<fh {
            for w in 0..<fw {
                let cx = (Float(w) + offset) * stepW, cy = (Float(h) + offset) * stepH
                func push(_ bw: Float, _ bh: Float) {
                    boxes += [(cx - bw) / Float(iw), (cy - bh) / Float(ih), (cx + bw) / Float(iw), (cy + bh) / Float(ih)]
                }
                for (s, minSize) in minSizes.enumerated() {
                    if minMaxOrder {
                        push(minSize / 2, minSize / 2)
                        if !maxSizes.isEmpty { let side = (minSize * maxSizes[s]).squareRoot() / 2; push(side, side) }
                        for ar in ratios where abs(ar - 1) >= 1e-6 { push(minSize * ar.squareRoot() / 2, minSize / ar.squareRoot() / 2) }
                    } else {
                        for ar in ratios { push(minSize * ar.squareRoot() / 2, minSize / ar.squareRoot() / 2) }
                        if !maxSizes.isEmpty { let side = (minSize * maxSizes[s]).squareRoot() / 2; push(side, side) }
                    }
                }
            }
        }
        if clip { boxes = boxes.map { min(max($0, 0), 1) } }
        let variances = (0..<(fh * fw * priors)).flatMap { _ in variance }
        return (Tensor(shape: shape, scalars: boxes), Tensor(shape: shape, scalars: variances))
    }

    /// Defines the node's outputs as constants of the plan (from the input shapes only).
    static func lower(_ node: Node, _ l: Lowering) throws(GraphError) {
        guard node.inputs.count >= 2, let input = node.input(0), let image = node.input(1) else {
            throw GraphError(.invalidModel, "node \(node.label): PriorBox needs Input and Image")
        }
        let (boxes, variances) = try evaluate(node, feature: try l.shape(input), image: try l.shape(image))
        if let b = node.outputs.first, !b.isEmpty { l.define(b, .constant(boxes)) }
        if node.outputs.count > 1, !node.outputs[1].isEmpty { l.define(node.outputs[1], .constant(variances)) }
    }
}
