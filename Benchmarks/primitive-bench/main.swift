// primitive-bench: INT8 (u8 x s8, VNNI) vs FP32 oneDNN convolutions through the DNNL layer,
// measured side by side in one process, interleaved, at 1 and 2 threads. Shows what the Swift
// wrapper leaves of oneDNN's own speed (PERF_NOTES.md: ~230 GMAC/s u8 x s8, ~58 f32 per core).
//
//   swift run -c release primitive-bench [--rounds R] [--seconds S]
import DNNL
import Foundation

struct Layer {
    let name: String
    let c: Int, oc: Int, hw: Int, k: Int
    var macs: Double { Double(c * oc * hw * hw * k * k) }
}

let layers = [
    Layer(name: "conv3x3 64->64 56x56", c: 64, oc: 64, hw: 56, k: 3),
    Layer(name: "conv1x1 256->64 56x56", c: 256, oc: 64, hw: 56, k: 1),
    Layer(name: "conv3x3 256->256 14x14", c: 256, oc: 256, hw: 14, k: 3),
]

var rounds = 5
var seconds = 0.2
var it = CommandLine.arguments.dropFirst().makeIterator()
while let a = it.next() {
    switch a {
    case "--rounds": rounds = Int(it.next() ?? "") ?? rounds
    case "--seconds": seconds = Double(it.next() ?? "") ?? seconds
    default:
        FileHandle.standardError.write("primitive-bench: unknown flag \(a)\n".data(using: .utf8)!)
        exit(2)
    }
}

/// A compiled convolution with its memories bound once.
struct Bound {
    let primitive: Primitive
    let args: [ExecArg: Memory]
    let impl: String
}

func make(_ l: Layer, int8: Bool) throws -> Bound {
    let src = try MemoryDescriptor(dims: [1, l.c, l.hw, l.hw], dataType: int8 ? .u8 : .f32, tag: .any)
    let wei = try MemoryDescriptor(dims: [l.oc, l.c, l.k, l.k], dataType: int8 ? .s8 : .f32, tag: .any)
    let dst = try MemoryDescriptor(dims: [1, l.oc, l.hw, l.hw], dataType: int8 ? .u8 : .f32, tag: .any)
    let bias = try MemoryDescriptor(dims: [l.oc], dataType: int8 ? .s32 : .f32)
    let attr = try PrimitiveAttributes()
    if int8 { try attr.setOutputScales((0..<l.oc).map { _ in Float.random(in: 0.001...0.01) }, mask: 2) }
    let po = try PostOps()
    try po.appendEltwise(.relu)
    try attr.setPostOps(po)
    let pad = l.k / 2
    let pd = try PrimitiveDescriptor.convolutionForward(
        src: src, weights: wei, bias: bias, dst: dst, strides: [1, 1],
        paddingL: [pad, pad], paddingR: [pad, pad], attributes: attr)
    let args: [ExecArg: Memory] = [
        .src: try Memory(pd.src), .weights: try Memory(pd.weights), .bias: try Memory(pd.bias),
        .dst: try Memory(pd.dst), .scratchpad: try Memory(pd.scratchpad),
    ]
    for m in args.values { m.zero() }
    return Bound(primitive: try pd.makePrimitive(), args: args, impl: pd.implementation)
}

/// Median milliseconds per run over `seconds` of runs.
func time(_ b: Bound, _ stream: DNNL.Stream, seconds: Double) throws -> Double {
    var samples: [Double] = []
    let start = Date()
    repeat {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try b.primitive.execute(on: stream, b.args)
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
    } while Date().timeIntervalSince(start) < seconds
    samples.sort()
    return samples[samples.count / 2]
}

let stream = try DNNL.Stream()
print("oneDNN \(Platform.oneDNNVersion), ISA \(Platform.isa), \(rounds) interleaved rounds of \(seconds) s")
print("| layer | threads | FP32 ms | INT8 ms | INT8/FP32 speed | FP32 GMAC/s | INT8 GMAC/s | INT8 impl |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for threads in [1, 2] {
    Platform.setThreadCount(threads)
    for l in layers {
        let f = try make(l, int8: false), q = try make(l, int8: true)
        _ = try time(f, stream, seconds: seconds); _ = try time(q, stream, seconds: seconds)  // warm-up
        var fs: [Double] = [], qs: [Double] = []
        for _ in 0..<rounds {
            fs.append(try time(f, stream, seconds: seconds))
            qs.append(try time(q, stream, seconds: seconds))
        }
        let fm = fs.sorted()[rounds / 2], qm = qs.sorted()[rounds / 2]
        print(
            String(
                format: "| %@ | %d | %.3f | %.3f | %.2fx | %.1f | %.1f | %@ |", l.name, threads,
                fm, qm, fm / qm, l.macs / fm / 1e6, l.macs / qm / 1e6, q.impl))
    }
}
