import GLMJSON
import GLMSupport
import GLMTemplate
import Testing

/// The work budget (`RenderLimits.maxWorkUnits`) and the size cap on built values (`maxOutputBytes`): hostile
/// templates that touch huge values again and again, or build them, stop with `.limitExceeded`, while every
/// real template renders within a small fraction of the budget.
@Suite struct RenderBudgetTests {
    private func renderError(_ source: String, limits: RenderLimits, variables: JSONObject = JSONObject()) -> GLMError? {
        do {
            _ = try JinjaTemplate(source: source, limits: limits).render(variables)
            return nil
        } catch {
            return error
        }
    }

    private func limits(work: Int? = nil, bytes: Int? = nil) -> RenderLimits {
        var limits = RenderLimits()
        if let work { limits.maxWorkUnits = work }
        if let bytes { limits.maxOutputBytes = bytes }
        return limits
    }

    /// Each operation on a 100 kB string, 2000 times: 200 MB of bytes touched, a hundred times the budget given.
    @Test func repeatedOperationsOnABigStringStopAtTheWorkBudget() {
        let expressions = [
            "big | length", "big.replace('x', 'y')", "big | replace('x', 'y')", "big | upper", "big.upper()",
            "big | lower", "big | tojson", "big == big ~ ''", "big != big ~ ''", "'y' in big", "big.split('x')",
            "big.split()", "big.find('y')", "big.rfind('y')", "big.count('x')", "big.startswith('y')",
            "big | trim", "big | title", "big | capitalize", "big | e", "big ~ 'y'", "big + 'y'", "[big, big] | join",
            "big | center(100001)", "big[99999]", "big[1:]", "big[::2]", "'%s' % big", "'{}'.format(big)",
            "big | wordcount", "big | reverse", "{big: 1}", "{'a': 1}[big]", "big < big ~ 'y'", "big | indent(4)",
            "big | truncate(10)", "big | int", "big | float", "big.isalpha()", "big.splitlines()", "[big] | string",
            "[big] | pprint", "big.rjust(100001)", "big.zfill(100001)", "big.partition('y')", "big.expandtabs()",
            "big is lower", "big is eq(big ~ '')", "[big] | unique | list", "([big] * 2) | sort", "big.endswith('y')",
            "(big ~ 'é') | upper", "big | list | length", "big | striptags", "big * 1",
        ]
        #expect(expressions.count > 50)
        for expression in expressions {
            let source = "{% set big = 'x' * 100000 %}{% for i in range(2000) %}{% set _ = \(expression) %}{% endfor %}"
            let error = renderError(source, limits: limits(work: 2_000_000))
            #expect(error?.code == .limitExceeded, "\(expression): \(error?.message ?? "rendered")")
            #expect(error?.message.contains("RenderLimits.maxWorkUnits") == true || error?.message.contains("RenderLimits.maxOutputBytes") == true,
                    "\(expression): \(error?.message ?? "rendered")")
        }
    }

    /// A template of issue 17 at the default limits: one 60 MB string searched 100000 times (the others run
    /// at the default limits in bindings/python/tests/test_template.py, on the release library).
    @Test func issueTemplateStopsAtTheDefaultBudget() {
        let source = "{% set big = 'x' * 60000000 %}{% for i in range(100000) %}{% set _ = 'y' in big %}{% endfor %}"
        let error = renderError(source, limits: RenderLimits())
        #expect(error?.code == .limitExceeded)
        #expect(error?.message.contains("(RenderLimits.maxWorkUnits") == true, "\(error?.message ?? "rendered")")
    }

    @Test func theErrorNamesTheLimitAndThePosition() {
        let source = "line one\n  {% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}"
        let error = renderError(source, limits: limits(work: 1_000_000))
        #expect(error?.code == .limitExceeded)
        #expect(error?.message.hasPrefix("template did more than 1000000 units of work (RenderLimits.maxWorkUnits") == true,
                "\(error?.message ?? "")")
        // The `{{ }}` inside the loop: line 2, column 30.
        #expect(error?.message.hasSuffix("(template line 2, column 30)") == true, "\(error?.message ?? "")")
    }

    /// Loops with cheap bodies end at the iteration limit or the budget, whichever comes first.
    @Test func nestedLoopsWithCheapBodiesStop() {
        for body in ["", "{{ '' }}", "{% set x = i %}", "{{ i ~ j if false }}", "{{ [i, j] | length }}"] {
            let source = "{% for i in range(100000) %}{% for j in range(100000) %}\(body){% endfor %}{% endfor %}"
            #expect(renderError(source, limits: limits(work: 10_000_000))?.code == .limitExceeded, "\(body)")
        }
    }

    /// A list holding one big value many times is small in memory but huge as text or to compare: printing,
    /// dumping, joining or comparing it stops at a limit instead of running (nearly) forever.
    @Test func sharedValuesCannotBeExpandedWithoutBound() {
        let shared = "{% set l = ['x' * 100000] * 100000 %}"
        let expressions = [
            "l | tojson", "l | string", "l ~ ''", "l | pprint", "l | join", "l == l + []", "[[l]] | tojson(indent=2)",
            "l | unique | list", "l | sort", "'%s' % [l]", "'{}'.format(l)", "l | tojson(sort_keys=true)",
            "(l | map('upper') | list) | length", "{'k': l} | dictsort | string", "l[:] == l[::1]",
        ]
        for expression in expressions {
            let error = renderError(shared + "{{ \(expression) }}", limits: limits(work: 5_000_000, bytes: 4 << 20))
            #expect(error?.code == .limitExceeded, "\(expression): \(error?.message ?? "rendered")")
        }
        // A tuple key is hashed element by element.
        for key in ["(t, t) in {}", "{'a': 1}[(t,)]", "{(t,): 1}", "{'a': 1}.get((t, 1))"] {
            let source = "{% set t = ('x' * 100000,) * 100000 %}{{ \(key) }}"
            #expect(renderError(source, limits: limits(work: 5_000_000, bytes: 4 << 20))?.code == .limitExceeded, "\(key)")
        }
        // Storing such a value in a namespace walks it to check its depth: that walk is charged too.
        let stored = shared + "{% set ns = namespace() %}{% for i in range(100000) %}{% set ns.x = [l] * 100 %}{% endfor %}"
        #expect(renderError(stored, limits: limits(work: 5_000_000))?.code == .limitExceeded)
    }

    /// Lists and dicts count their memory, 24 bytes per item (`MemoryLayout<Value>.stride`), against
    /// `maxOutputBytes`, not one byte per item.
    @Test func listsAndDictsCountTheirMemory() {
        let megabyte = limits(bytes: 1 << 20)
        // 50000 items take 1.2 MB: over a 1 MB cap.
        for source in [
            "{{ ([1] * 50000) | length }}", "{{ ([1] * 25000 + [2] * 25000) | length }}",
            "{{ ('x' * 50000) | list | length }}", "{{ ('x ' * 50000).split() | length }}",
            "{{ ('x,' * 50000).split(',') | length }}", "{{ ('x\n' * 50000).splitlines() | length }}",
            "{{ dict(range(30000) | map('string') | batch(2) | list) | length }}",
        ] {
            let error = renderError(source, limits: megabyte)
            #expect(error?.code == .limitExceeded, "\(source): \(error?.message ?? "rendered")")
            #expect(error?.message.contains("RenderLimits.maxOutputBytes") == true, "\(source): \(error?.message ?? "")")
        }
        // 40000 items (960 kB) fit.
        #expect((try? JinjaTemplate(source: "{{ ([1] * 40000) | length }}", limits: megabyte).render(JSONObject())) == "40000")
    }

    /// Doubling a list or growing a dict in a loop stops at a limit, long before using much memory.
    @Test func growingValuesStop() {
        for source in [
            "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
            "{% set l = [1] %}" + String(repeating: "{% set l = l + l %}", count: 40) + "{{ l | length }}",
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "{% set ns = namespace(d={}) %}{% for i in range(100000) %}{% set ns.d = dict(ns.d, **{('k' ~ i): i}) %}{% endfor %}",
            "{% set ns = namespace(t=()) %}{% for i in range(100000) %}{% set ns.t = ns.t + (i,) %}{% endfor %}",
        ] {
            let error = renderError(source, limits: limits(work: 50_000_000, bytes: 8 << 20))
            #expect(error?.code == .limitExceeded, "\(source): \(error?.message ?? "rendered")")
        }
    }

    /// Sizes taken from the template (repetition counts, widths, indents) are checked before anything is built.
    @Test func hugeSizesAreRefusedBeforeBuilding() {
        for source in [
            "{{ 'x' * 100000000000 }}", "{{ [1] * 100000000000 }}", "{{ '%100000000000d' % 1 }}",
            "{{ '%*d' % (100000000000, 1) }}", "{{ '{:>100000000000}'.format(1) }}", "{{ '{:é>50000000}'.format(1) }}",
            "{{ 'x'.ljust(100000000000) }}", "{{ 'x'.center(30000000, 'abc') }}", "{{ 'x' | center(100000000000) }}",
            "{{ ('a\nb\n' * 1000) | indent(60000) }}", "{{ [[1]] | tojson(indent=100000000000) }}",
            "{{ ([[[[1]]]] * 100) | tojson(indent=' ' * 200000) }}", "{{ ('x' * 2000).replace('', 'y' * 40000) }}",
            "{{ ('ab' * 10000) | join('y' * 10000) }}", "{{ ('\t' * 1000).expandtabs(100000) }}",
            "{{ range(30000) | join('y' * 5000) }}",
        ] {
            let error = renderError(source, limits: limits(bytes: 64 << 20))
            #expect(error?.code == .limitExceeded, "\(source): \(error?.message ?? "rendered")")
        }
    }

    /// Every fixture render (610 renders of 36 real templates, GLM-4.5/4.6/4.7 included) fits in 1/1000 of the
    /// default budget, with its output unchanged.
    @Test func realTemplatesUseAThousandthOfTheBudget() throws {
        var tight = RenderLimits()
        tight.maxWorkUnits = RenderLimits().maxWorkUnits / 1000
        var checked = 0
        var failures: [String] = []
        for file in ["chat_cases.jsonl", "glm47_cases.jsonl", "glm46_cases.jsonl", "documents_cases.jsonl"] {
            var templates: [String: ChatTemplate] = [:]
            for testCase in try readCases(file).filter({ $0["header"] == nil }) {
                let name = testCase["template"]?.stringValue ?? file
                if templates[name] == nil {
                    let source: String
                    switch file {
                    case "glm47_cases.jsonl": source = ChatTemplate.glm47Source
                    case "glm46_cases.jsonl": source = try readFixture("glm-4.5.jinja")
                    default: source = try readFixture("chat/" + name)
                    }
                    templates[name] = try ChatTemplate(source: source, specialTokens: testCase["special"]?.objectValue ?? JSONObject(),
                                                       limits: tight)
                }
                guard let template = templates[name] else { continue }
                let expected = testCase["expected"]?.stringValue
                do {
                    let output = try template.render(
                        messages: testCase["messages"] ?? .array([]), tools: testCase["tools"].flatMap { $0.isNull ? nil : $0 },
                        documents: testCase["documents"], addGenerationPrompt: testCase["add_generation_prompt"]?.boolValue ?? false,
                        variables: testCase["kwargs"]?.objectValue ?? JSONObject(), now: testCase["now"]?.intValue.map(Int64.init))
                    if output != expected { failures.append("\(file) \(testCase["name"]?.stringValue ?? ""): output differs") }
                } catch {
                    // Cases whose reference is an error must still fail as templates, not on a limit.
                    if expected != nil || error.code == .limitExceeded {
                        failures.append("\(file) \(testCase["name"]?.stringValue ?? ""): \(error.message)")
                    }
                }
                checked += 1
            }
        }
        #expect(checked >= 600)
        #expect(failures.isEmpty, "\(failures.count) renders need more than 1/1000 of the budget:\n\(failures.prefix(5).joined(separator: "\n"))")
    }

    /// The template benchmark's conversation (GLM-4.7, 100 messages, 20 tools) renders within 1/1000 of the
    /// default budget, and not within 1/10000 (so the budget is really charged).
    @Test func glm47LongConversationUsesAThousandthOfTheBudget() throws {
        let (messages, tools) = longConversation(messageCount: 100, toolCount: 20)
        var tight = RenderLimits()
        tight.maxWorkUnits = RenderLimits().maxWorkUnits / 1000
        let output = try ChatTemplate(source: ChatTemplate.glm47Source, limits: tight)
            .render(messages: messages, tools: tools, addGenerationPrompt: true)
        // jinja2 renders this conversation to 20972 bytes (tools/bench_template.py checks them byte for byte).
        #expect(output.utf8.count == 20972)
        #expect(output.hasPrefix("[gMASK]<sop><|system|>"))
        #expect(output.hasSuffix("<|assistant|><think>"))
        tight.maxWorkUnits = RenderLimits().maxWorkUnits / 10000
        #expect(throws: GLMError.self) {
            _ = try ChatTemplate(source: ChatTemplate.glm47Source, limits: tight).render(messages: messages, tools: tools, addGenerationPrompt: true)
        }
    }

    /// The conversation tools/bench_template.py and glm-bench build.
    private func longConversation(messageCount: Int, toolCount: Int) -> (JSONValue, JSONValue) {
        func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(pairs)) }
        var tools: [JSONValue] = []
        for t in 0..<toolCount {
            let parameters = object([
                ("type", .string("object")),
                ("properties", object([
                    ("query", object([("type", .string("string")), ("description", .string("What to look up for tool \(t)"))])),
                    ("limit", object([("type", .string("integer")), ("minimum", JSONValue(1)), ("default", JSONValue(10))])),
                    ("filters", object([("type", .string("array")), ("items", object([("type", .string("string"))]))])),
                    ("strict", object([("type", .string("boolean"))])),
                ])),
                ("required", .array([.string("query")])),
            ])
            tools.append(object([("type", .string("function")), ("function", object([
                ("name", .string("tool_\(t)")), ("description", .string("Tool number \(t): searches the data set \(t) and returns JSON.")),
                ("parameters", parameters),
            ]))]))
        }
        var messages: [JSONValue] = [object([("role", .string("system")), ("content", .string("You are a careful assistant. Use the tools when they help."))])]
        var round = 0
        while messages.count < messageCount {
            let tool = round % max(1, toolCount)
            messages.append(object([("role", .string("user")), ("content", .string("Question \(round): what does data set \(tool) say about item \(round * 7)?"))]))
            messages.append(object([
                ("role", .string("assistant")), ("content", .string("")),
                ("reasoning_content", .string("I should call tool_\(tool) with a focused query for round \(round).")),
                ("tool_calls", .array([object([("type", .string("function")), ("function", object([
                    ("name", .string("tool_\(tool)")),
                    ("arguments", object([("query", .string("item \(round * 7)")), ("limit", JSONValue(5)),
                                          ("filters", .array([.string("recent"), .string("verified")])), ("strict", .bool(true))])),
                ]))])])),
            ]))
            messages.append(object([("role", .string("tool")), ("content", .string("{\"item\": \(round * 7), \"status\": \"ok\", \"score\": 0.\(round % 10)5}"))]))
            messages.append(object([("role", .string("assistant")), ("content", .string("Item \(round * 7) is fine (score 0.\(round % 10)5)."))]))
            round += 1
        }
        return (.array(Array(messages.prefix(messageCount))), .array(tools))
    }
}

