import DNNL

/// A graph value while a plan is built: known now (a constant, folded at plan time), or
/// computed at run time into a slot.
enum LoweredValue {
    case constant(Tensor)
    case slot(Int)
}

/// A run-time buffer of the plan: a logical shape and the oneDNN memory descriptor (layout)
/// it is stored in. Slots that are views of another slot's buffer (reshape, in-place sum)
/// name their root in `aliasOf`.
struct Slot {
    var name: String
    /// Logical ONNX shape (`[]` for a scalar).
    var shape: [Int]
    /// Element type and layout (rank >= 1; a scalar is stored as `[1]`).
    var descriptor: MemoryDescriptor
    /// The slot whose buffer this one views (always a root, never an alias itself).
    var aliasOf: Int?
    /// Weights and other constants: filled once by `fill`, never reused.
    var persistent = false
    var fill: ((Memory, DNNL.Stream) throws -> Void)?
    /// The element type of a value oneDNN has no type for (i64): stored as plain bytes, a `u8`
    /// descriptor of `count * 8` elements, read only by Swift kernels. nil: the descriptor's.
    var logicalType: ElementType? = nil
    /// A view that owns its root buffer: a sum post-op's destination written into the
    /// residual's buffer, whose earlier contents nothing reads any more.
    var ownsRoot = false

    /// The element type of the values (the descriptor's, or `logicalType`).
    var elementType: ElementType { logicalType ?? descriptor.dataType.elementType }
}

/// One step of a plan before buffers exist: a oneDNN primitive with its arguments by slot, or
/// a Swift kernel over plain slots.
enum PendingStep {
    case primitive(Primitive, [(ExecArg, Int)], label: String)
    case custom(label: String, slots: [Int], run: ([Memory]) throws -> Void)

    var slots: [Int] {
        switch self {
        case .primitive(_, let args, _): args.map(\.1)
        case .custom(_, let slots, _): slots
        }
    }
}

/// Builds a plan: walks the nodes in order, folds what is constant, and turns the rest into
/// oneDNN primitives (kernels in `Kernels/`) over slots whose shapes are inferred from the
/// actual input shapes.
final class Lowering {
    let engine: Engine
    let graph: Graph
    private(set) var slots: [Slot] = []
    private(set) var steps: [PendingStep] = []
    private(set) var values: [String: LoweredValue] = [:]
    /// Plain (row-major) copies of slots, made once per slot.
    private var plainCopies: [Int: Int] = [:]
    /// Persistent slots made from constants, by value name and descriptor.
    private var constantSlots: [String: Int] = [:]
    /// The node being lowered, for error messages.
    var node: Node?
    /// Nodes fused away by a kernel that looked ahead (their outputs are defined already).
    var absorbed: Set<String> = []
    /// Slots of the graph inputs (filled by the caller, never written in place).
    var graphInputSlots: Set<Int> = []
    /// How each node runs, in emission order, for inspect.
    var notes: [NodeExecution] = []

    /// The model's default-domain opset (operator semantics change between versions).
    let opset: Int

    /// How INT8 nodes whose s8 weights exceed 7 bits run on a CPU without VNNI
    /// (``SessionOptions/Int8WithoutVNNI``).
    let withoutVNNI: SessionOptions.Int8WithoutVNNI

    init(graph: Graph, opset: Int, engine: Engine, withoutVNNI: SessionOptions.Int8WithoutVNNI = .exact) {
        self.engine = engine
        self.graph = graph
        self.opset = opset
        self.withoutVNNI = withoutVNNI
    }

    // MARK: values

    func define(_ name: String, _ value: LoweredValue) {
        if journal != nil { journal!.append((name, values[name])) }
        values[name] = value
    }

    func value(_ name: String) throws(GraphError) -> LoweredValue {
        guard let v = values[name] else {
            throw GraphError(.runtime, "\(where_()): value '\(name)' is not available")
        }
        return v
    }

    /// The constant tensor of a value, or nil when it is computed at run time.
    func constant(_ name: String?) -> Tensor? {
        guard let name, case .constant(let t)? = values[name] else { return nil }
        return t
    }

    func isConstant(_ name: String) -> Bool { constant(name) != nil }

    /// The logical shape of a value.
    func shape(_ name: String) throws(GraphError) -> [Int] {
        switch try value(name) {
        case .constant(let t): t.shape
        case .slot(let s): slots[s].shape
        }
    }

    /// The slot of a run-time value; a constant is materialized as a persistent f32 plain slot.
    func slot(_ name: String) throws(GraphError) -> Int {
        switch try value(name) {
        case .slot(let s): return s
        case .constant(let t): return try constantSlot(name, t)
        }
    }

