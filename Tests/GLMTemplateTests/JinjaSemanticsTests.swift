import GLMJSON
import GLMSupport
import GLMTemplate
import Testing

/// jinja2 semantics pinned by small snippets rendered with transformers' own environment
/// (Tests/Fixtures/templates/jinja_semantics.jsonl, from tools/make_template_cases.py + tools/jinja_snippets.py).
@Suite struct JinjaSemanticsTests {
    /// jinja2's runtime errors whose exact message templates rely on (the rest only need to be errors:
    /// syntax-error wording differs between the two parsers).
    static let exactErrorKinds = ["UndefinedError", "TemplateError", "SecurityError"]

    @Test func snippetsMatchJinja2() throws {
        let cases = try readCases("jinja_semantics.jsonl").filter { $0["header"] == nil }
        #expect(cases.count >= 140)
        var failures: [String] = []
        for testCase in cases {
            let name = testCase["name"]?.stringValue ?? "?"
            let source = testCase["template"]?.stringValue ?? ""
            let variables = testCase["variables"]?.objectValue ?? JSONObject()
            do {
                let output = try JinjaTemplate(source: source).render(variables, now: testCase["now"]?.intValue.map(Int64.init))
                if let expected = testCase["expected"]?.stringValue {
                    if output != expected { failures.append("\(name): \(source)\n  expected \(expected)\n  got      \(output)") }
                } else {
                    failures.append("\(name): \(source)\n  expected error \(testCase["expected_error"]?.stringValue ?? "")\n  got output \(output)")
                }
            } catch {
                guard let expectedError = testCase["expected_error"]?.stringValue else {
                    failures.append("\(name): \(source)\n  unexpected error \(error.message)")
                    continue
                }
                #expect(error.code == .template || error.code == .limitExceeded || error.code == .template)
                let kind = String(expectedError.prefix { $0 != ":" })
                if JinjaSemanticsTests.exactErrorKinds.contains(kind) && !error.message.hasPrefix(expectedError) {
                    failures.append("\(name): \(source)\n  expected error \(expectedError)\n  got error      \(error.message)")
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) snippets differ:\n\(failures.joined(separator: "\n"))")
    }

    @Test func parsedTemplateIsReusable() throws {
        let template = try JinjaTemplate(source: "{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}")
        #expect(try template.render(JSONObject([("xs", .array([JSONValue(1), JSONValue(2)]))])) == "3")
        #expect(try template.render(JSONObject([("xs", .array([JSONValue(5)]))])) == "5")
    }

    @Test func errorsNameLineAndColumn() throws {
        do {
            _ = try JinjaTemplate(source: "line one\n{{ x.y }}").render(JSONObject())
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .template)
            #expect(error.message == "UndefinedError: 'x' is undefined (template line 2, column 1)")
        }
        do {
            _ = try JinjaTemplate(source: "ok\n\n  {% if x %}never closed")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .template)
            #expect(error.message.hasPrefix("TemplateSyntaxError: Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'."))
            #expect(error.message.contains("template line 3"))
        }
    }

    @Test func raiseExceptionCarriesTheTemplateMessage() throws {
        do {
            _ = try JinjaTemplate(source: "{{ raise_exception('Roles must alternate') }}").render(JSONObject())
            Issue.record("expected an error")
        } catch {
            #expect(error.message.hasPrefix("TemplateError: Roles must alternate"))
        }
    }

    @Test func strftimeNowFormatsTheCurrentTime() throws {
        let year = try JinjaTemplate(source: "{{ strftime_now('%Y') }}").render(JSONObject())
        #expect(year.count == 4 && Int(year) ?? 0 >= 2024)
    }
}
