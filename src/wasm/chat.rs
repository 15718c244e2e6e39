//! Chat messages from JS (`[{ role, content }]`), checked before a template
//! renders them: the templates write any role as given, so a typo would
//! otherwise become a turn the model was never trained on.

use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::*;

use super::invalid;
use crate::model::{ChatMessage, ChatTemplate};

const ROLES: [&str; 3] = ["system", "user", "assistant"];

/// The messages of a conversation the model should answer: a non-empty
/// array of `{ role, content }` with string contents, roles among `ROLES`,
/// a system message only first, and a user message last.
pub(super) fn parse_messages(messages: &JsValue) -> Result<Vec<ChatMessage>, JsError> {
    if !Array::is_array(messages) {
        return Err(invalid("messages must be an array of { role, content } objects".into()));
    }
    let items = Array::from(messages);
    if items.length() == 0 {
        return Err(invalid("messages is empty: give at least one { role: \"user\", content }".into()));
    }
    let parsed = items.iter().enumerate().map(|(i, m)| message(i, &m)).collect::<Result<Vec<_>, _>>()?;
    if let Some(i) = parsed.iter().skip(1).position(|m| m.role == "system") {
        return Err(invalid(format!("messages[{}]: a system message may only come first", i + 1)));
    }
    let last = parsed.len() - 1;
    if parsed[last].role != "user" {
        return Err(invalid(format!(
            "messages[{last}] is {:?}: the last message must be the user's, for the model to answer",
            parsed[last].role
        )));
    }
    Ok(parsed)
}

fn message(i: usize, m: &JsValue) -> Result<ChatMessage, JsError> {
    if !m.is_object() {
        return Err(invalid(format!("messages[{i}] must be a {{ role, content }} object")));
    }
    let text = |key: &str| -> Result<String, JsError> {
        Reflect::get(m, &key.into())
            .ok()
            .and_then(|v| v.as_string())
            .ok_or_else(|| invalid(format!("messages[{i}].{key} must be a string")))
    };
    let role = text("role")?;
    if !ROLES.contains(&role.as_str()) {
        return Err(invalid(format!(
            "messages[{i}].role must be \"system\", \"user\" or \"assistant\", got {role:?}"
        )));
    }
    Ok(ChatMessage::new(role, text("content")?))
}

/// The template family's name as JS sees it.
pub(super) fn template_name(t: &ChatTemplate) -> &'static str {
    match t {
        ChatTemplate::ChatMl { .. } => "chatml",
        ChatTemplate::Llama3 { .. } => "llama3",
        ChatTemplate::Gemma => "gemma",
    }
}