    /// A persistent plain slot holding a constant tensor (converted to f32 unless u8/s8/s32).
    func constantSlot(_ name: String, _ t: Tensor) throws(GraphError) -> Int {
        if let s = constantSlots[name] { return s }
        let dataType: DataType =
            switch t.elementType {
            case .u8: .u8
            case .s8: .s8
            case .s32: .s32
            default: .f32
            }
        let md = try descriptor(dims: t.shape, dataType)
        let floats = t.elementType == .f32 || dataType != .f32 ? nil : t.floatValues()
        let s = addSlot(
            Slot(
                name: name, shape: t.shape, descriptor: md, persistent: true,
                fill: { m, _ in
                    if let floats {
                        try m.write(floats)
                    } else {
                        // Same bytes (u8/s8/s32 or f32 in both); a tensor's buffer is never null.
                        t.withUnsafeBytes { m.dataPointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    }
                }))
        constantSlots[name] = s
        return s
    }

    // MARK: slots

    func addSlot(_ slot: Slot) -> Int {
        slots.append(slot)
        return slots.count - 1
    }

    /// A new slot of `shape` stored as `descriptor`.
    func newSlot(_ name: String, shape: [Int], _ descriptor: MemoryDescriptor) -> Int {
        addSlot(Slot(name: name, shape: shape, descriptor: descriptor))
    }

    /// A new plain slot for values of `type`: a oneDNN type when there is one, else bytes
    /// (`logicalType`).
    func newSlot(_ name: String, shape: [Int], type: ElementType) throws(GraphError) -> Int {
        switch type {
        case .f32: return newSlot(name, shape: shape, try descriptor(dims: shape, .f32))
        case .u8: return newSlot(name, shape: shape, try descriptor(dims: shape, .u8))
        case .s8: return newSlot(name, shape: shape, try descriptor(dims: shape, .s8))
        case .s32: return newSlot(name, shape: shape, try descriptor(dims: shape, .s32))
        case .i64:
            let bytes = max(1, shape.reduce(1, *)) * type.byteSize
            return addSlot(Slot(name: name, shape: shape, descriptor: try descriptor(dims: [bytes], .u8), logicalType: type))
        }
    }

    /// A view of `source`'s buffer with another shape/descriptor (same bytes).
    func alias(of source: Int, name: String, shape: [Int], _ descriptor: MemoryDescriptor) -> Int {
        let root = slots[source].aliasOf ?? source
        return addSlot(
            Slot(
                name: name, shape: shape, descriptor: descriptor, aliasOf: root,
                persistent: slots[root].persistent))
    }

    func descriptor(_ slot: Int) -> MemoryDescriptor { slots[slot].descriptor }

    /// Marks a view made by a sum post-op's in-place destination (``Slot/ownsRoot``).
    func markOwnsRoot(_ slot: Int) { slots[slot].ownsRoot = true }

    func isGraphInput(_ slot: Int) -> Bool { graphInputSlots.contains(slots[slot].aliasOf ?? slot) }

    /// The plain row-major f32-or-same-type descriptor of a logical shape.
    func descriptor(dims shape: [Int], _ dataType: DataType) throws(GraphError) -> MemoryDescriptor {
        try wrap { () throws(DNNLError) in
            try MemoryDescriptor(dims: shape.isEmpty ? [1] : shape, dataType: dataType)
        }
    }

    /// A plain row-major version of a slot (a reorder step when its layout is blocked).
    func plain(_ slot: Int) throws(GraphError) -> Int {
        if slots[slot].descriptor.isPlainRowMajor { return slot }
        if let p = plainCopies[slot] { return p }
        let md = try descriptor(dims: slots[slot].shape, slots[slot].descriptor.dataType)
        let p = newSlot(slots[slot].name + ".plain", shape: slots[slot].shape, md)
        try reorder(from: slot, to: p)
        plainCopies[slot] = p
        return p
    }

    /// Emits a reorder between two slots of the same logical dims.
    func reorder(
        from src: Int, to dst: Int, attributes: PrimitiveAttributes? = nil,
        label: String? = nil
    ) throws(GraphError) {
        let pd = try wrap { () throws(DNNLError) in
            try PrimitiveDescriptor.reorder(
                src: slots[src].descriptor, dst: slots[dst].descriptor,
                attributes: attributes, engine: engine)
        }
        try emit(pd, [(.src, src), (.dst, dst)], label: label ?? "reorder \(slots[src].name)")
    }

    // MARK: steps

    func emit(_ pd: PrimitiveDescriptor, _ args: [(ExecArg, Int)], label: String) throws(GraphError) {
        let p = try wrap { () throws(DNNLError) in try pd.makePrimitive() }
        steps.append(.primitive(p, args, label: label))
    }

    /// A Swift kernel over slots (plain layouts), run in plan order.
    func emitCustom(_ label: String, slots: [Int], run: @escaping ([Memory]) throws -> Void) {
        steps.append(.custom(label: label, slots: slots, run: run))
    }

    /// Records how the current node runs.
    func note(_ text: String, _ precision: Precision = .fp32) {
        if let node { notes.append(NodeExecution(node: node.label, detail: text, precision: precision)) }
    }

    // MARK: checkpoints

    /// Where a lowering started, to undo one that failed half way. Cheap to take (counts and a
    /// journal): slots, steps and notes are only ever appended to.
    struct Checkpoint {
        fileprivate var slots: Int, steps: Int, notes: Int, absorbed: Set<String>
    }
    /// Values defined since the oldest open checkpoint, with what they replaced.
    private var journal: [(name: String, old: LoweredValue?)]? = nil

    func checkpoint() -> Checkpoint {
        journal = []
        return Checkpoint(slots: slots.count, steps: steps.count, notes: notes.count, absorbed: absorbed)
    }

    /// Ends a checkpoint's journal without undoing anything.
    func commit() { journal = nil }

    func restore(_ c: Checkpoint) {
        for entry in (journal ?? []).reversed() { values[entry.name] = entry.old }
        journal = nil
        slots.removeLast(slots.count - c.slots)
        steps.removeLast(steps.count - c.steps)
        notes.removeLast(notes.count - c.notes)
        absorbed = c.absorbed
        plainCopies = plainCopies.filter { $0.key < c.slots && $0.value < c.slots }
        constantSlots = constantSlots.filter { $0.value < c.slots }
    }

    // MARK: errors

    func where_() -> String { node.map { "node \($0.label)" } ?? "plan" }

    /// Runs a oneDNN call, turning its error into a `GraphError` naming the node.
    func wrap<R>(_ body: () throws(DNNLError) -> R) throws(GraphError) -> R {
        do { return try body() } catch {
            throw GraphError(runtime: where_(), error)
        }
    }

    func fail(_ kind: GraphError.Kind, _ message: String) -> GraphError {
        GraphError(kind, "\(where_()): \(message)")
    }
}
