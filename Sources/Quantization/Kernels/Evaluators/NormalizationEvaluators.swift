import Foundation

/// Normalization operators evaluated in Swift over `Tensor`s (at plan time on constants, at run time
/// through `RuntimeEvaluation`), following the ONNX operator spec.
enum NormalizationEvaluators {
    static func register(_ e: inout [String: ConstantEvaluation.Evaluator]) {}
}
