//! Chat prompts in the format a model declares in `tokenizer.chat_template`.
//!
//! The template is a Jinja program; wgqa does not run Jinja. It recognises the
//! families it can render exactly (ChatML, Llama-3 and Gemma), takes the few
//! constants that vary between models (a default system prompt, a date) from
//! the template text, and refuses anything else rather than guess. A file
//! with no template but Gemma's turn tokens (some Gemma 3 GGUFs) gets Gemma's.
//!
//! ```no_run
//! # fn demo() -> wgqa::Result<()> {
//! use wgqa::model::{ChatMessage, ChatTemplate, Gguf, Tokenizer};
//! let gguf = Gguf::open(wgqa::model::DEFAULT_MODEL)?;
//! let prompt = ChatTemplate::from_gguf(&gguf)?.render(&[ChatMessage::user("Hi!")], true);
//! let ids = Tokenizer::from_gguf(&gguf)?.encode(&prompt)?;
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::model::{Gguf, MetaArray};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant` (any role is written as given).
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: role.into(), content: content.into() }
    }
    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new("assistant", content)
    }
}

/// A chat format wgqa can render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n` per turn (SmolLM2, Qwen2).
    /// `default_system` is the system prompt the template writes when the
    /// conversation does not start with one.
    ChatMl { default_system: Option<String> },
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` per
    /// turn. Llama 3.1+ templates always open with a system turn that starts
    /// with `preamble` (knowledge cutoff and date).
    Llama3 { preamble: Option<String> },
    /// `<start_of_turn>role\ncontent<end_of_turn>\n` per turn, the assistant
    /// named `model`, contents trimmed (Gemma 2 and 3). Gemma has no system
    /// role: a leading system message opens the first user turn, followed by
    /// a blank line. Roles are written as given; Gemma's template would
    /// refuse turns that do not alternate user/model.
    Gemma,
}

impl ChatTemplate {
    /// The template in `tokenizer.chat_template`; without one, Gemma's when
    /// the vocabulary has Gemma's turn tokens.
    pub fn from_gguf(gguf: &Gguf) -> Result<ChatTemplate> {
        const KEY: &str = "tokenizer.chat_template";
        if gguf.get(KEY).is_none() {
            let tokens = match gguf.opt_array("tokenizer.ggml.tokens")? {
                Some(MetaArray::Str(tokens)) => tokens.as_slice(),
                _ => &[],
            };
            let has = |t: &str| tokens.iter().any(|x| x == t);
            if has(GEMMA_START) && has(GEMMA_END) {
                return Ok(ChatTemplate::Gemma);
            }
        }
        ChatTemplate::parse(gguf.get_str(KEY)?)
    }

    /// Recognise a Jinja chat template.
    pub fn parse(template: &str) -> Result<ChatTemplate> {
        if template.contains("<|im_start|>") {
            let default_system = literal_after(template, "<|im_start|>system", &["<|im_end|>"]);
            return Ok(ChatTemplate::ChatMl { default_system });
        }
        if template.contains(GEMMA_START) {
            return Ok(ChatTemplate::Gemma);
        }
        if template.contains("<|start_header_id|>") {
            let preamble = match literal_after(template, "Cutting Knowledge Date: ", &["\\n", "\n"]) {
                Some(cutoff) => {
                    // The template's fallback date: a Jinja renderer without
                    // `strftime_now` (like this one) writes it.
                    let date =
                        quoted_after(template, "date_string = ").unwrap_or_else(|| "26 Jul 2024".into());
                    Some(format!("Cutting Knowledge Date: {cutoff}\nToday Date: {date}\n\n"))
                }
                None => None,
            };
            return Ok(ChatTemplate::Llama3 { preamble });
        }
        let head: String = template.chars().take(80).collect();
        Err(Error::UnsupportedChatTemplate(format!("{head:?}...")))
    }

    /// The prompt text for `messages`; with `add_generation_prompt` it ends
    /// where the assistant's reply begins. BOS is not written here: encode
    /// with [`super::Tokenizer::encode`], which adds it when the model wants.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        let starts_with_system = messages.first().is_some_and(|m| m.role == "system");
        let mut out = String::new();
        match self {
            ChatTemplate::ChatMl { default_system } => {
                let turn = |out: &mut String, role: &str, content: &str| {
                    out.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
                };
                if let (false, Some(system)) = (starts_with_system, default_system) {
                    turn(&mut out, "system", system);
                }
                for m in messages {
                    turn(&mut out, &m.role, &m.content);
                }
                if add_generation_prompt {
                    out.push_str("<|im_start|>assistant\n");
                }
            }
            ChatTemplate::Llama3 { preamble } => {
                // Llama-3 templates trim every message.
                let turn = |out: &mut String, role: &str, content: &str| {
                    out.push_str(&format!(
                        "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"
                    ));
                };
                let mut rest = messages;
                if let Some(preamble) = preamble {
                    let system = match starts_with_system {
                        true => {
                            rest = &messages[1..];
                            messages[0].content.trim()
                        }
                        false => "",
                    };
                    turn(&mut out, "system", &format!("{preamble}{system}"));
                }
                for m in rest {
                    turn(&mut out, &m.role, m.content.trim());
                }
                if add_generation_prompt {
                    out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                }
            }
            ChatTemplate::Gemma => {
                let (system, rest) = match starts_with_system {
                    true => (format!("{}\n\n", messages[0].content), &messages[1..]),
                    false => (String::new(), messages),
                };
                for (i, m) in rest.iter().enumerate() {
                    let role = if m.role == "assistant" { "model" } else { &m.role };
                    let prefix = if i == 0 { system.as_str() } else { "" };
                    out.push_str(&format!("{GEMMA_START}{role}\n{prefix}{}{GEMMA_END}\n", m.content.trim()));
                }
                if add_generation_prompt {
                    out.push_str(&format!("{GEMMA_START}model\n"));
                }
            }
        }
        out
    }
}

/// Gemma's turn delimiters, control tokens of its vocabulary.
const GEMMA_START: &str = "<start_of_turn>";
const GEMMA_END: &str = "<end_of_turn>";

/// Text of a string literal in `template` that follows `marker` (after an
/// optional newline) up to the first of `ends`, with Jinja escapes undone
/// (a template may hold a newline as itself or as `\n`); `None` if no
/// such literal is constant (it contains a quote, i.e. it is built from
/// variables).
fn literal_after(template: &str, marker: &str, ends: &[&str]) -> Option<String> {
    template.match_indices(marker).find_map(|(at, _)| {
        let rest = &template[at + marker.len()..];
        let rest = rest.strip_prefix("\\n").or_else(|| rest.strip_prefix('\n')).unwrap_or(rest);
        let raw = &rest[..ends.iter().filter_map(|e| rest.find(e)).min()?];
        let text = unescape(raw)?;
        (!text.is_empty()).then_some(text)
    })
}

/// The string literal right after `marker`, e.g. `"26 Jul 2024"`.
fn quoted_after(template: &str, marker: &str) -> Option<String> {
    template.match_indices(marker).find_map(|(at, _)| {
        let rest = &template[at + marker.len()..];
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &rest[1..];
        unescape(&body[..body.find(quote)?])
    })
}

/// Undo Jinja string escapes; `None` at an unescaped quote or an expression
/// boundary, which means the text is not one constant literal.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                't' => '\t',
                other => other,
            }),
            '\'' | '"' | '{' | '}' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_default_system_prompt() {
        let t = ChatTemplate::parse(SMOLLM2).unwrap();
        let system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
        assert_eq!(t, ChatTemplate::ChatMl { default_system: Some(system.into()) });
        assert_eq!(
            t.render(&[ChatMessage::user("Hi")], true),
            format!("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        );
        let own = [ChatMessage::system("Be brief."), ChatMessage::user("Hi")];
        assert_eq!(
            t.render(&own, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
    }

    #[test]
    fn chatml_without_default_and_escaped_newlines() {
        let plain = r"{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}{% endfor %}";
        assert_eq!(ChatTemplate::parse(plain).unwrap(), ChatTemplate::ChatMl { default_system: None });
        let qwen = r"{%- if tools %}{{- '<|im_start|>system\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}";
        let default_system =
            Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.".into());
        assert_eq!(ChatTemplate::parse(qwen).unwrap(), ChatTemplate::ChatMl { default_system });
    }

    #[test]
    fn llama3_with_and_without_date_preamble() {
        let v30 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}";
        let t = ChatTemplate::parse(v30).unwrap();
        assert_eq!(
            t.render(&[ChatMessage::user(" Hi ")], true),
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        let v32 = r#"{%- set date_string = "26 Jul 2024" %}{{- "Cutting Knowledge Date: December 2023\n" }}{{- "Today Date: " + date_string + "\n\n" }}<|start_header_id|>"#;
        let t = ChatTemplate::parse(v32).unwrap();
        assert_eq!(
            t.render(&[ChatMessage::system("Be kind."), ChatMessage::user("Hi")], false),
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe kind.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        );
    }

    #[test]
    fn gemma_folds_the_system_message_into_the_first_user_turn() {
        let gemma3 = "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- endif -%}{{ '<start_of_turn>' + role + '\n' }}";
        let t = ChatTemplate::parse(gemma3).unwrap();
        assert_eq!(t, ChatTemplate::Gemma);
        let chat = [
            ChatMessage::system("Be brief."),
            ChatMessage::user(" Hi "),
            ChatMessage::assistant("Hello."),
            ChatMessage::user("Bye"),
        ];
        assert_eq!(
            t.render(&chat, true),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(t.render(&chat[1..2], false), "<start_of_turn>user\nHi<end_of_turn>\n");
        assert_eq!(t.render(&chat[..1], true), "<start_of_turn>model\n");
    }

    #[test]
    fn other_templates_are_refused() {
        let err = ChatTemplate::parse("{{ bos_token }}[INST] {{ message }} [/INST]").unwrap_err();
        assert!(matches!(err, Error::UnsupportedChatTemplate(_)));
        assert!(err.to_string().contains("[INST]"), "{err}");
    }
}
