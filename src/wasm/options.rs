//! Options from plain JS objects, each field checked by name: generation
//! options, and the load options of `ModelCore.fromBytes` (KV cache size
//! and storage, and a conversion across the GQA spectrum).

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::invalid;
use crate::convert::{ConvertOptions, KvTarget, Method};
use crate::model::{GenerateOptions, SamplerConfig};
use crate::DType;

/// Tokens generated when `maxTokens` is not given.
const DEFAULT_MAX_TOKENS: usize = 128;

/// `{ maxTokens, temperature, topK, topP, seed, chat }`, all optional:
/// greedy, `DEFAULT_MAX_TOKENS` tokens, plain prompt. `undefined`/`null`
/// means all defaults; the sampler validates the values themselves.
pub(super) fn parse_generate_options(prompt: String, options: &JsValue) -> Result<GenerateOptions, JsError> {
    let o = Fields::new(options, "generation options")?;
    let greedy = SamplerConfig::greedy();
    let chat = match o.get("chat")? {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| invalid("chat must be true or false".into()))?,
    };
    let sampler = SamplerConfig {
        temperature: o.number("temperature")?.map_or(greedy.temperature, |t| t as f32),
        top_k: o.count("topK")?.unwrap_or(greedy.top_k),
        top_p: o.number("topP")?.map_or(greedy.top_p, |p| p as f32),
        seed: o.count("seed")?.map_or(greedy.seed, |s| s as u64),
    };
    sampler.validate()?;
    Ok(GenerateOptions {
        prompt,
        chat,
        sampler,
        max_tokens: Some(o.count("maxTokens")?.unwrap_or(DEFAULT_MAX_TOKENS)),
        stop_strings: Vec::new(),
    })
}

/// How `ModelCore.fromBytes` loads a model.
pub(super) struct LoadOptions {
    /// KV-cache tokens; `None` for the default.
    pub kv_tokens: Option<u32>,
    /// KV-cache storage of every layer.
    pub kv_type: DType,
    /// A conversion to apply first; `None` loads the model as it is.
    pub convert: Option<ConvertOptions>,
    /// Calibration tokens kept (`calibrationTokens`), for `convert`.
    pub calibration_tokens: usize,
}

/// The load options' names, for the error an unknown one gets.
const LOAD_OPTIONS: [&str; 9] = [
    "kvTokens",
    "kvType",
    "kvHeads",
    "kvHeadsPerLayer",
    "kvBudget",
    "method",
    "seed",
    "calibrationTokens",
    "sensitivityTokens",
];

/// Calibration tokens (of `texts/calibration.txt`) a browser conversion uses
/// unless told: fewer than the CLI's 512, since wasm runs the CPU model on
/// one thread (the README gives the times).
const BROWSER_CALIBRATION_TOKENS: usize = 128;
/// Leading calibration tokens scored per layer for `kvBudget`, unless told.
const BROWSER_SENSITIVITY_TOKENS: usize = 32;

