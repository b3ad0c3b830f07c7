//! The llama.cpp side of [`super::embedding`]: one thread per loaded model owns a context with
//! embeddings on, and runs the token sequences of every waiting request in multi-sequence
//! batches: each sequence its own `seq_id`, as many as fit `PACK_TOKENS` tokens (`num_batch`
//! when that is smaller; a longer sequence goes alone), pooled, then the cache emptied for the
//! next batch.
//!
//! An encoder (BERT) attends over the whole sequence, so a sequence must fit one physical
//! batch: the context's batch is the longest input the model takes (`num_ctx` within its
//! trained context), at least the packing size.
//!
//! Mean pooling is done here, over the token states llama.cpp returns: llama.cpp pools with a
//! matrix product over the whole batch, whose summation order (SIMD lanes) changes with what
//! else shares the batch, so one input got slightly different vectors alone and beside
//! others. Summed in token order, an input's vector is the same bits alone or in a batch
//! (measured; up to 63 tokens a batch, where ggml's flash attention switches to its tiled
//! kernel, whose rounding differs by ~1e-4).

use super::embedding::{Pair, Pooling};
use super::gpu::{self, Footprint};
use super::llama::{load_model, start_model_thread, threads_of};
use super::{EngineError, LoadOptions};
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{mpsc, Arc};

/// Tokens packed into one batch. Bigger batches pay llama.cpp's per-call cost less often, but
/// past a few hundred tokens each batch got slower per token (server time for 64 sentences,
/// 2,023 tokens, all-MiniLM on 2 cores, min of 8: 386 ms packing 64 tokens, 345 ms at 256,
/// 362 ms at 512, 445 ms at 1,024; the tiny NomicBERT: 23, 14, 15 ms from 128 tokens up).
const PACK_TOKENS: usize = 256;

/// Most sequences in one batch.
const MAX_SEQUENCES: usize = 64;

type Reply = Result<Vec<Vec<f32>>, String>;

/// One request's sequences, handed to the model's thread.
struct Job {
    sequences: Vec<Vec<u32>>,
    reply: mpsc::Sender<Reply>,
}

pub(super) struct LlamaEmbedder {
    model: Arc<LlamaModel>,
    /// What the model holds on GPUs and in host memory.
    pub footprint: Footprint,
    jobs: Option<mpsc::Sender<Job>>,
    pub context_length: usize,
    pub dimensions: usize,
    /// The model's `tokenizer.chat_template.rerank`, with `{query}` and `{document}`.
    rerank_template: Option<String>,
}

impl LlamaEmbedder {
    pub fn load(
        path: &Path,
        options: &LoadOptions,
        pooling: Pooling,
    ) -> Result<LlamaEmbedder, EngineError> {
        // The context is sized by the model's trained context, known once it is loaded; the
        // fit measures one of `num_ctx` tokens (what a request may hold at most).
        let threads = threads_of(options);
        let pack = PACK_TOKENS.min(options.num_batch.max(1));
        let context_params = move |capacity: usize| {
            gpu::cache_settings(
                LlamaContextParams::default()
                    .with_n_ctx(NonZeroU32::new(capacity as u32))
                    .with_n_batch(capacity as u32)
                    .with_n_ubatch(capacity as u32)
                    .with_n_seq_max(MAX_SEQUENCES as u32)
                    .with_kv_unified(true)
                    .with_embeddings(true)
                    .with_pooling_type(match pooling {
                        // Pooled here (`run_batch`).
                        Pooling::Mean => LlamaPoolingType::None,
                        Pooling::Cls => LlamaPoolingType::Cls,
                        Pooling::Last => LlamaPoolingType::Last,
                        Pooling::Rank => LlamaPoolingType::Rank,
                    })
                    .with_n_threads(threads)
                    .with_n_threads_batch(threads),
                gpu::settings(),
            )
        };
        let (model, log) = load_model(
            path,
            "embedding model",
            options,
            context_params(options.num_ctx.max(pack).max(3)),
        )?;
        let context_length = (model.n_ctx_train().max(3)) as usize;
        let longest = options.num_ctx.clamp(3, context_length);
        let capacity = longest.max(pack);
        let dimensions = match pooling {
            Pooling::Rank => model.n_cls_out().max(1) as usize,
            _ => model.n_embd_out().max(1) as usize,
        };
        let rerank_template = model
            .chat_template(Some("rerank"))
            .ok()
            .and_then(|t| t.to_string().ok());
        let (jobs, receiver) = mpsc::channel::<Job>();
        let context_log = start_model_thread(
            "rollama-embed",
            &model,
            format!("an embedding context of {capacity} tokens"),
            move || context_params(capacity),
            move |_, context| serve(context, capacity, pack, pooling == Pooling::Mean, receiver),
        )?;
        let footprint = gpu::footprint(&(log + &context_log), path);
        Ok(LlamaEmbedder {
            footprint,
            model,
            jobs: Some(jobs),
            context_length,
            dimensions,
            rerank_template,
        })
    }

