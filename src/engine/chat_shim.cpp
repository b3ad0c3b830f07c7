// rollama's shim around llama.cpp's chat code (common/chat.h): a model's Jinja chat template
// rendered with messages, tools and thinking as llama-server renders it, the grammar and
// triggers that constrain tool calls and JSON schemas, and the parser that splits a reply
// into content, reasoning and tool calls.
//
// Every function takes and returns plain C types or JSON strings. Strings it returns are
// allocated here and freed with rollama_chat_string_free. No C++ exception crosses the
// boundary: each one becomes a returned error message.

#include "chat.h"
#include "log.h"
#include "peg-parser.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

char * copy_string(const std::string & text) {
    char * copy = static_cast<char *>(std::malloc(text.size() + 1));
    if (copy != nullptr) {
        std::memcpy(copy, text.data(), text.size());
        copy[text.size()] = '\0';
    }
    return copy;
}

// Runs `body`, which stores its JSON answer in `*out`; an exception becomes its message in
// `*out` and a return of 1.
template <typename Body> int guarded(char ** out, Body body) {
    *out = nullptr;
    try {
        *out = copy_string(body());
        return *out != nullptr ? 0 : 2;
    } catch (const std::exception & e) {
        *out = copy_string(e.what());
    } catch (...) {
        *out = copy_string("unknown C++ exception in llama.cpp's chat code");
    }
    return 1;
}

// The lazy grammar's triggers as llama.cpp's sampler takes them (common/sampling.cpp):
// regular expressions, and tokens whose text the caller tokenizes.
void put_triggers(common_json & out, const std::vector<common_grammar_trigger> & triggers) {
    common_json patterns = common_json::array();
    common_json tokens   = common_json::array();
    for (const auto & trigger : triggers) {
        switch (trigger.type) {
            case COMMON_GRAMMAR_TRIGGER_TYPE_WORD:
                patterns.push_back(regex_escape(trigger.value));
                break;
            case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN:
                patterns.push_back(trigger.value);
                break;
            case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: {
                std::string anchored = "^$";
                if (!trigger.value.empty()) {
                    anchored = (trigger.value.front() != '^' ? "^" : "") + trigger.value +
                               (trigger.value.back() != '$' ? "$" : "");
                }
                patterns.push_back(anchored);
                break;
            }
            case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN:
                tokens.push_back(trigger.value);
                break;
        }
    }
    out["trigger_patterns"] = patterns;
    out["trigger_tokens"]   = tokens;
}

}  // namespace

struct rollama_chat_parser {
    common_chat_parser_params params;
};

