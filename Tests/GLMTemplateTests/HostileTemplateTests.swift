import GLMJSON
import GLMSupport
import GLMTemplate
import Testing

/// Templates written to exhaust the stack, time or memory must fail with a GLMError, never crash or hang.
@Suite struct HostileTemplateTests {
    private func renderError(_ source: String, limits: RenderLimits = RenderLimits(),
                             variables: JSONObject = JSONObject()) -> GLMError? {
        do {
            _ = try JinjaTemplate(source: source, limits: limits).render(variables)
            return nil
        } catch {
            return error
        }
    }

    @Test func infiniteMacroRecursionStops() {
        let error = renderError("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}")
        #expect(error?.code == .limitExceeded)
        #expect(error?.message.contains("template line 1") == true)
    }

    @Test func mutualRecursionWithDeepExpressionsStops() {
        let deep = String(repeating: "(", count: 50) + "n" + String(repeating: ")", count: 50)
        let source = "{% macro a(n) %}{{ b(\(deep) + 1) }}{% endmacro %}{% macro b(n) %}{{ a(\(deep)) }}{% endmacro %}{{ a(0) }}"
        #expect(renderError(source)?.code == .limitExceeded)
    }

    @Test func recursiveLoopOverSelfReferenceStops() {
        let error = renderError("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}")
        #expect(error?.code == .limitExceeded)
    }

    @Test func deeplyNestedSyntaxIsRefusedByTheParser() {
        for source in [
            "{{ " + String(repeating: "(", count: 5_000) + "1" + String(repeating: ")", count: 5_000) + " }}",
            "{{ " + String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000) + " }}",
            "{{ " + String(repeating: "not ", count: 5_000) + "x }}",
            "{{ " + String(repeating: "-", count: 5_000) + "1 }}",
            "{{ x" + String(repeating: " + x", count: 5_000) + " }}",
            "{{ x" + String(repeating: "|string", count: 5_000) + " }}",
            "{{ x" + String(repeating: ".a", count: 5_000) + " }}",
            "{{ x" + String(repeating: " or x", count: 5_000) + " }}",
            String(repeating: "{% if true %}", count: 5_000) + String(repeating: "{% endif %}", count: 5_000),
        ] {
            do {
                _ = try JinjaTemplate(source: source)
                Issue.record("expected a nesting error")
            } catch {
                #expect(error.code == .template)
                #expect(error.message.contains("nesting deeper than"))
            }
        }
    }

    @Test func deepValuesBuiltInALoopAreRefused() {
        let error = renderError("{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}")
        #expect(error?.code == .limitExceeded)
    }

    @Test func hugeLoopsStopAtTheIterationLimit() {
        var limits = RenderLimits()
        limits.maxIterations = 100_000
        let error = renderError("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", limits: limits)
        #expect(error?.code == .limitExceeded)
        #expect(renderError("{{ range(1000000) | length }}")?.message.hasPrefix("OverflowError: Range too big") == true)
    }

    @Test func hugeOutputStopsAtTheOutputLimit() {
        var limits = RenderLimits()
        limits.maxOutputBytes = 1 << 20
        for source in [
            "{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}",
            "{{ 'x' * 100000000000 }}",
            "{{ [1] * 100000000000 }}",
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "{{ 'x' | center(100000000000) }}",
            "{{ '%100000000000d' % 1 }}",
            "{{ '{:>100000000000}'.format(1) }}",
            "{{ ('x' * 2000).replace('', 'y' * 1000) }}",
            "{{ [[1, 2], [3]] | tojson(indent=100000000) }}",
            "{{ 'a' | indent(100000000000) }}",
            "{{ [1] | batch(100000000000, 0) | list }}",
        ] {
            let error = renderError(source, limits: limits)
            #expect(error?.code == .limitExceeded, "\(source): \(error?.message ?? "no error")")
        }
    }

    @Test func malformedTemplatesGiveSyntaxErrorsWithPositions() {
        let cases: [(String, String)] = [
            ("{{ x", "line 1"), ("text\n{% if x %}", "line 2"), ("{# unterminated", "Missing end of comment tag"),
            ("{% raw %}never ends", "Missing end of raw directive"), ("{{ 'open }}", "unexpected char"),
            ("{{ x | no_such_filter }}", "No filter named 'no_such_filter'"), ("{{ x is no_such_test }}", "No test named"),
            ("{% endfor %}", "Encountered unknown tag 'endfor'"), ("{{ (1 }}", "expected"), ("{% for x in y %}", "endfor"),
            ("{{ ] }}", "unexpected ']'"), ("{% include 'x' %}", "template loader"),
        ]
        for (source, expected) in cases {
            do {
                _ = try JinjaTemplate(source: source)
                Issue.record("\(source): expected a syntax error")
            } catch {
                #expect(error.code == .template)
                #expect(error.message.hasPrefix("TemplateSyntaxError: "), "\(error.message)")
                #expect(error.message.contains(expected), "\(source): \(error.message)")
                #expect(error.message.contains("(template line "), "\(error.message)")
            }
        }
    }

    @Test func extremeIntegersNeverTrap() throws {
        for source in [
            "{{ range(0, 9223372036854775807, 4611686018427387904) | list }}",
            "{{ range(-9223372036854775807, 9223372036854775807) | length }}",
            "{{ [1, 2, 3][1::9223372036854775807] }}", "{{ 'abc'[-9223372036854775807:9223372036854775807] }}",
            "{{ 9223372036854775807 + 1 }}", "{{ -9223372036854775807 - 2 }}", "{{ 2 ** 64 }}", "{{ -(-9223372036854775807 - 1) }}",
            "{{ (-9223372036854775807 - 1) // -1 }}", "{{ (-9223372036854775807 - 1) % -1 }}", "{{ 12345678901234567890123 | abs }}",
            "{{ '%.99999999999999999999f' % 1.5 }}", "{{ '{:.99999999999999999999f}'.format(1.5) }}",
            "{{ 'x' | truncate(9223372036854775807) }}", "{{ 1e308 * 10 | int }}", "{{ 'x' * -5 }}{{ [1] * -3 }}",
        ] {
            do { _ = try JinjaTemplate(source: source).render(JSONObject()) } catch {
                #expect(error.code == .template || error.code == .limitExceeded, "\(source): \(error.message)")
            }
        }
        #expect(try JinjaTemplate(source: "{{ range(0, 9223372036854775807, 4611686018427387904) | list }}").render(JSONObject())
            == "[0, 4611686018427387904]")
    }

    @Test func unknownFilterInsideIfFailsOnlyWhenReached() throws {
        let template = try JinjaTemplate(source: "{% if x %}{{ x | from_json }}{% endif %}ok")
        #expect(try template.render(JSONObject()) == "ok")
        #expect(throws: GLMError.self) { try template.render(JSONObject([("x", .string("1"))])) }
    }

    @Test func sandboxRefusesMutationAndPrivateAttributes() {
        #expect(renderError("{{ [1].append(2) }}")?.message.hasPrefix("SecurityError: access to attribute 'append' of 'list' object is unsafe.") == true)
        #expect(renderError("{{ {}.update({}) }}")?.message.hasPrefix("SecurityError") == true)
        #expect(renderError("{{ ''.__class__() }}")?.message.hasPrefix("SecurityError") == true)
        #expect(renderError("{% set ns = namespace() %}{% set ns._x = 1 %}")?.message.hasPrefix("SecurityError") == true)
    }
}
