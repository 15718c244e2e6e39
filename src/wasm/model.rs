//! `ModelCore`: a llama GGUF on the GPU with its tokenizer, generating text
//! token by token into a JS callback. The npm package's `Model` (in
//! `web/npm/model.js`) wraps it with downloads, streams and chat.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use super::chat::{parse_messages, template_name};
use super::context::WasmContext;
use super::options::{parse_generate_options, parse_load_options, LoadOptions};
use super::{invalid, rejection};
use crate::convert::convert;
use crate::model::{
    ChatTemplate, GenerationStats, Generator, Gguf, LlamaConfig, LlamaModel, StopReason, Tokenizer,
};
use crate::{AttentionConfig, GpuContext};

/// KV-cache tokens when the caller does not say: enough for a chat, and
/// ~47 MB for SmolLM2-135M's f16 cache.
const DEFAULT_KV_TOKENS: u32 = 2048;

/// The calibration text of conversions (`method: 'calibrated'`, `kvBudget`):
/// the file `wgqa convert` reads by default.
const CALIBRATION_TEXT: &str = include_str!("../../texts/calibration.txt");

/// A loaded model. Create with `ModelCore.fromBytes()` (the npm package's
/// `Model.fromUrl()` downloads, caches and calls it).
#[wasm_bindgen(js_name = ModelCore)]
pub struct WasmModel {
    // Shared with the running generation's future, which holds the borrow
    // across GPU awaits; `stop()` and the getters never touch it.
    generator: Rc<RefCell<Generator>>,
    stop: Rc<Cell<bool>>,
    last: Rc<RefCell<Option<Stats>>>,
    template: Option<ChatTemplate>,
    layers: Vec<AttentionConfig>,
    context_length: u32,
    kv_capacity_tokens: f64,
    kv_capacity_bytes: f64,
}

/// A text's perplexity under the model, as `wgqa perplexity` reports it.
#[wasm_bindgen(getter_with_clone)]
#[derive(Clone)]
pub struct Perplexity {
    /// `exp` of the mean negative log-likelihood of each token after the first.
    pub perplexity: f64,
    /// Tokens scored: the text's tokens but the first.
    #[wasm_bindgen(js_name = scoredTokens)]
    pub scored_tokens: u32,
    /// K and V bytes one token takes in this model's cache, all layers.
    #[wasm_bindgen(js_name = kvBytesPerToken)]
    pub kv_bytes_per_token: f64,
    /// The KV-cache storage it was measured with: "f16", "int8" or "f32".
    #[wasm_bindgen(js_name = kvType)]
    pub kv_type: String,
}

/// What the last generation did and how fast.
#[wasm_bindgen(getter_with_clone)]
#[derive(Clone)]
pub struct Stats {
    #[wasm_bindgen(js_name = promptTokens)]
    pub prompt_tokens: u32,
    #[wasm_bindgen(js_name = generatedTokens)]
    pub generated_tokens: u32,
    /// Tokens the KV cache holds now (prompt plus fed-back tokens).
    #[wasm_bindgen(js_name = contextTokens)]
    pub context_tokens: u32,
    #[wasm_bindgen(js_name = prefillTokensPerSecond)]
    pub prefill_tokens_per_second: f64,
    #[wasm_bindgen(js_name = decodeTokensPerSecond)]
    pub decode_tokens_per_second: f64,
    #[wasm_bindgen(js_name = kvBytesInUse)]
    pub kv_bytes_in_use: f64,
    #[wasm_bindgen(js_name = kvCapacityBytes)]
    pub kv_capacity_bytes: f64,
    /// "eos", "max-tokens", "stop-string", "stopped" or "context-full".
    #[wasm_bindgen(js_name = stopReason)]
    pub stop_reason: String,
}

impl From<&GenerationStats> for Stats {
    fn from(s: &GenerationStats) -> Stats {
        let stop_reason = match s.stop {
            Some(StopReason::Eos(_)) => "eos",
            Some(StopReason::MaxTokens) => "max-tokens",
            Some(StopReason::StopString { .. }) => "stop-string",
            Some(StopReason::Cancelled) => "stopped",
            None => "context-full",
        };
        Stats {
            prompt_tokens: s.prompt_tokens as u32,
            generated_tokens: s.generated_tokens as u32,
            context_tokens: (s.prompt_tokens + s.decode_steps) as u32,
            prefill_tokens_per_second: s.prefill_tokens_per_second(),
            decode_tokens_per_second: s.decode_tokens_per_second(),
            kv_bytes_in_use: s.kv_bytes_in_use as f64,
            kv_capacity_bytes: s.kv_capacity_bytes as f64,
            stop_reason: stop_reason.into(),
        }
    }
}

