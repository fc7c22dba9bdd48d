import CGLMHeader
import GLMSupport
import GLMModel
import Glibc

// glm_quantize: GGUF → GGUF with llama-quantize's recipes (GGUFQuantizer).

@c @implementation
public func glm_quantize_default_params() -> glm_quantize_params {
    glm_quantize_params(size: UInt32(MemoryLayout<glm_quantize_params>.size), type: nil, threads: 0,
                        allow_requantize: false, progress: nil, user_data: nil)
}

/// The fields every version of glm_quantize_params has: a caller's struct shorter than this is a misuse.
private let quantizeParamsMinimumSize = MemoryLayout<glm_quantize_params>.size

@c @implementation
public func glm_quantize(_ src: UnsafePointer<CChar>?, _ dst: UnsafePointer<CChar>?,
                         _ params: UnsafePointer<glm_quantize_params>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let p = try required(params, "params")
        // Read only the bytes the caller says it has (a later header may append fields).
        let size = Int(p.pointee.size)
        guard size >= quantizeParamsMinimumSize, size <= 1 << 16 else {
            throw .invalidArgument("params.size must be sizeof(glm_quantize_params) (\(quantizeParamsMinimumSize)), got \(size): set it with glm_quantize_default_params()")
        }
        let q = p.pointee
        let source = try string(src, "src")
        let destination = try string(dst, "dst")
        let typeName = try string(q.type, "params.type")
        guard let fileType = GGUFFileType.named(typeName) else {
            throw .invalidArgument("params.type '\(typeName)' is not a file type libglm writes (\(GGUFFileType.names))")
        }
        guard q.threads >= 0 && q.threads <= 1024 else {
            throw .invalidArgument("params.threads must be 0...1024, got \(q.threads)")
        }
        // The quantisers are built for x86-64-v3: refuse on a CPU without it, as glm_model_load does.
        _ = try KernelPath.resolve(.avx2, environment: nil)
        var progress: ((Int, Int, String) -> Bool)? = nil
        if let callback = q.progress {
            let userData = q.user_data
            progress = { done, total, tensor in
                tensor.withCString { callback(UInt64(done), UInt64(total), $0, userData) }
            }
        }
        let threads = q.threads > 0 ? Int(q.threads) : Threads.defaultCount
        try GGUFQuantizer.quantize(source: source, destination: destination,
                                   options: .init(fileType: fileType, threads: threads,
                                                  allowRequantize: q.allow_requantize, progress: progress))
    }
}
