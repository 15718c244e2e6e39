//! Generation options from a plain JS object, each field checked by name.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use super::invalid;
use crate::model::{GenerateOptions, SamplerConfig};

/// Tokens generated when `maxTokens` is not given.
const DEFAULT_MAX_TOKENS: usize = 128;

/// `{ maxTokens, temperature, topK, topP, seed, chat }`, all optional:
/// greedy, `DEFAULT_MAX_TOKENS` tokens, plain prompt. `undefined`/`null`
/// means all defaults; the sampler validates the values themselves.
pub(super) fn parse_generate_options(prompt: String, options: &JsValue) -> Result<GenerateOptions, JsError> {
    let greedy = SamplerConfig::greedy();
    let number = |name: &str| -> Result<Option<f64>, JsError> {
        match field(options, name)? {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| invalid(format!("{name} must be a number"))),
        }
    };
    let count = |name: &str| -> Result<Option<usize>, JsError> {
        match number(name)? {
            None => Ok(None),
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as usize)),
            Some(n) => Err(invalid(format!("{name} must be a whole number >= 0, got {n}"))),
        }
    };
    let chat = match field(options, "chat")? {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| invalid("chat must be true or false".into()))?,
    };
    let sampler = SamplerConfig {
        temperature: number("temperature")?.map_or(greedy.temperature, |t| t as f32),
        top_k: count("topK")?.unwrap_or(greedy.top_k),
        top_p: number("topP")?.map_or(greedy.top_p, |p| p as f32),
        seed: count("seed")?.map_or(greedy.seed, |s| s as u64),
    };
    sampler.validate()?;
    Ok(GenerateOptions {
        prompt,
        chat,
        sampler,
        max_tokens: Some(count("maxTokens")?.unwrap_or(DEFAULT_MAX_TOKENS)),
        stop_strings: Vec::new(),
    })
}

/// `options[name]`, or `None` when absent; throws when `options` is not an object.
fn field(options: &JsValue, name: &str) -> Result<Option<JsValue>, JsError> {
    if options.is_undefined() || options.is_null() {
        return Ok(None);
    }
    if !options.is_object() {
        return Err(invalid("generation options must be an object".into()));
    }
    let value =
        Reflect::get(options, &name.into()).map_err(|_| invalid(format!("cannot read option {name}")))?;
    Ok((!value.is_undefined() && !value.is_null()).then_some(value))
}
