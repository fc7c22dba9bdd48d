import CGLM
import GLMClient
import Hummingbird

/// An error as OpenAI's API returns it: an HTTP status and {"error": {"message", "type", "param", "code"}}.
struct APIError: Error {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String?
    var code: String?
    /// Extra response headers (Retry-After on 503).
    var headers: HTTPFields = [:]

    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func busy(_ message: String) -> APIError {
        APIError(status: .serviceUnavailable, message: message, type: "server_error", param: nil,
                 code: "server_busy", headers: [.retryAfter: "1"])
    }

    var json: JSON {
        .object([("error", .object([
            ("message", .string(message)),
            ("type", .string(type)),
            ("param", param.map { .string($0) } ?? .null),
            ("code", code.map { .string($0) } ?? .null),
        ]))])
    }

    var response: Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: json.text)))
    }
}

extension APIError {
    /// What a failed libglm call means for the client. The request's own faults (bad fields, a template that
    /// cannot render it, a prompt longer than the context) are 400s naming the field where libglm's message does
    /// ("request: \"temperature\" is ..."); the server's faults are 5xx.
    init(_ error: GLMCallError) {
        switch error.status {
        case GLM_ERR_INVALID_ARGUMENT, GLM_ERR_UNSUPPORTED, GLM_ERR_TEMPLATE, GLM_ERR_LIMIT_EXCEEDED:
            self = .invalid(error.message, param: APIError.fieldNamed(in: error.message),
                            code: error.status == GLM_ERR_UNSUPPORTED ? "unsupported_parameter" : nil)
        case GLM_ERR_CONTEXT_FULL:
            self = .invalid(error.message, param: "messages", code: "context_length_exceeded")
        case GLM_ERR_OUT_OF_MEMORY:
            self = APIError(status: .serviceUnavailable, message: error.message, type: "server_error", param: nil,
                            code: "out_of_memory")
        default:
            self = APIError(status: .internalServerError, message: "\(error.statusName): \(error.message)",
                            type: "server_error", param: nil, code: nil)
        }
    }

    /// "request: \"stream_options.include_usage\" is ..." → "stream_options.include_usage"; "messages[2].role ..." →
    /// "messages".
    static func fieldNamed(in message: String) -> String? {
        let marker = "request: \""
        if message.hasPrefix(marker) {
            let rest = message.dropFirst(marker.count)
            if let end = rest.firstIndex(of: "\"") { return String(rest[..<end]) }
        }
        for field in ["messages", "tools", "tool_choice"] where message.hasPrefix(field) { return field }
        return nil
    }
}

/// Every error a route throws, and every request no route takes, becomes OpenAI's error JSON; nothing a client
/// sends reaches the server as anything but a response.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as GLMCallError {
            return APIError(error).response
        } catch let error as any HTTPResponseError {
            let message: String
            switch error.status {
            case .notFound: message = "no route for \(request.method) \(request.uri.path)"
            case .contentTooLarge: message = "the request body is larger than the server's limit (--max-body)"
            default: message = "\(error.status.code) \(error.status.reasonPhrase)"
            }
            return APIError(status: error.status, message: message, type: "invalid_request_error", param: nil,
                            code: nil).response
        } catch {
            return APIError(status: .internalServerError, message: "\(error)", type: "server_error", param: nil,
                            code: nil).response
        }
    }
}
