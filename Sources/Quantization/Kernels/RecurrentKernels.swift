import DNNL

/// ONNX LSTM and GRU (forward, reverse, bidirectional; initial states; sequence and final
/// outputs) as oneDNN RNN primitives. Weights and biases are repacked once: ONNX gate order
/// (LSTM i,o,f,c; GRU z,r,h) to oneDNN's (LSTM i,f,c,o; GRU u,r,o) in `ldigo` layout, input and
/// recurrent biases summed (LBR GRU keeps the recurrent candidate bias as its 4th gate).
enum RecurrentKernels {
    static func register(_ r: inout [String: LowerFunction]) {
        r["LSTM"] = { n, l in try rnn(n, l, lstm: true) }
        r["GRU"] = { n, l in try rnn(n, l, lstm: false) }
    }

    static func rnn(_ node: Node, _ l: Lowering, lstm: Bool) throws {
        guard let w = l.constant(node.input(1)), let rw = l.constant(node.input(2)) else {
            throw l.fail(.unsupportedAttribute, "W and R must be constant")
        }
        let x = try l.shape(node.inputs[0])
        guard x.count == 3, (node.int("layout") ?? 0) == 0 else {
            throw l.fail(.unsupportedAttribute, "input \(x) with layout \(node.int("layout") ?? 0) (only [T, N, I], layout 0)")
        }
        let (t, n, i) = (x[0], x[1], x[2])
        let dir = node.string("direction") ?? "forward"
        let d = dir == "bidirectional" ? 2 : 1
        let h = node.int("hidden_size") ?? rw.shape.last ?? 0  // a scalar R fails the shape check below
        let gates = lstm ? 4 : 3
        guard h > 0, h <= 1 << 24 else { throw l.fail(.unsupportedAttribute, "hidden_size \(h) must be positive (at most \(1 << 24))") }
        let lbr = !lstm && node.int("linear_before_reset") == 1
        guard w.shape == [d, gates * h, i], rw.shape == [d, gates * h, h] else {
            throw l.fail(.shapeMismatch, "W \(w.shape) / R \(rw.shape) do not fit \(d) directions, hidden \(h), input \(i)")
        }
        if let acts = node.strings("activations") {
            let expected = lstm ? ["Sigmoid", "Tanh", "Tanh"] : ["Sigmoid", "Tanh"]
            guard acts.map({ $0.lowercased() }) == Array(repeating: expected, count: d).flatMap({ $0 }).map({ $0.lowercased() }) else {
                throw l.fail(.unsupportedAttribute, "activations \(acts) (only the defaults)")
            }
        }
        guard node.float("clip") == nil, (node.int("input_forget") ?? 0) == 0 else {
            throw l.fail(.unsupportedAttribute, "clip and input_forget are not supported")
        }
        if let p = node.input(7) {
            guard let pt = l.constant(p), pt.floatValues().allSatisfy({ $0 == 0 }) else {
                throw l.fail(.unsupportedAttribute, "peepholes are not supported")
            }
        }
        if let sl = node.input(4) {
            guard let lens = l.constant(sl), lens.intValues().allSatisfy({ $0 == t }) else {
                throw l.fail(.unsupportedAttribute, "sequence_lens shorter than the sequence are not supported")
            }
        }
        // ONNX gate index of each oneDNN gate.
        let onnxGate = lstm ? [0, 2, 3, 1] : [0, 1, 2]
        let wv = w.floatValues(), rv = rw.floatValues()
        func ldigo(_ src: [Float], inputs: Int) -> [Float] {
            var out = [Float](repeating: 0, count: d * inputs * gates * h)
            for dd in 0..<d {
                for ii in 0..<inputs {
                    for g in 0..<gates {
                        for hh in 0..<h {
                            out[((dd * inputs + ii) * gates + g) * h + hh] = src[(dd * gates * h + onnxGate[g] * h + hh) * inputs + ii]
                        }
                    }
                }
            }
            return out
        }
        let biasGates = lbr ? 4 : gates
        var bias = [Float](repeating: 0, count: d * biasGates * h)
        if let bn = node.input(3) {
            guard let bt = l.constant(bn), bt.count == d * 2 * gates * h else {
                throw l.fail(.unsupportedAttribute, "B must be a constant [\(d), \(2 * gates * h)]")
            }
            let bv = bt.floatValues()
            for dd in 0..<d {
                for g in 0..<gates {
                    for hh in 0..<h {
                        let wb = bv[dd * 2 * gates * h + onnxGate[g] * h + hh]
                        let rb = bv[dd * 2 * gates * h + gates * h + onnxGate[g] * h + hh]
                        if lbr && g == 2 {
                            bias[(dd * biasGates + 2) * h + hh] = wb
                            bias[(dd * biasGates + 3) * h + hh] = rb
                        } else {
                            bias[(dd * biasGates + g) * h + hh] = wb + rb
                        }
                    }
                }
            }
        }
        let direction: RNNDirection =
            switch dir {
            case "reverse": .rightToLeft
            case "bidirectional": .bidirectionalConcat
            default: .leftToRight
            }
        let stateDims = [1, d, n, h]
        let cell: RNNCell = lstm ? .lstm : (lbr ? .linearBeforeResetGRU : .gru)
        let pd = try l.wrap { () throws(DNNLError) in
            let f32 = { (dims: [Int], tag: FormatTag?) throws(DNNLError) in
                try MemoryDescriptor(dims: dims, dataType: .f32, tag: tag)
            }
            let state = try f32(stateDims, .ldnc)
            let mds = RNNDescriptors(
                srcLayer: try f32([t, n, i], .tnc), srcIter: state, srcIterC: lstm ? state : nil,
                weightsLayer: try f32([1, d, i, gates, h], .any), weightsIter: try f32([1, d, h, gates, h], .any),
                bias: try f32([1, d, biasGates, h], .ldgo), dstLayer: try f32([t, n, d * h], .tnc),
                dstIter: state, dstIterC: lstm ? state : nil)
            return try PrimitiveDescriptor.rnn(cell, direction: direction, mds, engine: l.engine)
        }
        let src = try l.plain(try l.slot(node.inputs[0]))
        var args: [(ExecArg, Int)] = [(.srcLayer, src)]
        args.append((.weightsLayer, try l.weightsSlot(node.inputs[1], ldigo(wv, inputs: i), plainDims: [1, d, i, gates, h], into: pd.weights(0))))
        args.append((.weightsIter, try l.weightsSlot(node.inputs[2], ldigo(rv, inputs: h), plainDims: [1, d, h, gates, h], into: pd.weights(1))))
        args.append((.bias, try l.constantSlot(node.name + ".bias", Tensor(shape: [1, d, biasGates, h], scalars: bias))))
        let stateMD = try l.descriptor(dims: stateDims, .f32)
        func state(_ index: Int) throws(GraphError) -> Int {
            if let name = node.input(index) {
                return l.alias(of: try l.plain(try l.slot(name)), name: name + ".ldnc", shape: stateDims, stateMD)
            }
            let zeros = Tensor(zeros: stateDims, elementType: .f32)
            return try l.constantSlot(node.name + ".zero_state\(index)", zeros)
        }
        args.append((.srcIter, try state(5)))
        if lstm { args.append((.srcIterC, try state(6))) }
        let dstLayer = l.newSlot(node.name + ".dst_layer", shape: [t, n, d * h], pd.dst(0))
        let dstIter = l.newSlot(node.name + ".dst_iter", shape: [d, n, h], stateMD)
        args += [(.dstLayer, dstLayer), (.dstIter, dstIter)]
        var dstIterC: Int? = nil
        if lstm {
            let c = l.newSlot(node.name + ".dst_iter_c", shape: [d, n, h], stateMD)
            dstIterC = c
            args.append((.dstIterC, c))
        }
        try l.emit(pd, args, label: "\(l.where_()) \(cell)")
        l.note("\(pd.implementation) \(cell) \(dir) (f32)")
        // Y [T, D, N, H] from dst_layer [T, N, D*H].
        if let y = node.outputs.first, !y.isEmpty {
            if d == 1 {
                l.define(y, .slot(l.alias(of: dstLayer, name: y, shape: [t, 1, n, h], try l.descriptor(dims: [t, 1, n, h], .f32))))
            } else {
                let split = try l.descriptor(dims: [t, n, d, h], .f32)
                let permuted = try l.wrap { () throws(DNNLError) in try split.permutingAxes([0, 2, 1, 3]) }
                let view = l.alias(of: dstLayer, name: y + ".view", shape: [t, d, n, h], permuted)
                let ySlot = l.newSlot(y, shape: [t, d, n, h], try l.descriptor(dims: [t, d, n, h], .f32))
                try l.reorder(from: view, to: ySlot, label: "\(l.where_()) Y layout")
                l.define(y, .slot(ySlot))
            }
        }
        if node.outputs.count > 1, !node.outputs[1].isEmpty { l.define(node.outputs[1], .slot(dstIter)) }
        if node.outputs.count > 2, !node.outputs[2].isEmpty, let c = dstIterC { l.define(node.outputs[2], .slot(c)) }
    }
}
