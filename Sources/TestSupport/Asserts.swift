import XCTest

/// Asserts `|got - ref| <= atol + rtol * |ref|` everywhere; on failure reports the worst index.
public func assertClose(
    _ got: [Float], _ ref: [Double], atol: Double, rtol: Double = 0,
    _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard got.count == ref.count else {
        XCTFail("count \(got.count) != reference \(ref.count). \(message())", file: file, line: line)
        return
    }
    var worst = -1
    var worstExcess = 0.0
    for i in 0..<got.count {
        let err = abs(Double(got[i]) - ref[i])
        let tol = atol + rtol * abs(ref[i])
        if !(err <= tol), err - tol >= worstExcess || worst < 0 { worst = i; worstExcess = err - tol }
    }
    if worst >= 0 {
        XCTFail(
            "index \(worst): got \(got[worst]), reference \(ref[worst]) "
                + "(error \(abs(Double(got[worst]) - ref[worst])) > atol \(atol) + rtol \(rtol)). \(message())",
            file: file, line: line)
    }
}

/// Asserts integer results equal the exact expected integers.
public func assertExact<T: BinaryInteger>(
    _ got: [T], _ expected: [Int],
    _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard got.count == expected.count else {
        XCTFail("count \(got.count) != expected \(expected.count). \(message())", file: file, line: line)
        return
    }
    if let i = (0..<got.count).first(where: { Int(got[$0]) != expected[$0] }) {
        let bad = (0..<got.count).filter { Int(got[$0]) != expected[$0] }.count
        XCTFail(
            "\(bad) of \(got.count) differ; first at \(i): got \(got[i]), expected \(expected[i]). \(message())",
            file: file, line: line)
    }
}

/// Fails a test that would prove nothing: more than `maxFraction` of the reference is zero
/// or at the saturation bounds of `range` (STYLE.md: numeric tests).
public func assertInformative(
    _ expected: [Int], range: ClosedRange<Int>? = nil,
    maxFraction: Double = 0.3,
    file: StaticString = #filePath, line: UInt = #line
) {
    let dull = expected.filter { $0 == 0 || $0 == range?.lowerBound || $0 == range?.upperBound }.count
    XCTAssertLessThanOrEqual(
        Double(dull) / Double(max(expected.count, 1)), maxFraction,
        "the reference is mostly zero or saturated: the test would prove nothing",
        file: file, line: line)
}