#[wasm_bindgen(js_class = ModelCore)]
impl WasmModel {
    /// Loads a GGUF from its bytes (copied into wasm memory; `bytes` is left
    /// as it was, so one download can make several variants). `options` is
    /// the KV-cache tokens (a number), or `{ kvTokens, kvType, kvHeads |
    /// kvHeadsPerLayer | kvBudget, method, seed, calibrationTokens,
    /// sensitivityTokens }`: `kvTokens` sizes the KV cache (default 2048, or
    /// the model's context if shorter), `kvType` stores it ("f16", the
    /// default, "int8" or "f32"), and a KV target converts the model first,
    /// as `wgqa convert` does (`method` "mean", the default, "first",
    /// "random" or "calibrated"; `kvBudget` in f16 KV bytes per token). The
    /// calibrated method and budgets run the model on the CPU over the first
    /// `calibrationTokens` (default 512, as the CLI) of the calibration
    /// text, which blocks the calling thread for minutes: call it in a Worker.
    /// Throws a readable `Error` for bad options before any work; one
    /// about the options or the conversion (not the file) is named
    /// "OptionsError".
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(ctx: &WasmContext, bytes: &Uint8Array, options: JsValue) -> Result<WasmModel, JsValue> {
        let options = parse_load_options(&options).map_err(options_error)?;
        Self::load(&ctx.ctx, bytes.to_vec(), options)
    }

    /// Perplexity of `text` (tokenized as the model does, in one window, as
    /// `wgqa perplexity` scores a text shorter than its window). Empties the
    /// KV cache first. Rejects with an `Error` for a text of fewer than 2
    /// tokens, one longer than the KV cache, or while the model is busy.
    // The borrow spans the GPU awaits on purpose, as in `generate`.
    #[allow(clippy::await_holding_refcell_ref)]
    pub fn perplexity(&self, text: String) -> Promise {
        let generator = self.generator.clone();
        let kv_type = self.layers.first().map_or("f16", |l| l.dtype.name()).to_string();
        let kv_bytes_per_token = self.kv_bytes_per_token(None);
        future_to_promise(async move {
            let mut generator = generator
                .try_borrow_mut()
                .map_err(|_| rejection("the model is busy: a generation or perplexity is running"))?;
            let tokens = generator.tokenizer().encode(&text).map_err(rejection)?;
            let capacity = generator.model().cache().capacity_tokens();
            if tokens.len() as u64 > capacity {
                return Err(rejection(format!(
                    "the text is {} tokens; the KV cache holds {capacity}: score a shorter text, \
                     or load the model with a larger kvTokens",
                    tokens.len()
                )));
            }
            generator.reset().map_err(rejection)?;
            let perplexity = generator.model_mut().perplexity(&tokens).await.map_err(rejection)?;
            let scored_tokens = tokens.len() as u32 - 1;
            Ok(Perplexity { perplexity, scored_tokens, kv_bytes_per_token, kv_type }.into())
        })
    }

    /// Generates after `prompt`, calling `onToken(text)` with each piece of
    /// text as it is decoded. `options`: `{ maxTokens, temperature, topK,
    /// topP, seed, chat }` (greedy, 128 tokens and no chat template unless
    /// given). Resolves to the run's `Stats`; rejects with an `Error` for
    /// bad options, a prompt that does not fit, or a second concurrent call.
    // The borrow spans the GPU awaits on purpose: it is what makes a second
    // concurrent call fail (try_borrow_mut) instead of interleaving steps.
    #[allow(clippy::await_holding_refcell_ref)]
    pub fn generate(
        &self,
        prompt: String,
        options: JsValue,
        #[wasm_bindgen(js_name = onToken)] on_token: Option<Function>,
    ) -> Result<Promise, JsError> {
        let opts = parse_generate_options(prompt, &options)?;
        let (generator, stop, last) = (self.generator.clone(), self.stop.clone(), self.last.clone());
        Ok(future_to_promise(async move {
            let mut generator =
                generator.try_borrow_mut().map_err(|_| rejection("a generation is already running"))?;
            let capacity = generator.model().cache().capacity_tokens();
            let prompt_len = generator.prompt_tokens(&opts).map_err(rejection)?.len() as u64;
            if prompt_len >= capacity {
                return Err(rejection(format!(
                    "the prompt is {prompt_len} tokens; the KV cache holds {capacity}, \
                     so it must be shorter than that"
                )));
            }
            stop.set(false);
            let on_text = |piece: &str| {
                if let Some(cb) = &on_token {
                    // A throwing callback should not abort the generation.
                    let _ = cb.call1(&JsValue::NULL, &piece.into());
                }
            };
            let result = generator.generate_until(&opts, on_text, || stop.get()).await;
            let stats = Stats::from(&result.map_err(rejection)?);
            *last.borrow_mut() = Some(stats.clone());
            Ok(stats.into())
        }))
    }

