import GLMJSON
import GLMSupport

/// How the FP8 weights of a checkpoint are scaled: `quantization_config` of `config.json`, parsed and checked
/// (docs/MODEL.md §4). Two producers are supported:
///
/// - **compressed-tensors** (`quant_method: "compressed-tensors"`, `format: "float-quantized"`): Z.ai's GLM-4.5/4.6/4.7
///   FP8 releases and llm-compressor's FP8 schemes (FP8_DYNAMIC = per-channel, FP8_BLOCK = 128×128 blocks, FP8 =
///   per-tensor). One config group targeting `Linear` whose `weights` are `type: float, num_bits: 8, symmetric`,
///   `strategy` `channel` (`X.weight_scale` [out, 1]), `block` (`block_structure` [rows, columns], `X.weight_scale`
///   [ceil(out/rows), ceil(in/columns)]) or `tensor` (`X.weight_scale` [1]); the `ignore` list names the modules left
///   unquantised, exactly or as `re:` regular expressions matched from the start of the module name (Python
///   `re.match`). Sources relied on: the compressed-tensors `QuantizationArgs`/`QuantizationStrategy` fields and
///   its name matching (`re:` prefix → `re.match`, else equality); vLLM's `CompressedTensorsW8A8Fp8` scheme (scale
///   shapes per strategy: [out, 1] channel, [ceil(out/b0), ceil(in/b1)] block, one per tensor); llm-compressor's
///   example `examples/model_free_ptq/glm_4.6_fp8_block.py` (GLM-4.6 → FP8_BLOCK with ignore
///   `["re:.*gate$", "lm_head", "model.embed_tokens"]`). The byte-exact config.json of zai-org/GLM-4.7-FP8 was not
///   available to this project; its documented scheme (per-channel FP8 weights, dynamic per-token FP8 activations,
///   router gates / lm_head / embeddings in BF16) is the `channel` case.
/// - **DeepSeek-style "fp8"** (`quant_method: "fp8"`, `fmt: "e4m3"`, `weight_block_size` [128, 128],
///   `activation_scheme: "dynamic"`): `X.weight_scale_inv` [ceil(out/128), ceil(in/128)], a multiplier despite its
///   name (transformers' finegrained_fp8 integration dequantises `weight · weight_scale_inv`); modules listed in
///   `modules_to_not_convert` (substring match, as transformers does) stay unquantised.
///
/// Activation quantisation (`input_activations`, `activation_scheme`) is what GPU engines do to use FP8 matrix
/// units; on the CPU libglm multiplies the dequantised weights with f32 activations, so it is read, checked and
/// otherwise ignored (weight-only, as transformers' dequantised path). Anything else in `quantization_config` that
/// would change the weights' meaning is `.unsupported`, naming the field and its value.
public struct FP8Quantization: Sendable, Equatable {
    public enum Method: String, Sendable { case compressedTensors = "compressed-tensors", deepSeekFP8 = "fp8" }
    public enum Strategy: Sendable, Equatable {
        case channel
        case tensor
        /// One scale per `rows × columns` block (edge blocks partial).
        case block(rows: Int, columns: Int)

        public var description: String {
            switch self {
            case .channel: return "channel"
            case .tensor: return "tensor"
            case .block(let r, let c): return "block \(r)x\(c)"
            }
        }
    }

    public let method: Method
    public let strategy: Strategy
    /// The scale tensor's name suffix: "weight_scale" (compressed-tensors) or "weight_scale_inv" (fp8).
    public let scaleSuffix: String
    /// Module names (without ".weight") kept unquantised, exactly.
    public let ignoredNames: [String]
    /// `re:` patterns of compressed-tensors' ignore list (without the prefix).
    public let ignoredPatterns: [ModuleNamePattern]
    /// fp8's `modules_to_not_convert`: a module containing any of these is unquantised.
    public let ignoredSubstrings: [String]

