/// A one-line description of an operation and its memory descriptors, used in error
/// messages: `"convolution: src [1, 3, 8, 8] u8 any, weights [4, 3, 3, 3] s8 any, ..."`.
func summarize(_ kind: String, _ parts: [(String, MemoryDescriptor?)], extra: String = "") -> String {
    let args = parts.compactMap { name, md in md.map { "\(name) \($0)" } }.joined(separator: ", ")
    return extra.isEmpty ? "\(kind): \(args)" : "\(kind): \(args); \(extra)"
}