/// A number (the KV-cache tokens, as before options existed), or `{ kvTokens,
/// kvType, kvHeads | kvHeadsPerLayer | kvBudget, method, seed,
/// calibrationTokens, sensitivityTokens }`, all optional. The conversion's
/// own checks (divisors, the budget's range, the list's length) run in
/// `convert::check` against the model, as the CLI's do.
pub(super) fn parse_load_options(options: &JsValue) -> Result<LoadOptions, JsError> {
    let mut load = LoadOptions {
        kv_tokens: None,
        kv_type: DType::F16,
        convert: None,
        calibration_tokens: BROWSER_CALIBRATION_TOKENS,
    };
    if let Some(n) = options.as_f64() {
        load.kv_tokens = Some(whole("kvTokens", n)? as u32);
        return Ok(load);
    }
    let o = Fields::new(options, "load options")?;
    if let Some(obj) = options.dyn_ref::<Object>() {
        for key in Object::keys(obj).iter().filter_map(|k| k.as_string()) {
            if !LOAD_OPTIONS.contains(&key.as_str()) {
                return Err(invalid(format!("unknown load option {key}: use {}", LOAD_OPTIONS.join(", "))));
            }
        }
    }
    load.kv_tokens = o.count("kvTokens")?.map(|n| n as u32);
    if let Some(v) = o.get("kvType")? {
        let name = v.as_string().unwrap_or_else(|| format!("{v:?}"));
        load.kv_type = DType::from_name(&name)
            .ok_or_else(|| invalid(format!("kvType must be \"f16\", \"int8\" or \"f32\", got {name:?}")))?;
    }
    let target = match (o.count("kvHeads")?, o.get("kvHeadsPerLayer")?, o.count("kvBudget")?) {
        (None, None, None) => None,
        (Some(g), None, None) => Some(KvTarget::Uniform(g as u32)),
        (None, Some(list), None) => Some(KvTarget::PerLayer(count_list("kvHeadsPerLayer", &list)?)),
        (None, None, Some(b)) => Some(KvTarget::Budget(b as u64)),
        _ => return Err(invalid("give one of kvHeads, kvHeadsPerLayer and kvBudget, not several".into())),
    };
    let method = match o.get("method")? {
        None => None,
        Some(v) => Some(v.as_string().ok_or_else(|| invalid("method must be a string".into()))?.parse()?),
    };
    let seed = o.count("seed")?;
    let sensitivity = o.count("sensitivityTokens")?;
    let calibration = o.count("calibrationTokens")?;
    let Some(target) = target else {
        if method.is_some() || seed.is_some() || sensitivity.is_some() || calibration.is_some() {
            return Err(invalid(
                "method, seed, calibrationTokens and sensitivityTokens need kvHeads, kvHeadsPerLayer or kvBudget"
                    .into(),
            ));
        }
        return Ok(load);
    };
    let mut opts = ConvertOptions::new(target, method.unwrap_or(Method::Mean));
    opts.seed = seed.unwrap_or(0) as u64;
    opts.sensitivity_tokens = sensitivity.unwrap_or(BROWSER_SENSITIVITY_TOKENS);
    load.calibration_tokens = calibration.unwrap_or(BROWSER_CALIBRATION_TOKENS);
    load.convert = Some(opts);
    Ok(load)
}

/// `n` as a whole number from 0 to `u32::MAX`, or an error naming `name`.
fn whole(name: &str, n: f64) -> Result<usize, JsError> {
    if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 {
        Ok(n as usize)
    } else {
        Err(invalid(format!("{name} must be a whole number >= 0, got {n}")))
    }
}

/// Whole numbers from an array (or a typed array: anything `Array.from` takes).
fn count_list(name: &str, value: &JsValue) -> Result<Vec<u32>, JsError> {
    if !value.is_object() {
        return Err(invalid(format!("{name} must be an array of whole numbers")));
    }
    Array::from(value)
        .iter()
        .map(|v| {
            let n = v.as_f64().ok_or_else(|| invalid(format!("{name} must be an array of whole numbers")))?;
            Ok(whole(name, n)? as u32)
        })
        .collect()
}

/// The fields of an options object (`undefined`/`null`: none given).
struct Fields<'a> {
    options: &'a JsValue,
}

impl<'a> Fields<'a> {
    /// Throws when `options` is given but not an object; `what` names it.
    fn new(options: &'a JsValue, what: &str) -> Result<Fields<'a>, JsError> {
        if !options.is_undefined() && !options.is_null() && !options.is_object() {
            return Err(invalid(format!("{what} must be an object")));
        }
        Ok(Fields { options })
    }

    /// `options[name]`, or `None` when absent.
    fn get(&self, name: &str) -> Result<Option<JsValue>, JsError> {
        if self.options.is_undefined() || self.options.is_null() {
            return Ok(None);
        }
        let value = Reflect::get(self.options, &name.into())
            .map_err(|_| invalid(format!("cannot read option {name}")))?;
        Ok((!value.is_undefined() && !value.is_null()).then_some(value))
    }

    fn number(&self, name: &str) -> Result<Option<f64>, JsError> {
        match self.get(name)? {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| invalid(format!("{name} must be a number"))),
        }
    }

    /// A whole number from 0 to `u32::MAX`.
    fn count(&self, name: &str) -> Result<Option<usize>, JsError> {
        self.number(name)?.map(|n| whole(name, n)).transpose()
    }
}
