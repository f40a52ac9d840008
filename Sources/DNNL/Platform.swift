import CDNNL
import Foundation

/// The oneDNN library and the CPU it runs on.
public enum Platform {
    /// oneDNN's version, e.g. `"2.6.3"` (`dnnl_version`).
    public static var oneDNNVersion: String {
        let v = dnnl_version().pointee
        return "\(v.major).\(v.minor).\(v.patch)"
    }

    /// The instruction set oneDNN uses (`dnnl_get_effective_cpu_isa`), after any limit set by
    /// the `ONEDNN_MAX_CPU_ISA` environment variable (read once per process).
    public static var isa: CPUISA { CPUISA(dnnl_get_effective_cpu_isa()) }

    /// Sets the number of OpenMP threads for primitives run *from the calling thread*
    /// (`omp_set_num_threads`: Debian's oneDNN 2.6 uses OpenMP and has no thread API).
    /// - Returns: false when OpenMP is not loaded (nothing changed).
    @discardableResult
    public static func setThreadCount(_ n: Int) -> Bool {
        cdnnl_set_num_threads(Int32(clamping: min(max(1, n), maxThreadCount))) == 0
    }

    /// The most threads a session or command accepts: 4 per online CPU (libgomp segfaults
    /// on absurd counts such as 100000).
    public static var maxThreadCount: Int { 4 * max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// The OpenMP thread count primitives run with from the calling thread
    /// (`omp_get_max_threads`), or nil when OpenMP is not loaded.
    public static var threadCount: Int? {
        let n = cdnnl_get_max_threads()
        return n > 0 ? Int(n) : nil
    }

    /// Turns oneDNN's verbose log on (1: execution, 2: also creation) or off (0).
    public static func setVerbose(_ level: Int) {
        _ = dnnl_set_verbose(Int32(level))
    }
}

/// A CPU instruction set as oneDNN names it (`dnnl_cpu_isa_t`).
public struct CPUISA: Sendable, Hashable, CustomStringConvertible {
    public let raw: dnnl_cpu_isa_t
    public init(_ raw: dnnl_cpu_isa_t) { self.raw = raw }

    /// True when the ISA has VNNI (`vpdpbusd`: u8 x s8 dot products into s32 without the
    /// 16-bit intermediate saturation of `vpmaddubsw`).
    public var hasVNNI: Bool {
        let vnniBit = dnnl_cpu_isa_avx512_core_vnni.rawValue & ~dnnl_cpu_isa_avx512_core.rawValue
        let avxVnniBit = dnnl_cpu_isa_avx2_vnni.rawValue & ~dnnl_cpu_isa_avx2.rawValue
        return raw.rawValue & (vnniBit | avxVnniBit) != 0
    }

    public var description: String {
        switch raw {
        case dnnl_cpu_isa_all: "all"
        case dnnl_cpu_isa_sse41: "sse41"
        case dnnl_cpu_isa_avx: "avx"
        case dnnl_cpu_isa_avx2: "avx2"
        case dnnl_cpu_isa_avx2_vnni: "avx2_vnni"
        case dnnl_cpu_isa_avx512_mic: "avx512_mic"
        case dnnl_cpu_isa_avx512_mic_4ops: "avx512_mic_4ops"
        case dnnl_cpu_isa_avx512_core: "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: "avx512_core_amx"
        default: "isa(0x\(String(raw.rawValue, radix: 16)))"
        }
    }
}
