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
        print("ISA: \(isa)\(isa.hasVNNI ? " (VNNI)" : " (no VNNI: 7-bit weights, u8 sources for inner product/matmul)")")
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
