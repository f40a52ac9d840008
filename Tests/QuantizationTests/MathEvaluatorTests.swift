import Foundation
import XCTest

@testable import Quantization

/// Math and element-wise evaluators (Kernels/Evaluators/MathEvaluators.swift): integer
/// semantics (wraparound, truncation, division by zero), Mod, Cast rounding/saturation,
/// broadcasting of Where/PRelu/Clip, and the run path through the evaluator. Expected values
/// are naive loops written here or NumPy results saved as literals (each says how it was made).
final class MathEvaluatorTests: XCTestCase {
    typealias K = PassKit

    private func eval(_ op: String, _ inputs: [Tensor?], _ attributes: [String: AttributeValue] = [:]) throws -> Tensor {
        let node = Node(name: "n", opType: op, inputs: inputs.indices.map { "x\($0)" }, outputs: ["y"], attributes: attributes)
        let f = try XCTUnwrap(ConstantEvaluation.evaluators[op], "\(op) has no evaluator")
        let outputs = try f(node, inputs, 22)
        return try XCTUnwrap(outputs.first)
    }

    /// Integer arithmetic wraps like NumPy and truncates like C; division by zero gives 0.
    func testIntegerArithmeticWrapsAndTruncates() throws {
        // numpy: np.array([200,255,3],np.uint8) + np.array([100,1,4],np.uint8) -> [44 0 7]
        XCTAssertEqual(try eval("Add", [K.u8([3], [200, 255, 3]), K.u8([3], [100, 1, 4])]), K.u8([3], [44, 0, 7]))
        // numpy: np.array([100,-128,7],np.int8) * np.array([3,-1,-5],np.int8) -> [44 -128 -35]
        XCTAssertEqual(try eval("Mul", [K.s8([3], [100, -128, 7]), K.s8([3], [3, -1, -5])]), K.s8([3], [44, -128, -35]))
        let a: [Int32] = [-7, 7, Int32.min, 5, 0], b: [Int32] = [2, -2, -1, 0, 0]
        let q = try eval("Div", [Tensor(shape: [5], scalars: a), Tensor(shape: [5], scalars: b)])
        XCTAssertEqual(q.scalars(as: Int32.self), [-3, -3, Int32.min, 0, 0])
        let big = Tensor(shape: [2], scalars: [Int64.max, (1 << 53) + 1])
        XCTAssertEqual(
            try eval("Add", [big, Tensor(shape: [2], scalars: [Int64(1), 0])]).scalars(as: Int64.self), [Int64.min, (1 << 53) + 1])
        // numpy: np.abs(np.array([-128,-5,5],np.int8)) -> [-128 5 5]
        XCTAssertEqual(try eval("Abs", [K.s8([3], [-128, -5, 5])]), K.s8([3], [-128, 5, 5]))
        XCTAssertEqual(try eval("Neg", [Tensor(shape: [2], scalars: [Int64.min, 3])]).scalars(as: Int64.self), [Int64.min, -3])
        XCTAssertEqual(try eval("Relu", [K.s32([3], [-4, 0, 9])]), K.s32([3], [0, 0, 9]))
        // f32 stays f32 arithmetic.
        XCTAssertEqual(try eval("Div", [K.floats([2], [1, -3]), K.floats([2], [4, 0])]).floatValues(), [0.25, -.infinity])
    }

    /// Mod: fmod 0 is Python/NumPy modulo (divisor's sign), fmod 1 is C fmod, for integers and
    /// floats; by zero gives 0 (integers) or NaN (floats).
    func testModFollowsNumPy() throws {
        let a = K.s32([5], [-7, 7, -7, 7, 4]), b = K.s32([5], [3, -3, -3, 3, 0])
        // numpy: np.mod([-7,7,-7,7],[3,-3,-3,3]) -> [2 -2 -1 1]; np.fmod -> [-1 1 -1 1]; x % 0 -> 0
        XCTAssertEqual(try eval("Mod", [a, b]), K.s32([5], [2, -2, -1, 1, 0]))
        XCTAssertEqual(try eval("Mod", [a, b], ["fmod": .int(1)]), K.s32([5], [-1, 1, -1, 1, 0]))
        // numpy: np.mod(np.float32([-0.,0,-3,3,-1,3]), np.float32([2,-2,inf,-inf,-inf,0])) -> [0 -0 inf -inf -1 nan]
        let x = K.floats([6], [-0.0, 0, -3, 3, -1, 3]), y = K.floats([6], [2, -2, .infinity, -.infinity, -.infinity, 0])
        let m = try eval("Mod", [x, y]).floatValues()
        XCTAssertEqual(Array(m[..<5]), [0, -0.0, .infinity, -.infinity, -1])
        XCTAssertEqual(m.map { $0.sign }[..<2], [.plus, .minus])
        XCTAssertTrue(m[5].isNaN)
    }

