// swift-tools-version:6.1
import PackageDescription

// swift-dnnl-quantization: INT8 inference and quantization on oneDNN 2.6 (Debian libdnnl-dev).
// Layers (README.md): CDNNL (C API) -> DNNL (Swift owners of oneDNN handles) -> Quantization.
let package = Package(
    name: "swift-dnnl-quantization",
    products: [
        .library(name: "DNNL", targets: ["DNNL"]),
        .library(name: "Quantization", targets: ["Quantization"]),
        .executable(name: "dnnl-quant", targets: ["dnnl-quant"]),
        .executable(name: "seed-bench", targets: ["seed-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: []),
    ],
    targets: [
        .systemLibrary(
            name: "CDNNL",
            path: "Sources/CDNNL",
            providers: [.apt(["libdnnl-dev"])]),
        .target(name: "DNNL", dependencies: ["CDNNL"]),
        .target(
            name: "Quantization",
            dependencies: [
                "DNNL", .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]),
        .executableTarget(
            name: "dnnl-quant",
            dependencies: [
                "Quantization", "DNNL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "KernelBenchmarks",
            dependencies: ["DNNL", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/KernelBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(
            name: "seed-bench",
            dependencies: [
                "Quantization", "DNNL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/seed-bench", exclude: ["peers.py", "requirements-peers.txt"]),
        .target(name: "TestSupport", dependencies: ["DNNL"]),
        .testTarget(name: "DNNLTests", dependencies: ["DNNL", "TestSupport"]),
        .testTarget(
            name: "QuantizationTests", dependencies: ["Quantization", "TestSupport"],
            exclude: ["Fixtures"]),
    ]
)