    /// Where the scale of an FP8 weight `[rows, columns]` of module `X` is and how it maps onto the weight:
    /// the tensor `X.<scaleSuffix>` has one of `shapes` (the first is the canonical one), and element (r, c) of the
    /// weight uses scale `(r / blockRows) * stride + c / blockColumns` of it (the fields of `glm_fp8_scales`).
    public struct ScaleLayout: Sendable, Equatable {
        public let shapes: [[Int]]
        public let blockRows: Int
        public let blockColumns: Int
        public let stride: Int
    }

    /// The scale layout of a `[rows, columns]` weight under this config's strategy.
    public func scaleLayout(rows: Int, columns: Int) -> ScaleLayout {
        switch strategy {
        case .channel:
            return ScaleLayout(shapes: [[rows, 1], [rows]], blockRows: 1, blockColumns: max(columns, 1), stride: 1)
        case .tensor:
            return ScaleLayout(shapes: [[1], [], [1, 1]], blockRows: max(rows, 1), blockColumns: max(columns, 1),
                               stride: 1)
        case .block(let br, let bc):
            let shape = [(rows + br - 1) / br, (columns + bc - 1) / bc]
            return ScaleLayout(shapes: [shape], blockRows: br, blockColumns: bc, stride: shape[1])
        }
    }

    /// True if module `name` (e.g. "model.layers.3.mlp.gate") is listed as kept unquantised.
    public func ignores(module name: String) -> Bool {
        if ignoredNames.contains(name) { return true }
        if ignoredSubstrings.contains(where: { !$0.isEmpty && name.contains($0) }) { return true }
        return ignoredPatterns.contains { $0.matchesPrefix(of: name) }
    }

    /// Parses `quantization_config`; `source` names the file in messages.
    public init(json: JSONValue, source: String) throws(GLMError) {
        guard case .object(let q) = json else {
            throw .unsupported("'\(source)': quantization_config is \(json.compactJSON), expected an object")
        }
        func unsupported(_ field: String, _ value: JSONValue?, _ expected: String) -> GLMError {
            .unsupported("'\(source)': quantization_config.\(field) is \(value?.compactJSON ?? "absent"); libglm reads"
                + " FP8 E4M3 weight checkpoints only (\(expected))")
        }
        let methodName = q["quant_method"]?.stringValue
        guard let methodName, let method = Method(rawValue: methodName) else {
            throw unsupported("quant_method", q["quant_method"], "expected \"compressed-tensors\" or \"fp8\"")
        }
        self.method = method
        switch method {
        case .compressedTensors:
            (strategy, ignoredNames, ignoredPatterns) = try FP8Quantization.compressedTensors(q, source: source,
                                                                                              unsupported)
            scaleSuffix = "weight_scale"
            ignoredSubstrings = []
        case .deepSeekFP8:
            (strategy, ignoredSubstrings) = try FP8Quantization.deepSeek(q, unsupported)
            scaleSuffix = "weight_scale_inv"
            ignoredNames = []
            ignoredPatterns = []
        }
    }

    private typealias Unsupported = (String, JSONValue?, String) -> GLMError

    private static func nonNull(_ v: JSONValue?) -> Bool {
        guard let v else { return false }
        switch v {
        case .null: return false
        case .object(let o): return !o.isEmpty
        case .array(let a): return !a.isEmpty
        default: return true
        }
    }