extern "C" {

void rollama_chat_string_free(char * text) {
    std::free(text);
}

// Silences llama.cpp's common log (the chat code's warnings), which otherwise goes to stderr.
void rollama_chat_log_off(void) {
    common_log_pause(common_log_main());
}

// The templates of a model: `source` is its Jinja chat template, `bos` and `eos` the text of
// its begin and end tokens. Null on failure, with the reason in `*error`.
common_chat_templates * rollama_chat_templates_new(const char * source, const char * bos, const char * eos,
                                                   char ** error) {
    *error = nullptr;
    try {
        if (source == nullptr || source[0] == '\0') {
            *error = copy_string("the chat template is empty");
            return nullptr;
        }
        return common_chat_templates_init(nullptr, source, bos != nullptr ? bos : "", eos != nullptr ? eos : "")
            .release();
    } catch (const std::exception & e) {
        *error = copy_string(e.what());
    } catch (...) {
        *error = copy_string("unknown C++ exception in llama.cpp's chat code");
    }
    return nullptr;
}

void rollama_chat_templates_free(common_chat_templates * templates) {
    common_chat_templates_free(templates);
}

// Renders a chat. `request` is a JSON object: `messages` (OpenAI's shape), `tools` (OpenAI's
// shape), `tool_choice` ("auto", "required", "none"), `parallel_tool_calls`,
// `enable_thinking`, `json_schema`, `add_generation_prompt`. The answer is a JSON object with
// the prompt, the grammar and its triggers, extra stops, tokens to keep in the output, and
// what the reply parser needs.
int rollama_chat_templates_apply(const common_chat_templates * templates, const char * request, char ** out) {
    return guarded(out, [&] {
        const common_json body = common_json::parse(request);
        common_chat_templates_inputs inputs;
        inputs.messages = common_chat_msgs_parse_oaicompat(body.at("messages"));
        if (body.contains("tools") && body.at("tools").is_array() && body.at("tools").size() > 0) {
            inputs.tools = common_chat_tools_parse_oaicompat(body.at("tools"));
        }
        inputs.tool_choice = common_chat_tool_choice_parse_oaicompat(body.value("tool_choice", "auto"));
        inputs.parallel_tool_calls   = body.value("parallel_tool_calls", true);
        inputs.add_generation_prompt = body.value("add_generation_prompt", true);
        inputs.enable_thinking       = body.value("enable_thinking", true);
        inputs.reasoning_format      = COMMON_REASONING_FORMAT_DEEPSEEK;
        if (body.contains("json_schema") && !body.at("json_schema").is_null()) {
            inputs.json_schema = body.at("json_schema").dump();
        }
        if (body.contains("chat_template_kwargs") && body.at("chat_template_kwargs").is_object()) {
            for (const auto & [key, value] : body.at("chat_template_kwargs").items()) {
                inputs.chat_template_kwargs[key] = value.dump();
            }
        }
        const common_chat_params params = common_chat_templates_apply(templates, inputs);
        common_json answer = common_json::object();
        answer["prompt"]             = params.prompt;
        answer["format"]             = static_cast<int>(params.format);
        answer["format_name"]        = std::string(common_chat_format_name(params.format));
        answer["grammar"]            = params.grammar;
        answer["grammar_lazy"]       = params.grammar_lazy;
        answer["generation_prompt"]  = params.generation_prompt;
        answer["parser"]             = params.parser;
        answer["preserved_tokens"]   = params.preserved_tokens;
        answer["additional_stops"]   = params.additional_stops;
        put_triggers(answer, params.grammar_triggers);
        return answer.dump();
    });
}

// A parser for the replies to one rendered chat. `syntax` is a JSON object with `format`,
// `parser` and `generation_prompt` as rollama_chat_templates_apply gave them, and
// `parse_reasoning`. Null on failure, with the reason in `*error`.
rollama_chat_parser * rollama_chat_parser_new(const char * syntax, char ** error) {
    *error = nullptr;
    try {
        const common_json body = common_json::parse(syntax);
        auto parser = std::make_unique<rollama_chat_parser>();
        parser->params.format = static_cast<common_chat_format>(body.value("format", 0));
        parser->params.reasoning_format =
            body.value("parse_reasoning", true) ? COMMON_REASONING_FORMAT_DEEPSEEK : COMMON_REASONING_FORMAT_NONE;
        parser->params.generation_prompt = body.value("generation_prompt", "");
        parser->params.parse_tool_calls  = body.value("parse_tool_calls", true);
        const std::string arena = body.value("parser", "");
        if (!arena.empty()) {
            parser->params.parser.load(arena);
        }
        return parser.release();
    } catch (const std::exception & e) {
        *error = copy_string(e.what());
    } catch (...) {
        *error = copy_string("unknown C++ exception in llama.cpp's chat code");
    }
    return nullptr;
}

void rollama_chat_parser_free(rollama_chat_parser * parser) {
    delete parser;
}

// The reply so far (`partial`) or whole, as a JSON object: `content`, `reasoning_content`
// and `tool_calls` ([{"name", "arguments" (a JSON text), "id"}]).
int rollama_chat_parser_parse(const rollama_chat_parser * parser, const char * text, bool partial, char ** out) {
    return guarded(out, [&] {
        const common_chat_msg message = common_chat_parse(text, partial, parser->params);
        common_json answer     = common_json::object();
        answer["content"]           = message.content;
        answer["reasoning_content"] = message.reasoning_content;
        common_json calls           = common_json::array();
        for (const auto & call : message.tool_calls) {
            common_json item  = common_json::object();
            item["name"]      = call.name;
            item["arguments"] = call.arguments;
            item["id"]        = call.id;
            calls.push_back(item);
        }
        answer["tool_calls"] = calls;
        return answer.dump();
    });
}

}  // extern "C"