    /// Ends a running generation before its next token (its Promise then
    /// resolves with `stopReason` "stopped"); does nothing otherwise.
    pub fn stop(&self) {
        self.stop.set(true);
    }

    /// Empties the KV cache. Throws while a generation is running.
    pub fn reset(&self) -> Result<(), JsError> {
        let mut generator = self
            .generator
            .try_borrow_mut()
            .map_err(|_| invalid("cannot reset while a generation is running".into()))?;
        generator.reset()?;
        *self.last.borrow_mut() = None;
        Ok(())
    }

    /// The prompt the model's chat template makes of `messages` (an array
    /// of `{ role, content }`, roles "system", "user" or "assistant"),
    /// ending where the assistant's reply begins. Throws a readable `Error`
    /// for a malformed conversation or a model without a known template.
    #[wasm_bindgen(js_name = renderChat)]
    pub fn render_chat(&self, messages: JsValue) -> Result<String, JsError> {
        let template = self.template.as_ref().ok_or_else(|| {
            invalid("this model declares no chat template wgqa can render (ChatML, Llama-3 or Gemma)".into())
        })?;
        Ok(template.render(&parse_messages(&messages)?, true))
    }

    /// "chatml", "llama3" or "gemma"; `undefined` when the model has no
    /// template wgqa can render.
    #[wasm_bindgen(getter, js_name = chatTemplate)]
    pub fn chat_template(&self) -> Option<String> {
        self.template.as_ref().map(|t| template_name(t).into())
    }

    /// The last generation's stats, or `undefined` before the first (or after `reset`).
    #[wasm_bindgen(getter)]
    pub fn stats(&self) -> Option<Stats> {
        self.last.borrow().clone()
    }

    /// Query heads (of the first layer).
    #[wasm_bindgen(getter, js_name = qHeads)]
    pub fn q_heads(&self) -> u32 {
        self.layers.first().map_or(0, |l| l.q_heads)
    }

    /// KV heads of the first layer (as shipped, unless loaded converted).
    #[wasm_bindgen(getter, js_name = kvHeads)]
    pub fn kv_heads(&self) -> u32 {
        self.layers.first().map_or(0, |l| l.kv_heads)
    }

    /// KV heads of each layer (they differ under Variable GQA).
    #[wasm_bindgen(getter, js_name = kvHeadsPerLayer)]
    pub fn kv_heads_per_layer(&self) -> Vec<u32> {
        self.layers.iter().map(|l| l.kv_heads).collect()
    }

    /// KV-cache storage: "f16", "int8" or "f32".
    #[wasm_bindgen(getter, js_name = kvType)]
    pub fn kv_type(&self) -> String {
        self.layers.first().map_or("f16", |l| l.dtype.name()).into()
    }

    #[wasm_bindgen(getter, js_name = headDim)]
    pub fn head_dim(&self) -> u32 {
        self.layers.first().map_or(0, |l| l.head_dim)
    }

    #[wasm_bindgen(getter)]
    pub fn layers(&self) -> u32 {
        self.layers.len() as u32
    }

    /// Longest sequence the model was trained for.
    #[wasm_bindgen(getter, js_name = contextLength)]
    pub fn context_length(&self) -> u32 {
        self.context_length
    }

    #[wasm_bindgen(getter, js_name = kvCapacityTokens)]
    pub fn kv_capacity_tokens(&self) -> f64 {
        self.kv_capacity_tokens
    }

    #[wasm_bindgen(getter, js_name = kvCapacityBytes)]
    pub fn kv_capacity_bytes(&self) -> f64 {
        self.kv_capacity_bytes
    }

