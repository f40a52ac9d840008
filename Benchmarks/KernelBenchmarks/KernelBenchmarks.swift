// KernelBenchmarks: single oneDNN kernels through the DNNL layer, FP32 vs INT8 (u8 src x s8
// weights, s32 bias, per-channel output scales), as an ordo-one/benchmark (package-benchmark)
// suite. Each primitive, its memories and its argument list are made once in setup; an iteration
// times execute + wait only. Metrics: wall clock, throughput (runs/s) and MAC/s (giga).
//
//   swift package --allow-writing-to-package-directory benchmark --target KernelBenchmarks
//   KERNEL_BENCH_THREADS=2 swift package ... (OpenMP threads; default 1)
//   ... --grouping metric --no-progress --filter 'conv.*'  (one table per metric; regex over the whole name)
//
// The machine is shared and noisy: compare FP32 and INT8 rows of one run, not runs of two days.
import Benchmark
import CDNNL
import DNNL
import Foundation

/// The operation of one kernel and its shapes (batch 1).
private enum Operation {
    /// A 2-D convolution, `c` -> `oc` channels on an `hw` x `hw` map, `k` x `k` kernel, same
    /// padding, stride 1, ReLU post-op; `groups == c == oc` is depthwise.
    case conv(c: Int, oc: Int, hw: Int, k: Int, groups: Int)
    /// An inner product `[n, ic]` x `[oc, ic]` -> `[n, oc]` (INT8: f32 logits out).
    case innerProduct(n: Int, ic: Int, oc: Int)
    /// A matmul `[m, k]` x `[k, n]` -> `[m, n]` (INT8: f32 out).
    case matmul(m: Int, k: Int, n: Int)

    /// Multiply-accumulates of one run.
    var macs: Int {
        switch self {
        case let .conv(c, oc, hw, k, groups): (c / groups) * oc * hw * hw * k * k
        case let .innerProduct(n, ic, oc): n * ic * oc
        case let .matmul(m, k, n): m * k * n
        }
    }
}

/// A compiled primitive with its memories and prepared argument list, run on its own stream.
private final class Kernel {
    let primitive: Primitive
    let stream: DNNL.Stream
    /// Keeps the buffers that `args` points to alive.
    let memories: [Memory]
    let args: [dnnl_exec_arg_t]

    init(_ op: Operation, int8: Bool) throws(DNNLError) {
        let pd = try Kernel.descriptor(op, int8: int8)
        primitive = try pd.makePrimitive()
        stream = try DNNL.Stream()
        var roles = primitive.requiredArgs
        if primitive.scratchpadByteCount > 0 { roles.append(.scratchpad) }
        var memories: [Memory] = []
        var args: [dnnl_exec_arg_t] = []
        for role in roles {
            let memory = try Memory(pd.descriptor(for: role))
            Kernel.fill(memory)
            memories.append(memory)
            args.append(dnnl_exec_arg_t(arg: role.rawValue, memory: memory.handle))
        }
        self.memories = memories
        self.args = args
    }

    /// One timed run: execute, then wait for the stream.
    func run() throws(DNNLError) {
        try args.withUnsafeBufferPointer { (list) throws(DNNLError) in
            try primitive.execute(on: stream, prepared: list)
        }
        try stream.wait()
    }

    /// The primitive descriptor: every layout `any` (oneDNN's choice) except matmul src/dst
    /// (plain rows); INT8 has u8 src, s8 weights, s32 bias and per-output-channel scales.
    private static func descriptor(_ op: Operation, int8: Bool) throws(DNNLError) -> PrimitiveDescriptor {
        let (src, wei, bias, dst): (DataType, DataType, DataType, DataType) = int8 ? (.u8, .s8, .s32, .u8) : (.f32, .f32, .f32, .f32)
        let attributes = try PrimitiveAttributes()
        switch op {
        case let .conv(c, oc, hw, k, groups):
            let weights = groups == 1 ? [oc, c, k, k] : [groups, oc / groups, c / groups, k, k]
            if int8 { try attributes.setOutputScales(scales(oc), mask: 2) }
            let postOps = try PostOps()
            try postOps.appendEltwise(.relu)
            try attributes.setPostOps(postOps)
            return try .convolutionForward(
                src: MemoryDescriptor(dims: [1, c, hw, hw], dataType: src, tag: .any),
                weights: MemoryDescriptor(dims: weights, dataType: wei, tag: .any),
                bias: MemoryDescriptor(dims: [oc], dataType: bias),
                dst: MemoryDescriptor(dims: [1, oc, hw, hw], dataType: dst, tag: .any),
                strides: [1, 1], paddingL: [k / 2, k / 2], paddingR: [k / 2, k / 2], attributes: attributes)
        case let .innerProduct(n, ic, oc):
            if int8 { try attributes.setOutputScales(scales(oc), mask: 2) }
            return try .innerProduct(
                src: MemoryDescriptor(dims: [n, ic], dataType: src, tag: .any),
                weights: MemoryDescriptor(dims: [oc, ic], dataType: wei, tag: .any),
                bias: MemoryDescriptor(dims: [oc], dataType: bias),
                dst: MemoryDescriptor(dims: [n, oc], dataType: .f32), attributes: attributes)
        case let .matmul(m, k, n):
            if int8 { try attributes.setOutputScales(scales(n), mask: 1 << 1) }
            return try .matmul(
                src: MemoryDescriptor(dims: [m, k], dataType: src),
                weights: MemoryDescriptor(dims: [k, n], dataType: wei, tag: .any),
                bias: MemoryDescriptor(dims: [1, n], dataType: bias),
                dst: MemoryDescriptor(dims: [m, n], dataType: .f32), attributes: attributes)
        }
    }

