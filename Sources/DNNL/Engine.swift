import CDNNL

/// A oneDNN CPU engine (`dnnl_engine_t`).
///
/// `Sendable`: oneDNN engines are thread-safe; the handle is immutable and destroyed once in
/// `deinit`.
public final class Engine: @unchecked Sendable {
    public let handle: dnnl_engine_t

    /// Creates the CPU engine with the given index (there is one CPU engine: index 0).
    /// - Throws: `DNNLError` from `dnnl_engine_create`.
    public init(cpuIndex: Int = 0) throws(DNNLError) {
        var h: dnnl_engine_t?
        try check(
            dnnl_engine_create(&h, dnnl_cpu, cpuIndex), "dnnl_engine_create",
            "cpu engine \(cpuIndex)")
        handle = try created(h, "dnnl_engine_create", "cpu engine \(cpuIndex)")
    }

    deinit { dnnl_engine_destroy(handle) }

    /// The process-wide CPU engine, created once on first use; a creation error is kept and
    /// thrown again by every call. Engines are cheap, but primitives and memories must be
    /// created on the engine they run on; one shared CPU engine keeps that simple.
    /// - Throws: `DNNLError` from `dnnl_engine_create` (oneDNN cannot run on this machine).
    public static func shared() throws(DNNLError) -> Engine { try sharedEngine.get() }

    private static let sharedEngine: Result<Engine, DNNLError> = {
        do throws(DNNLError) { return .success(try Engine()) } catch { return .failure(error) }
    }()

    /// The process-wide CPU engine (``shared()``), for default arguments.
    ///
    /// Traps only when oneDNN cannot create a CPU engine at all (a broken installation, no
    /// memory at start-up), which no model, file or flag can cause. The Quantization library
    /// calls ``shared()`` first and throws that error instead, so it never reaches this trap.
    public static var cpu: Engine {
        do { return try shared() } catch { fatalError("oneDNN CPU engine: \(error)") }
    }
}

/// A oneDNN execution stream (`dnnl_stream_t`) on an engine.
///
/// Not `Sendable`: a stream is used by one thread at a time (each inference session owns one).
/// CPU streams execute in order and synchronously with Debian's OpenMP build.
public final class Stream {
    public let handle: dnnl_stream_t
    public let engine: Engine

    /// - Throws: `DNNLError` from `dnnl_stream_create`.
    public init(engine: Engine = .cpu) throws(DNNLError) {
        var h: dnnl_stream_t?
        try check(
            dnnl_stream_create(&h, engine.handle, dnnl_stream_default_flags.rawValue),
            "dnnl_stream_create")
        handle = try created(h, "dnnl_stream_create")
        self.engine = engine
    }

    /// Waits for all primitives submitted to the stream.
    public func wait() throws(DNNLError) {
        try check(dnnl_stream_wait(handle), "dnnl_stream_wait")
    }

    deinit { dnnl_stream_destroy(handle) }
}
