//! Text generation: tokenizer, chat template, the GPU model, sampler and
//! stop conditions in one loop that streams text as it is made.

use web_time::Instant;

use super::chat::{ChatMessage, ChatTemplate};
use super::sampler::{partial_stop_len, Sampler, SamplerConfig, StopConditions, StopReason};
use super::tokenizer::{Decoder, Tokenizer};
use crate::error::{Error, Result};
use crate::model::LlamaModel;
use crate::SeqId;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    pub prompt: String,
    /// Wrap the prompt as a user turn in the model's chat template.
    pub chat: bool,
    pub sampler: SamplerConfig,
    /// Most tokens to generate; `None` runs until EOS, a stop string, or the
    /// context or KV cache is full.
    pub max_tokens: Option<usize>,
    /// Strings that end generation; the text stops before them.
    pub stop_strings: Vec<String>,
}

/// What one generation did and how fast.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// From the start of the prefill to the first token picked.
    pub prefill_seconds: f64,
    /// Decode steps: one per generated token fed back to the model.
    pub decode_steps: usize,
    pub decode_seconds: f64,
    /// Why it stopped; `None` when the context or the KV cache was full.
    pub stop: Option<StopReason>,
    pub kv_bytes_in_use: u64,
    pub kv_capacity_bytes: u64,
}

impl GenerationStats {
    pub fn prefill_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_seconds.max(f64::MIN_POSITIVE)
    }

    pub fn decode_tokens_per_second(&self) -> f64 {
        self.decode_steps as f64 / self.decode_seconds.max(f64::MIN_POSITIVE)
    }
}

/// A model with its tokenizer and chat template, generating into one
/// sequence of its KV cache (each generation starts it afresh).
pub struct Generator {
    model: LlamaModel,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    seq: SeqId,
}

impl Generator {
    /// `template` is needed only for chat prompts.
    pub fn new(mut model: LlamaModel, tokenizer: Tokenizer, template: Option<ChatTemplate>) -> Generator {
        let seq = model.cache_mut().add_sequence();
        Generator { model, tokenizer, template, seq }
    }

    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// The model, for work outside the generation's sequence (perplexity
    /// runs in a sequence of its own).
    pub fn model_mut(&mut self) -> &mut LlamaModel {
        &mut self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The prompt's token ids as the model will see them.
    pub fn prompt_tokens(&self, opts: &GenerateOptions) -> Result<Vec<u32>> {
        let text = match (opts.chat, &self.template) {
            (false, _) => opts.prompt.clone(),
            (true, Some(t)) => t.render(&[ChatMessage::user(opts.prompt.as_str())], true),
            (true, None) => {
                return Err(Error::UnsupportedChatTemplate("the model declares no chat template".into()))
            }
        };
        let ids = self.tokenizer.encode(&text)?;
        if ids.is_empty() {
            return Err(Error::TooFewTokens { what: "a prompt", needed: 1, got: 0 });
        }
        Ok(ids)
    }

    /// Runs `tokens` and picks the next one: on the GPU when greedy (4 bytes
    /// come back), else from the logits on the CPU.
    async fn next_token(&mut self, sampler: &mut Sampler, tokens: &[u32]) -> Result<u32> {
        if sampler.config().is_greedy() {
            return self.model.step_greedy(self.seq, tokens).await;
        }
        let logits = self.model.step_logits(self.seq, tokens).await?;
        sampler.sample(&logits)
    }

    /// Empties the KV cache; the next generation starts from nothing anyway,
    /// so this only frees the pages the last one held.
    pub fn reset(&mut self) -> Result<()> {
        self.model.cache_mut().reset(self.seq)
    }

    /// Generates after the prompt, calling `on_text` with each piece of text
    /// as soon as it is complete (whole characters, never part of a stop
    /// string). EOS tokens and stop strings are not passed on.
    pub async fn generate(
        &mut self,
        opts: &GenerateOptions,
        on_text: impl FnMut(&str),
    ) -> Result<GenerationStats> {
        self.generate_until(opts, on_text, || false).await
    }

    /// Like [`Generator::generate`], but asks `cancelled` before each decode
    /// step and ends with [`StopReason::Cancelled`] once it says yes. A
    /// browser sets the flag from another task while this one awaits the GPU.
    pub async fn generate_until(
        &mut self,
        opts: &GenerateOptions,
        mut on_text: impl FnMut(&str),
        cancelled: impl Fn() -> bool,
    ) -> Result<GenerationStats> {
        let mut sampler = Sampler::new(opts.sampler.clone())?;
        let stops = StopConditions {
            eos: self.tokenizer.end_of_generation().to_vec(),
            max_tokens: opts.max_tokens,
            stop_strings: opts.stop_strings.clone(),
        };
        let prompt = self.prompt_tokens(opts)?;
        self.model.cache_mut().reset(self.seq)?;
        let limit = (self.model.config().context_length as u64).min(self.model.cache().capacity_tokens());

        // Nothing to generate: skip the prefill too, the cache stays empty.
        let prefill = stops.max_tokens != Some(0);
        let started = Instant::now();
        let mut token = match prefill {
            true => self.next_token(&mut sampler, &prompt).await?,
            // Never read: the loop below stops before its first token.
            false => 0,
        };
        let prefill_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let (mut decoder, mut text, mut emitted) = (Decoder::new(), String::new(), 0);
        let (mut generated, mut decode_steps) = (0, 0);
        let stop = loop {
            if stops.max_tokens == Some(0) {
                break Some(StopReason::MaxTokens);
            }
            generated += 1;
            if !stops.eos.contains(&token) {
                text.push_str(&decoder.push(&self.tokenizer, token)?);
            }
            if let Some(reason) = stops.check(token, generated, &text) {
                break Some(reason);
            }
            // Hold back an ending that may grow into a stop string.
            let safe = text.len() - partial_stop_len(&text, &stops.stop_strings);
            if safe > emitted {
                on_text(&text[emitted..safe]);
                emitted = safe;
            }
            if self.model.cache().len(self.seq)? as u64 >= limit {
                break None;
            }
            if cancelled() {
                break Some(StopReason::Cancelled);
            }
            token = self.next_token(&mut sampler, &[token]).await?;
            decode_steps += 1;
        };
        let decode_seconds = started.elapsed().as_secs_f64();

        let end = match stop {
            Some(StopReason::StopString { at, .. }) => at,
            _ => {
                text.push_str(&decoder.finish());
                text.len()
            }
        };
        if end > emitted {
            on_text(&text[emitted..end]);
        }
        let cache = self.model.cache();
        Ok(GenerationStats {
            prompt_tokens: if prefill { prompt.len() } else { 0 },
            generated_tokens: generated,
            prefill_seconds,
            decode_steps,
            decode_seconds,
            stop,
            kv_bytes_in_use: cache.bytes_in_use(),
            kv_capacity_bytes: cache.capacity_bytes(),
        })
    }
}
