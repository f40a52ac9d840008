import DNNL

/// Test helpers: plain row-major memories filled from Swift arrays.
extension Memory {
    /// A plain row-major memory of `dims` holding `values` (converted to `dataType`).
    public static func plain(_ dims: [Int], _ dataType: DataType, _ values: [Double]) throws -> Memory {
        let m = try Memory(MemoryDescriptor(dims: dims, dataType: dataType))
        switch dataType {
        case .f32: try m.write(values.map { Float($0) })
        case .s32: try m.write(values.map { Int32($0) })
        case .s8: try m.write(values.map { Int8($0) })
        case .u8: try m.write(values.map { UInt8($0) })
        default: fatalError("plain(\(dataType)) is not supported by the test helper")
        }
        return m
    }

    /// A plain row-major memory of `dims` (contents zero).
    public static func plain(_ dims: [Int], _ dataType: DataType) throws -> Memory {
        let m = try Memory(MemoryDescriptor(dims: dims, dataType: dataType))
        m.zero()
        return m
    }

    /// The contents as Double, converting from the memory's element type (plain layouts).
    public func values() -> [Double] {
        switch descriptor.dataType {
        case .f32: read(as: Float.self).map(Double.init)
        case .s32: read(as: Int32.self).map(Double.init)
        case .s8: read(as: Int8.self).map(Double.init)
        case .u8: read(as: UInt8.self).map(Double.init)
        default: fatalError("values() of \(descriptor.dataType) is not supported by the test helper")
        }
    }

    /// The contents as exact integers (s32/s8/u8 plain layouts).
    public func integers() -> [Int] { values().map { Int($0) } }
}

/// Runs a primitive whose src/weights/dst descriptors may have been chosen by oneDNN
/// (`any`): plain inputs are reordered into the primitive's layouts, the plain output is
/// reordered back. Every argument is plain row-major on the test side.
public struct PrimitiveHarness {
    public let engine = Engine.cpu
    public let stream: Stream
    public init() throws { stream = try Stream() }

    /// - Parameters:
    ///   - pd: the primitive descriptor.
    ///   - inputs: plain memories by argument; reordered into `pd.descriptor(for:)` when that
    ///     differs.
    ///   - output: the plain memory to receive `.dst` (or `outputArg`).
    public func run(
        _ pd: PrimitiveDescriptor, inputs: [ExecArg: Memory], outputs: [ExecArg: Memory],
        reorderAttributes: [ExecArg: PrimitiveAttributes] = [:]
    ) throws {
        var args: [ExecArg: Memory] = [:]
        for (arg, plain) in inputs {
            let want = pd.descriptor(for: arg)
            if want.isZero || want == plain.descriptor {
                args[arg] = plain
            } else {
                let m = try Memory(want)
                try plain.reorder(into: m, attributes: reorderAttributes[arg], stream: stream)
                args[arg] = m
            }
        }
        var back: [(Memory, Memory)] = []
        for (arg, plain) in outputs {
            let want = pd.descriptor(for: arg)
            if want.isZero || want == plain.descriptor {
                args[arg] = plain
            } else {
                let m = try Memory(want)
                // Sum post-ops read the destination: carry its plain contents in.
                try plain.reorder(into: m, stream: stream)
                args[arg] = m
                back.append((m, plain))
            }
        }
        try pd.makePrimitive().execute(on: stream, args)
        for (m, plain) in back { try m.reorder(into: plain, stream: stream) }
    }
}