    private static func compressedTensors(_ q: JSONObject, source: String, _ unsupported: Unsupported)
        throws(GLMError) -> (Strategy, [String], [ModuleNamePattern]) {
        // Keys that describe the file but not the weights' values.
        let known: Set<String> = ["quant_method", "format", "config_groups", "ignore", "quantization_status",
                                  "global_compression_ratio", "version", "kv_cache_scheme", "sparsity_config",
                                  "transform_config"]
        for (key, value) in q where !known.contains(key) && nonNull(value) {
            throw unsupported(key, value, "a compressed-tensors field libglm does not know")
        }
        if let format = q["format"], !format.isNull, format.stringValue != "float-quantized" {
            throw unsupported("format", format, "expected \"float-quantized\"")
        }
        if let status = q["quantization_status"], !status.isNull, status.stringValue != "compressed" {
            throw unsupported("quantization_status", status, "expected \"compressed\"")
        }
        for key in ["kv_cache_scheme", "sparsity_config", "transform_config"] where nonNull(q[key]) {
            throw unsupported(key, q[key], "expected null or empty")
        }
        guard case .object(let groups)? = q["config_groups"], groups.count == 1, let (name, group) = groups.pairs.first,
              case .object(let g) = group else {
            throw unsupported("config_groups", q["config_groups"], "expected exactly one group")
        }
        let field = "config_groups.\(name)"
        if let targets = g["targets"], targets != .array([.string("Linear")]) {
            throw unsupported(field + ".targets", targets, "expected [\"Linear\"]")
        }
        if let format = g["format"], !format.isNull, format.stringValue != "float-quantized" {
            throw unsupported(field + ".format", format, "expected \"float-quantized\"")
        }
        if nonNull(g["output_activations"]) {
            throw unsupported(field + ".output_activations", g["output_activations"], "expected null")
        }
        // input_activations: FP8 activation quantisation on GPUs; libglm computes with f32 activations. Its
        // static scales (input_scale tensors) are accepted and not used.
        guard case .object(let w)? = g["weights"] else {
            throw unsupported(field + ".weights", g["weights"], "expected an object")
        }
        let wf = field + ".weights"
        guard w["type"]?.stringValue == "float" else { throw unsupported(wf + ".type", w["type"], "expected \"float\"") }
        guard w["num_bits"]?.intValue == 8 else { throw unsupported(wf + ".num_bits", w["num_bits"], "expected 8") }
        if let symmetric = w["symmetric"], !symmetric.isNull, symmetric.boolValue != true {
            throw unsupported(wf + ".symmetric", symmetric, "expected true")
        }
        if let dynamic = w["dynamic"], !dynamic.isNull, dynamic.boolValue != false {
            throw unsupported(wf + ".dynamic", dynamic, "expected false: weights with stored scales")
        }
        for key in ["group_size", "actorder"] where nonNull(w[key]) {
            throw unsupported(wf + "." + key, w[key], "expected null")
        }
        let strategy: Strategy
        switch w["strategy"]?.stringValue {
        case "channel": strategy = .channel
        case "tensor": strategy = .tensor
        case "block":
            guard let (r, c) = blockShape(w["block_structure"]) else {
                throw unsupported(wf + ".block_structure", w["block_structure"], "expected [rows, columns] > 0")
            }
            strategy = .block(rows: r, columns: c)
        default:
            throw unsupported(wf + ".strategy", w["strategy"], "expected \"channel\", \"block\" or \"tensor\"")
        }
        if case .block = strategy {} else if nonNull(w["block_structure"]) {
            throw unsupported(wf + ".block_structure", w["block_structure"], "expected null for this strategy")
        }
        var names: [String] = [], patterns: [ModuleNamePattern] = []
        if let ignore = q["ignore"], !ignore.isNull {
            guard case .array(let items) = ignore else { throw unsupported("ignore", ignore, "expected a list") }
            for item in items {
                guard let entry = item.stringValue else { throw unsupported("ignore", item, "expected strings") }
                if entry.hasPrefix("re:") {
                    patterns.append(try ModuleNamePattern(String(entry.dropFirst(3)), source: source))
                } else {
                    names.append(entry)
                }
            }
        }
        return (strategy, names, patterns)
    }