    pub fn memory_size(&self) -> u64 {
        match self.footprint.size() {
            0 => self.model.size(),
            measured => measured,
        }
    }

    /// `text`'s tokens, with the vocabulary's special tokens around them when `add_special`.
    pub fn tokens(&self, text: &str, add_special: bool) -> Vec<u32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), add_special, true)
            .into_iter()
            .map(|t| t.0 as u32)
            .collect()
    }

    /// The sequence llama-server scores for (query, document): the model's rerank template
    /// with both filled in, else `BOS query EOS SEP document EOS`, each special token where
    /// the vocabulary adds it (EOS falling back to SEP).
    pub fn pair(&self, query: &str, document: &str) -> Pair {
        if let Some(template) = &self.rerank_template {
            let filled = template
                .replace("{query}", query)
                .replace("{document}", document);
            let whole = self.tokens(&filled, false);
            let (before, after) = template
                .split_once("{document}")
                .unwrap_or((template.as_str(), ""));
            let front = self.tokens(&before.replace("{query}", query), false);
            let back = self.tokens(&after.replace("{query}", query), false);
            // Cut at the document only where it has to be: the pieces tokenize alone.
            let document = self.tokens(document, false);
            if whole.len() <= front.len() + document.len() + back.len() {
                return Pair {
                    front: whole,
                    document: Vec::new(),
                    back: Vec::new(),
                };
            }
            return Pair {
                front,
                document,
                back,
            };
        }
        let vocab = self.model.vocab();
        let id = |t: LlamaToken| t.0 as u32;
        let eos = match vocab.eos() {
            t if t.0 < 0 => vocab.sep(),
            t => t,
        };
        let mut front = Vec::new();
        if vocab.should_add_bos() {
            front.push(id(vocab.bos()));
        }
        front.extend(self.tokens(query, false));
        let mut back = Vec::new();
        if vocab.should_add_eos() {
            front.push(id(eos));
            back.push(id(eos));
        }
        if vocab.should_add_sep() {
            front.push(id(vocab.sep()));
        }
        Pair {
            front,
            document: self.tokens(document, false),
            back,
        }
    }

    /// The pooled output of each sequence, in order. Blocking.
    pub fn run(&self, sequences: Vec<Vec<u32>>) -> Result<Vec<Vec<f32>>, String> {
        if sequences.iter().any(Vec::is_empty) {
            return Err(
                "an input has no tokens: this model's vocabulary adds none to empty text".into(),
            );
        }
        let n_vocab = self.model.n_vocab().max(0) as u32;
        if let Some(bad) = sequences.iter().flatten().find(|id| **id >= n_vocab) {
            return Err(format!("token id {bad} is outside the vocabulary"));
        }
        let (reply, answer) = mpsc::channel();
        self.jobs
            .as_ref()
            .ok_or("the model thread stopped")?
            .send(Job { sequences, reply })
            .map_err(|_| "the model thread stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the model thread stopped".to_string())?
    }
}

