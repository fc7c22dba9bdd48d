import GLMSupport

/// A model directory as published on the Hugging Face Hub: `config.json` (required), `generation_config.json`
/// (optional) and the safetensors checkpoint (`TensorStore`). Opening it reads only JSON and headers.
public final class ModelDirectory: Sendable {
    public let path: String
    public let config: ModelConfig
    /// nil when the directory has no `generation_config.json`.
    public let generationConfig: GenerationConfig?
    public let tensors: TensorStore

    public init(path: String) throws(GLMError) {
        guard FileSystem.isDirectory(path) else {
            throw .io(FileSystem.exists(path) ? "'\(path)' is not a directory"
                                              : "model directory '\(path)' does not exist")
        }
        let configPath = FileSystem.join(path, "config.json")
        guard FileSystem.exists(configPath) else { throw .io("model directory '\(path)' has no config.json") }
        self.path = path
        config = try ModelConfig(contentsOf: configPath)
        let generationPath = FileSystem.join(path, "generation_config.json")
        generationConfig = FileSystem.exists(generationPath) ? try GenerationConfig(contentsOf: generationPath) : nil
        tensors = try TensorStore(directory: path)
    }

    /// The ids that end generation: generation_config.json's `eos_token_id` if it has one (what transformers'
    /// `generate` uses), else config.json's.
    public var eosTokenIDs: [Int] {
        if let ids = generationConfig?.eosTokenIDs, !ids.isEmpty { return ids }
        return config.eosTokenIDs
    }
}
