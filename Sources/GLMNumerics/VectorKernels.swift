import CGLMKernels

/// The element-wise and per-row operations of the forward pass (AVX2 kernels in CGLMKernels).
public enum VectorKernels {
    /// `y = w ⊙ x / sqrt(mean(x²) + eps)` over `count` elements; statistics in f32; `y` may be `x`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                               count: Int, eps: Float) {
        glm_rms_norm(x, weight, y, count, eps)
    }

    /// `out = silu(gate) ⊙ up`; `out` may be `gate`.
    public static func siluMultiply(gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                    into out: UnsafeMutablePointer<Float>, count: Int) {
        glm_silu_mul(gate, up, out, count)
    }

    /// In-place softmax; `-infinity` entries (masked) get probability 0.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        glm_softmax(x, count)
    }

    /// One tile of an online softmax (glm_softmax_online): scales the first `valid` of `count` raw scores, turns
    /// them into exp(z − m') (the rest into 0), updates the row's running max and sum, and returns exp(m − m'),
    /// the factor for the row's accumulated output.
    public static func softmaxOnline(_ x: UnsafeMutablePointer<Float>, valid: Int, count: Int, scale: Float,
                                     runningMax: UnsafeMutablePointer<Float>,
                                     runningSum: UnsafeMutablePointer<Float>) -> Float {
        glm_softmax_online(x, valid, count, scale, runningMax, runningSum)
    }

    /// `x *= a`.
    public static func scale(_ x: UnsafeMutablePointer<Float>, by a: Float, count: Int) {
        glm_scale(x, a, count)
    }

    /// NeoX rotation of the first `2 * half` entries of `x` by the interleaved (cos, sin) pairs `cosSin`.
    public static func rotateNeoX(_ x: UnsafeMutablePointer<Float>, cosSin: UnsafePointer<Float>, half: Int) {
        glm_rope_neox(x, cosSin, half)
    }

    /// `y += a · x`.
    public static func addScaled(_ x: UnsafePointer<Float>, times a: Float, to y: UnsafeMutablePointer<Float>, count: Int) {
        glm_axpy(a, x, y, count)
    }

    /// `y = a · y + x`.
    public static func scaleAdd(_ a: Float, _ y: UnsafeMutablePointer<Float>, plus x: UnsafePointer<Float>, count: Int) {
        glm_scale_add(a, y, x, count)
    }

    /// `y += x`.
    public static func add(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, count: Int) {
        glm_add(x, y, count)
    }
}

/// Memory-bandwidth probes (benchmarks): a streaming read, and the STREAM triad `a = b + s · c`.
public enum BandwidthProbe {
    public static func read(_ x: UnsafePointer<Float>, count: Int) -> Float { glm_stream_read(x, count) }

    public static func triad(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>,
                             scale: Float, count: Int) {
        glm_stream_triad(a, b, c, scale, count)
    }
}

/// Scalar conversions of the 16-bit float formats (for small tensors read at load time and for tests).
public enum HalfPrecision {
    @inline(__always)
    public static func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// Round to nearest even, as torch's `.to(torch.bfloat16)`; NaN stays NaN.
    public static func floatToBF16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    public static func f16ToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }
}
