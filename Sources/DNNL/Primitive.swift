import CDNNL

/// A primitive descriptor (`dnnl_primitive_desc_t`): oneDNN's chosen implementation of an
/// operation for given memory descriptors and attributes. Create one with the per-family
/// factories (`convolutionForward`, `innerProduct`, `matmul`, `reorder`, ...), query the
/// layouts it chose, then make a `Primitive`.
public final class PrimitiveDescriptor {
    public let handle: dnnl_primitive_desc_t
    public let engine: Engine
    /// What this descriptor computes (kind, shapes, types), for error messages and reports.
    public let summary: String
    /// The attributes it was created with (kept: they hold binary post-op descriptors).
    public let attributes: PrimitiveAttributes

    init(
        handle: dnnl_primitive_desc_t, engine: Engine, attributes: PrimitiveAttributes,
        summary: String
    ) {
        self.handle = handle
        self.engine = engine
        self.attributes = attributes
        self.summary = summary
    }

    /// Creates a descriptor from a C operation descriptor (`dnnl_*_desc_t`).
    static func create<OpDesc>(
        _ opDesc: inout OpDesc, attributes: PrimitiveAttributes?, engine: Engine, summary: String
    ) throws(DNNLError) -> PrimitiveDescriptor {
        let attr = try attributes.orDefault()
        var pd: dnnl_primitive_desc_t?
        let status = withUnsafePointer(to: &opDesc) {
            dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), attr.handle, engine.handle, nil)
        }
        try check(status, "dnnl_primitive_desc_create", summary)
        return PrimitiveDescriptor(
            handle: try created(pd, "dnnl_primitive_desc_create", summary), engine: engine, attributes: attr, summary: summary)
    }

    deinit { dnnl_primitive_desc_destroy(handle) }

    /// The memory descriptor oneDNN chose for a query (`dnnl_primitive_desc_query_md`).
    public func query(_ what: dnnl_query_t, index: Int = 0) -> MemoryDescriptor {
        guard let p = dnnl_primitive_desc_query_md(handle, what, Int32(index)) else { return .zero }
        return MemoryDescriptor(raw: p.pointee)
    }

    /// The descriptor of an execution argument (`dnnl_query_exec_arg_md`).
    public func descriptor(for arg: ExecArg) -> MemoryDescriptor {
        query(dnnl_query_exec_arg_md, index: Int(arg.rawValue))
    }

    public var src: MemoryDescriptor { query(dnnl_query_src_md) }
    public var weights: MemoryDescriptor { query(dnnl_query_weights_md) }
    public var bias: MemoryDescriptor { query(dnnl_query_weights_md, index: 1) }
    public var dst: MemoryDescriptor { query(dnnl_query_dst_md) }
    public var scratchpad: MemoryDescriptor { query(dnnl_query_scratchpad_md) }
    /// The i-th source (concat, sum, binary src1 = `src(1)`, RNN iter states).
    public func src(_ i: Int) -> MemoryDescriptor { query(dnnl_query_src_md, index: i) }
    public func dst(_ i: Int) -> MemoryDescriptor { query(dnnl_query_dst_md, index: i) }
    public func weights(_ i: Int) -> MemoryDescriptor { query(dnnl_query_weights_md, index: i) }

    /// oneDNN's implementation name, e.g. `brgconv:avx512_core_vnni` or `jit_int8:...`.
    public var implementation: String {
        var p: UnsafePointer<CChar>?
        let status = withUnsafeMutablePointer(to: &p) {
            dnnl_primitive_desc_query(handle, dnnl_query_impl_info_str, 0, UnsafeMutableRawPointer($0))
        }
        guard status == dnnl_success, let s = p else { return "?" }
        return String(cString: s)
    }

    /// Compiles the primitive.
    /// - Throws: `DNNLError` from `dnnl_primitive_create`.
    public func makePrimitive() throws(DNNLError) -> Primitive {
        var p: dnnl_primitive_t?
        try check(dnnl_primitive_create(&p, handle), "dnnl_primitive_create", summary)
        return Primitive(handle: try created(p, "dnnl_primitive_create", summary), descriptor: self)
    }
}

/// A compiled oneDNN primitive (`dnnl_primitive_t`).
///
/// Not `Sendable`: with the user scratchpad mode it holds no thread state, but its lazily made
/// scratchpad is per primitive; an inference session owns its primitives and runs one call
/// at a time.
public final class Primitive {
    public let handle: dnnl_primitive_t
    public let descriptor: PrimitiveDescriptor
    private var ownScratchpad: Memory?

