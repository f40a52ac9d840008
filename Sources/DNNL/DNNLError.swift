import CDNNL

/// A failed oneDNN C call.
///
/// Keeps the raw `dnnl_status_t`, the name of the C function that failed, and what we were
/// doing (shapes, data types), so a message reads like
/// `dnnl_primitive_desc_create failed: unimplemented. convolution src [1,3,8,8] u8 ...`.
/// `unimplemented` is an answer, not a bug: callers such as the quantization passes catch it,
/// keep the node in FP32 and record why (`isUnimplemented`).
public struct DNNLError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The raw status returned by oneDNN.
    public let status: dnnl_status_t
    /// The C function that failed, e.g. `"dnnl_engine_create"`.
    public let call: String
    /// What we were doing, with shapes and data types.
    public let context: String

    public init(status: dnnl_status_t, call: String, context: String) {
        self.status = status
        self.call = call
        self.context = context
    }

    /// True when oneDNN has no implementation for the requested configuration.
    public var isUnimplemented: Bool { status == dnnl_unimplemented }

    /// oneDNN's own name for the status (`"invalid_arguments"`, `"unimplemented"`, ...).
    public var statusName: String { String(cString: dnnl_status2str(status)) }

    public var description: String {
        context.isEmpty
            ? "\(call) failed: \(statusName)"
            : "\(call) failed: \(statusName). \(context)"
    }
}

/// The handle a successful C call wrote. oneDNN writes one whenever it returns
/// `dnnl_success`; a missing handle (a oneDNN bug) is reported as `dnnl_runtime_error` from
/// `call` instead of trapping.
@inline(__always)
func created<Handle>(
    _ handle: Handle?, _ call: String, _ context: @autoclosure () -> String = ""
) throws(DNNLError) -> Handle {
    guard let handle else {
        throw DNNLError(
            status: dnnl_runtime_error, call: call,
            context: "returned success without a handle. \(context())")
    }
    return handle
}

/// Throws a `DNNLError` unless `status` is `dnnl_success`.
@inline(__always)
func check(
    _ status: dnnl_status_t, _ call: String, _ context: @autoclosure () -> String = ""
) throws(DNNLError) {
    guard status == dnnl_success else {
        throw DNNLError(status: status, call: call, context: context())
    }
}
