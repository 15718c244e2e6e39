//! `ModelCore`: a llama GGUF on the GPU with its tokenizer, generating text
//! token by token into a JS callback. The npm package's `Model` (in
//! `web/npm/model.js`) wraps it with downloads, streams and chat.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::chat::{parse_messages, template_name};
use super::context::WasmContext;
use super::options::parse_generate_options;
use super::{invalid, rejection};
use crate::model::{
    ChatTemplate, GenerationStats, Generator, Gguf, LlamaConfig, LlamaModel, StopReason, Tokenizer,
};
use crate::{AttentionConfig, GpuContext};

/// KV-cache tokens when the caller does not say: enough for a chat, and
/// ~47 MB for SmolLM2-135M's f16 cache.
const DEFAULT_KV_TOKENS: u32 = 2048;

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
    /// Loads a GGUF from its bytes (copied into wasm memory). `kvTokens`
    /// sizes the KV cache (default 2048, or the model's context if shorter).
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        ctx: &WasmContext,
        bytes: &Uint8Array,
        #[wasm_bindgen(js_name = kvTokens)] kv_tokens: Option<u32>,
    ) -> Result<WasmModel, JsError> {
        Self::load(&ctx.ctx, bytes.to_vec(), kv_tokens)
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

    /// KV heads as shipped (of the first layer).
    #[wasm_bindgen(getter, js_name = kvHeads)]
    pub fn kv_heads(&self) -> u32 {
        self.layers.first().map_or(0, |l| l.kv_heads)
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

    /// Bytes of K and V one token takes over all layers if every layer had
    /// `kvHeads` KV heads in the model's KV dtype: `qHeads` gives MHA, the
    /// shipped count GQA and 1 MQA.
    #[wasm_bindgen(js_name = kvBytesPerToken)]
    pub fn kv_bytes_per_token(&self, #[wasm_bindgen(js_name = kvHeads)] kv_heads: u32) -> f64 {
        let per_layer =
            |cfg: &AttentionConfig| AttentionConfig { kv_heads, ..cfg.clone() }.kv_bytes_per_token();
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
    fn load(ctx: &GpuContext, bytes: Vec<u8>, kv_tokens: Option<u32>) -> Result<WasmModel, JsError> {
        let gguf = Gguf::from_vec(bytes)?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        // A model without a template still generates from plain prompts.
        let template = ChatTemplate::from_gguf(&gguf).ok();
        let config = LlamaConfig::from_gguf(&gguf)?;
        let kv_tokens = kv_tokens.unwrap_or(DEFAULT_KV_TOKENS.min(config.context_length));
        let model = LlamaModel::with_config(ctx, &gguf, config, kv_tokens, |_, _| {})?;
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