    /// Arguments the primitive reads or writes (those whose descriptor is not empty).
    public let requiredArgs: [ExecArg]

    init(handle: dnnl_primitive_t, descriptor: PrimitiveDescriptor) {
        self.handle = handle
        self.descriptor = descriptor
        var required: [ExecArg] = [
            .src, .src1, .src2, .weights, .weightsIter, .bias, .dst, .dstIter, .dstIterC,
            .mean, .variance, .scale, .shift,
        ].filter { !descriptor.descriptor(for: $0).isZero }
        // Batch/layer normalization report the scale-shift descriptor for WEIGHTS (= the
        // legacy SCALE_SHIFT), SCALE and SHIFT whatever their flags: keep only those the flags use.
        if let flags = Primitive.normalizationFlags(descriptor.handle) {
            required.removeAll { arg in
                (arg == .weights && flags & dnnl_use_scaleshift.rawValue == 0)
                    || (arg == .scale && flags & dnnl_use_scale.rawValue == 0)
                    || (arg == .shift && flags & dnnl_use_shift.rawValue == 0)
            }
        }
        var i = 0
        while !descriptor.descriptor(for: .multipleSrc(i)).isZero {
            required.append(.multipleSrc(i))
            i += 1
        }
        required += descriptor.attributes.postOps?.binarySources.map { .postOpBinarySrc1($0.index) } ?? []
        requiredArgs = required
    }

    deinit { dnnl_primitive_destroy(handle) }

    /// The `dnnl_normalization_flags_t` of a batch or layer normalization, else nil.
    private static func normalizationFlags(_ pd: dnnl_primitive_desc_t) -> UInt32? {
        var p: UnsafeRawPointer?
        if dnnl_primitive_desc_query(pd, dnnl_query_batch_normalization_d, 0, &p) == dnnl_success, let p {
            return p.assumingMemoryBound(to: dnnl_batch_normalization_desc_t.self).pointee.flags
        }
        if dnnl_primitive_desc_query(pd, dnnl_query_layer_normalization_d, 0, &p) == dnnl_success, let p {
            return p.assumingMemoryBound(to: dnnl_layer_normalization_desc_t.self).pointee.flags
        }
        return nil
    }

    /// Bytes of scratchpad the primitive needs (0 when none).
    public var scratchpadByteCount: Int {
        let md = descriptor.scratchpad
        return md.isZero ? 0 : md.byteCount
    }

    /// Runs the primitive on `stream` with the given arguments, then waits for it. When the
    /// primitive needs a scratchpad and none is passed, one owned by this primitive is made once
    /// and reused.
    /// - Throws: `DNNLError` naming a missing argument (checked before oneDNN sees it, since
    ///   oneDNN would read a null buffer), or from `dnnl_primitive_execute`.
    public func execute(on stream: Stream, _ args: [ExecArg: Memory]) throws(DNNLError) {
        if let missing = requiredArgs.first(where: { args[$0] == nil }) {
            throw DNNLError(
                status: dnnl_invalid_arguments, call: "dnnl_primitive_execute",
                context: "missing argument \(missing) (\(descriptor.descriptor(for: missing))). \(descriptor.summary)")
        }
        var list = args.map { dnnl_exec_arg_t(arg: $0.key.rawValue, memory: $0.value.handle) }
        if args[.scratchpad] == nil, scratchpadByteCount > 0 {
            let scratchpad: Memory
            if let own = ownScratchpad { scratchpad = own } else { scratchpad = try Memory(descriptor.scratchpad, engine: stream.engine) }
            ownScratchpad = scratchpad
            list.append(dnnl_exec_arg_t(arg: ExecArg.scratchpad.rawValue, memory: scratchpad.handle))
        }
        try check(
            dnnl_primitive_execute(handle, stream.handle, Int32(list.count), list),
            "dnnl_primitive_execute", descriptor.summary)
        try withExtendedLifetime(args) { () throws(DNNLError) in try stream.wait() }
    }

    /// Runs the primitive with a prepared argument list (no allocation, for hot loops).
    /// The caller keeps the memories alive and includes the scratchpad.
    public func execute(on stream: Stream, prepared args: UnsafeBufferPointer<dnnl_exec_arg_t>) throws(DNNLError) {
        try check(
            dnnl_primitive_execute(handle, stream.handle, Int32(args.count), args.baseAddress),
            "dnnl_primitive_execute", descriptor.summary)
    }
}
