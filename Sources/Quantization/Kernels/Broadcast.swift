/// NumPy/ONNX multidirectional broadcasting of shapes (ONNX doc: Broadcasting.md).
enum Broadcast {
    /// The broadcast shape of `a` and `b`, or nil when they do not broadcast (or a dim is
    /// negative).
    static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        guard !a.contains(where: { $0 < 0 }), !b.contains(where: { $0 < 0 }) else { return nil }
        let r = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: r - a.count) + a
        let pb = [Int](repeating: 1, count: r - b.count) + b
        var out: [Int] = []
        for i in 0..<r {
            if pa[i] == pb[i] || pb[i] == 1 { out.append(pa[i]) } else if pa[i] == 1 { out.append(pb[i]) } else { return nil }
        }
        return out
    }

    /// `shape` with leading 1s up to `rank`.
    static func padded(_ shape: [Int], to rank: Int) -> [Int] {
        [Int](repeating: 1, count: max(0, rank - shape.count)) + shape
    }

    /// Row-major strides.
    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// Steps a row-major coordinate of `shape` to the next element (the last dim fastest).
    @inline(__always)
    static func advance(_ coord: inout [Int], in shape: [Int]) {
        var d = shape.count - 1
        while d >= 0 {
            coord[d] += 1
            if coord[d] < shape[d] { return }
            coord[d] = 0
            d -= 1
        }
    }

    /// For each element of `out` (row-major), the flat index into an input of shape `input`
    /// broadcast to `out`.
    static func indices(of input: [Int], in out: [Int]) -> [Int] {
        let p = padded(input, to: out.count)
        let s = strides(p)
        let total = out.reduce(1, *)
        var result = [Int](repeating: 0, count: total)
        var coord = [Int](repeating: 0, count: out.count)
        for i in 0..<total {
            var idx = 0
            for d in 0..<out.count where p[d] != 1 { idx += coord[d] * s[d] }
            result[i] = idx
            advance(&coord, in: out)
        }
        return result
    }

    /// For each element of `out` (row-major), the flat index into an input of shape `input`
    /// whose element along dim d is `maps[d][out coordinate]`; -1 when any map says -1 (a
    /// fill value: padding).
    static func indices(of input: [Int], in out: [Int], maps: [[Int]]) -> [Int] {
        let s = strides(input)
        let total = out.reduce(1, *)
        var result = [Int](repeating: 0, count: total)
        var coord = [Int](repeating: 0, count: out.count)
        for i in 0..<total {
            var k = 0
            for d in 0..<out.count {
                let m = maps[d][coord[d]]
                if m < 0 { k = -1; break }
                k += m * s[d]
            }
            result[i] = k
            advance(&coord, in: out)
        }
        return result
    }
}
