import Foundation
import Testing
import Tokenization

/// Expected renderings of the model templates were produced by jinja2 3.1 configured as
/// Hugging Face's `apply_chat_template` configures it (trim_blocks, lstrip_blocks, loopcontrols).
@Suite struct ChatTemplateTests {
    // MARK: Model templates

    static let smolLM2 = """
        {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
        You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
        ' }}{% endif %}{{'<|im_start|>' + message['role'] + '
        ' + message['content'] + '<|im_end|>' + '
        '}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
        ' }}{% endif %}
        """

    static let llama3 = #"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"#

    static let mistral = #"{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"#

    static let zephyr = #"{% for message in messages %}\#n{% if message['role'] == 'user' %}\#n{{ '<|user|>\n' + message['content'] + eos_token }}\#n{% elif message['role'] == 'system' %}\#n{{ '<|system|>\n' + message['content'] + eos_token }}\#n{% elif message['role'] == 'assistant' %}\#n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\#n{% endif %}\#n{% if loop.last and add_generation_prompt %}\#n{{ '<|assistant|>' }}\#n{% endif %}\#n{% endfor %}"#

    static let gemma = #"{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"#

    static let phi3 = #"{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"#

    static let qwen2 = #"""
        {%- if tools %}
            {{- '<|im_start|>system\n' }}
            {%- if messages[0]['role'] == 'system' %}
                {{- messages[0]['content'] }}
            {%- else %}
                {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
            {%- endif %}
            {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
            {%- for tool in tools %}
                {{- "\n" }}
                {{- tool | tojson }}
            {%- endfor %}
            {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
        {%- else %}
            {%- if messages[0]['role'] == 'system' %}
                {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
            {%- else %}
                {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
            {%- endif %}
        {%- endif %}
        {%- for message in messages %}
            {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
            {%- elif message.role == "assistant" %}
                {{- '<|im_start|>' + message.role }}
                {%- if message.content %}
                    {{- '\n' + message.content }}
                {%- endif %}
                {%- for tool_call in message.tool_calls %}
                    {%- if tool_call.function is defined %}
                        {%- set tool_call = tool_call.function %}
                    {%- endif %}
                    {{- '\n<tool_call>\n{"name": "' }}
                    {{- tool_call.name }}
                    {{- '", "arguments": ' }}
                    {{- tool_call.arguments | tojson }}
                    {{- '}\n</tool_call>' }}
                {%- endfor %}
                {{- '<|im_end|>\n' }}
            {%- elif message.role == "tool" %}
                {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
                    {{- '<|im_start|>user' }}
                {%- endif %}
                {{- '\n<tool_response>\n' }}
                {{- message.content }}
                {{- '\n</tool_response>' }}
                {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
                    {{- '<|im_end|>\n' }}
                {%- endif %}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
        {%- endif %}

        """#

    static let chat = [
        ChatMessage(role: "user", content: "Hello, how are you?"),
        ChatMessage(role: "assistant", content: "I'm doing great."),
        ChatMessage(role: "user", content: "Tell me a joke."),
    ]
    static let systemChat = [ChatMessage(role: "system", content: "You are a pirate.")] + chat

    @Test func smolLM2AddsDefaultSystemPrompt() throws {
        // Given the SmolLM2 template and one user message
        let template = try ChatTemplate(source: Self.smolLM2)
        // When rendering with a generation prompt
        let prompt = try template.render(messages: [ChatMessage(role: "user", content: "What is the capital of France?")])
        // Then the default system message comes first and the assistant turn is opened
        #expect(prompt == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func smolLM2KeepsGivenSystemMessage() throws {
        // Given the SmolLM2 template and a conversation that has its own system message
        let template = try ChatTemplate(source: Self.smolLM2)
        // When rendering
        let prompt = try template.render(messages: [ChatMessage(role: "system", content: "Be brief."),
                                                    ChatMessage(role: "user", content: "Hi")])
        // Then no default system message is added
        #expect(prompt == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func chatMLFallbackRendersEveryTurn() throws {
        // Given the built-in fallback
        // When rendering with and without the generation prompt
        let open = try ChatTemplate.chatML.render(messages: Self.systemChat.prefix(2).map { $0 })
        let closed = try ChatTemplate.chatML.render(messages: [Self.chat[0]], addGenerationPrompt: false)
        // Then each message is an im_start/im_end block and only the first opens an assistant turn
        #expect(open == "<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n"
            + "<|im_start|>assistant\n")
        #expect(closed == "<|im_start|>user\nHello, how are you?<|im_end|>\n")
    }

    @Test func llama3InstructWrapsTurnsInHeaders() throws {
        // Given Llama 3 Instruct's template
        let template = try ChatTemplate(source: Self.llama3)
        // When rendering a conversation with a system message
        let prompt = try template.render(messages: Self.systemChat, bosToken: "<|begin_of_text|>")
        // Then the BOS token leads, and each turn sits between header tokens
        #expect(prompt == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a pirate.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    @Test func mistralInstructRendersInstBlocks() throws {
        // Given Mistral Instruct's template
        let template = try ChatTemplate(source: Self.mistral)
        // When rendering alternating turns
        let prompt = try template.render(messages: Self.chat, bosToken: "<s>", eosToken: "</s>")
        // Then user turns are [INST] blocks and assistant turns end with EOS
        #expect(prompt == "<s>[INST] Hello, how are you? [/INST]I'm doing great.</s>[INST] Tell me a joke. [/INST]")
    }

    @Test func mistralRejectsRolesThatDoNotAlternate() throws {
        // Given Mistral Instruct's template, which has no system role
        let template = try ChatTemplate(source: Self.mistral)
        // When rendering a conversation that starts with a system message
        // Then the template's own exception surfaces as .raised
        #expect(throws: ChatTemplateError.raised(message: "Conversation roles must alternate user/assistant/user/assistant/...")) {
            try template.render(messages: Self.systemChat)
        }
    }

    @Test func zephyrDropsNewlinesAfterBlockTags() throws {
        // Given Zephyr's template, written one tag per line
        let template = try ChatTemplate(source: Self.zephyr)
        // When rendering with and without a generation prompt
        let open = try template.render(messages: Self.systemChat, eosToken: "</s>")
        let closed = try template.render(messages: Self.systemChat, addGenerationPrompt: false, eosToken: "</s>")
        // Then trim_blocks removes the newline after each {% %} line, while those after {{ }} stay
        let turns = "<|system|>\nYou are a pirate.</s>\n<|user|>\nHello, how are you?</s>\n"
            + "<|assistant|>\nI'm doing great.</s>\n<|user|>\nTell me a joke.</s>\n"
        #expect(open == turns + "<|assistant|>\n")
        #expect(closed == turns)
    }

    @Test func gemmaRenamesAssistantToModelAndTrims() throws {
        // Given Gemma's template
        let template = try ChatTemplate(source: Self.gemma)
        // When rendering turns with padded content
        let prompt = try template.render(messages: [ChatMessage(role: "user", content: "  Hi  "),
                                                    ChatMessage(role: "assistant", content: "Hello!"),
                                                    ChatMessage(role: "user", content: "Bye")], bosToken: "<bos>")
        // Then the assistant speaks as 'model' and contents are trimmed
        #expect(prompt == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
            + "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n")
        #expect(throws: ChatTemplateError.raised(message: "System role not supported")) {
            try template.render(messages: Self.systemChat)
        }
    }

    @Test func qwen2AddsItsDefaultSystemMessage() throws {
        // Given Qwen2's template (indented with {%- -%} whitespace control)
        let template = try ChatTemplate(source: Self.qwen2)
        // When rendering with and without a system message
        let plain = try template.render(messages: [Self.chat[0]])
        let custom = try template.render(messages: Array(Self.systemChat.prefix(2)))
        // Then the indentation disappears and the default system message fills in
        #expect(plain == "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\n")
        #expect(custom == "<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n"
            + "<|im_start|>assistant\n")
    }

    @Test func qwen2ListsToolsAsPythonJSON() throws {
        // Given Qwen2's template and a tool parsed from request JSON
        let template = try ChatTemplate(source: Self.qwen2)
        let tools = try TemplateValue(json: #"[{"type": "function", "function": {"name": "get_weather", "description": "Weather in °C", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#)
        // When rendering with tools
        let prompt = try template.render(messages: [ChatMessage(role: "user", content: "Weather in Paris?")],
                                         extraContext: ["tools": tools])
        // Then tojson keeps key order, Python's separators and non-ASCII text
        #expect(prompt == "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n"
            + "You may call one or more functions to assist with the user query.\n\n"
            + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            + #"{"type": "function", "function": {"name": "get_weather", "description": "Weather in °C", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#
            + "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
            + "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
            + "</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func phi3EndsWithEOSWithoutGenerationPrompt() throws {
        // Given Phi-3's template
        let template = try ChatTemplate(source: Self.phi3)
        // When rendering with and without a generation prompt
        let open = try template.render(messages: Self.systemChat)
        let closed = try template.render(messages: Array(Self.chat.prefix(2)), addGenerationPrompt: false, eosToken: "</s>")
        // Then turns end with <|end|>, and a finished conversation ends with EOS
        #expect(open == "<|system|>\nYou are a pirate.<|end|>\n<|user|>\nHello, how are you?<|end|>\n"
            + "<|assistant|>\nI'm doing great.<|end|>\n<|user|>\nTell me a joke.<|end|>\n<|assistant|>\n")
        #expect(closed == "<|user|>\nHello, how are you?<|end|>\n<|assistant|>\nI'm doing great.<|end|>\n</s>")
    }

    // MARK: Expressions

    static let context: [String: TemplateValue] = [
        "s": "  Hello World  ", "n": 7, "f": 2.5, "xs": [3, 1, 2], "no": .none,
        "d": ["b": 1, "a": [1, 2], "c": ["x": "y"]],
        "msgs": [["role": "user", "content": "hi"], ["role": "assistant", "content": "yo"], ["role": "user"]],
    ]

    private func evaluate(_ expression: String) throws -> String {
        try ChatTemplate(source: "{{ \(expression) }}").render(context: Self.context)
    }

    @Test(arguments: [
        ("1 + 2 * 3", "7"), ("(1 + 2) * 3", "9"), ("7 // 2", "3"), ("-7 // 2", "-4"), ("-7 % 3", "2"), ("7 % -3", "-2"),
        ("7 / 2", "3.5"), ("2 ** 10", "1024"), ("-2 ** 2", "4"), ("0.1 + 0.2", "0.30000000000000004"), ("1e20", "1e+20"),
        ("'a' ~ 1 ~ none ~ missing", "a1None"), ("'ab' * 3", "ababab"), ("[1] + [2, 3]", "[1, 2, 3]"),
        ("1 == 1.0", "True"), ("1 == true", "True"), ("1 < 2 < 3", "True"), ("3 > 2 > 2", "False"),
        ("'a' in 'cat'", "True"), ("'z' not in 'cat'", "True"), ("2 in xs", "True"), ("'b' in d", "True"),
        ("n and 'x'", "x"), ("0 or 'y'", "y"), ("not n", "False"), ("'yes' if no else 'no'", "no"), ("'yes' if no", ""),
        ("'a' + 'b' | upper", "aB"), ("\"multi\" 'part'", "multipart"), (#"'it\'s\t\x41\u00e9'"#, "it's\tAé"),
        ("msgs[0].role", "user"), ("msgs[2].content", ""), ("msgs[2].content is defined", "False"), ("msgs.0.role", "user"),
        ("missing.attr.deeper", ""), ("d.c.x ~ d['c']['x']", "yy"), ("d.a[1]", "2"), ("d.get('zz', 5)", "5"), ("d.get('zz')", "None"),
        ("{'k': 'v', 'n': [1, none, true]}", "{'k': 'v', 'n': [1, None, True]}"),
    ])
    func evaluatesExpressionsLikePython(expression: String, expected: String) throws {
        // Given an expression over the shared context
        // When it is printed
        // Then the text matches what jinja2 prints
        #expect(try evaluate(expression) == expected)
    }

    @Test(arguments: [
        ("xs[-1]", "2"), ("xs[1:]", "[1, 2]"), ("xs[::-1]", "[2, 1, 3]"), ("xs[:-1]", "[3, 1]"), ("xs[5]", ""),
        ("xs[-5:10:2]", "[3, 2]"), ("s[2:7]", "Hello"), ("'héllo'[1]", "é"), ("'abc'[::-1]", "cba"),
    ])
    func slicesFollowPythonRules(expression: String, expected: String) throws {
        // Given a subscript or slice; When printed; Then it clamps and counts from the end as Python does
        #expect(try evaluate(expression) == expected)
    }

    @Test(arguments: [
        ("s|trim", "Hello World"), ("s.strip(' H')", "ello World"), ("s.lstrip()", "Hello World  "), ("s|upper", "  HELLO WORLD  "),
        ("'hELLO wORLD'|capitalize", "Hello world"), ("\"they're bill-o\"|title", "They're Bill-O"),
        ("\"they're\".title()", "They'Re"), ("s|length", "15"), ("missing|length", "0"), ("xs|first", "3"), ("xs|last", "2"),
        ("xs|join('-')", "3-1-2"), ("d|tojson", #"{"b": 1, "a": [1, 2], "c": {"x": "y"}}"#),
        ("d.c|tojson(indent=2)", "{\n  \"x\": \"y\"\n}"), ("'é\"\\n'|tojson", #""é\"\n""#),
        ("missing|default('dflt')", "dflt"), ("''|default('dflt')", ""), ("''|default('dflt', true)", "dflt"),
        ("'42'|int", "42"), ("'4.7'|int", "4"), ("'x'|int", "0"), ("'2.5'|float", "2.5"), ("f|string", "2.5"),
        ("'abc'|list", "['a', 'b', 'c']"), ("d|items|list", "[['b', 1], ['a', [1, 2]], ['c', {'x': 'y'}]]"),
        ("d.keys()|list", "['b', 'a', 'c']"), ("s|replace('l', 'L')", "  HeLLo WorLd  "), ("s.replace('l', 'L', 2)", "  HeLLo World  "),
        ("'a,b,,c'.split(',')", "['a', 'b', '', 'c']"), ("s.split()", "['Hello', 'World']"), ("s.startswith('  H')", "True"),
        ("msgs|selectattr('role', 'equalto', 'user')|list|length", "2"), ("msgs|map(attribute='role')|join(',')", "user,assistant,user"),
        ("xs|reject('odd')|list", "[2]"), ("xs|reverse|list", "[2, 1, 3]"), ("range(1, 10, 3)|list", "[1, 4, 7]"),
        ("'a\\nb\\n\\nc'|indent(2)", "a\n  b\n\n  c"), ("n is divisibleby 7", "True"), ("n is odd", "True"),
        ("xs is iterable", "True"), ("d is mapping", "True"), ("s is string", "True"), ("no is none", "True"),
        ("f is number", "True"), ("missing is not defined", "True"), ("'x' is sequence", "True"), ("n is true", "False"),
    ])
    func filtersTestsAndMethodsMatchJinja(expression: String, expected: String) throws {
        // Given a filter, test or method call; When printed; Then it matches jinja2's output
        #expect(try evaluate(expression) == expected)
    }

    @Test func unknownFilterNamesTheFilterAndPlace() throws {
        // Given a template using a filter that does not exist, on its second line
        let template = try ChatTemplate(source: "ok\n{{ name | frobnicate }}")
        // When rendering
        // Then the error names the filter and the line
        #expect(throws: ChatTemplateError.runtime(message: "unknown filter 'frobnicate' (line 2, column 1)")) {
            try template.render(context: [:])
        }
    }

    // MARK: Statements and whitespace

    @Test func loopVariablesDescribeThePosition() throws {
        // Given a loop printing its loop variables
        let template = try ChatTemplate(source:
            "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }};{% endfor %}")
        // When rendering over three items
        let output = try template.render(context: ["xs": ["a", "b", "c"]])
        // Then each iteration sees its own position
        #expect(output == "10TrueFalse33;21FalseFalse32;32FalseTrue31;")
    }

    @Test func loopsFilterUnpackAndFallBackToElse() throws {
        // Given loops with a filter, tuple unpacking, an else branch and loop controls
        let source = "{% for x in xs if x > 1 %}{{ x }}/{{ loop.length }} {% endfor %}|"
            + "{% for k, v in d|items %}{{ k }}={{ v }} {% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}|"
            + "{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"
        // When rendering
        let output = try ChatTemplate(source: source).render(context: ["xs": [3, 1, 2], "d": ["a": 1, "b": 2]])
        // Then
        #expect(output == "3/2 2/2 |a=1 b=2 |empty|023")
    }

    @Test func namespaceCarriesStateOutOfLoopsButSetDoesNot() throws {
        // Given a plain variable and a namespace both updated inside a loop
        let source = "{% set total = 0 %}{% set ns = namespace(total=0) %}{% for x in [1, 2, 3] %}"
            + "{% set total = total + x %}{% set ns.total = ns.total + x %}{% endfor %}{{ total }} {{ ns.total }}"
        // When rendering
        let output = try ChatTemplate(source: source).render(context: [:])
        // Then the loop's `set` stayed in the loop while the namespace kept every update
        #expect(output == "0 6")
    }

    @Test func setCapturesAndMacrosRender() throws {
        // Given block set, unpacking set and a macro with a default argument
        let source = "{% set a, b = [1, 2] %}{% set c %}[{{ a + b }}]{% endset %}{{ c }} "
            + "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet(name='Al', punct='?') }}"
        // When rendering
        let output = try ChatTemplate(source: source).render(context: [:])
        // Then
        #expect(output == "[3] Hi Bob! Hi Al?")
    }

    @Test func dashesStripWhitespaceAroundTags() throws {
        // Given whitespace-control markers on output and block tags
        let source = "a  {{- 'b' -}}  c\n  {%- if true -%}\n   d   \n  {%- endif %}"
        // When rendering
        let output = try ChatTemplate(source: source).render(context: [:])
        // Then all whitespace on the dashed side of each tag is gone
        #expect(output == "abcd")
    }

    @Test func trimAndLstripBlocksFollowTheOptions() throws {
        // Given an indented block that sits on its own lines
        let source = "<ul>\n  {% for x in xs %}\n  <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n"
        let context: [String: TemplateValue] = ["xs": [1, 2]]
        // When rendered with Hugging Face's options and with plain Jinja's
        let huggingFace = try ChatTemplate(source: source).render(context: context)
        let plain = try ChatTemplate(source: source, options: .jinja).render(context: context)
        // Then HF removes the tag lines entirely; plain Jinja keeps their indentation and newlines,
        // and both drop the template's single trailing newline
        #expect(huggingFace == "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>")
        #expect(plain == "<ul>\n  \n  <li>1</li>\n  \n  <li>2</li>\n  \n</ul>")
    }

    @Test func plusMarkersOptOutOfLstripAndTrim() throws {
        // Given a block tag with '+' on both sides, and a comment on its own line
        let source = "a\n  {%+ if true +%}\nb\n  {# note #}\nc{% endif %}"
        // When rendering with Hugging Face's options
        let output = try ChatTemplate(source: source).render(context: [:])
        // Then the '+' tag keeps its indentation and newline, the comment line vanishes
        #expect(output == "a\n  \nb\nc")
    }

    @Test func undefinedValuesAreEmptyAndFalsy() throws {
        // Given references to variables and keys that do not exist
        let source = "[{{ missing }}][{{ missing.key }}]{% if missing %}yes{% else %}no{% endif %}{% for x in missing %}x{% endfor %}"
        // When rendering
        let output = try ChatTemplate(source: source).render(context: [:])
        // Then they print nothing, are false, and iterate as empty
        #expect(output == "[][]no")
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: "{{ missing + 1 }}").render(context: [:]) }
    }

    @Test func huggingFaceDefaultsToolsToNone() throws {
        // Given a template that distinguishes undefined from none, as Llama 3.1's does
        let template = try ChatTemplate(source: "{{ tools is defined }} {{ tools is none }} {{ custom is defined }}")
        // When rendering through the message API
        let output = try template.render(messages: [], extraContext: ["custom": true])
        // Then tools is defined and None, like apply_chat_template passes it
        #expect(output == "True True True")
    }

    // MARK: Errors and limits

    @Test func raiseExceptionSurfacesAsRaised() throws {
        // Given a template that raises
        let template = try ChatTemplate(source: "{% if messages|length == 0 %}{{ raise_exception('No messages') }}{% endif %}")
        // When rendering an empty conversation
        // Then the template's message comes back untouched
        #expect(throws: ChatTemplateError.raised(message: "No messages")) { try template.render(messages: []) }
    }

    @Test(arguments: [
        ("{% if x %}\n  {{ 1 + }}\n{% endif %}", "unexpected '}}'", 2, 10),
        ("Hi\n{% for m in messages %}x", "'for' block is never closed (expected 'else' or 'endfor')", 2, 1),
        ("{{ 'abc }}", "unterminated string", 1, 4),
        ("a\n\n   {% frobnicate %}", "unknown or unsupported tag 'frobnicate'", 3, 7),
        ("{% endif %}", "unexpected 'endif'", 1, 4),
        ("{% break %}", "'break' outside of a loop", 1, 4),
        ("{# never closed", "unclosed comment", 1, 1),
        ("x {{ a |", "unexpected end of template: '{{' is never closed", 1, 3),
    ])
    func syntaxErrorsReportLineAndColumn(source: String, message: String, line: Int, column: Int) {
        // Given a malformed template; When parsing; Then the error points at the offending spot
        #expect(throws: ChatTemplateError.syntax(message: message, line: line, column: column)) {
            try ChatTemplate(source: source)
        }
    }

    @Test func deepNestingFailsCleanly() throws {
        // Given templates nested within and far beyond the parser's limit
        let allowed = String(repeating: "{% if true %}", count: 20) + "deep" + String(repeating: "{% endif %}", count: 20)
        let hostile = [
            "{{ " + String(repeating: "(", count: 20_000) + "1" + String(repeating: ")", count: 20_000) + " }}",
            "{{ " + String(repeating: "1 + ", count: 20_000) + "1 }}",
            "{{ " + String(repeating: "not ", count: 20_000) + "x }}",
            "{{ " + String(repeating: "-", count: 20_000) + "1 }}",
            String(repeating: "{% if true %}", count: 20_000),
        ]
        // When parsing them
        // Then moderate nesting works and extreme nesting is a syntax error, not a stack overflow
        #expect(try ChatTemplate(source: allowed).render(context: [:]) == "deep")
        for source in hostile {
            #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: source) }
        }
    }

    @Test func runawayRenderingHitsBudgets() throws {
        // Given templates that recurse forever, loop too long, or grow a string exponentially
        let recursion = "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"
        let loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
        let growth = "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"
        // When rendering
        // Then each stops with a runtime error instead of hanging or exhausting memory
        for source in [recursion, loops, growth, "{{ 'x' * 100000000 }}"] {
            #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: source).render(context: [:]) }
        }
    }

    @Test func rangeIsCapped() throws {
        // Given ranges just within and beyond the cap
        // When rendering
        // Then 100k items are fine and a million are refused
        #expect(try ChatTemplate(source: "{{ range(100000)|length }}").render(context: [:]) == "100000")
        #expect(throws: ChatTemplateError.runtime(message: "range() of 1000000 items exceeds the limit of 100000 (line 1, column 1)")) {
            try ChatTemplate(source: "{{ range(1000000)|length }}").render(context: [:])
        }
    }

    // MARK: Values

    @Test func jsonRoundTripsWithKeyOrder() throws {
        // Given JSON with keys out of alphabetical order, escapes and a surrogate pair
        let json = #"{"z": 1, "a": [true, null, 2.5, "\u00e9\ud83d\ude00\n"], "m": {}}"#
        // When parsed and serialized back through tojson
        let value = try TemplateValue(json: json)
        let output = try ChatTemplate(source: "{{ v|tojson }}").render(context: ["v": value])
        // Then the order and the values survive, printed as Python's json.dumps prints them
        #expect(output == "{\"z\": 1, \"a\": [true, null, 2.5, \"é😀\\n\"], \"m\": {}}")
        #expect(throws: ChatTemplateError.self) { try TemplateValue(json: "{\"a\": }") }
    }

    @Test func strftimeNowFormatsTheRenderInstant() throws {
        // Given a fixed instant, mid-July in every time zone
        let date = Date(timeIntervalSince1970: 1_721_044_800) // 2024-07-15 12:00:00 UTC
        let local = Calendar(identifier: .gregorian).dateComponents([.day, .hour, .minute], from: date)
        let template = try ChatTemplate(source: "{{ strftime_now('%d %b %Y | %B %H:%M %%') }}")
        // When rendering with that instant, as Llama 3.x templates print today's date
        let output = try template.render(context: [:], now: date)
        // Then the directives expand like Python's strftime in the local time zone
        let expected = String(format: "%02d Jul 2024 | July %02d:%02d %%", local.day!, local.hour!, local.minute!)
        #expect(output == expected)
    }
}
