import CDNNL

/// Element types of oneDNN memory (`dnnl_data_type_t`) this project uses.
public enum DataType: Sendable, Hashable, CustomStringConvertible {
    case f32, bf16, s32, s8, u8
    /// oneDNN's `data_type_undef` (e.g. a memory descriptor of an absent argument).
    case undefined

    public init(_ raw: dnnl_data_type_t) {
        switch raw {
        case dnnl_f32: self = .f32
        case dnnl_bf16: self = .bf16
        case dnnl_s32: self = .s32
        case dnnl_s8: self = .s8
        case dnnl_u8: self = .u8
        default: self = .undefined
        }
    }

    public var raw: dnnl_data_type_t {
        switch self {
        case .f32: dnnl_f32
        case .bf16: dnnl_bf16
        case .s32: dnnl_s32
        case .s8: dnnl_s8
        case .u8: dnnl_u8
        case .undefined: dnnl_data_type_undef
        }
    }

    /// Bytes per element.
    public var size: Int { Int(dnnl_data_type_size(raw)) }

    public var description: String {
        switch self {
        case .f32: "f32"
        case .bf16: "bf16"
        case .s32: "s32"
        case .s8: "s8"
        case .u8: "u8"
        case .undefined: "undef"
        }
    }
}

/// A oneDNN format tag (`dnnl_format_tag_t`): the physical order of a memory's dimensions.
///
/// Letters name logical dimensions in order (`a` = dim 0, ...): `abcd` is plain row-major,
/// `acdb` is channels-last (NHWC) for a 4-D NCHW tensor. `any` lets a primitive choose.
public struct FormatTag: Sendable, Hashable {
    public let raw: dnnl_format_tag_t
    public init(_ raw: dnnl_format_tag_t) { self.raw = raw }

    public static let any = FormatTag(dnnl_format_tag_any)
    public static let a = FormatTag(dnnl_a)
    public static let ab = FormatTag(dnnl_ab)
    public static let ba = FormatTag(dnnl_ba)
    public static let abc = FormatTag(dnnl_abc)
    public static let acb = FormatTag(dnnl_acb)
    public static let bac = FormatTag(dnnl_bac)
    public static let abcd = FormatTag(dnnl_abcd)
    public static let acdb = FormatTag(dnnl_acdb)
    public static let bacd = FormatTag(dnnl_bacd)
    public static let abcde = FormatTag(dnnl_abcde)
    public static let acdeb = FormatTag(dnnl_acdeb)
    public static let acbde = FormatTag(dnnl_acbde)
    public static let abcdef = FormatTag(dnnl_abcdef)
    /// NCHW activations / OIHW weights (`abcd`).
    public static let nchw = abcd
    /// NHWC activations (`acdb`).
    public static let nhwc = acdb
    /// RNN weights `[layers, directions, input channels, gates, output channels]`.
    public static let ldigo = FormatTag(dnnl_ldigo)
    /// RNN bias `[layers, directions, gates, output channels]`.
    public static let ldgo = FormatTag(dnnl_ldgo)
    /// RNN states `[layers, directions, batch, channels]`.
    public static let ldnc = FormatTag(dnnl_ldnc)
    /// RNN sequence data `[time, batch, channels]`.
    public static let tnc = FormatTag(dnnl_tnc)

    /// The plain row-major tag of a rank (1...6): `a`, `ab`, ..., `abcdef`.
    public static func plain(rank: Int) -> FormatTag? {
        switch rank {
        case 1: .a
        case 2: .ab
        case 3: .abc
        case 4: .abcd
        case 5: .abcde
        case 6: .abcdef
        default: nil
        }
    }

    /// Channels-last tag of a rank (3...5): `acb` (NWC), `acdb` (NHWC), `acdeb` (NDHWC).
    public static func channelsLast(rank: Int) -> FormatTag? {
        switch rank {
        case 3: .acb
        case 4: .acdb
        case 5: .acdeb
        default: nil
        }
    }
}
