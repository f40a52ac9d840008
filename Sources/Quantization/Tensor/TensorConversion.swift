extension Tensor {
    /// The elements converted to `Float` (any element type), row-major.
    public func floatValues() -> [Float] {
        switch elementType {
        case .f32: scalars(as: Float.self)
        case .u8: scalars(as: UInt8.self).map(Float.init)
        case .s8: scalars(as: Int8.self).map(Float.init)
        case .s32: scalars(as: Int32.self).map(Float.init)
        case .i64: scalars(as: Int64.self).map(Float.init)
        }
    }

    /// The elements converted to `Int` (floats truncated toward zero, saturating at `Int`'s
    /// bounds; NaN gives 0), row-major.
    public func intValues() -> [Int] {
        switch elementType {
        case .f32: scalars(as: Float.self).map { Int(saturating: Double($0)) }
        case .u8: scalars(as: UInt8.self).map(Int.init)
        case .s8: scalars(as: Int8.self).map(Int.init)
        case .s32: scalars(as: Int32.self).map(Int.init)
        case .i64: scalars(as: Int64.self).map(Int.init)
        }
    }

    /// A tensor of `elementType` from Double values (for integer types rounded toward zero and
    /// saturated to the type's range, NaN giving 0).
    /// - Precondition: `values.count` equals the product of `shape` (as ``init(shape:scalars:)``).
    public init(shape: [Int], values: [Double], elementType: ElementType) {
        switch elementType {
        case .f32: self.init(shape: shape, scalars: values.map { Float($0) })
        case .u8: self.init(shape: shape, scalars: values.map { UInt8(clamping: Int(saturating: $0)) })
        case .s8: self.init(shape: shape, scalars: values.map { Int8(clamping: Int(saturating: $0)) })
        case .s32: self.init(shape: shape, scalars: values.map { Int32(clamping: Int(saturating: $0)) })
        case .i64: self.init(shape: shape, scalars: values.map { Int64(Int(saturating: $0)) })
        }
    }

    /// The elements as Double (any element type), row-major.
    public func doubleValues() -> [Double] {
        elementType == .i64 ? intValues().map(Double.init) : floatValues().map(Double.init)
    }
}

extension Int {
    /// `value` truncated toward zero, saturating at `Int.min`/`Int.max` (NaN gives 0): the
    /// conversion of data read from models, which may hold any float.
    init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 0x1p63 {
            self = .max
        } else if value < -0x1p63 {
            self = .min
        } else {
            self = Int(value)
        }
    }
}
