import Foundation

/// Math and element-wise operators evaluated in Swift over `Tensor`s (at plan time on
/// constants, at run time through `RuntimeEvaluation`), following the ONNX operator spec
/// (Operators.md; the reference implementation `onnx/reference/ops/op_*.py` where the spec
/// leaves a case open).
///
/// Every operator here is element-wise: the output has the input's shape (unary) or the NumPy
/// broadcast of the input shapes (binary, `Where`, `PRelu`), so the output shape depends on
/// input shapes only. Types: f32 is computed in Double and rounded once to f32; integer types
/// (u8/bool, s8, s32, i64) that an operator defines are computed exactly on `Int` and wrap to
/// the element type as NumPy does (`Add`, `Mul`, `Abs(INT8_MIN)`, ...); integer division and
/// modulo by zero give 0 instead of trapping. Float-only operators given integers compute in
/// Double and convert back (truncated toward zero, saturated).
enum MathEvaluators {
    typealias Evaluator = ConstantEvaluation.Evaluator
    typealias FloatFunction = @Sendable (Double) -> Double
    typealias IntFunction = @Sendable (Int) -> Int

    static func register(_ e: inout [String: Evaluator]) {
        registerUnary(&e)
        registerBinary(&e)
        e["Clip"] = clip
        e["Cast"] = cast
        e["CastLike"] = castLike
        e["Where"] = whereOp
        e["PRelu"] = prelu
        e["IsNaN"] = predicate { _ in { $0.isNaN } }
        e["IsInf"] = predicate { node in
            let negative = (node.int("detect_negative") ?? 1) != 0, positive = (node.int("detect_positive") ?? 1) != 0
            return { $0.isInfinite && ($0 < 0 ? negative : positive) }
        }
    }

    // MARK: unary

