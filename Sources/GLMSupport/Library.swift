/// The library's version, reported by `glm_version()`.
public enum LibraryVersion {
    public static let string = "0.1.0"
    /// Must equal GLM_API_VERSION in include/glm.h.
    public static let api: Int32 = 2
}