    /// Cast: bf16/f16 round to nearest even (f32 storage), float to integer saturates,
    /// integer to integer wraps, to BOOL is `!= 0`; float8 is refused.
    func testCastRoundsSaturatesAndWraps() throws {
        let x = K.floats([6], [0.47892547, 0.81910545, 1.00390625, -3.0078125, 65504, 1e-40])
        // numpy + ml_dtypes: x.astype(ml_dtypes.bfloat16).astype(np.float32)
        XCTAssertEqual(
            try eval("Cast", [x], ["to": .int(16)]).floatValues(), [0.478515625, 0.8203125, 1.0, -3.0, 65536.0, 9.183549615799121e-41])
        // numpy: x.astype(np.float16).astype(np.float32)
        XCTAssertEqual(
            try eval("Cast", [x], ["to": .int(10)]).floatValues(), [0.47900390625, 0.8193359375, 1.00390625, -3.0078125, 65504.0, 0.0])
        let f = K.floats([5], [2.9, -2.9, 1e10, -1e10, .nan])
        XCTAssertEqual(try eval("Cast", [f], ["to": .int(3)]), K.s8([5], [2, -2, 127, -128, 0]))
        XCTAssertEqual(try eval("Cast", [f], ["to": .int(9)]), K.u8([5], [1, 1, 1, 1, 1]))
        let ints = Tensor(shape: [3], scalars: [Int64(300), -1, 70000])
        // numpy: np.array([300,-1,70000]).astype(np.uint8 / np.int16) -> [44 255 112] / [300 -1 4464]
        XCTAssertEqual(try eval("Cast", [ints], ["to": .int(2)]), K.u8([3], [44, 255, 112]))
        XCTAssertEqual(try eval("Cast", [ints], ["to": .int(5)]), K.s32([3], [300, -1, 4464]))
        XCTAssertEqual(try eval("CastLike", [K.floats([2], [3.7, -1]), K.s8([1], [0])]), K.s8([2], [3, -1]))
        XCTAssertThrowsError(try eval("Cast", [x], ["to": .int(17)])) { XCTAssertTrue("\($0)".contains("float8"), "\($0)") }
    }

    /// Bit shifts (out-of-range amounts as the ONNX reference) and bitwise ops, against loops.
    func testBitShiftAndBitwise() throws {
        // numpy: np.left_shift(np.uint8([200,1,255]), np.uint8([1,7,4])) -> [144 128 240]
        XCTAssertEqual(
            try eval("BitShift", [K.u8([4], [200, 1, 255, 3]), K.u8([4], [1, 7, 4, 9])], ["direction": .string("LEFT")]),
            K.u8([4], [144, 128, 240, 0]))
        // numpy: np.right_shift(np.int32([-16,-1,64]), np.int32([2,31,3])) -> [-4 -1 8]
        XCTAssertEqual(
            try eval("BitShift", [K.s32([3], [-16, -1, 64]), K.s32([3], [2, 31, 3])], ["direction": .string("RIGHT")]), K.s32([3], [-4, -1, 8]))
        let a = [13, -7, 255, 0], b = [6, 3, -1, 9]
        XCTAssertEqual(try eval("BitwiseAnd", [K.s32([4], a), K.s32([4], b)]), K.s32([4], zip(a, b).map { $0 & $1 }))
        XCTAssertEqual(try eval("BitwiseXor", [K.s32([4], a), K.s32([4], b)]), K.s32([4], zip(a, b).map { $0 ^ $1 }))
        XCTAssertEqual(try eval("BitwiseNot", [K.u8([3], [0, 5, 255])]), K.u8([3], [255, 250, 0]))
        XCTAssertEqual(try eval("Xor", [K.u8([4], [0, 0, 1, 1]), K.u8([4], [0, 1, 0, 1])]), K.u8([4], [0, 1, 1, 0]))
    }

