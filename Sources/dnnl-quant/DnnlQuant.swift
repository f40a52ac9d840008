import ArgumentParser
import DNNL
import Quantization

@main
struct DnnlQuant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dnnl-quant",
        abstract: "INT8 inference and quantization of ONNX models on oneDNN.",
        version: QuantizationLibrary.version,
        subcommands: [Run.self, Quantize.self, Bench.self, Inspect.self, Info.self])
}

/// `dnnl-quant info`: the oneDNN version, the instruction set in use and the thread count.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the oneDNN version, the CPU instruction set in use and the thread count.")

    @Option(name: .long, help: "Threads to report for (sets OpenMP's count on this thread).")
    var threads: Int?

    func validate() throws {
        if let threads { try validateThreads(threads) }
    }

    func run() throws {
        if let threads { Platform.setThreadCount(threads) }
        let isa = Platform.isa
        let rule = Int8Rule(isa: isa)
        print("dnnl-quant \(QuantizationLibrary.version)")
        print("oneDNN: \(Platform.oneDNNVersion)")
        print(
            "ISA: \(isa)\(isa.hasVNNI ? " (VNNI)" : " (no VNNI: s8 sources shifted to u8; weights beyond 7 bits run FP32 unless --int8-without-vnni seven-bit-weights)")"
        )
        print("INT8 weight range: [-\(rule.weightMax), \(rule.weightMax)]")
        print("threads: \(Platform.threadCount.map(String.init) ?? "unknown (OpenMP not loaded)")")
    }
}

/// `--threads` must be in 1...`Platform.maxThreadCount` (4 per online CPU).
func validateThreads(_ threads: Int) throws {
    guard (1...Platform.maxThreadCount).contains(threads) else {
        throw ValidationError("--threads must be in 1...\(Platform.maxThreadCount) (4 per CPU), got \(threads)")
    }
}

extension SessionOptions.Int8WithoutVNNI: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "exact": self = .exact
        case "seven-bit-weights": self = .sevenBitWeights
        default: return nil
        }
    }
    public static var allValueStrings: [String] { ["exact", "seven-bit-weights"] }
    public var defaultValueDescription: String { self == .exact ? "exact" : "seven-bit-weights" }
}

/// The help of `--int8-without-vnni` (run, bench, inspect).
let int8WithoutVNNIHelp = ArgumentHelp(
    "On a CPU without VNNI: 'exact' runs nodes whose s8 weights exceed 7 bits in FP32 on the dequantized weights (what the QDQ graph computes); 'seven-bit-weights' re-quantizes them to 7 bits and runs INT8 (faster, coarser).",
    valueName: "mode")

/// Session options from the shared flags.
func sessionOptions(threads: Int, _ withoutVNNI: SessionOptions.Int8WithoutVNNI) -> SessionOptions {
    var o = SessionOptions(threads: threads)
    o.int8WithoutVNNI = withoutVNNI
    return o
}
