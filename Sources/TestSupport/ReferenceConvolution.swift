/// Naive references for sliding-window operators on plain NCHW data, accumulated in Double.
/// Parameters follow ONNX: dilation 1 means none; pads `[top, left]` / `[bottom, right]`.
public enum Reference {}

/// 2-D convolution geometry (ONNX conventions).
public struct Conv2DGeometry: Sendable {
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int) = (1, 1)
    public var dilation: (h: Int, w: Int) = (1, 1)
    public var padBegin: (h: Int, w: Int) = (0, 0)
    public var padEnd: (h: Int, w: Int) = (0, 0)
    public var groups: Int = 1

    public init(
        kernel: (h: Int, w: Int), stride: (h: Int, w: Int) = (1, 1),
        dilation: (h: Int, w: Int) = (1, 1), padBegin: (h: Int, w: Int) = (0, 0),
        padEnd: (h: Int, w: Int) = (0, 0), groups: Int = 1
    ) {
        self.kernel = kernel; self.stride = stride; self.dilation = dilation
        self.padBegin = padBegin; self.padEnd = padEnd; self.groups = groups
    }

    /// Output size of a convolution over `input` positions.
    public func convOutput(h: Int, w: Int) -> (h: Int, w: Int) {
        (
            (h + padBegin.h + padEnd.h - (kernel.h - 1) * dilation.h - 1) / stride.h + 1,
            (w + padBegin.w + padEnd.w - (kernel.w - 1) * dilation.w - 1) / stride.w + 1
        )
    }

    /// Output size of a transposed convolution.
    public func deconvOutput(h: Int, w: Int) -> (h: Int, w: Int) {
        (
            (h - 1) * stride.h - padBegin.h - padEnd.h + (kernel.h - 1) * dilation.h + 1,
            (w - 1) * stride.w - padBegin.w - padEnd.w + (kernel.w - 1) * dilation.w + 1
        )
    }

    /// oneDNN's 0-based dilation.
    public var dnnlDilations: [Int] { [dilation.h - 1, dilation.w - 1] }
    public var strides: [Int] { [stride.h, stride.w] }
    public var paddingL: [Int] { [padBegin.h, padBegin.w] }
    public var paddingR: [Int] { [padEnd.h, padEnd.w] }
}

extension Reference {
    /// Convolution, src `[N, C, H, W]`, weights `[OC, C/groups, KH, KW]`, bias `[OC]`.
    /// - Returns: `[N, OC, OH, OW]` row-major.
    public static func convolution(
        src: [Double], n: Int, c: Int, h: Int, w: Int,
        weights: [Double], oc: Int, bias: [Double]?, geometry g: Conv2DGeometry
    ) -> [Double] {
        let (oh, ow) = g.convOutput(h: h, w: w)
        let icg = c / g.groups, ocg = oc / g.groups
        var dst = [Double](repeating: 0, count: n * oc * oh * ow)
        for b in 0..<n {
            for o in 0..<oc {
                let grp = o / ocg
                for y in 0..<oh {
                    for x in 0..<ow {
                        var acc = bias?[o] ?? 0
                        for i in 0..<icg {
                            for ky in 0..<g.kernel.h {
                                for kx in 0..<g.kernel.w {
                                    let iy = y * g.stride.h - g.padBegin.h + ky * g.dilation.h
                                    let ix = x * g.stride.w - g.padBegin.w + kx * g.dilation.w
                                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                    let ci = grp * icg + i
                                    acc +=
                                        src[((b * c + ci) * h + iy) * w + ix]
                                        * weights[((o * icg + i) * g.kernel.h + ky) * g.kernel.w + kx]
                                }
                            }
                        }
                        dst[((b * oc + o) * oh + y) * ow + x] = acc
                    }
                }
            }
        }
        return dst
    }

    /// Transposed convolution, src `[N, C, H, W]`, weights `[C, OC/groups, KH, KW]` (ONNX
    /// ConvTranspose layout), bias `[OC]`.
    /// - Returns: `[N, OC, OH, OW]`.
    public static func deconvolution(
        src: [Double], n: Int, c: Int, h: Int, w: Int,
        weights: [Double], oc: Int, bias: [Double]?, geometry g: Conv2DGeometry
    ) -> [Double] {
        let (oh, ow) = g.deconvOutput(h: h, w: w)
        let icg = c / g.groups, ocg = oc / g.groups
        var dst = [Double](repeating: 0, count: n * oc * oh * ow)
        for b in 0..<n {
            for ci in 0..<c {
                let grp = ci / icg
                for y in 0..<h {
                    for x in 0..<w {
                        let v = src[((b * c + ci) * h + y) * w + x]
                        for j in 0..<ocg {
                            for ky in 0..<g.kernel.h {
                                for kx in 0..<g.kernel.w {
                                    let oy = y * g.stride.h - g.padBegin.h + ky * g.dilation.h
                                    let ox = x * g.stride.w - g.padBegin.w + kx * g.dilation.w
                                    guard oy >= 0, oy < oh, ox >= 0, ox < ow else { continue }
                                    let o = grp * ocg + j
                                    dst[((b * oc + o) * oh + oy) * ow + ox] +=
                                        v * weights[((ci * ocg + j) * g.kernel.h + ky) * g.kernel.w + kx]
                                }
                            }
                        }
                    }
                }
            }
        }
        if let bias {
            for b in 0..<n {
                for o in 0..<oc {
                    for i in 0..<(oh * ow) {
                        dst[(b * oc + o) * oh * ow + i] += bias[o]
                    }
                }
            }
        }
        return dst
    }

    /// Pooling over `[N, C, H, W]`. `max`, or average counting padding or not.
    public enum PoolKind: Sendable { case max, averageIncludePadding, averageExcludePadding }

    /// - Returns: `[N, C, OH, OW]`.
    public static func pooling(
        _ kind: PoolKind, src: [Double], n: Int, c: Int, h: Int, w: Int, geometry g: Conv2DGeometry
    ) -> [Double] {
        let (oh, ow) = g.convOutput(h: h, w: w)
        var dst = [Double](repeating: 0, count: n * c * oh * ow)
        for p in 0..<(n * c) {
            for y in 0..<oh {
                for x in 0..<ow {
                    var acc = kind == .max ? -Double.infinity : 0
                    var valid = 0
                    for ky in 0..<g.kernel.h {
                        for kx in 0..<g.kernel.w {
                            let iy = y * g.stride.h - g.padBegin.h + ky * g.dilation.h
                            let ix = x * g.stride.w - g.padBegin.w + kx * g.dilation.w
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            let v = src[(p * h + iy) * w + ix]
                            acc = kind == .max ? max(acc, v) : acc + v
                            valid += 1
                        }
                    }
                    switch kind {
                    case .max: break
                    case .averageIncludePadding: acc /= Double(g.kernel.h * g.kernel.w)
                    case .averageExcludePadding: acc /= Double(max(valid, 1))
                    }
                    dst[(p * oh + y) * ow + x] = acc
                }
            }
        }
        return dst
    }
}
