/// The error every libglm module throws. `code` maps one-to-one onto `glm_status` in include/glm.h;
/// `message` is what `glm_last_error()` returns, so it must name what was wrong (file, tensor, field, position).
public struct GLMError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: Int32, Sendable {
        case invalidArgument = 1
        case io = 2
        case format = 3
        case unsupported = 4
        case outOfMemory = 5
        case cancelled = 6
        case contextFull = 7
        case template = 8
        case limitExceeded = 9
        case `internal` = 10
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func invalidArgument(_ message: String) -> GLMError { GLMError(.invalidArgument, message) }
    public static func io(_ message: String) -> GLMError { GLMError(.io, message) }
    public static func format(_ message: String) -> GLMError { GLMError(.format, message) }
    public static func unsupported(_ message: String) -> GLMError { GLMError(.unsupported, message) }
    public static func template(_ message: String) -> GLMError { GLMError(.template, message) }
}