    /// Unary operators: a Double function (of the node's attributes) for f32, and for the
    /// operators defined on integers an exact `Int` function.
    static func registerUnary(_ e: inout [String: Evaluator]) {
        let plain: [String: FloatFunction] = [
            "Sin": { Foundation.sin($0) }, "Cos": { Foundation.cos($0) }, "Tan": { Foundation.tan($0) },
            "Asin": { Foundation.asin($0) }, "Acos": { Foundation.acos($0) }, "Atan": { Foundation.atan($0) },
            "Sinh": { Foundation.sinh($0) }, "Cosh": { Foundation.cosh($0) }, "Asinh": { Foundation.asinh($0) },
            "Acosh": { Foundation.acosh($0) }, "Atanh": { Foundation.atanh($0) }, "Erf": { Foundation.erf($0) },
            "Reciprocal": { 1 / $0 }, "Log": { Foundation.log($0) }, "Exp": { Foundation.exp($0) },
            "Sqrt": { $0.squareRoot() }, "Sigmoid": sigmoid, "Tanh": { Foundation.tanh($0) },
            "Softsign": { $0 / (1 + Swift.abs($0)) }, "Softplus": softplus,
            "Mish": { $0 * Foundation.tanh(softplus($0)) },
            "HardSwish": { $0 * Swift.max(0, Swift.min(1, $0 / 6 + 0.5)) },
        ]
        for (name, f) in plain { e[name] = unary { _ in f } }
        // Operators defined on integers too (exact on Int, wrapping to the element type).
        let integer: [String: (FloatFunction, IntFunction)] = [
            "Abs": ({ Swift.abs($0) }, { $0 < 0 ? 0 &- $0 : $0 }),
            "Neg": ({ -$0 }, { 0 &- $0 }),
            "Relu": ({ $0.isNaN ? $0 : Swift.max($0, 0) }, { Swift.max($0, 0) }),
            "Sign": ({ $0.isNaN ? $0 : ($0 > 0 ? 1 : ($0 < 0 ? -1 : 0)) }, { $0.signum() }),
            "Floor": ({ $0.rounded(.down) }, { $0 }),
            "Ceil": ({ $0.rounded(.up) }, { $0 }),
            "Round": ({ $0.rounded(.toNearestOrEven) }, { $0 }),
            "Not": ({ $0 == 0 ? 1 : 0 }, { $0 == 0 ? 1 : 0 }),
            "BitwiseNot": ({ Double(~Int(saturating: $0)) }, { ~$0 }),
        ]
        for (name, (f, g)) in integer { e[name] = unary(integer: { _ in g }) { _ in f } }
        e["LeakyRelu"] = unary { node in
            let alpha = Double(node.float("alpha") ?? 0.01)
            return { $0 < 0 ? alpha * $0 : $0 }
        }
        e["Elu"] = unary { node in
            let alpha = Double(node.float("alpha") ?? 1)
            return { $0 < 0 ? alpha * Foundation.expm1($0) : $0 }
        }
        e["Celu"] = unary { node in
            let alpha = Double(node.float("alpha") ?? 1)
            return { Swift.max(0, $0) + Swift.min(0, alpha * Foundation.expm1($0 / alpha)) }
        }
        e["Selu"] = unary { node in
            let alpha = Double(node.float("alpha") ?? 1.67326319217681884765625)
            let gamma = Double(node.float("gamma") ?? 1.05070102214813232421875)
            return { gamma * ($0 > 0 ? $0 : alpha * Foundation.expm1($0)) }
        }
        e["ThresholdedRelu"] = unary { node in
            let alpha = Double(node.float("alpha") ?? 1)
            return { $0 > alpha ? $0 : 0 }
        }
        e["HardSigmoid"] = unary { node in
            let alpha = Double(node.float("alpha") ?? 0.2), beta = Double(node.float("beta") ?? 0.5)
            return { $0.isNaN ? $0 : Swift.max(0, Swift.min(1, alpha * $0 + beta)) }
        }
        e["Shrink"] = unary { node in
            let bias = Double(node.float("bias") ?? 0), lambd = Double(node.float("lambd") ?? 0.5)
            return { $0 < -lambd ? $0 + bias : ($0 > lambd ? $0 - bias : 0) }
        }
        e["Gelu"] = unary { node in
            switch node.string("approximate") ?? "none" {
            case "none": return { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }
            case "tanh":
                let c = (2 / Double.pi).squareRoot()
                return { 0.5 * $0 * (1 + Foundation.tanh(c * ($0 + 0.044715 * $0 * $0 * $0))) }
            case let other: throw ConstantEvaluation.fail(node, "Gelu approximate '\(other)' (expected none or tanh)")
            }
        }
    }

