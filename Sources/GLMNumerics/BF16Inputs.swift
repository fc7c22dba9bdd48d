/// How bf16 weights multiply their inputs (glm.h `glm_bf16_inputs`).
///
/// `.f32` keeps the inputs in f32: every product is exact in f32 and only the order of summation differs from
/// transformers in float32. `.bf16` rounds each input row to bf16 once (nearest even, as ggml's fp32→bf16), as
/// llama.cpp multiplies a BF16 tensor on CPU: on the avx512 kernel path of a CPU with AVX-512 BF16 the products then
/// run as vdpbf16ps straight from the stored weights (bf16dot.c: 32 products per instruction, no conversion in the
/// loop, half the input bytes); elsewhere the rounded inputs go through the f32-input kernels. The logits move by the
/// input rounding (docs/MODEL.md, "bf16 inputs").
public enum BF16Inputs: String, Sendable, CaseIterable {
    case f32
    case bf16

    /// The choice for a model that does not name one: `.bf16` for a GGUF file (llama.cpp's arithmetic on llama.cpp's
    /// files), `.f32` for a safetensors checkpoint (transformers' arithmetic on its checkpoints).
    public static func automatic(format: String) -> BF16Inputs { format == "gguf" ? .bf16 : .f32 }
}
