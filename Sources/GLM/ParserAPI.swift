import CGLMHeader
import GLMSupport
import GLMJSON
import GLMParsers
import Glibc

// glm_parse_output and the glm_stream_parser handle.

func parserOptions(_ pointer: UnsafePointer<CChar>?) throws(GLMError) -> OutputParserOptions {
    guard let json = try optionalJSON(pointer, "options_json") else { return OutputParserOptions() }
    do {
        return try OutputParserOptions(json: json)
    } catch {
        throw .invalidArgument("options_json: \(error.message)")
    }
}

func eventsJSON(_ events: [ParserEvent]) -> String {
    JSONValue.array(events.map(\.json)).compactJSON
}

@c @implementation
public func glm_parse_output(_ text: UnsafePointer<CChar>?, _ options_json: UnsafePointer<CChar>?,
                             _ out_message_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let out = try required(out_message_json, "out_message_json")
        let parsed = try parseOutput(try string(text, "text"), options: try parserOptions(options_json))
        try writeResult(parsed.openAIMessage.compactJSON, to: out)
    }
}

@c @implementation
public func glm_stream_parser_new(_ options_json: UnsafePointer<CChar>?,
                                  _ out_parser: UnsafeMutablePointer<OpaquePointer?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let out = try required(out_parser, "out_parser")
        let parser = try StreamingOutputParser(options: try parserOptions(options_json))
        out.pointee = Handle.retain(Exclusive(parser))
    }
}

@c @implementation
public func glm_stream_parser_feed(_ parser: OpaquePointer?, _ chunk: UnsafePointer<CChar>?,
                                   _ out_events_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(parser, "parser") { (exclusive: Exclusive<StreamingOutputParser>) throws(GLMError) in
            let out = try required(out_events_json, "out_events_json")
            let events = exclusive.value.feed(try string(chunk, "chunk"))
            try writeResult(eventsJSON(events), to: out)
        }
    }
}

@c @implementation
public func glm_stream_parser_finish(_ parser: OpaquePointer?,
                                     _ out_events_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                                     _ out_message_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(parser, "parser") { (exclusive: Exclusive<StreamingOutputParser>) throws(GLMError) in
            let outMessage = try required(out_message_json, "out_message_json")
            let (events, final) = exclusive.value.finish()
            let message = try mallocString(final.openAIMessage.compactJSON)
            if let outEvents = out_events_json {
                guard let eventsText = try? mallocString(eventsJSON(events)) else {
                    free(message)
                    throw GLMError(.outOfMemory, "cannot allocate the events string")
                }
                outEvents.pointee = eventsText
            }
            outMessage.pointee = message
        }
    }
}

@c @implementation
public func glm_stream_parser_free(_ parser: OpaquePointer?) {
    Handle.releaseExclusive(parser, as: StreamingOutputParser.self)
}