impl Drop for LlamaEmbedder {
    fn drop(&mut self) {
        // Ends the thread's loop, which frees the context.
        self.jobs.take();
    }
}

/// The model's thread: takes every waiting job, packs their sequences into batches, answers
/// each job with its vectors (or the error of a batch that failed).
fn serve(
    mut context: LlamaContext,
    capacity: usize,
    pack: usize,
    mean: bool,
    jobs: mpsc::Receiver<Job>,
) {
    let mut batch = LlamaBatch::new(capacity, 1);
    while let Ok(first) = jobs.recv() {
        let mut pending = vec![first];
        pending.extend(jobs.try_iter());
        let mut results: Vec<Result<Vec<Vec<f32>>, String>> = pending
            .iter()
            .map(|job| Ok(vec![Vec::new(); job.sequences.len()]))
            .collect();
        let work: Vec<(usize, usize)> = pending
            .iter()
            .enumerate()
            .flat_map(|(j, job)| (0..job.sequences.len()).map(move |i| (j, i)))
            .collect();
        let sequence = |&(j, i): &(usize, usize)| &pending[j].sequences[i];
        let mut start = 0;
        while start < work.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < work.len() && end - start < MAX_SEQUENCES {
                let length = sequence(&work[end]).len();
                if end > start && tokens + length > pack {
                    break;
                }
                tokens += length;
                end += 1;
            }
            let chunk = &work[start..end];
            let outcome = run_batch(&mut context, &mut batch, mean, chunk.iter().map(sequence));

            for (s, &(j, i)) in chunk.iter().enumerate() {
                match (&outcome, &mut results[j]) {
                    (Ok(vectors), Ok(slots)) => slots[i] = vectors[s].clone(),
                    (Err(e), result) => *result = Err(e.clone()),
                    (Ok(_), Err(_)) => {}
                }
            }
            start = end;
        }
        for (job, result) in pending.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

/// Decodes `sequences` as one batch (sequence `s` under `seq_id` `s`) and reads each one's
/// pooled output (`mean`: the mean of its token states, see above); the cache is emptied
/// afterwards.
fn run_batch<'s>(
    context: &mut LlamaContext,
    batch: &mut LlamaBatch,
    mean: bool,
    sequences: impl Iterator<Item = &'s Vec<u32>>,
) -> Result<Vec<Vec<f32>>, String> {
    batch.clear();
    let mut spans = Vec::new();
    let mut at = 0;
    for (s, tokens) in sequences.enumerate() {
        for (position, &token) in tokens.iter().enumerate() {
            batch
                .add(LlamaToken(token as i32), position as i32, &[s as i32], true)
                .map_err(|e| format!("embedding batch: {e}"))?;
        }
        spans.push((at, tokens.len()));
        at += tokens.len();
    }
    let decoded = context
        .decode(batch)
        .map_err(|e| format!("llama.cpp could not embed the batch: {e}"));
    let missing = |e: &dyn std::fmt::Display| format!("llama.cpp returned no embedding: {e}");
    let outputs = decoded.and_then(|()| {
        spans
            .iter()
            .enumerate()
            .map(|(s, &(start, length))| {
                if !mean {
                    return context
                        .embeddings_seq_ith(s as i32)
                        .map(<[f32]>::to_vec)
                        .map_err(|e| missing(&e));
                }
                let mut sum: Vec<f32> = Vec::new();
                for i in start..start + length {
                    let row = context.embeddings_ith(i as i32).map_err(|e| missing(&e))?;
                    if sum.is_empty() {
                        sum = row.to_vec();
                    } else {
                        sum.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                    }
                }
                let scale = 1.0 / length as f32;
                sum.iter_mut().for_each(|v| *v *= scale);
                Ok(sum)
            })
            .collect()
    });
    let _ = context.clear_kv_cache_seq(None, None, None);
    outputs
}