    private static func deepSeek(_ q: JSONObject, _ unsupported: Unsupported) throws(GLMError)
        -> (Strategy, [String]) {
        let known: Set<String> = ["quant_method", "fmt", "weight_block_size", "activation_scheme",
                                  "modules_to_not_convert", "ignored_layers"]
        for (key, value) in q where !known.contains(key) && nonNull(value) {
            throw unsupported(key, value, "a field of quant_method \"fp8\" libglm does not know")
        }
        if let fmt = q["fmt"], !fmt.isNull, fmt.stringValue != "e4m3" {
            throw unsupported("fmt", fmt, "expected \"e4m3\"")
        }
        // activation_scheme: "dynamic" (per-token activation scales on GPUs; nothing stored) or "static" (input_scale
        // tensors): both only concern activations, which libglm keeps in f32.
        if let scheme = q["activation_scheme"], !scheme.isNull, scheme.stringValue != "dynamic",
           scheme.stringValue != "static" {
            throw unsupported("activation_scheme", scheme, "expected \"dynamic\" or \"static\"")
        }
        guard let (r, c) = blockShape(q["weight_block_size"]) else {
            throw unsupported("weight_block_size", q["weight_block_size"], "expected [rows, columns] > 0")
        }
        var substrings: [String] = []
        for key in ["modules_to_not_convert", "ignored_layers"] {
            guard let list = q[key], !list.isNull else { continue }
            guard case .array(let items) = list else { throw unsupported(key, list, "expected a list of strings") }
            for item in items {
                guard let s = item.stringValue else { throw unsupported(key, item, "expected strings") }
                substrings.append(s)
            }
        }
        return (.block(rows: r, columns: c), substrings)
    }

    private static func blockShape(_ v: JSONValue?) -> (Int, Int)? {
        guard case .array(let a)? = v, a.count == 2, let r = a[0].intValue, let c = a[1].intValue,
              r > 0, c > 0, r <= ModelConfig.maxDimension, c <= ModelConfig.maxDimension else { return nil }
        return (r, c)
    }
}

/// A regular expression of a compressed-tensors `ignore` entry (`re:` prefix removed), matched as Python's
/// `re.match`: anchored at the start of the module name, not at its end (a pattern ends at `$` to require that).
///
/// The subset that module-name patterns use: literal characters, `.`, escapes (`\.`, `\d`, `\w`, `\s` and escaped
/// punctuation), bracket classes with ranges and `^` negation, the quantifiers `*`, `+`, `?` on one item, `^` at the
/// start and `$` at the end. Anything else (groups, alternation, counted repetition) is `.unsupported`, naming the
/// pattern. Matching simulates the automaton (a set of positions), so time is linear in name × pattern length.
public struct ModuleNamePattern: Sendable, Equatable {
    enum Atom: Sendable, Equatable {
        case any
        /// Characters (Unicode scalars) in `ranges`, or not in them when `negated`.
        case set(ranges: [ClosedRange<UInt32>], negated: Bool)
    }
    struct Item: Sendable, Equatable {
        let atom: Atom
        let optional: Bool   // `?` or `*`
        let repeats: Bool    // `*` or `+`
    }

    public let pattern: String
    let items: [Item]
    let anchoredEnd: Bool

