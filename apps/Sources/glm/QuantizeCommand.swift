import ArgumentParser
import GLMClient

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Write a GGUF model in a llama.cpp file type, with llama-quantize's per-tensor recipes.",
        discussion: """
            SRC is a GGUF model (one file or any part of a split set) or a Hugging Face checkpoint directory \
            (BF16/F16/F32 or FP8 safetensors: converted as llama.cpp's convert_hf_to_gguf.py would, without an \
            intermediate file); DST one GGUF file. TYPE: Q8_0, Q4_0, Q4_1, \
            Q5_0, Q5_1, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K (Q3_K, Q4_K, Q5_K: the _M \
            mixes), F16, BF16, F32. Without an importance matrix the bytes equal `llama-quantize SRC DST TYPE`'s. \
            Streams tensor by tensor: memory stays at a few tens of MB whatever the model's size.
            """)

    @Argument(help: "The GGUF model or Hugging Face checkpoint directory to read.")
    var source: String

    @Argument(help: "The GGUF file to write (replaced if it exists).")
    var destination: String

    @Argument(help: "The file type, e.g. Q4_K_M.")
    var type: String

    @Option(help: "Threads (default: all CPUs).")
    var threads: Int = 0

    @Flag(help: "Also convert tensors that are already block-quantised (dequantised first).")
    var allowRequantize = false

    @Flag(help: "No progress bar.")
    var quiet = false

    func validate() throws {
        guard (0...1024).contains(threads) else { throw ValidationError("--threads must be 0...1024") }
    }

    func run() throws {
        try guarded {
            try checkLibrary()
            var lastPermille = -1
            let bar: ((UInt64, UInt64, String) -> Bool)? = quiet ? nil : { done, total, tensor in
                // Redrawn when the tenth of a percent changes (a log file gets at most 1000 lines).
                let permille = total == 0 ? 1000 : Int(done * 1000 / total)
                guard permille != lastPermille else { return true }
                lastPermille = permille
                let width = 40, filled = permille * width / 1000
                let line = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                    + "] " + String(permille / 10) + "." + String(permille % 10) + "%  " + tensor
                Terminal.err(Terminal.stderrIsTTY ? "\r\u{1B}[K" + line : line + "\n")
                return true
            }
            try Quantizer.quantize(source: source, destination: destination, type: type, threads: threads,
                                   allowRequantize: allowRequantize, progress: bar)
            if !quiet && Terminal.stderrIsTTY { Terminal.error("") }
            Terminal.error("wrote \(destination) (\(type))")
        }
    }
}
