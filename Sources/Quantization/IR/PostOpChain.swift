import DNNL

/// An element-wise function applied by a oneDNN eltwise primitive or post-op:
/// `f(x; alpha, beta)` of `algorithm` (oneDNN doc: eltwise primitive).
struct Activation: Equatable, Sendable {
    var algorithm: EltwiseAlgorithm
    var alpha: Float = 0
    var beta: Float = 0
}

/// The post-ops of a fused node, in order (oneDNN doc: primitive attributes, post-ops):
/// eltwise functions and at most one sum of a residual tensor, which the fused node reads as
/// its input 3 (`Z`).
struct PostOpChain: Equatable, Sendable {
    enum Op: Equatable, Sendable {
        case sum
        case eltwise(Activation)
    }

    var ops: [Op] = []
    /// The sum may write into the residual's buffer: nothing else reads the residual.
    var sumInPlace = false
    /// The sum's scale: 1 for a residual Add, -1 for a residual subtracted (`Sub(op, z)`:
    /// `dst = op - z`, Paddle's elementwise_sub as a sum post-op).
    var sumScale: Float = 1

    var hasSum: Bool { ops.contains(.sum) }
    var isEmpty: Bool { ops.isEmpty }
    var eltwiseCount: Int { ops.filter { if case .eltwise = $0 { true } else { false } }.count }

    init(ops: [Op] = [], sumInPlace: Bool = false) {
        self.ops = ops
        self.sumInPlace = sumInPlace
    }

    /// Appends eltwise post-ops, merging consecutive `linear`s (`a2 (a1 x + b1) + b2`).
    /// Returns false, appending nothing, when an algorithm would appear twice with different
    /// parameters: oneDNN 2.6's jit eltwise injectors then apply the first one's parameters to
    /// both (measured here: relu + linear(1.5) + linear(1, 0.3) gave 2.25 relu(x) + 0.3).
    mutating func append(_ acts: [Activation]) -> Bool {
        var result = ops
        for a in acts {
            if a.algorithm == .linear, case .eltwise(let p)? = result.last, p.algorithm == .linear {
                result[result.count - 1] = .eltwise(
                    Activation(
                        algorithm: .linear, alpha: a.alpha * p.alpha,
                        beta: a.alpha * p.beta + a.beta))
                continue
            }
            let clash = result.contains { op in
                if case .eltwise(let p) = op { return p.algorithm == a.algorithm && p != a }
                return false
            }
            if clash { return false }
            result.append(.eltwise(a))
        }
        ops = result
        return true
    }

    /// `"+sum+relu"`, for reports.
    var summary: String {
        ops.map { op -> String in
            switch op {
            case .sum: sumScale == 1 ? "+sum" : "+sum(\(sumScale))"
            case .eltwise(let a): "+\(a.algorithm)"
            }
        }.joined()
    }
}
