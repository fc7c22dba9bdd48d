import GLMJSON
import GLMSupport
import GLMTemplate
import Testing

/// The reference renders of transformers' apply_chat_template for GLM-4.7 and GLM-4.5/4.6
/// (Tests/Fixtures/templates/glm47_cases.jsonl, glm46_cases.jsonl; from shared/reference).
@Suite struct GLMTemplateCaseTests {
    @Test func builtInTemplateIsTheOfficialFileByteForByte() throws {
        let fixture = try readFixture("glm-4.7.jinja")
        #expect(Array(ChatTemplate.glm47Source.utf8) == Array(fixture.utf8))
        #expect(ChatTemplate.glm47Source.utf8.count == 3120)
    }

    @Test func glm47Cases() throws {
        let template = ChatTemplateRenderer(try ChatTemplate.glm47())
        let cases = try readCases("glm47_cases.jsonl")
        #expect(cases.count == 33)
        for testCase in cases {
            let problem = checkChatCase(template, testCase)
            #expect(problem == nil, "\(problem ?? "")")
        }
    }

    @Test func glm46Cases() throws {
        let template = ChatTemplateRenderer(try ChatTemplate(source: try readFixture("glm-4.5.jinja")))
        let cases = try readCases("glm46_cases.jsonl")
        #expect(cases.count == 33)
        for testCase in cases {
            let problem = checkChatCase(template, testCase)
            #expect(problem == nil, "\(problem ?? "")")
        }
    }

    @Test func emptyConversationIsRefused() throws {
        let template = try ChatTemplate.glm47()
        #expect(throws: GLMError.self) { try template.render(messages: .array([])) }
    }
}
