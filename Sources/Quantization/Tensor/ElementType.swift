/// The element types a ``Tensor`` can hold.
///
/// All types are stored little-endian, as on every platform this package supports.
/// The raw values (`"f32"`, `"u8"`, …) are stable and used when the type is encoded.
public enum ElementType: String, Sendable, CaseIterable, Codable {
    /// 32-bit IEEE 754 float (`Float`, NumPy `<f4`).
    case f32
    /// Unsigned 8-bit integer (`UInt8`, NumPy `|u1`).
    case u8
    /// Signed 8-bit integer (`Int8`, NumPy `|i1`).
    case s8
    /// Signed 32-bit integer (`Int32`, NumPy `<i4`).
    case s32
    /// Signed 64-bit integer (`Int64`, NumPy `<i8`).
    case i64

    /// Size of one element in bytes: 4, 1, 1, 4 and 8 respectively.
    public var byteSize: Int {
        switch self {
        case .f32, .s32: 4
        case .u8, .s8: 1
        case .i64: 8
        }
    }
}

/// A Swift scalar type that can be stored in a ``Tensor``.
///
/// `Float`, `UInt8`, `Int8`, `Int32` and `Int64` conform; conforming other types is not supported,
/// because ``Tensor`` reinterprets its bytes as `Self` and relies on `MemoryLayout<Self>.size`
/// being equal to ``ElementType/byteSize``.
public protocol TensorScalar: Sendable {
    /// The element type that stores values of this Swift type.
    static var elementType: ElementType { get }
}

extension Float: TensorScalar { public static var elementType: ElementType { .f32 } }
extension UInt8: TensorScalar { public static var elementType: ElementType { .u8 } }
extension Int8: TensorScalar { public static var elementType: ElementType { .s8 } }
extension Int32: TensorScalar { public static var elementType: ElementType { .s32 } }
extension Int64: TensorScalar { public static var elementType: ElementType { .i64 } }
