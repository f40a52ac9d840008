import Foundation

/// How an activation's quantization range is chosen from observed values.
///
/// Every method except ``minMax`` chooses a symmetric threshold `t` from a histogram of `|x|`
/// (see ``TensorObserver``) and gives the range `[-t, t]`, or `[0, t]` for a non-negative
/// tensor. ``minMax`` gives the observed interval for asymmetric use.
///
/// The ``description`` (`"minmax"`, `"absmax"`, `"entropy"`, `"mse"`, `"percentile(99.99)"`) is
/// also the ``Codable`` form: a single JSON string.
public enum CalibrationMethod: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The observed `[min, max]`, widened to contain 0 (asymmetric use); a symmetric consumer
    /// takes `max(|min|, |max|)` of it.
    case minMax
    /// Symmetric threshold `t = max |x|`.
    case absMax
    /// KL divergence (TensorRT / Paddle): the threshold minimising `KL(P || Q)` between the
    /// `|x|` histogram clipped at the threshold (`P`) and its quantisation into 128 target bins
    /// (255 for non-negative tensors, `Q`).
    case entropy
    /// The threshold below which this percentage (in `0 < p <= 100`, e.g. 99.99) of `|x|` lies
    /// (of `x` for non-negative tensors), interpolated within a histogram bin.
    case percentile(Double)
    /// The threshold minimising the expected squared error of uniform quantisation with 127
    /// levels (255 for non-negative tensors): clipping error beyond the threshold plus rounding
    /// error `step² / 12` inside it.
    case mse

    /// The percentile used when ``init(name:percentile:)`` is given `"percentile"` without a value.
    public static let defaultPercentile = 99.99

    /// The names ``init(name:percentile:)`` accepts, as the CLI spells them.
    public static let names = ["minmax", "absmax", "entropy", "percentile", "mse"]

    /// Parses the CLI spelling: `"minmax"`, `"absmax"`, `"entropy"` (or `"kl"`), `"percentile"`,
    /// `"mse"`, case-insensitively. `percentile` is used only by `"percentile"` (default
    /// ``defaultPercentile``) and must be in `0 < p <= 100`; other methods ignore it.
    /// Returns nil for an unknown name or an invalid percentile.
    public init?(name: String, percentile: Double?) {
        switch name.lowercased() {
        case "minmax": self = .minMax
        case "absmax": self = .absMax
        case "entropy", "kl": self = .entropy
        case "mse": self = .mse
        case "percentile":
            let p = percentile ?? Self.defaultPercentile
            guard p > 0, p <= 100 else { return nil }
            self = .percentile(p)
        default: return nil
        }
    }

    /// `"minmax"`, `"absmax"`, `"entropy"`, `"mse"` or `"percentile(P)"`, e.g. `"percentile(99.99)"`.
    public var description: String {
        switch self {
        case .minMax: "minmax"
        case .absMax: "absmax"
        case .entropy: "entropy"
        case .mse: "mse"
        case .percentile(let p): "percentile(\(p))"
        }
    }

    /// Parses ``description``; nil if it is not one.
    init?(description text: String) {
        if text.hasPrefix("percentile("), text.hasSuffix(")") {
            guard let p = Double(text.dropFirst("percentile(".count).dropLast()) else { return nil }
            self.init(name: "percentile", percentile: p)
        } else if text != "percentile" {
            self.init(name: text, percentile: nil)
        } else {
            return nil
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let method = CalibrationMethod(description: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "unknown calibration method '\(text)' (expected minmax, absmax, "
                    + "entropy, mse or percentile(P) with 0 < P <= 100)")
        }
        self = method
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