/// Substring search is linear (the budget charges a search by its length), and the rewritten searches,
/// slices, repr and JSON fast paths keep Python's results.
@Suite struct TextOperationTests {
    /// A deterministic generator (SplitMix64), so failures reproduce.
    private struct Random {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
        mutating func text(_ alphabet: [String], maxLength: Int) -> String {
            (0..<next(maxLength + 1)).map { _ in alphabet[next(alphabet.count)] }.joined()
        }
    }

    // Python's semantics, written out plainly over arrays of code points.
    private func naiveFind(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar]) -> Int {
        guard needle.count <= hay.count else { return -1 }
        for i in 0...(hay.count - needle.count) where Array(hay[i..<(i + needle.count)]) == needle { return i }
        return -1
    }
    private func naiveRFind(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar]) -> Int {
        guard needle.count <= hay.count else { return -1 }
        for i in stride(from: hay.count - needle.count, through: 0, by: -1) where Array(hay[i..<(i + needle.count)]) == needle { return i }
        return -1
    }
    private func naiveSplit(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar]) -> [String] {
        var parts: [String] = [], current: [Unicode.Scalar] = [], i = 0
        while i < hay.count {
            if i + needle.count <= hay.count && Array(hay[i..<(i + needle.count)]) == needle {
                parts.append(String(String.UnicodeScalarView(current))); current = []; i += needle.count
            } else {
                current.append(hay[i]); i += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(current)))
        return parts
    }

    @Test func searchesMatchANaiveReference() throws {
        var random = Random(state: 17)
        let template = try JinjaTemplate(source: "{{ h.find(n) }}|{{ h.rfind(n) }}|{{ h.count(n) }}|{{ n in h }}|{{ h.split(n) | join('/') }}|{{ h.rsplit(n, 1) | join('/') }}|{{ h.rpartition(n) | join('/') }}|{{ h.replace(n, '_') }}")
        var checked = 0
        for _ in 0..<3000 {
            // Small alphabets make overlapping and repeated matches common (KMP's hard cases).
            let hay = random.text(["a", "b", "é"], maxLength: 40)
            let needle = random.text(["a", "b", "é"], maxLength: 5)
            guard !needle.isEmpty else { continue }
            let h = Array(hay.unicodeScalars), n = Array(needle.unicodeScalars)
            let parts = naiveSplit(h, n)
            let last = naiveRFind(h, n)
            let rsplit = last < 0 ? [hay] : [String(String.UnicodeScalarView(h[..<last])), String(String.UnicodeScalarView(h[(last + n.count)...]))]
            let rpartition = last < 0 ? ["", "", hay] : [rsplit[0], needle, rsplit[1]]
            let expected = "\(naiveFind(h, n))|\(last)|\(parts.count - 1)|\(naiveFind(h, n) >= 0 ? "True" : "False")|\(parts.joined(separator: "/"))|\(rsplit.joined(separator: "/"))|\(rpartition.joined(separator: "/"))|\(parts.joined(separator: "_"))"
            let output = try template.render(JSONObject([("h", .string(hay)), ("n", .string(needle))]))
            #expect(output == expected, "\(hay) / \(needle)")
            checked += 1
        }
        #expect(checked > 2000)
    }

    /// Python's slice of a list of code points, by the language reference's rules.
    private func naiveSlice(_ items: [Unicode.Scalar], _ start: Int?, _ stop: Int?, _ step: Int) -> String {
        let n = items.count
        func clamp(_ v: Int?, _ fallback: Int, _ low: Int, _ high: Int) -> Int {
            guard var x = v else { return fallback }
            if x < 0 { x += n }
            return min(max(x, low), high)
        }
        var result: [Unicode.Scalar] = []
        if step > 0 {
            var i = clamp(start, 0, 0, n)
            let end = clamp(stop, n, 0, n)
            while i < end { result.append(items[i]); i += step }
        } else {
            var i = clamp(start, n - 1, -1, n - 1)
            let end = clamp(stop, -1, -1, n - 1)
            while i > end { result.append(items[i]); i += step }
        }
        return String(String.UnicodeScalarView(result))
    }

    @Test func slicesMatchANaiveReference() throws {
        var random = Random(state: 5)
        var checked = 0
        for _ in 0..<1500 {
            let text = random.text(["a", "b", "ü", "😀", "z"], maxLength: 12)
            let start: Int? = random.next(4) == 0 ? nil : random.next(31) - 15
            let stop: Int? = random.next(4) == 0 ? nil : random.next(31) - 15
            let step = [1, 1, 2, 3, -1, -2, -5, 7][random.next(8)]
            let bounds = "\(start.map(String.init) ?? ""):\(stop.map(String.init) ?? ""):\(step)"
            let source = "{{ s[\(bounds)] }}|{{ (s | list)[\(bounds)] | join }}"
            let output = try JinjaTemplate(source: source).render(JSONObject([("s", .string(text))]))
            let expected = naiveSlice(Array(text.unicodeScalars), start, stop, step)
            #expect(output == expected + "|" + expected, "\(text)[\(bounds)]")
            checked += 1
        }
        #expect(checked == 1500)
    }

    /// repr and json.dumps of strings that need escapes and strings that do not (the copied-whole path),
    /// as CPython 3 prints them.
    @Test func reprAndJSONKeepPythonsEscapes() throws {
        let values = try JSONValue.parse(#"["a'b", "c\"d", "e\\f", "ü", "\u0007", "x\ty", "a'b\"c", "\u2028", "😀", "plain text"]"#)
        let variables = JSONObject([("v", values)])
        #expect(try JinjaTemplate(source: "{{ v }}").render(variables)
            == #"["a'b", 'c"d', 'e\\f', 'ü', '\x07', 'x\ty', 'a\'b"c', '\u2028', '😀', 'plain text']"#)
        #expect(try JinjaTemplate(source: "{{ v | tojson(ensure_ascii=true) }}").render(variables)
            == #"["a'b", "c\"d", "e\\f", "\u00fc", "\u0007", "x\ty", "a'b\"c", "\u2028", "\ud83d\ude00", "plain text"]"#)
        #expect(try JinjaTemplate(source: "{{ v | tojson }}").render(variables)
            == "[\"a'b\", \"c\\\"d\", \"e\\\\f\", \"ü\", \"\\u0007\", \"x\\ty\", \"a'b\\\"c\", \"\u{2028}\", \"😀\", \"plain text\"]")
    }
}
