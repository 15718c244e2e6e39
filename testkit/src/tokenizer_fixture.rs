//! The tokenizer fixtures (tests/fixtures/tokenizer/*.json, written by
//! scripts/gen-tokenizer-fixtures.py): loading them, and the chat check both
//! vocabularies' tests run.

use std::path::Path;

use serde_json::Value;
use wgqa::model::{ChatMessage, ChatTemplate, Tokenizer};

/// The fixture `tests/fixtures/tokenizer/{name}.json`.
pub fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ lies in the repository")
        .join(format!("tests/fixtures/tokenizer/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture file")).expect("fixture JSON")
}

/// A fixture's array of token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("ids array").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

/// Every chat of `fixture` renders with `template` to the fixture's text,
/// which `tok` encodes to the fixture's ids.
pub fn check_chats(fixture: &Value, template: ChatTemplate, tok: &Tokenizer) {
    let chats = fixture["chats"].as_array().expect("chats");
    assert!(!chats.is_empty());
    for chat in chats {
        let messages: Vec<ChatMessage> = chat["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| ChatMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        let text = template.render(&messages, chat["add_generation_prompt"].as_bool().unwrap());
        assert_eq!(text, chat["text"].as_str().unwrap(), "rendering of {messages:?}");
        assert_eq!(tok.encode(&text).unwrap(), ids(&chat["ids"]), "ids of {text:?}");
    }
}