    public init(_ pattern: String, source: String) throws(GLMError) {
        self.pattern = pattern
        func fail(_ what: String) -> GLMError {
            .unsupported("'\(source)': quantization_config.ignore pattern \"re:\(pattern)\": \(what) (libglm matches"
                + " literals, '.', escapes, [classes], '*', '+', '?', '^' at the start and '$' at the end)")
        }
        var s = Array(pattern.unicodeScalars).map(\.value)
        var endAnchor = false
        if s.first == 0x5E { s.removeFirst() }   // ^: re.match is anchored already
        if s.last == 0x24 && !(s.count >= 2 && s[s.count - 2] == 0x5C) { s.removeLast(); endAnchor = true }
        var items: [Item] = []
        var i = 0
        func escaped(_ c: UInt32) -> Atom? {
            switch c {
            case 0x64: return .set(ranges: [0x30...0x39], negated: false)                              // \d
            case 0x77: return .set(ranges: [0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F...0x5F], negated: false)  // \w
            case 0x73: return .set(ranges: [0x20...0x20, 0x09...0x0D], negated: false)                // \s
            default:
                // Escaped punctuation is literal; an escaped letter or digit is some other class or a backreference.
                let isAlnum = (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c)
                return isAlnum ? nil : .set(ranges: [c...c], negated: false)
            }
        }
        while i < s.count {
            let c = s[i]
            var atom: Atom
            switch c {
            case 0x2E: atom = .any; i += 1
            case 0x5C:
                guard i + 1 < s.count, let a = escaped(s[i + 1]) else { throw fail("unsupported escape") }
                atom = a; i += 2
            case 0x5B:
                i += 1
                var negated = false
                if i < s.count && s[i] == 0x5E { negated = true; i += 1 }
                var ranges: [ClosedRange<UInt32>] = []
                var first = true
                while i < s.count && (s[i] != 0x5D || first) {
                    first = false
                    var lo = s[i]
                    if lo == 0x5C {
                        guard i + 1 < s.count, case .set(let r, false)? = escaped(s[i + 1]) else {
                            throw fail("unsupported escape in a class")
                        }
                        ranges += r; i += 2; continue
                    }
                    i += 1
                    if i + 1 < s.count && s[i] == 0x2D && s[i + 1] != 0x5D {
                        let hi = s[i + 1]
                        guard lo <= hi else { throw fail("reversed range in a class") }
                        ranges.append(lo...hi); i += 2
                    } else {
                        if lo > 0x10FFFF { lo = 0x10FFFF }
                        ranges.append(lo...lo)
                    }
                }
                guard i < s.count else { throw fail("unterminated class") }
                i += 1
                atom = .set(ranges: ranges, negated: negated)
            case 0x28, 0x29, 0x7C, 0x7B, 0x7D, 0x2A, 0x2B, 0x3F, 0x5E, 0x24:
                throw fail("'\(Character(Unicode.Scalar(c)!))' at position \(i)")
            default: atom = .set(ranges: [c...c], negated: false); i += 1
            }
            var optional = false, repeats = false
            if i < s.count {
                switch s[i] {
                case 0x2A: optional = true; repeats = true; i += 1
                case 0x2B: repeats = true; i += 1
                case 0x3F: optional = true; i += 1
                default: break
                }
                if i < s.count && (s[i] == 0x2A || s[i] == 0x2B || s[i] == 0x3F || s[i] == 0x7B) {
                    throw fail("stacked quantifiers")
                }
            }
            items.append(Item(atom: atom, optional: optional, repeats: repeats))
        }
        self.items = items
        self.anchoredEnd = endAnchor
    }

    static func accepts(_ atom: Atom, _ c: UInt32) -> Bool {
        switch atom {
        case .any: return c != 0x0A
        case .set(let ranges, let negated): return ranges.contains { $0.contains(c) } != negated
        }
    }

    /// Python's `re.match(pattern, name) is not None`.
    public func matchesPrefix(of name: String) -> Bool {
        let n = items.count
        // states[k]: the first k items are matched. Closure: skip optional items.
        var current = [Bool](repeating: false, count: n + 1)
        func close(_ s: inout [Bool]) {
            for k in 0..<n where s[k] && items[k].optional { s[k + 1] = true }
        }
        current[0] = true
        close(&current)
        if current[n] && !anchoredEnd { return true }
        for scalar in name.unicodeScalars {
            var next = [Bool](repeating: false, count: n + 1)
            var any = false
            for k in 0..<n where current[k] && ModuleNamePattern.accepts(items[k].atom, scalar.value) {
                next[k + 1] = true
                if items[k].repeats { next[k] = true }
                any = true
            }
            guard any else { return false }
            close(&next)
            if next[n] && !anchoredEnd { return true }
            current = next
        }
        return current[n]
    }
}
