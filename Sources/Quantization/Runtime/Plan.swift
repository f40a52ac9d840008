import CDNNL
import DNNL
import Foundation

/// Owns the raw buffers of a plan (64-byte aligned), freed once.
final class BufferArena {
    private(set) var buffers: [UnsafeMutableRawPointer] = []
    private(set) var totalBytes = 0

    /// The most a plan may allocate: the machine's physical memory.
    static let limit = Int(clamping: ProcessInfo.processInfo.physicalMemory)

    func allocate(_ bytes: Int) throws(GraphError) -> UnsafeMutableRawPointer {
        guard bytes >= 0, bytes <= Self.limit - totalBytes else {
            throw GraphError(
                .runtime,
                "the plan needs more memory than this machine has (\(totalBytes + max(bytes, 0)) bytes so far, limit \(Self.limit)): check the input shapes"
            )
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 64))
        buffers.append(p)
        totalBytes += bytes
        return p
    }

    deinit { for b in buffers { b.deallocate() } }
}

/// A compiled plan for one set of input shapes: oneDNN primitives and Swift kernels with their
/// memories bound once. Running it allocates nothing proportional to the model.
///
/// Buffers are shared between slots whose lifetimes do not overlap (first-fit over the steps in
/// order); weights and other constants get buffers of their own, filled once.
final class Plan {
    enum Step {
        case primitive(Primitive, UnsafeMutableBufferPointer<dnnl_exec_arg_t>, label: String)
        case custom(([Memory]) throws -> Void, [Memory], label: String)
    }

    let inputSlots: [String: Int]
    let outputs: [(name: String, value: LoweredValue)]
    let memories: [Memory]
    let steps: [Step]
    let arena: BufferArena
    let notes: [NodeExecution]
    let slots: [Slot]
    /// The inferred shape of every value (run-time and constant) of this plan.
    let valueShapes: [String: [Int]]
    private let scratchpad: Memory?

    /// Materializes a lowering: assigns buffers, creates memories, fills constants, binds
    /// primitive arguments.
    init(
        _ l: Lowering, inputs: [String: Int], outputs: [(String, LoweredValue)],
        stream: DNNL.Stream
    ) throws(GraphError) {
        inputSlots = inputs
        self.outputs = outputs
        notes = l.notes
        valueShapes = l.values.mapValues { v in
            switch v {
            case .constant(let t): t.shape
            case .slot(let s): l.slots[s].shape
            }
        }
        let slots = l.slots
        // The plan keeps the slots without their fill closures: those hold the weights as
        // given (a second copy of every constant) and run once, below.
        self.slots = slots.map { s in
            var s = s
            s.fill = nil
            return s
        }
        let arena = BufferArena()
        self.arena = arena
        let pending = l.steps
        let n = slots.count
        func root(_ s: Int) -> Int { slots[s].aliasOf ?? s }

        // Lifetimes of root slots, in step indices; inputs live from the start, outputs to the end.
        var first = [Int](repeating: Int.max, count: n), last = [Int](repeating: -1, count: n)
        for s in inputs.values { first[root(s)] = -1 }
        for (i, step) in pending.enumerated() {
            for s in step.slots { let r = root(s); first[r] = min(first[r], i); last[r] = max(last[r], i) }
        }
        for (_, v) in outputs { if case .slot(let s) = v { last[root(s)] = pending.count } }
        var size = [Int](repeating: 0, count: n)
        for s in 0..<n { size[root(s)] = max(size[root(s)], slots[s].descriptor.byteCount) }

        // First-fit reuse of freed buffers.
        var base = [UnsafeMutableRawPointer?](repeating: nil, count: n)
        var free: [(ptr: UnsafeMutableRawPointer, bytes: Int)] = []
        var byFirst: [Int: [Int]] = [:], byLast: [Int: [Int]] = [:]
        for s in 0..<n where root(s) == s {
            if slots[s].persistent || first[s] == Int.max {
                base[s] = try arena.allocate(size[s])
                continue
            }
            byFirst[first[s], default: []].append(s)
            byLast[last[s], default: []].append(s)
        }
        for i in -1...pending.count {
            for s in byFirst[i] ?? [] {
                if let j = free.indices.filter({ free[$0].bytes >= size[s] }).min(by: { free[$0].bytes < free[$1].bytes }) {
                    base[s] = free.remove(at: j).ptr
                } else {
                    base[s] = try arena.allocate(size[s])
                }
            }
            // Every root slot got a buffer by now: persistent and unused ones above, the others
            // at their first step (first <= last, both in -1...steps), so `base[s]!` holds.
            for s in byLast[i] ?? [] { free.append((base[s]!, size[s])) }
        }

        var mems: [Memory] = []
        mems.reserveCapacity(n)
        for s in 0..<n {
            let m = try l.wrap { () throws(DNNLError) in
                try Memory(slots[s].descriptor, engine: l.engine, buffer: base[root(s)]!, owner: arena)  // assigned above
            }
            mems.append(m)
        }
        memories = mems
        for s in 0..<n {
            if let fill = slots[s].fill {
                try l.wrap { () throws(DNNLError) in
                    do { try fill(mems[s], stream) } catch let e as DNNLError { throw e } catch {
                        throw DNNLError(status: dnnl_runtime_error, call: "fill", context: "\(error)")
                    }
                }
            }
        }

        // One scratchpad for every primitive: they run one after another.
        let scratchBytes =
            pending.map { step -> Int in
                if case .primitive(let p, _, _) = step { return p.scratchpadByteCount }
                return 0
            }.max() ?? 0
        var scratchpad: Memory? = nil
        if scratchBytes > 0 {
            let buffer = try arena.allocate(scratchBytes)
            scratchpad = try l.wrap { () throws(DNNLError) in
                try Memory(MemoryDescriptor(dims: [scratchBytes], dataType: .u8), engine: l.engine, buffer: buffer, owner: arena)
            }
        }
        self.scratchpad = scratchpad

        steps = pending.map { step in
            switch step {
            case .primitive(let p, let args, let label):
                var list = args.map { dnnl_exec_arg_t(arg: $0.0.rawValue, memory: mems[$0.1].handle) }
                if p.scratchpadByteCount > 0, let sp = scratchpad {
                    list.append(dnnl_exec_arg_t(arg: ExecArg.scratchpad.rawValue, memory: sp.handle))
                }
                let buf = UnsafeMutableBufferPointer<dnnl_exec_arg_t>.allocate(capacity: list.count)
                _ = buf.initialize(from: list)
                return .primitive(p, buf, label: label)
            case .custom(let label, let s, let run):
                return .custom(run, s.map { mems[$0] }, label: label)
            }
        }
    }

