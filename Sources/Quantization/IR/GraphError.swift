import DNNL

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
    /// The oneDNN error underneath (raw status, C call, shapes) when a oneDNN call failed;
    /// `dnnlError?.isUnimplemented` tells a configuration oneDNN has no kernel for.
    public let dnnlError: DNNLError?

    public init(_ kind: Kind, _ message: String, dnnlError: DNNLError? = nil) {
        self.kind = kind
        self.message = message
        self.dnnlError = dnnlError
    }

    /// A `.runtime` error for `error` raised by `context` (`"node Conv 'c1'"`, a plan step):
    /// the message is `"<context>: <error>"`, and a `DNNLError` (or the one under a
    /// `GraphError`) is kept in ``dnnlError``.
    init(runtime context: String, _ error: any Error) {
        let dnnl = error as? DNNLError ?? (error as? GraphError)?.dnnlError
        self.init(.runtime, "\(context): \(error)", dnnlError: dnnl)
    }

    public var description: String { message }
}