    /// Bytes of K and V one token takes over all layers in the model's KV
    /// storage: with the layers' own KV heads, or, given `kvHeads`, if every
    /// layer had that many (`qHeads` gives MHA, the shipped count GQA, 1 MQA).
    #[wasm_bindgen(js_name = kvBytesPerToken)]
    pub fn kv_bytes_per_token(&self, #[wasm_bindgen(js_name = kvHeads)] kv_heads: Option<u32>) -> f64 {
        let per_layer = |cfg: &AttentionConfig| {
            let kv_heads = kv_heads.unwrap_or(cfg.kv_heads);
            AttentionConfig { kv_heads, ..cfg.clone() }.kv_bytes_per_token()
        };
        self.layers.iter().map(per_layer).sum::<u64>() as f64
    }

    /// Bytes of K and V a sequence of `tokens` takes over all layers, with
    /// `kvHeads` KV heads in every layer (as loaded when not given);
    /// sliding-window layers count only their window's tokens.
    #[wasm_bindgen(js_name = kvBytesAt)]
    pub fn kv_bytes_at(&self, tokens: f64, #[wasm_bindgen(js_name = kvHeads)] kv_heads: Option<u32>) -> f64 {
        let tokens = tokens.max(0.0) as u64;
        let per_layer = |cfg: &AttentionConfig| {
            AttentionConfig { kv_heads: kv_heads.unwrap_or(cfg.kv_heads), ..cfg.clone() }.kv_bytes_for(tokens)
        };
        self.layers.iter().map(per_layer).sum::<u64>() as f64
    }

    /// Layers with a sliding window (their KV bytes stop growing at it).
    #[wasm_bindgen(getter, js_name = windowedLayers)]
    pub fn windowed_layers(&self) -> u32 {
        self.layers.iter().filter(|l| l.window.is_some()).count() as u32
    }

    /// The sliding window of the windowed layers, in tokens; `undefined` when none has one.
    #[wasm_bindgen(getter, js_name = slidingWindow)]
    pub fn sliding_window(&self) -> Option<u32> {
        self.layers.iter().find_map(|l| l.window)
    }
}

impl WasmModel {
    fn load(ctx: &GpuContext, bytes: Vec<u8>, options: LoadOptions) -> Result<WasmModel, JsValue> {
        let mut gguf = Gguf::from_vec(bytes).map_err(rejection)?;
        let tokenizer = Tokenizer::from_gguf(&gguf).map_err(rejection)?;
        // A model without a template still generates from plain prompts.
        let template = ChatTemplate::from_gguf(&gguf).ok();
        let config = LlamaConfig::from_gguf(&gguf).map_err(rejection)?;
        if let Some(mut opts) = options.convert {
            // The options are checked before the calibration text is run.
            crate::convert::check(&config, &opts).map_err(|e| options_error(rejection(e)))?;
            if opts.needs_calibration() {
                let mut tokens = tokenizer.encode(CALIBRATION_TEXT).map_err(rejection)?;
                tokens.truncate(options.calibration_tokens);
                opts.calibration = tokens;
            }
            let converted = convert(&gguf, &opts).map_err(|e| options_error(rejection(e)))?;
            gguf = Gguf::from_vec(converted.bytes).map_err(rejection)?;
        }
        let config = LlamaConfig::from_gguf(&gguf).map_err(rejection)?.with_kv_dtype(options.kv_type);
        let kv_tokens = options.kv_tokens.unwrap_or(DEFAULT_KV_TOKENS.min(config.context_length));
        let model = LlamaModel::with_config(ctx, &gguf, config, kv_tokens, |_, _| {}).map_err(rejection)?;
        let config = model.config();
        let cache = model.cache();
        Ok(WasmModel {
            layers: config.layers.clone(),
            context_length: config.context_length,
            kv_capacity_tokens: cache.capacity_tokens() as f64,
            kv_capacity_bytes: cache.capacity_bytes() as f64,
            generator: Rc::new(RefCell::new(Generator::new(model, tokenizer, template.clone()))),
            template,
            stop: Rc::new(Cell::new(false)),
            last: Rc::new(RefCell::new(None)),
        })
    }
}

/// A JS `Error` named "OptionsError": the load options, or the conversion
/// they ask for, failed, not the file (so a cached download stays).
fn options_error(error: impl Into<JsValue>) -> JsValue {
    let error = error.into();
    if let Some(e) = error.dyn_ref::<js_sys::Error>() {
        e.set_name("OptionsError");
    }
    error
}