    @Sendable static func sigmoid(_ x: Double) -> Double {
        x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))
    }

    /// `log(1 + exp(x))` without overflow or cancellation (NumPy's `logaddexp(0, x)`).
    @Sendable static func softplus(_ x: Double) -> Double {
        x.isNaN ? x : (x > 0 ? x + Foundation.log1p(Foundation.exp(-x)) : Foundation.log1p(Foundation.exp(x)))
    }

    /// An element-wise unary evaluator: `float(node)` on f32 (in Double); on integer types
    /// `integer(node)` when given (exact, wrapping), else `float(node)` converted back.
    static func unary(
        integer: (@Sendable (Node) throws -> IntFunction)? = nil,
        _ float: @escaping @Sendable (Node) throws -> FloatFunction
    ) -> Evaluator {
        { node, x, _ in
            let t = x[0]!
            if t.elementType != .f32, let integer {
                let g = try integer(node)
                return [wrapped(t.shape, t.intValues().map(g), t.elementType)]
            }
            let f = try float(node)
            return [Tensor(shape: t.shape, values: t.doubleValues().map(f), elementType: t.elementType)]
        }
    }

    /// An element-wise test giving ONNX bool (u8 0/1).
    static func predicate(_ p: @escaping @Sendable (Node) -> @Sendable (Double) -> Bool) -> Evaluator {
        { node, x, _ in
            let t = x[0]!, f = p(node)
            return [Tensor(shape: t.shape, scalars: t.doubleValues().map { f($0) ? UInt8(1) : 0 })]
        }
    }

    /// A tensor of `type` holding `values` wrapped to it (two's complement truncation, as
    /// NumPy's integer arithmetic); f32 rounds.
    static func wrapped(_ shape: [Int], _ values: [Int], _ type: ElementType) -> Tensor {
        switch type {
        case .f32: Tensor(shape: shape, scalars: values.map { Float($0) })
        case .u8: Tensor(shape: shape, scalars: values.map { UInt8(truncatingIfNeeded: $0) })
        case .s8: Tensor(shape: shape, scalars: values.map { Int8(truncatingIfNeeded: $0) })
        case .s32: Tensor(shape: shape, scalars: values.map { Int32(truncatingIfNeeded: $0) })
        case .i64: Tensor(shape: shape, scalars: values.map { Int64($0) })
        }
    }

    // MARK: binary

    /// Binary operators with NumPy broadcasting: f32 in Double, integers exact on Int.
    static func registerBinary(_ e: inout [String: Evaluator]) {
        typealias Pair = (float: @Sendable (Double, Double) -> Double, integer: @Sendable (Int, Int) -> Int)
        let arithmetic: [String: Pair] = [
            "Add": ({ $0 + $1 }, { $0 &+ $1 }),
            "Sub": ({ $0 - $1 }, { $0 &- $1 }),
            "Mul": ({ $0 * $1 }, { $0 &* $1 }),
            // C truncation; x / 0 gives 0 (NumPy) and INT_MIN / -1 wraps.
            "Div": ({ $0 / $1 }, { $1 == 0 ? 0 : $0.dividedReportingOverflow(by: $1).partialValue }),
            "BitwiseAnd": ({ Double(Int(saturating: $0) & Int(saturating: $1)) }, { $0 & $1 }),
            "BitwiseOr": ({ Double(Int(saturating: $0) | Int(saturating: $1)) }, { $0 | $1 }),
            "BitwiseXor": ({ Double(Int(saturating: $0) ^ Int(saturating: $1)) }, { $0 ^ $1 }),
        ]
        for (name, p) in arithmetic {
            e[name] = { node, x, _ in
                guard x.count == 2 else { throw ConstantEvaluation.fail(node, "\(name) of \(x.count) inputs (binary only)") }
                return [try binary(node, x[0]!, x[1]!, float: p.float, integer: p.integer)]
            }
        }
        e["Xor"] = { node, x, _ in
            [try binary(node, x[0]!, x[1]!, float: { ($0 != 0) != ($1 != 0) ? 1 : 0 }, integer: { ($0 != 0) != ($1 != 0) ? 1 : 0 }, result: .u8)]
        }
        e["Mod"] = { node, x, _ in
            switch node.int("fmod") ?? 0 {
            case 0: return [try binary(node, x[0]!, x[1]!, float: numpyMod, integer: floorMod)]
            case 1: return [try binary(node, x[0]!, x[1]!, float: { Foundation.fmod($0, $1) }, integer: truncMod)]
            case let f: throw ConstantEvaluation.fail(node, "Mod fmod \(f) (expected 0 or 1)")
            }
        }
        e["BitShift"] = { node, x, _ in
            let a = x[0]!, b = x[1]!
            guard a.elementType != .f32, b.elementType != .f32 else { throw ConstantEvaluation.fail(node, "BitShift of float values") }
            let bits = a.elementType.byteSize * 8, signed = a.elementType != .u8
            switch node.string("direction") {
            case "LEFT":
                return [try binary(node, a, b, float: { a, _ in a }, integer: { v, s in s < 0 || s >= bits ? 0 : v << s })]
            case "RIGHT":
                return [try binary(node, a, b, float: { a, _ in a }, integer: { v, s in s < 0 || s >= bits ? (signed && v < 0 ? -1 : 0) : v >> s })]
            case let d: throw ConstantEvaluation.fail(node, "BitShift direction '\(d ?? "")' (expected LEFT or RIGHT)")
            }
        }
    }

    /// Python/NumPy integer modulo: the sign of the divisor; `x mod 0` is 0.
    @Sendable static func floorMod(_ a: Int, _ b: Int) -> Int {
        guard b != 0 else { return 0 }
        var r = a.remainderReportingOverflow(dividingBy: b).partialValue
        if r != 0 && (r < 0) != (b < 0) { r += b }
        return r
    }

    /// C `fmod` on integers (the sign of the dividend); `x fmod 0` is 0.
    @Sendable static func truncMod(_ a: Int, _ b: Int) -> Int {
        b == 0 ? 0 : a.remainderReportingOverflow(dividingBy: b).partialValue
    }

    /// `numpy.mod` on floats: `fmod` moved to the divisor's sign (`-3 mod inf` is inf), a zero
    /// result takes the divisor's sign.
    @Sendable static func numpyMod(_ a: Double, _ b: Double) -> Double {
        var m = Foundation.fmod(a, b)
        if m.isNaN { return m }
        if m != 0 {
            if (b < 0) != (m < 0) { m += b }
        } else {
            m = Double(signOf: b, magnitudeOf: 0)
        }
        return m
    }

    /// Broadcast `a` op `b`: integer inputs (both) exact on Int and wrapped to `a`'s type,
    /// otherwise in Double. The result is `result` or `a`'s type.
    static func binary(
        _ node: Node, _ a: Tensor, _ b: Tensor, float: (Double, Double) -> Double, integer: (Int, Int) -> Int,
        result: ElementType? = nil
    ) throws(GraphError) -> Tensor {
        let (shape, ia, ib) = try broadcast(node, a.shape, b.shape)
        let type = result ?? a.elementType
        if a.elementType != .f32 && b.elementType != .f32 {
            let av = a.intValues(), bv = b.intValues()
            return wrapped(shape, (0..<ia.count).map { integer(av[ia[$0]], bv[ib[$0]]) }, type)
        }
        let av = a.doubleValues(), bv = b.doubleValues()
        return Tensor(shape: shape, values: (0..<ia.count).map { float(av[ia[$0]], bv[ib[$0]]) }, elementType: type)
    }

    /// The broadcast shape of two shapes and, per output element, the flat index into each.
    static func broadcast(_ node: Node, _ a: [Int], _ b: [Int]) throws(GraphError) -> ([Int], [Int], [Int]) {
        guard let shape = Broadcast.shape(a, b) else {
            throw GraphError(.shapeMismatch, "node \(node.label): shapes \(a) and \(b) do not broadcast")
        }
        _ = try ConstantEvaluation.checkedCount(shape, node)
        return (shape, Broadcast.indices(of: a, in: shape), Broadcast.indices(of: b, in: shape))
    }

    // MARK: Clip, Where, PRelu

    /// Clip (opset 1-6: `min`/`max` attributes; 11+: optional scalar inputs 1 and 2, either
    /// may be absent): `min(max(x, lo), hi)` as `numpy.clip` (lo > hi gives hi; NaN stays),
    /// exact on integers. Output: x's shape and type.
    static func clip(_ node: Node, _ x: [Tensor?], _ opset: Int) throws -> [Tensor] {
        let t = x[0]!
        func bound(_ i: Int, _ attribute: String) throws -> Tensor? {
            if i < x.count, let b = x[i] {
                guard b.count == 1 else { throw ConstantEvaluation.fail(node, "Clip bound \(i) has shape \(b.shape), expected a scalar") }
                return b
            }
            return node.float(attribute).map { Tensor(shape: [], scalars: [$0]) }
        }
        let lo = try bound(1, "min"), hi = try bound(2, "max")
        if t.elementType != .f32 {
            let l = lo.map { $0.elementType == .f32 ? Int(saturating: $0.doubleValues()[0].rounded(.up)) : $0.intValues()[0] } ?? .min
            let h = hi.map { $0.elementType == .f32 ? Int(saturating: $0.doubleValues()[0].rounded(.down)) : $0.intValues()[0] } ?? .max
            return [wrapped(t.shape, t.intValues().map { Swift.min(Swift.max($0, l), h) }, t.elementType)]
        }
        let l = lo?.doubleValues()[0] ?? -.infinity, h = hi?.doubleValues()[0] ?? .infinity
        return [Tensor(shape: t.shape, values: t.doubleValues().map { $0.isNaN ? $0 : Swift.min(Swift.max($0, l), h) }, elementType: .f32)]
    }

    /// Where(condition, x, y): NumPy broadcasting of all three; any element type (x and y
    /// alike), selected exactly (integers are not passed through Double).
    static func whereOp(_ node: Node, _ x: [Tensor?], _ opset: Int) throws -> [Tensor] {
        let c = x[0]!, a = x[1]!, b = x[2]!
        guard a.elementType == b.elementType else {
            throw ConstantEvaluation.fail(node, "Where of \(a.elementType) and \(b.elementType) (they must have one type)")
        }
        guard let s1 = Broadcast.shape(c.shape, a.shape), let shape = Broadcast.shape(s1, b.shape) else {
            throw GraphError(.shapeMismatch, "node \(node.label): Where shapes \(c.shape), \(a.shape), \(b.shape) do not broadcast")
        }
        _ = try ConstantEvaluation.checkedCount(shape, node)
        let cv = c.doubleValues()
        let ic = Broadcast.indices(of: c.shape, in: shape), ia = Broadcast.indices(of: a.shape, in: shape)
        let ib = Broadcast.indices(of: b.shape, in: shape)
        if a.elementType == .f32 {
            let av = a.floatValues(), bv = b.floatValues()
            return [Tensor(shape: shape, scalars: (0..<ic.count).map { cv[ic[$0]] != 0 ? av[ia[$0]] : bv[ib[$0]] })]
        }
        let av = a.intValues(), bv = b.intValues()
        return [wrapped(shape, (0..<ic.count).map { cv[ic[$0]] != 0 ? av[ia[$0]] : bv[ib[$0]] }, a.elementType)]
    }

    /// PRelu(x, slope): `x > 0 ? x : slope * x`, slope broadcast to x (NumPy; a 1-D slope
    /// that does not broadcast applies along the one axis of x of its length, as the ONNX
    /// reference). Output: x's shape and type.
    static func prelu(_ node: Node, _ x: [Tensor?], _ opset: Int) throws -> [Tensor] {
        let t = x[0]!
        var slope = x[1]!
        if Broadcast.shape(t.shape, slope.shape) != t.shape, slope.shape.count == 1,
            t.shape.filter({ $0 == slope.shape[0] }).count == 1
        {
            slope = slope.reshaped(t.shape.map { $0 == slope.shape[0] ? $0 : 1 })
        }
        guard Broadcast.shape(t.shape, slope.shape) == t.shape else {
            throw GraphError(.shapeMismatch, "node \(node.label): PRelu slope \(slope.shape) does not broadcast to \(t.shape)")
        }
        return [try binary(node, t, slope, float: { $0 > 0 ? $0 : $0 * $1 }, integer: { $0 > 0 ? $0 : $0 &* $1 })]
    }

    // MARK: Cast

    /// ONNX data types whose values a Cast can give (Cast/CastLike targets).
    enum Target: Equatable {
        case float, float16, bfloat16, bool
        /// An integer type: its range and the element type that stores it.
        case integer(min: Int, max: Int, stored: ElementType)

        init(onnx code: Int, _ node: Node) throws(GraphError) {
            switch code {
            case 1, 11: self = .float  // FLOAT, DOUBLE (computed as f32)
            case 10: self = .float16
            case 16: self = .bfloat16
            case 9: self = .bool
            case 2: self = .integer(min: 0, max: 255, stored: .u8)
            case 3: self = .integer(min: -128, max: 127, stored: .s8)
            case 4: self = .integer(min: 0, max: 65535, stored: .s32)  // UINT16
            case 5: self = .integer(min: -32768, max: 32767, stored: .s32)  // INT16
            case 6: self = .integer(min: Int(Int32.min), max: Int(Int32.max), stored: .s32)
            case 12: self = .integer(min: 0, max: Int(UInt32.max), stored: .s32)  // UINT32 (stored saturated)
            case 7: self = .integer(min: .min, max: .max, stored: .i64)
            case 13: self = .integer(min: 0, max: .max, stored: .i64)  // UINT64 (stored saturated)
            case 17, 18, 19, 20, 24:
                throw ConstantEvaluation.fail(node, "Cast to a float8 type (ONNX data type \(code)) is not supported")
            case 8: throw ConstantEvaluation.fail(node, "Cast to STRING is not supported")
            default: throw ConstantEvaluation.fail(node, "Cast to ONNX data type \(code) is not supported")
            }
        }

        /// The target of a CastLike: the element type of its second input (f32 covers FLOAT,
        /// FLOAT16 and DOUBLE, which are not told apart once loaded; u8 is read as UINT8).
        init(like type: ElementType) {
            switch type {
            case .f32: self = .float
            case .u8: self = .integer(min: 0, max: 255, stored: .u8)
            case .s8: self = .integer(min: -128, max: 127, stored: .s8)
            case .s32: self = .integer(min: Int(Int32.min), max: Int(Int32.max), stored: .s32)
            case .i64: self = .integer(min: .min, max: .max, stored: .i64)
            }
        }
    }

    /// Cast (opset 1-25): float to integer truncates toward zero and saturates to the target's
    /// range (NaN gives 0); integer to integer wraps to the target width (NumPy `astype`);
    /// to BOOL gives `x != 0`; to FLOAT16/BFLOAT16 rounds to that precision (nearest, ties to
    /// even) and keeps f32 storage. `saturate` only concerns float8 targets, which are refused.
    static func cast(_ node: Node, _ x: [Tensor?], _ opset: Int) throws -> [Tensor] {
        [try convert(x[0]!, to: try Target(onnx: node.int("to") ?? 1, node))]
    }

    /// CastLike(x, like) (opset 15+): Cast to the element type of `like`.
    static func castLike(_ node: Node, _ x: [Tensor?], _ opset: Int) throws -> [Tensor] {
        [try convert(x[0]!, to: Target(like: x[1]!.elementType))]
    }

    static func convert(_ t: Tensor, to target: Target) throws -> Tensor {
        switch target {
        case .float:
            return t.elementType == .f32 ? t : Tensor(shape: t.shape, values: t.doubleValues(), elementType: .f32)
        case .float16:
            return Tensor(shape: t.shape, scalars: t.doubleValues().map { Float(Float16($0)) })
        case .bfloat16:
            return Tensor(shape: t.shape, scalars: t.floatValues().map(roundedToBFloat16))
        case .bool:
            return Tensor(shape: t.shape, scalars: t.doubleValues().map { $0 != 0 ? UInt8(1) : 0 })
        case .integer(let lo, let hi, let stored):
            if t.elementType == .f32 {
                let v = t.doubleValues().map { Swift.min(Swift.max(Int(saturating: $0), lo), hi) }
                return wrapped(t.shape, v, stored)
            }
            // Integer to integer: wrap to the target's width, then store (saturating where the
            // stored type is narrower than the target: UINT32, UINT64).
            let bits = hi == .max ? 64 : (hi - lo + 1).trailingZeroBitCount
            let v = t.intValues().map { value -> Int in
                guard bits < 64 else { return value }  // INT64, UINT64 (its bit pattern)
                let mask = (1 << bits) - 1
                var w = value & mask
                if lo < 0 && w > hi { w -= 1 << bits }
                return w
            }
            let range: (Int, Int) =
                switch stored {
                case .u8: (0, 255)
                case .s8: (-128, 127)
                case .s32: (Int(Int32.min), Int(Int32.max))
                case .i64, .f32: (.min, .max)
                }
            return wrapped(t.shape, v.map { Swift.min(Swift.max($0, range.0), range.1) }, stored)
        }
    }

    /// `x` rounded to bfloat16 (the top 16 bits of an f32; nearest, ties to even; NaN stays NaN).
    @Sendable static func roundedToBFloat16(_ x: Float) -> Float {
        guard !x.isNaN else { return x }
        let bits = x.bitPattern
        let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000
        return Float(bitPattern: rounded)
    }
}
