/// Errors in a model's structure or in how it is called, each naming the file, node or tensor
/// at fault.
public struct GraphError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The file is not a readable ONNX model.
        case invalidModel
        /// A node reads a value no one produces.
        case danglingInput
        /// The nodes contain a cycle.
        case cycle
        /// An operator (type, domain, opset) this library cannot run.
        case unsupportedOperator
        /// An attribute or input combination the operator does not allow or we do not run.
        case unsupportedAttribute
        /// Shapes that do not fit together.
        case shapeMismatch
        /// A run was called with a wrong input name, rank, dims or element type.
        case badInput
        /// Something went wrong inside the engine (a oneDNN error with context).
        case runtime
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