    deinit {
        for case .primitive(_, let buf, _) in steps { buf.deallocate() }
    }

    /// Every step's label, in run order.
    var stepLabels: [String] {
        steps.map { step in
            switch step {
            case .primitive(_, _, let label), .custom(_, _, let label): label
            }
        }
    }

    /// Bytes of all buffers (activations after reuse, weights, scratchpad).
    var byteCount: Int { arena.totalBytes }

    /// Copies the inputs in, runs every step, copies the outputs out.
    func run(_ feeds: [String: Tensor], stream: DNNL.Stream) throws(GraphError) -> [String: Tensor] {
        for (name, s) in inputSlots {
            guard let t = feeds[name] else { continue }
            let m = memories[s]
            // A tensor's buffer is never null (at least one byte is allocated).
            t.withUnsafeBytes { m.dataPointer.copyMemory(from: $0.baseAddress!, byteCount: min($0.count, m.byteCount)) }
        }
        for step in steps {
            switch step {
            case .primitive(let p, let args, let label):
                do { try p.execute(on: stream, prepared: UnsafeBufferPointer(args)) } catch {
                    throw GraphError(runtime: label, error)
                }
            case .custom(let run, let mems, let label):
                do { try run(mems) } catch {
                    throw GraphError(runtime: label, error)
                }
            }
        }
        do { try stream.wait() } catch { throw GraphError(.runtime, "\(error)", dnnlError: error) }
        var result: [String: Tensor] = [:]
        for (name, v) in outputs {
            switch v {
            case .constant(let t): result[name] = t
            case .slot(let s):
                let m = memories[s]
                var t = Tensor(zeros: slots[s].shape, elementType: slots[s].elementType)
                t.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: m.dataPointer, byteCount: $0.count) }  // never null
                result[name] = t
            }
        }
        return result
    }
}

extension DataType {
    /// The tensor element type of a oneDNN data type (bf16 has none: f32).
    var elementType: ElementType {
        switch self {
        case .u8: .u8
        case .s8: .s8
        case .s32: .s32
        default: .f32
        }
    }
}
