import CDNNL

/// Element-wise functions (`dnnl_eltwise_*`), used by the eltwise primitive and eltwise
/// post-ops. Semantics with parameters `alpha`, `beta` (oneDNN doc, primitives/eltwise.md):
/// - `relu`: x > 0 ? x : alpha * x
/// - `clip`: min(max(x, alpha), beta) (`clipV2` same, alpha exclusive at the gradient only)
/// - `linear`: alpha * x + beta (HardSigmoid is `linear` then `clip(0, 1)`: 2.6 has no hardsigmoid)
/// - `hardswish`: x * min(max(x + 3, 0), 6) / 6 (alpha, beta unused in 2.6)
/// - `logistic`: 1 / (1 + e^-x); `tanh`; `geluErf`: 0.5 x (1 + erf(x / sqrt 2));
///   `geluTanh`; `swish`: x / (1 + e^(-alpha x)); `elu`; `exp`; `log`; `sqrt`; `square`;
///   `abs`; `pow`: alpha * x^beta; `softRelu`: log(1 + e^x); `round` (half to even); `mish`.
public enum EltwiseAlgorithm: Sendable, Hashable {
    case relu, tanh, elu, square, abs, sqrt, linear, boundedRelu, softRelu, logistic, exp
    case geluTanh, swish, log, clip, clipV2, pow, geluErf, round, logsigmoid, mish, hardswish

    public var raw: dnnl_alg_kind_t {
        switch self {
        case .relu: dnnl_eltwise_relu
        case .tanh: dnnl_eltwise_tanh
        case .elu: dnnl_eltwise_elu
        case .square: dnnl_eltwise_square
        case .abs: dnnl_eltwise_abs
        case .sqrt: dnnl_eltwise_sqrt
        case .linear: dnnl_eltwise_linear
        case .boundedRelu: dnnl_eltwise_bounded_relu
        case .softRelu: dnnl_eltwise_soft_relu
        case .logistic: dnnl_eltwise_logistic
        case .exp: dnnl_eltwise_exp
        case .geluTanh: dnnl_eltwise_gelu_tanh
        case .swish: dnnl_eltwise_swish
        case .log: dnnl_eltwise_log
        case .clip: dnnl_eltwise_clip
        case .clipV2: dnnl_eltwise_clip_v2
        case .pow: dnnl_eltwise_pow
        case .geluErf: dnnl_eltwise_gelu_erf
        case .round: dnnl_eltwise_round
        case .logsigmoid: dnnl_eltwise_logsigmoid
        case .mish: dnnl_eltwise_mish
        case .hardswish: dnnl_eltwise_hardswish
        }
    }
}

/// Two-input element-wise operations (`dnnl_binary_*`): dst = src0 op src1, with src1
/// broadcast along its dims of size 1.
public enum BinaryAlgorithm: Sendable, Hashable {
    case add, mul, sub, div, max, min

    public var raw: dnnl_alg_kind_t {
        switch self {
        case .add: dnnl_binary_add
        case .mul: dnnl_binary_mul
        case .sub: dnnl_binary_sub
        case .div: dnnl_binary_div
        case .max: dnnl_binary_max
        case .min: dnnl_binary_min
        }
    }
}
