import DNNL

/// The parameters of one quantized tensor, per tensor: `real = scale * (q - zeroPoint)`, with
/// `q` of `type` (u8 or s8). What placement, QDQ insertion, QDQ fusion and the INT8 kernels
/// hand to each other; never encoded as node attributes.
struct QuantParams: Equatable, Sendable, CustomStringConvertible {
    /// Real units per integer step; finite and > 0.
    var scale: Float
    /// The integer that represents real 0 (0...255 for u8, -128...127 for s8).
    var zeroPoint: Int
    /// `.u8` or `.s8`.
    var type: ElementType

    var range: ClosedRange<Int> { type == .u8 ? 0...255 : -128...127 }
    var dataType: DataType { type == .u8 ? .u8 : .s8 }
    var description: String { "\(type) scale \(scale) zp \(zeroPoint)" }

    init(scale: Float, zeroPoint: Int, type: ElementType) {
        self.scale = scale
        self.zeroPoint = zeroPoint
        self.type = type
    }
}

/// Symmetric s8 weight scales (zero point 0): one per output channel along `axis`, or one
/// for the whole tensor (`axis` nil). For a Conv `[OC, IC/g, KH, KW]` the axis is 0; for a
/// MatMul `[K, N]` it is 1 (ONNX DequantizeLinear's `axis`).
struct WeightScales: Equatable, Sendable {
    var scales: [Float]
    var axis: Int?

    /// The scales spread over `channels` output channels.
    /// - Returns: nil when the count is neither 1 nor `channels`.
    func perChannel(_ channels: Int) -> [Float]? {
        if scales.count == channels { return scales }
        if scales.count == 1 { return [Float](repeating: scales[0], count: channels) }
        return nil
    }
}