    /// Where, PRelu and Clip broadcast (all three Where inputs), exact on i64.
    func testBroadcastingWherePReluClip() throws {
        let c = K.u8([2, 1, 1], [1, 0]), a = Tensor(shape: [1, 3, 1], scalars: [Int64(1 << 60) + 1, 2, 3])
        let b = Tensor(shape: [4], scalars: [Int64(-1), -2, -3, -4])
        let w = try eval("Where", [c, a, b])
        XCTAssertEqual(w.shape, [2, 3, 4])
        var expected: [Int64] = []
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { expected.append([1, 0][i] != 0 ? [(1 << 60) + 1, 2, 3][j] : [-1, -2, -3, -4][k]) } } }
        XCTAssertEqual(w.scalars(as: Int64.self), expected)

        let x = K.random([2, 3, 4], seed: 11), slope = K.floats([3, 1], [0.1, 0.2, 0.3])
        let p = try eval("PRelu", [x, slope]).floatValues(), xv = x.floatValues()
        for i in 0..<24 { XCTAssertEqual(p[i], xv[i] > 0 ? xv[i] : xv[i] * [0.1, 0.2, 0.3][(i / 4) % 3], accuracy: 1e-7) }

        XCTAssertEqual(try eval("Clip", [K.s8([4], [-100, -3, 4, 100]), K.s8([], [-5]), nil]), K.s8([4], [-5, -3, 4, 100]))
        XCTAssertEqual(try eval("Clip", [K.floats([3], [-2, 0.5, 9]), nil, K.scalar(1)]).floatValues(), [-2, 0.5, 1])
    }

    /// Unary math in Double: log(1) is 0, Softplus does not overflow, Round is half to even.
    func testUnaryMath() throws {
        XCTAssertEqual(try eval("Log", [K.floats([2], [1, .init(M_E)])]).floatValues()[0], 0)
        // numpy: np.logaddexp(0, np.float32([100, -100, 0])) -> [1.000000e+02 3.783506e-44 6.931472e-01]
        let s = try eval("Softplus", [K.floats([3], [100, -100, 0])]).floatValues()
        XCTAssertEqual(s[0], 100)
        XCTAssertEqual(s[1], 3.783506e-44, accuracy: 1e-48)
        XCTAssertEqual(s[2], 0.6931472, accuracy: 1e-7)
        // numpy: np.round(np.float32([0.5,1.5,2.5,-0.5,-1.5,2.4999])) -> [0 2 2 -0 -2 2]
        XCTAssertEqual(try eval("Round", [K.floats([6], [0.5, 1.5, 2.5, -0.5, -1.5, 2.4999])]).floatValues(), [0, 2, 2, -0.0, -2, 2])
        let x = K.random([16], seed: 12, in: -3...3).floatValues()
        let gelu = try eval("Gelu", [K.floats([16], x)], ["approximate": .string("tanh")]).floatValues()
        let mish = try eval("Mish", [K.floats([16], x)]).floatValues()
        for i in 0..<16 {
            let v = Double(x[i])
            XCTAssertEqual(Double(gelu[i]), 0.5 * v * (1 + tanh(sqrt(2 / Double.pi) * (v + 0.044715 * pow(v, 3)))), accuracy: 1e-6)
            XCTAssertEqual(Double(mish[i]), v * tanh(log(1 + exp(v))), accuracy: 1e-6)
        }
        let inf = try eval("IsInf", [K.floats([4], [.infinity, -.infinity, .nan, 1])], ["detect_positive": .int(0)])
        XCTAssertEqual(inf, K.u8([4], [0, 1, 0, 0]))
    }

    /// At run time: Log and Softplus of a graph input run through the evaluator (exact log(1)),
    /// Cast to BFLOAT16 rounds, and a Clip with run-time bounds runs.
    func testRunPathUsesEvaluators() throws {
        let g = Graph(
            name: "math",
            nodes: [
                Node(name: "log", opType: "Log", inputs: ["x"], outputs: ["l"]),
                Node(name: "bf", opType: "Cast", inputs: ["x"], outputs: ["b"], attributes: ["to": .int(16)]),
                Node(name: "clip", opType: "Clip", inputs: ["x", "lo", ""], outputs: ["c"]),
            ],
            inputs: [K.f32("x", [3]), K.f32("lo", [])], outputs: [K.f32("l", [3]), K.f32("b", [3]), K.f32("c", [3])])
        let r = try K.session(g).run(["x": K.floats([3], [1, 0.81910545, 4]), "lo": K.scalar(2)])
        XCTAssertEqual(r["l"]?.floatValues()[0], 0)
        XCTAssertEqual(r["b"]?.floatValues(), [1, 0.8203125, 4])
        XCTAssertEqual(r["c"]?.floatValues(), [2, 2, 4])
    }
}
