import Foundation

extension Reference {
    /// Recurrent cells with oneDNN's gate order and equations (primitives/rnn.md).
    public enum Cell: Sendable {
        /// gates i, f, c~, o: c = f*c + i*tanh(g2); h = o*tanh(c).
        case lstm
        /// gates u, r, o: o = tanh(Wx + U(r*h) + b); h = u*h + (1-u)*o.
        case gru
        /// gates u, r, o (+ a 4th bias): o = tanh(Wx + b_o + r*(U h + b_u')).
        case lbrGRU

        public var gates: Int { self == .lstm ? 4 : 3 }
        public var biasGates: Int { self == .lbrGRU ? 4 : gates }
    }

    /// One layer, one direction (left to right; reverse the input for right to left).
    /// - Parameters:
    ///   - x: `[T, N, SLC]`; h0 `[N, DHC]` (SIC = DHC); c0 `[N, DHC]` (LSTM).
    ///   - wl: `[SLC, G, DHC]` (ldigo with L = D = 1); wi: `[DHC, G, DHC]`; bias `[G', DHC]`.
    /// - Returns: dst layer `[T, N, DHC]`, last h and c `[N, DHC]`.
    public static func rnn(
        _ cell: Cell, x: [Double], t: Int, n: Int, slc: Int, dhc: Int,
        h0: [Double], c0: [Double]?, wl: [Double], wi: [Double],
        bias: [Double]
    ) -> (dst: [Double], h: [Double], c: [Double]) {
        let g = cell.gates
        func sigmoid(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
        var h = h0
        var c = c0 ?? [Double](repeating: 0, count: n * dhc)
        var dst = [Double]()
        for step in 0..<t {
            var newH = h, newC = c
            for b in 0..<n {
                // xw[gate][j] = sum_i x[i] wl[i, gate, j]; hw likewise with h.
                var xw = [Double](repeating: 0, count: g * dhc), hw = xw
                for gate in 0..<g {
                    for j in 0..<dhc {
                        var a = 0.0
                        for i in 0..<slc { a += x[(step * n + b) * slc + i] * wl[(i * g + gate) * dhc + j] }
                        xw[gate * dhc + j] = a
                        var r = 0.0
                        for i in 0..<dhc { r += h[b * dhc + i] * wi[(i * g + gate) * dhc + j] }
                        hw[gate * dhc + j] = r
                    }
                }
                func pre(_ gate: Int, _ j: Int) -> Double {
                    xw[gate * dhc + j] + hw[gate * dhc + j] + bias[gate * dhc + j]
                }
                // GRU: the reset gate scales the state before the candidate's recurrent product.
                let resetH = (0..<dhc).map { i in sigmoid(pre(1, i)) * h[b * dhc + i] }
                for j in 0..<dhc {
                    switch cell {
                    case .lstm:
                        let i = sigmoid(pre(0, j)), f = sigmoid(pre(1, j))
                        let cc = Foundation.tanh(pre(2, j)), o = sigmoid(pre(3, j))
                        newC[b * dhc + j] = f * c[b * dhc + j] + i * cc
                        newH[b * dhc + j] = o * Foundation.tanh(newC[b * dhc + j])
                    case .gru, .lbrGRU:
                        let u = sigmoid(pre(0, j)), r = sigmoid(pre(1, j))
                        let o: Double
                        if cell == .gru {
                            var rh = 0.0
                            for i in 0..<dhc { rh += resetH[i] * wi[(i * g + 2) * dhc + j] }
                            o = Foundation.tanh(xw[2 * dhc + j] + rh + bias[2 * dhc + j])
                        } else {
                            o = Foundation.tanh(
                                xw[2 * dhc + j] + bias[2 * dhc + j]
                                    + r * (hw[2 * dhc + j] + bias[3 * dhc + j]))
                        }
                        newH[b * dhc + j] = u * h[b * dhc + j] + (1 - u) * o
                    }
                }
            }
            h = newH
            c = newC
            dst += h
        }
        return (dst, h, c)
    }
}
