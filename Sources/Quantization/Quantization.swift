import DNNL

/// The library's version.
public enum QuantizationLibrary {
    public static let version = "0.1.0"
}
