import ArgumentParser
import GLMClient

@main
struct Glm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glm",
        abstract: "GLM-4.7 on libglm: chat, completions, model facts, benchmarks, tokens, prompts, parsing, and an OpenAI-compatible server.",
        discussion: """
            MODEL is a Hugging Face checkpoint directory (config.json, safetensors, tokenizer files).
            Exit codes: 0 success, 1 failure, 64 bad command line, 65 malformed input (JSON, request, template, \
            token ids, prompt longer than the context), 66 a file that cannot be read, 69 unsupported (model type, \
            CPU), 70 an internal error, 71 out of memory or threads, 130 cancelled.
            MODEL may also be a GGUF file (split or not); `glm quantize` writes one in a llama.cpp file type.
            """,
        version: "glm \(LibGLM.version) (libglm API \(LibGLM.apiVersion))",
        subcommands: [ChatCommand.self, CompleteCommand.self, InfoCommand.self, BenchCommand.self,
                      TokenizeCommand.self, DetokenizeCommand.self, RenderCommand.self, ParseCommand.self,
                      QuantizeCommand.self, ServeCommand.self])
}

/// Refuses to run on a libglm with another ABI than the header this program was built with.
func checkLibrary() throws {
    guard LibGLM.apiVersion == LibGLM.headerAPIVersion else {
        throw CommandFailure("libglm's API version is \(LibGLM.apiVersion) but glm was built for"
            + " \(LibGLM.headerAPIVersion): rebuild glm against this libglm", code: Exit.software)
    }
}
