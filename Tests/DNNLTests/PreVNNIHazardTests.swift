import DNNL
import TestSupport
import XCTest

/// Shows why `Int8Rule` exists: on a CPU without VNNI, oneDNN 2.6 computes wrong INT8 results
/// for u8 x full-range s8 weights (s16 saturation in vpmaddubsw) and for s8 sources into inner
/// product and matmul. Skipped where VNNI is present; `ISAMatrixTests` runs it in child
/// processes with `ONEDNN_MAX_CPU_ISA=AVX2` and `AVX512_CORE`.
final class PreVNNIHazardTests: XCTestCase {
    override func setUpWithError() throws {
        print("ISA in use: \(Platform.isa)")
        try XCTSkipIf(Platform.isa.hasVNNI, "the hazards exist only without VNNI")
    }

    func testFullRangeWeightsSaturateWithoutVNNI() throws {
        // 16 channels of 255 x 127: exact 518160; pre-VNNI pairs saturate at 32767 each.
        let c = 16
        let pd = try PrimitiveDescriptor.convolutionForward(
            src: MemoryDescriptor(dims: [1, c, 1, 1], dataType: .u8, tag: .any),
            weights: MemoryDescriptor(dims: [1, c, 1, 1], dataType: .s8, tag: .any), bias: nil,
            dst: MemoryDescriptor(dims: [1, 1, 1, 1], dataType: .s32),
            strides: [1, 1], paddingL: [0, 0], paddingR: [0, 0])
        let dst = try Memory.plain([1, 1, 1, 1], .s32)
        try PrimitiveHarness().run(
            pd,
            inputs: [
                .src: .plain([1, c, 1, 1], .u8, Array(repeating: 255, count: c)),
                .weights: .plain([1, c, 1, 1], .s8, Array(repeating: 127, count: c)),
            ],
            outputs: [.dst: dst])
        XCTAssertNotEqual(
            dst.integers(), [255 * 127 * c],
            "expected the saturated result without VNNI (\(pd.implementation))")
        XCTAssertLessThan(dst.integers()[0], 255 * 127 * c)
    }

    func testSignedSourceInnerProductAndMatmulAreWrongWithoutVNNI() throws {
        let k = 64
        let exact = 127 * 127 * k
        let ip = try PrimitiveDescriptor.innerProduct(
            src: MemoryDescriptor(dims: [1, k], dataType: .s8, tag: .any),
            weights: MemoryDescriptor(dims: [1, k], dataType: .s8, tag: .any), bias: nil,
            dst: MemoryDescriptor(dims: [1, 1], dataType: .s32))
        let ipDst = try Memory.plain([1, 1], .s32)
        try PrimitiveHarness().run(
            ip,
            inputs: [
                .src: .plain([1, k], .s8, Array(repeating: 127, count: k)),
                .weights: .plain([1, k], .s8, Array(repeating: 127, count: k)),
            ], outputs: [.dst: ipDst])
        XCTAssertNotEqual(ipDst.integers(), [exact], "inner product \(ip.implementation)")

        let mm = try PrimitiveDescriptor.matmul(
            src: MemoryDescriptor(dims: [1, k], dataType: .s8),
            weights: MemoryDescriptor(dims: [k, 1], dataType: .s8),
            dst: MemoryDescriptor(dims: [1, 1], dataType: .s32))
        let mmDst = try Memory.plain([1, 1], .s32)
        try PrimitiveHarness().run(
            mm,
            inputs: [
                .src: .plain([1, k], .s8, Array(repeating: 127, count: k)),
                .weights: .plain([k, 1], .s8, Array(repeating: 127, count: k)),
            ], outputs: [.dst: mmDst])
        XCTAssertNotEqual(mmDst.integers(), [exact], "matmul \(mm.implementation)")
    }
}
