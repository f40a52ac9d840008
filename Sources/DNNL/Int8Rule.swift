/// Primitive families with INT8 (u8/s8 source, s8 weights) kernels.
public enum Int8PrimitiveKind: Sendable, Hashable {
    case convolution, deconvolution, innerProduct, matmul
}

/// What INT8 arithmetic is exact on a CPU, and the rule this library follows where it is not
/// (ONEDNN_INT8_NOTES.md A4, oneDNN doc advanced/int8_computations.md).
///
/// Hardware multiplies only u8 x s8. With VNNI (`vpdpbusd`) products accumulate straight into
/// s32 and everything is exact. Without VNNI (`ONEDNN_MAX_CPU_ISA=AVX2` or `AVX512_CORE`),
/// `vpmaddubsw` adds *pairs* of u8 x s8 products into a saturating s16: 255 x 127 x 2 = 64770
/// overflows. oneDNN 2.6 then also runs s8 sources of inner product and matmul through an
/// s8s8 GEMM without that protection (127 x 127 x 64 gives 8160 instead of 1032256).
///
/// The rule on a CPU without VNNI:
/// 1. weights are quantized to 7 bits, |q| <= 63, so a pair of products is at most
///    2 x 255 x 63 = 32130 < 32767;
/// 2. inner product and matmul sources are u8 (a signed activation gets zero point 128,
///    or its node stays FP32).
/// Convolutions with s8 sources stay allowed: oneDNN shifts them to u8 by +128 and halves the
/// weights itself (`scale_adjust` 0.5, depthwise included), costing one more bit of weight
/// precision (`halvesWeightsOfSignedSourceConvolutions`): odd weights are rounded.
public struct Int8Rule: Sendable, Hashable {
    public let isa: CPUISA

    public init(isa: CPUISA = Platform.isa) { self.isa = isa }

    /// Largest magnitude of a quantized s8 weight: 127 with VNNI, 63 without.
    public var weightMax: Int { isa.hasVNNI ? 127 : 63 }

    /// True when oneDNN halves the s8 weights of convolutions with s8 sources (no VNNI), so
    /// that only even quantized weights are represented exactly there.
    public var halvesWeightsOfSignedSourceConvolutions: Bool { !isa.hasVNNI }

    /// Whether an s8 source is computed correctly by `kind`'s INT8 kernels on this CPU.
    public func allowsSignedSource(for kind: Int8PrimitiveKind) -> Bool {
        switch kind {
        case .convolution, .deconvolution: true
        case .innerProduct, .matmul: isa.hasVNNI
        }
    }
}
