import CDNNL
import DNNL
import TestSupport
import XCTest

/// Invalid descriptors and calls throw a `DNNLError` naming the C call and the shapes; nothing
/// crashes.
final class DNNLErrorTests: XCTestCase {
    func assertDNNLError(
        _ body: () throws -> Void, call: String, mentions: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            try body()
            XCTFail("expected a DNNLError from \(call)", file: file, line: line)
        } catch let e as DNNLError {
            XCTAssertEqual(e.call, call, "\(e)", file: file, line: line)
            for m in mentions {
                XCTAssertTrue(e.description.contains(m), "'\(m)' missing from: \(e)", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func testMismatchedConvolutionChannels() {
        assertDNNLError(
            {
                _ = try PrimitiveDescriptor.convolutionForward(
                    src: MemoryDescriptor(dims: [1, 3, 8, 8], dataType: .f32),
                    weights: MemoryDescriptor(dims: [4, 5, 3, 3], dataType: .f32), bias: nil,
                    dst: MemoryDescriptor(dims: [1, 4, 6, 6], dataType: .f32),
                    strides: [1, 1], paddingL: [0, 0], paddingR: [0, 0])
            }, call: "dnnl_dilated_convolution_forward_desc_init",
            mentions: ["invalid_arguments", "[1, 3, 8, 8]", "[4, 5, 3, 3]", "convolution"])
    }

    func testWrongNumberOfStrides() {
        assertDNNLError(
            {
                _ = try PrimitiveDescriptor.convolutionForward(
                    src: MemoryDescriptor(dims: [1, 3, 8, 8], dataType: .f32),
                    weights: MemoryDescriptor(dims: [4, 3, 3, 3], dataType: .f32), bias: nil,
                    dst: MemoryDescriptor(dims: [1, 4, 6, 6], dataType: .f32),
                    strides: [1], paddingL: [0, 0], paddingR: [0, 0])
            }, call: "dnnl_dilated_convolution_forward_desc_init", mentions: ["strides [1] needs 2 values"])
    }

    func testMatmulRejectsU8Weights() {
        do {
            _ = try PrimitiveDescriptor.matmul(
                src: MemoryDescriptor(dims: [2, 8], dataType: .u8),
                weights: MemoryDescriptor(dims: [8, 4], dataType: .u8),
                dst: MemoryDescriptor(dims: [2, 4], dataType: .s32))
            XCTFail("u8 weights must be rejected")
        } catch {
            XCTAssertTrue(error.isUnimplemented || error.status.rawValue == 2, "\(error)")
            XCTAssertTrue(error.description.contains("weights [8, 4] u8"), "\(error)")
            XCTAssertTrue(error.call.hasPrefix("dnnl_"), "\(error)")
        }
    }

    func testReorderBetweenDifferentDims() {
        assertDNNLError(
            {
                _ = try PrimitiveDescriptor.reorder(
                    src: MemoryDescriptor(dims: [2, 3], dataType: .f32),
                    dst: MemoryDescriptor(dims: [3, 2], dataType: .f32))
            }, call: "dnnl_reorder_primitive_desc_create", mentions: ["[2, 3]", "[3, 2]"])
    }

    func testBadRank() {
        assertDNNLError(
            { _ = try MemoryDescriptor(dims: [], dataType: .f32) },
            call: "dnnl_memory_desc_init_by_tag", mentions: ["rank 0"])
        assertDNNLError(
            { _ = try MemoryDescriptor(dims: Array(repeating: 1, count: 13), dataType: .f32) },
            call: "dnnl_memory_desc_init_by_tag", mentions: ["rank 13"])
        assertDNNLError(
            { _ = try MemoryDescriptor(dims: [2, -5], dataType: .f32) },
            call: "dnnl_memory_desc_init_by_tag", mentions: ["[2, -5]"])
    }

    func testMissingExecutionArgument() throws {
        let pd = try PrimitiveDescriptor.innerProduct(
            src: MemoryDescriptor(dims: [2, 8], dataType: .f32),
            weights: MemoryDescriptor(dims: [4, 8], dataType: .f32), bias: nil,
            dst: MemoryDescriptor(dims: [2, 4], dataType: .f32))
        let p = try pd.makePrimitive()
        assertDNNLError(
            {
                try p.execute(on: Stream(), [.src: .plain([2, 8], .f32), .dst: .plain([2, 4], .f32)])
            }, call: "dnnl_primitive_execute", mentions: ["missing argument weights", "inner_product"])
    }

    func testSumNeedsOneScalePerSource() {
        assertDNNLError(
            {
                let md = try MemoryDescriptor(dims: [4], dataType: .f32)
                _ = try PrimitiveDescriptor.sum(srcs: [md, md], scales: [1])
            }, call: "dnnl_sum_primitive_desc_create", mentions: ["1 scales for 2 sources"])
    }

    func testUnsupportedInt8Configuration() {
        // Layer normalization has no INT8 implementation in 2.6.
        do {
            _ = try PrimitiveDescriptor.layerNormalization(
                data: MemoryDescriptor(dims: [2, 8], dataType: .u8), epsilon: 1e-5,
                useScale: false, useShift: false)
            XCTFail("u8 layer normalization must be rejected")
        } catch {
            XCTAssertTrue(error.description.contains("layer_normalization"), "\(error)")
        }
    }

    /// Sizes and ranks from a caller's data throw instead of trapping.
    func testWriteOfTheWrongSizeThrowsAndLeavesTheBuffer() throws {
        let m = try Memory(MemoryDescriptor(dims: [2, 3], dataType: .f32))
        try m.write([Float](repeating: 7, count: 6))
        assertDNNLError({ try m.write([Float](repeating: 1, count: 5)) }, call: "Memory.write", mentions: ["5 x Float", "24 bytes"])
        assertDNNLError({ try m.write([UInt8](repeating: 1, count: 6)) }, call: "Memory.write", mentions: ["6 x UInt8"])
        XCTAssertEqual(m.read(as: Float.self), [Float](repeating: 7, count: 6))
        // Reading as a wider type than the buffer holds a whole number of: whole elements only.
        let bytes = try Memory(MemoryDescriptor(dims: [6], dataType: .u8))
        XCTAssertEqual(bytes.read(as: Float.self).count, 1)
    }

    func testReshapeAndPermuteCheckRanks() throws {
        let md = try MemoryDescriptor(dims: [2, 3], dataType: .f32)
        assertDNNLError(
            { _ = try md.reshaped(Array(repeating: 1, count: 12) + [6]) }, call: "dnnl_memory_desc_reshape",
            mentions: ["rank 13", "DNNL_MAX_NDIMS"])
        assertDNNLError({ _ = try md.permutingAxes([0]) }, call: "dnnl_memory_desc_permute_axes", mentions: ["[0]", "2 axes"])
        assertDNNLError({ _ = try md.permutingAxes([0, 0]) }, call: "dnnl_memory_desc_permute_axes", mentions: ["[0, 0]"])
        XCTAssertEqual(try md.permutingAxes([1, 0]).dims, [3, 2])
    }

    func testConvolutionOfARankOneSourceThrows() {
        assertDNNLError(
            {
                _ = try PrimitiveDescriptor.convolutionForward(
                    src: MemoryDescriptor(dims: [8], dataType: .f32), weights: MemoryDescriptor(dims: [8], dataType: .f32),
                    bias: nil, dst: MemoryDescriptor(dims: [8], dataType: .f32), strides: [], paddingL: [], paddingR: [])
            }, call: "dnnl_dilated_convolution_forward_desc_init", mentions: ["rank 1", "[8]"])
    }

    func testSharedEngineIsTheDefaultEngine() throws {
        XCTAssertTrue(try Engine.shared() === Engine.cpu)
    }

    func testErrorsCompareByStatusCallAndContext() {
        let a = DNNLError(status: dnnl_unimplemented, call: "dnnl_primitive_desc_create", context: "conv")
        XCTAssertEqual(a, DNNLError(status: dnnl_unimplemented, call: "dnnl_primitive_desc_create", context: "conv"))
        XCTAssertNotEqual(a, DNNLError(status: dnnl_invalid_arguments, call: "dnnl_primitive_desc_create", context: "conv"))
        XCTAssertNotEqual(a, DNNLError(status: dnnl_unimplemented, call: "dnnl_primitive_create", context: "conv"))
    }
}
