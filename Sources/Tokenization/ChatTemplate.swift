import Foundation

public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// How a template sees a message: a dict with 'role' and 'content'.
    public var templateValue: TemplateValue {
        ["role": .string(role), "content": .string(content)]
    }
}

public enum ChatTemplateError: Error, CustomStringConvertible, Equatable {
    /// The template does not parse; positions are 1-based.
    case syntax(message: String, line: Int, column: Int)
    /// The template parsed but failed while rendering (a type error, an unknown filter, a limit).
    case runtime(message: String)
    /// The template itself refused the input with `raise_exception(message)`, e.g. roles that do
    /// not alternate. The message is meant for the client.
    case raised(message: String)

    public var description: String {
        switch self {
        case .syntax(let message, let line, let column): "chat template syntax error at line \(line), column \(column): \(message)"
        case .runtime(let message): "chat template error: \(message)"
        case .raised(let message): message
        }
    }
}

/// A model's Jinja chat template (GGUF `tokenizer.chat_template`), parsed once and rendered per
/// request. Renders as Hugging Face's `apply_chat_template` does, since that is how the model's
/// training data was formatted.
public struct ChatTemplate: Sendable {
    /// Jinja environment options that change whitespace.
    public struct Options: Sendable, Equatable {
        /// Drop the first newline after a block tag (`%}`) or comment.
        public var trimBlocks: Bool
        /// Drop spaces and tabs before a block tag or comment that starts a line.
        public var lstripBlocks: Bool

        public init(trimBlocks: Bool, lstripBlocks: Bool) {
            self.trimBlocks = trimBlocks
            self.lstripBlocks = lstripBlocks
        }

        /// What `apply_chat_template` uses, and so what every model's reference prompts assume.
        public static let huggingFace = Options(trimBlocks: true, lstripBlocks: true)
        /// Plain `jinja2.Environment()` defaults.
        public static let jinja = Options(trimBlocks: false, lstripBlocks: false)
    }

    public let source: String
    private let nodes: [TemplateNode]

    public init(source: String, options: Options = .huggingFace) throws(ChatTemplateError) {
        self.source = source
        let tokens = try TemplateLexer(source: source, options: options).tokenize()
        var parser = TemplateParser(tokens: tokens)
        nodes = try parser.parseTemplate()
    }

    /// The fallback for models that ship no template: ChatML, as Hugging Face's default template.
    public static let chatML: ChatTemplate = {
        let source = """
            {% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}\
            {% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
            """
        do {
            return try ChatTemplate(source: source)
        } catch {
            fatalError("the built-in ChatML template must parse: \(error)")
        }
    }()

    /// Renders a conversation. `extraContext` adds variables (e.g. `tools`, `documents`, custom
    /// flags); the named parameters win over it. To pass messages with more than role and content
    /// (tool calls), use `render(context:)`.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool = true, bosToken: String = "",
                       eosToken: String = "", extraContext: [String: TemplateValue] = [:]) throws(ChatTemplateError) -> String
    {
        var context = extraContext
        // Hugging Face always passes these, as None when absent: templates test `tools is not none`.
        for key in ["tools", "documents"] where context[key] == nil {
            context[key] = TemplateValue.none
        }
        context["messages"] = .array(messages.map(\.templateValue))
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        context["bos_token"] = .string(bosToken)
        context["eos_token"] = .string(eosToken)
        return try render(context: context)
    }

    /// Renders with exactly these top-level variables. `strftime_now` reads `now`, so a fixed
    /// instant gives a reproducible prompt.
    public func render(context: [String: TemplateValue], now: Date = Date()) throws(ChatTemplateError) -> String {
        do {
            return try TemplateEvaluator(context: context, now: now).render(nodes)
        } catch let error as ChatTemplateError {
            throw error
        } catch let error as TemplateEvaluationError {
            throw .runtime(message: error.message)
        } catch {
            throw .runtime(message: "\(error)")
        }
    }
}