    private static func scales(_ count: Int) -> [Float] { (0..<count).map { 0.002 + 0.0001 * Float($0 % 50) } }

    /// Fills a buffer with small ordinary values of its type (no NaNs or denormals, which
    /// would slow FP32 down), padding included.
    private static func fill(_ memory: Memory) {
        let bytes = memory.byteCount
        switch memory.descriptor.dataType {
        case .f32:
            let p = memory.dataPointer.bindMemory(to: Float.self, capacity: bytes / 4)
            for i in 0..<bytes / 4 { p[i] = Float(i % 13) * 0.05 - 0.3 }
        case .s32:
            let p = memory.dataPointer.bindMemory(to: Int32.self, capacity: bytes / 4)
            for i in 0..<bytes / 4 { p[i] = Int32(i % 101) - 50 }
        default:
            let p = memory.dataPointer.bindMemory(to: UInt8.self, capacity: bytes)
            for i in 0..<bytes { p[i] = UInt8(i % 7) }
        }
    }
}

/// OpenMP threads of every kernel: `KERNEL_BENCH_THREADS`, default 1.
private let threads = max(1, Int(ProcessInfo.processInfo.environment["KERNEL_BENCH_THREADS"] ?? "") ?? 1)

/// Multiply-accumulates per second, shown in giga (the `G` column unit).
private let macRate = BenchmarkMetric.custom("MAC/s", polarity: .prefersLarger, useScalingFactor: false)

private let kernels: [(name: String, op: Operation)] = [
    ("conv3x3 56x56 64->64", .conv(c: 64, oc: 64, hw: 56, k: 3, groups: 1)),
    ("conv1x1 56x56 256->64", .conv(c: 256, oc: 64, hw: 56, k: 1, groups: 1)),
    ("depthwise3x3 112x112 32", .conv(c: 32, oc: 32, hw: 112, k: 3, groups: 32)),
    ("fc 1x2048->1000", .innerProduct(n: 1, ic: 2048, oc: 1000)),
    ("matmul 128x768x768", .matmul(m: 128, k: 768, n: 768)),
]

let benchmarks: @Sendable () -> Void = {
    // Short runs: the machine is shared (2 cores); one run of a kernel takes 40 us to 2 ms.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, macRate], tags: ["threads": "\(threads)"], timeUnits: .microseconds,
        units: [macRate: .giga], warmupIterations: 10, maxDuration: .milliseconds(500), maxIterations: 2000)
    for (name, op) in kernels {
        for int8 in [false, true] {
            Benchmark("\(name) \(int8 ? "INT8" : "FP32")") { (benchmark, kernel: Kernel) throws in
                // OpenMP's thread count is per calling thread: set it where the runs happen.
                Platform.setThreadCount(threads)
                benchmark.startMeasurement()
                let start = DispatchTime.now().uptimeNanoseconds
                try kernel.run()
                let nanoseconds = DispatchTime.now().uptimeNanoseconds - start
                benchmark.stopMeasurement()
                benchmark.measurement(macRate, Int(Double(op.macs) * 1e9 / Double(max(1, nanoseconds))))
            } setup: { () throws -> Kernel in
                // oneDNN sizes its work split by the thread count when it makes the primitive.
                Platform.setThreadCount(threads)
                return try Kernel(op, int8: int8)
            }
        }
    }
}
