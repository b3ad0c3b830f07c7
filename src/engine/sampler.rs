//! Ollama's sampler, the same for both engines: the llama.cpp engine calls it with each
//! step's logits; mistralrs runs it as a `CustomLogitsProcessor`.
//!
//! mistralrs 0.8.1 has no per-request seed and applies penalties to the whole context, so
//! rollama samples the token itself (the `format` grammar's mask, penalties over the last
//! `repeat_last_n` tokens, top-k, temperature, top-p, min-p, then a draw from a seeded RNG) and
//! hands mistralrs logits in which only the chosen token is finite; mistralrs runs greedy and
//! picks it. The sampler also records each chosen token and when decoding steps happened,
//! which gives the exact `eval_count`, the timings, and the `context` array.

/// A constraint on the next token (a `format` grammar): it masks what it does not allow and
/// is told each choice. llguidance's [`super::grammar::Grammar`] (mistralrs) and llama.cpp's
/// grammar sampler (the llama.cpp engine) are the two.
pub trait Constraint: Send {
    /// Sets the logits of tokens not allowed next to minus infinity.
    fn mask(&mut self, logits: &mut [f32]);
    /// Advances past the chosen token.
    fn accept(&mut self, token: u32);
    /// Whether [`Constraint::allows`] is cheap: the sampler then asks about its unconstrained
    /// choice before masking the whole vocabulary.
    fn judges_single_tokens(&self) -> bool {
        false
    }
    /// Whether `token` may come next (asked only where `judges_single_tokens`).
    fn allows(&mut self, token: u32) -> bool {
        let _ = token;
        true
    }
    /// Whether nothing more can follow.
    fn is_done(&self) -> bool;
}

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::Mutex;
use std::time::Instant;

/// The sampling options of one request, already defaulted and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingOptions {
    pub temperature: f32,
    pub top_k: i64,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub repeat_last_n: i64,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// `None` draws a fresh seed.
    pub seed: Option<u64>,
    /// Record each chosen token's log-probability and this many most likely alternatives.
    pub logprobs: Option<usize>,
}

impl Default for SamplingOptions {
    /// Ollama's defaults (`api.DefaultOptions`).
    fn default() -> Self {
        SamplingOptions {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
            logprobs: None,
        }
    }
}

/// What the sampler observed, read after generation.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Tokens chosen, in order (the last may be the end-of-sequence token).
    pub tokens: Vec<u32>,
    /// When the first token was sampled (end of prompt processing).
    pub first_step: Option<Instant>,
    /// When the last token was sampled.
    pub last_step: Option<Instant>,
    /// Per chosen token, when requested: its log-probability and the top alternatives.
    pub logprobs: Vec<TokenLogprob>,
}

/// A chosen token's natural-log probability under the model (after penalties, before
/// temperature and truncation, as OpenAI defines it) and the most likely alternatives.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: u32,
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

/// `log_softmax` of `logits` at `choice`, and the `top` most likely tokens.
fn logprobs_of(logits: &[f32], choice: usize, top: usize) -> TokenLogprob {
    let max = logits
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits
        .iter()
        .filter(|l| l.is_finite())
        .map(|l| f64::from(l - max).exp())
        .sum();
    let log_sum = max + sum.ln() as f32;
    let logprob = |l: f32| {
        if l.is_finite() {
            l - log_sum
        } else {
            f32::NEG_INFINITY
        }
    };
    let mut best: Vec<(u32, f32)> = Vec::new();
    if top > 0 {
        let mut indexed: Vec<(usize, f32)> = logits
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .collect();
        let top = top.min(indexed.len());
        if top > 0 {
            indexed.select_nth_unstable_by(top - 1, |a, b| b.1.total_cmp(&a.1));
            indexed.truncate(top);
            indexed.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        best = indexed
            .into_iter()
            .map(|(i, l)| (i as u32, logprob(l)))
            .collect();
    }
    TokenLogprob {
        token: choice as u32,
        logprob: logits
            .get(choice)
            .copied()
            .map(logprob)
            .unwrap_or(f32::NEG_INFINITY),
        top: best,
    }
}

struct State {
    rng: StdRng,
    prompt_len: usize,
    observed: Observed,
    /// The request's `format`, masking what it does not allow and advanced by each choice.
    grammar: Option<Box<dyn Constraint>>,
}

pub struct Sampler {
    options: SamplingOptions,
    state: Mutex<State>,
}

impl Sampler {
    pub fn new(options: SamplingOptions, prompt_len: usize) -> Sampler {
        let rng = match options.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Sampler {
            options,
            state: Mutex::new(State {
                rng,
                prompt_len,
                observed: Observed::default(),
                grammar: None,
            }),
        }
    }

    /// The same sampler, constrained by `grammar`.
    pub fn with_grammar(self, grammar: Option<Box<dyn Constraint>>) -> Sampler {
        let mut state = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        state.grammar = grammar;
        Sampler {
            options: self.options,
            state: Mutex::new(state),
        }
    }

    /// Whether the grammar is complete: nothing more may follow.
    pub fn grammar_done(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.grammar.as_ref().is_some_and(|g| g.is_done()))
            .unwrap_or(false)
    }

    pub fn observed(&self) -> Observed {
        self.state
            .lock()
            .map(|s| s.observed.clone())
            .unwrap_or_default()
    }

    /// The recorded log-probabilities from the `from`-th token on.
    pub fn logprobs_since(&self, from: usize) -> Vec<TokenLogprob> {
        self.state
            .lock()
            .map(|s| s.observed.logprobs.get(from..).unwrap_or_default().to_vec())
            .unwrap_or_default()
    }

    /// Chooses the next token from raw logits given the whole context so far.
    pub fn choose(&self, logits: &mut [f32], context: &[u32]) -> Option<usize> {
        self.choose_or_accept(logits, context, None)
            .map(|(choice, _)| choice)
    }

    /// Whether drafting may be used: no grammar (its state cannot be rewound) and no
    /// log-probabilities asked for.
    pub fn drafts_allowed(&self) -> bool {
        self.options.logprobs.is_none()
            && self
                .state
                .lock()
                .map(|s| s.grammar.is_none())
                .unwrap_or(false)
    }

    /// Chooses the next token as [`Sampler::choose`] does, judging a drafted guess `draft` on
    /// the way; returns the choice and whether it is the draft.
    ///
    /// Greedy: the choice is the argmax, the draft is kept when it equals it. Otherwise the
    /// speculative-sampling rule for a draft that proposed one token with certainty: it is
    /// kept with probability p(draft) under this sampler's distribution (after penalties,
    /// top-k, temperature, top-p and min-p); when refused, the token is drawn from that
    /// distribution with the draft removed and the rest renormalised. Over both branches
    /// each token comes out with exactly its probability p, as without drafting.
    pub fn choose_or_accept(
        &self,
        logits: &mut [f32],
        context: &[u32],
        draft: Option<u32>,
    ) -> Option<(usize, bool)> {
        let mut state = self.state.lock().ok()?;
        let state = &mut *state;
        // Penalties leave masked tokens masked, so they may come first. A constraint that can
        // judge one token cheaply is asked about the unconstrained choice first, and masks
        // the whole vocabulary only when it refuses it (llama.cpp's sampler does the same):
        // the choice comes from the masked distribution either way. Log-probabilities are
        // those of the masked distribution, so a request for them always masks.
        apply_penalties(&self.options, logits, context);
        let mut choice = None;
        if let Some(grammar) = state.grammar.as_mut() {
            if grammar.judges_single_tokens() && self.options.logprobs.is_none() {
                choice = sample(&self.options, logits, &mut state.rng)
                    .filter(|token| grammar.allows(*token as u32));
            }
            if choice.is_none() {
                grammar.mask(logits);
            }
        }
        let choice = match (choice, draft) {
            (Some(choice), _) => choice,
            (None, Some(draft)) if self.options.temperature > 0.0 => {
                accept_or_resample(&self.options, logits, draft as usize, &mut state.rng)?
            }
            (None, _) => sample(&self.options, logits, &mut state.rng)?,
        };
        if let Some(grammar) = state.grammar.as_mut() {
            grammar.accept(choice as u32);
        }
        // Should an engine ask again for a position it asked for already, the new choice
        // replaces the old one.
        let position = context.len().saturating_sub(state.prompt_len);
        let now = Instant::now();
        let recorded = self
            .options
            .logprobs
            .map(|top| logprobs_of(logits, choice, top));
        let observed = &mut state.observed;
        observed.tokens.truncate(position);
        observed.tokens.push(choice as u32);
        if let Some(recorded) = recorded {
            observed.logprobs.truncate(position);
            observed.logprobs.push(recorded);
        }
        observed.first_step.get_or_insert(now);
        observed.last_step = Some(now);
        Some((choice, Some(choice as u32) == draft))
    }
}

#[cfg(feature = "mistralrs")]
impl mistralrs::CustomLogitsProcessor for Sampler {
    fn apply(
        &self,
        logits: &mistralrs::Tensor,
        context: &[u32],
    ) -> mistralrs::Result<mistralrs::Tensor> {
        super::threads::adopt_current_thread();
        let mut values: Vec<f32> = logits.to_dtype(mistralrs::DType::F32)?.to_vec1()?;
        let Some(choice) = self.choose(&mut values, context) else {
            return Ok(logits.clone());
        };
        let mut forced = vec![f32::NEG_INFINITY; values.len()];
        forced[choice] = 0.0;
        mistralrs::Tensor::from_vec(forced, values.len(), logits.device())?.to_dtype(logits.dtype())
    }
}

/// Repeat, presence and frequency penalties over the last `repeat_last_n` context tokens
/// (llama.cpp's rules: positive logits divided by the repeat penalty, negative multiplied).
fn apply_penalties(options: &SamplingOptions, logits: &mut [f32], context: &[u32]) {
    let window = match options.repeat_last_n {
        0 => return,
        n if n < 0 => context.len(),
        n => (n as usize).min(context.len()),
    };
    let no_penalty = options.repeat_penalty == 1.0
        && options.presence_penalty == 0.0
        && options.frequency_penalty == 0.0;
    if no_penalty || window == 0 {
        return;
    }
    let mut counts: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for &token in &context[context.len() - window..] {
        *counts.entry(token).or_default() += 1;
    }
    for (token, count) in counts {
        let Some(logit) = logits.get_mut(token as usize) else {
            continue;
        };
        if *logit == f32::NEG_INFINITY {
            continue;
        }
        if options.repeat_penalty != 1.0 && options.repeat_penalty > 0.0 {
            if *logit > 0.0 {
                *logit /= options.repeat_penalty;
            } else {
                *logit *= options.repeat_penalty;
            }
        }
        *logit -= count as f32 * options.frequency_penalty + options.presence_penalty;
    }
}

/// The `k` best `(token, logit)` pairs (all when `k` is 0), best first, ties by token id.
fn best(mut candidates: Vec<(usize, f32)>, k: usize) -> Vec<(usize, f32)> {
    let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k > 0 && k < candidates.len() {
        // Only the k best need ordering: select them in linear time, then sort those. With
        // Ollama's default top_k of 40 this replaces a sort of the whole vocabulary per token.
        candidates.select_nth_unstable_by(k - 1, order);
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(order);
    candidates
}

/// Greedy at temperature ≤ 0, otherwise top-k → softmax(temperature) → top-p → min-p → draw.
fn sample(options: &SamplingOptions, logits: &[f32], rng: &mut StdRng) -> Option<usize> {
    if options.temperature <= 0.0 {
        return argmax(logits);
    }
    let kept = distribution(options, logits)?;
    Some(draw(&kept, rng))
}

/// The first of the highest finite logits (llama.cpp's argmax), in one pass.
pub fn argmax(logits: &[f32]) -> Option<usize> {
    let mut chosen: Option<(usize, f32)> = None;
    for (i, l) in logits.iter().copied().enumerate() {
        if l.is_finite() && chosen.is_none_or(|(_, best)| l > best) {
            chosen = Some((i, l));
        }
    }
    chosen.map(|(i, _)| i)
}

/// The tokens a draw at temperature > 0 may give, most likely first, with their weights
/// (softmax probabilities; those top-p and min-p cut are gone, the rest not renormalised).
fn distribution(options: &SamplingOptions, logits: &[f32]) -> Option<Vec<(usize, f32)>> {
    let finite: Vec<(usize, f32)> = logits
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .collect();
    if finite.is_empty() {
        return None;
    }
    let candidates = best(finite, usize::try_from(options.top_k).unwrap_or(0));
    let max = candidates[0].1;
    let mut probs: Vec<f32> = candidates
        .iter()
        .map(|(_, l)| ((l - max) / options.temperature).exp())
        .collect();
    let sum: f32 = probs.iter().sum();
    for p in &mut probs {
        *p /= sum;
    }
    let mut keep = probs.len();
    if options.top_p > 0.0 && options.top_p < 1.0 {
        let mut cumulative = 0.0;
        for (i, p) in probs.iter().enumerate() {
            cumulative += p;
            if cumulative >= options.top_p {
                keep = i + 1;
                break;
            }
        }
    }
    if options.min_p > 0.0 {
        let threshold = probs[0] * options.min_p;
        keep = keep.min(probs.iter().take_while(|p| **p >= threshold).count().max(1));
    }
    Some(
        candidates[..keep]
            .iter()
            .zip(&probs)
            .map(|((token, _), p)| (*token, *p))
            .collect(),
    )
}

/// One token drawn from `kept` in proportion to the weights.
fn draw(kept: &[(usize, f32)], rng: &mut StdRng) -> usize {
    let total: f32 = kept.iter().map(|(_, p)| p).sum();
    let mut draw = rng.random::<f32>() * total;
    for (token, p) in kept {
        draw -= p;
        if draw <= 0.0 {
            return *token;
        }
    }
    kept[kept.len() - 1].0
}

/// The speculative-sampling rule for a certain one-token draft: `draft` with probability
/// p(draft), else a draw from the distribution without it.
fn accept_or_resample(
    options: &SamplingOptions,
    logits: &[f32],
    draft: usize,
    rng: &mut StdRng,
) -> Option<usize> {
    let kept = distribution(options, logits)?;
    let total: f32 = kept.iter().map(|(_, p)| p).sum();
    let p_draft = kept
        .iter()
        .find(|(token, _)| *token == draft)
        .map_or(0.0, |(_, p)| p / total);
    if rng.random::<f32>() < p_draft {
        return Some(draft);
    }
    let rest: Vec<(usize, f32)> = kept.into_iter().filter(|(t, _)| *t != draft).collect();
    if rest.is_empty() {
        return Some(draft);
    }
    Some(draw(&rest, rng))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allows even tokens only; counts how often it had to mask.
    struct EvenOnly {
        masks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        cheap: bool,
    }

    impl Constraint for EvenOnly {
        fn mask(&mut self, logits: &mut [f32]) {
            self.masks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for (id, logit) in logits.iter_mut().enumerate() {
                if id % 2 == 1 {
                    *logit = f32::NEG_INFINITY;
                }
            }
        }
        fn accept(&mut self, _token: u32) {}
        fn is_done(&self) -> bool {
            false
        }
        fn judges_single_tokens(&self) -> bool {
            self.cheap
        }
        fn allows(&mut self, token: u32) -> bool {
            token % 2 == 0
        }
    }

    #[test]
    fn a_constraint_masks_only_when_it_refuses_the_unconstrained_choice() {
        for cheap in [true, false] {
            let masks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let constraint = EvenOnly {
                masks: masks.clone(),
                cheap,
            };
            let greedy = SamplingOptions {
                temperature: 0.0,
                ..SamplingOptions::default()
            };
            let sampler = Sampler::new(greedy, 0).with_grammar(Some(Box::new(constraint)));
            // The best token (2) is allowed: no mask where the constraint can tell cheaply.
            assert_eq!(sampler.choose(&mut [0.0, 1.0, 3.0, 2.0], &[]), Some(2));
            assert_eq!(
                masks.load(std::sync::atomic::Ordering::SeqCst),
                usize::from(!cheap)
            );
            // The best token (3) is refused: the best allowed one (0) after a mask.
            assert_eq!(sampler.choose(&mut [1.0, 0.5, -1.0, 3.0], &[]), Some(0));
            assert_eq!(
                masks.load(std::sync::atomic::Ordering::SeqCst),
                1 + usize::from(!cheap)
            );
        }
    }

    #[test]
    fn logprobs_are_natural_log_softmax_with_the_top_alternatives() {
        let recorded = logprobs_of(&[0.0, (2.0f32).ln(), f32::NEG_INFINITY, 0.0], 1, 2);
        // probabilities 1/4, 2/4, 0, 1/4
        assert!((recorded.logprob - 0.5f32.ln()).abs() < 1e-6);
        assert_eq!(recorded.top.len(), 2);
        assert_eq!(recorded.top[0].0, 1);
        assert_eq!(recorded.top[1].0, 0);
        assert!((recorded.top[1].1 - 0.25f32.ln()).abs() < 1e-6);
        let sampler = Sampler::new(
            SamplingOptions {
                temperature: 0.0,
                logprobs: Some(1),
                ..SamplingOptions::default()
            },
            0,
        );
        sampler.choose(&mut logits(), &[]);
        assert_eq!(sampler.observed().logprobs.len(), 1);
        assert_eq!(sampler.observed().logprobs[0].token, 1);
    }

    fn logits() -> Vec<f32> {
        vec![1.0, 3.0, 2.0, 0.5, f32::NEG_INFINITY, 2.9]
    }

    #[test]
    fn zero_temperature_is_greedy() {
        let options = SamplingOptions {
            temperature: 0.0,
            ..SamplingOptions::default()
        };
        let sampler = Sampler::new(options, 0);
        assert_eq!(sampler.choose(&mut logits(), &[]), Some(1));
    }

    #[test]
    fn the_k_best_are_those_a_full_sort_ranks_first() {
        let mut rng = StdRng::seed_from_u64(9);
        // Few distinct values, so that many logits tie.
        let pairs: Vec<(usize, f32)> = (0..5000)
            .map(|i| (i, (rng.random::<u32>() % 50) as f32 / 7.0))
            .collect();
        let mut sorted = pairs.clone();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [1, 2, 40, 4999, 5000, 9000] {
            let want: Vec<_> = sorted.iter().take(k).copied().collect();
            assert_eq!(best(pairs.clone(), k), want, "k = {k}");
        }
        assert_eq!(best(pairs.clone(), 0), sorted);
    }

    #[test]
    fn same_seed_gives_the_same_draws() {
        let draws = |seed| {
            let options = SamplingOptions {
                temperature: 1.5,
                top_p: 1.0,
                seed: Some(seed),
                ..SamplingOptions::default()
            };
            let sampler = Sampler::new(options, 0);
            let mut context = Vec::new();
            for _ in 0..50 {
                let token = sampler.choose(&mut logits(), &context).unwrap();
                context.push(token as u32);
            }
            context
        };
        assert_eq!(draws(42), draws(42));
        assert_ne!(draws(42), draws(43));
    }

    #[test]
    fn never_picks_masked_tokens() {
        let sampler = Sampler::new(
            SamplingOptions {
                temperature: 5.0,
                top_k: 0,
                top_p: 1.0,
                seed: Some(1),
                ..SamplingOptions::default()
            },
            0,
        );
        for _ in 0..200 {
            assert_ne!(sampler.choose(&mut logits(), &[]), Some(4));
        }
        let mut all_masked = vec![f32::NEG_INFINITY; 4];
        assert_eq!(sampler.choose(&mut all_masked, &[]), None);
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        let sampler = Sampler::new(
            SamplingOptions {
                temperature: 2.0,
                top_k: 1,
                ..SamplingOptions::default()
            },
            0,
        );
        for _ in 0..20 {
            assert_eq!(sampler.choose(&mut logits(), &[]), Some(1));
        }
    }

    #[test]
    fn repeat_penalty_only_looks_at_the_window() {
        let options = SamplingOptions {
            repeat_penalty: 2.0,
            repeat_last_n: 2,
            ..SamplingOptions::default()
        };
        let mut values = logits();
        apply_penalties(&options, &mut values, &[1, 0, 2]);
        assert_eq!(values[1], 3.0, "token 1 is outside the window");
        assert_eq!(values[0], 0.5);
        assert_eq!(values[2], 1.0);
    }

    #[test]
    fn records_chosen_tokens_by_position() {
        let sampler = Sampler::new(
            SamplingOptions {
                temperature: 0.0,
                ..SamplingOptions::default()
            },
            2,
        );
        sampler.choose(&mut logits(), &[9, 9]);
        sampler.choose(&mut logits(), &[9, 9, 1]);
        // A re-invocation for the same position replaces the previous pick.
        sampler.choose(&mut logits(), &[9, 9, 1]);
        let observed = sampler.observed();
        assert_eq!(observed.tokens, vec![1, 1]);
        assert!(observed.first_step.is_some() && observed.last_step.is_some());
    }

    /// The speculative rule keeps the sampler's distribution: over many draws with a fixed
    /// draft, each token's frequency matches its probability without drafting (both the
    /// likely and an unlikely draft), within five standard errors.
    #[test]
    fn judging_a_draft_keeps_the_distribution() {
        let options = SamplingOptions {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            seed: Some(7),
            ..SamplingOptions::default()
        };
        let values = vec![2.0f32, 1.0, 0.5, -1.0];
        let kept = distribution(&options, &values).unwrap();
        let total: f32 = kept.iter().map(|(_, p)| p).sum();
        let mut expected = [0f64; 4];
        for (token, p) in &kept {
            expected[*token] = f64::from(p / total);
        }
        let trials = 40_000;
        for draft in [0u32, 3] {
            let sampler = Sampler::new(options.clone(), 0);
            let mut counts = [0usize; 4];
            let mut kept_draft = 0;
            for _ in 0..trials {
                let (choice, accepted) = sampler
                    .choose_or_accept(&mut values.clone(), &[], Some(draft))
                    .unwrap();
                counts[choice] += 1;
                kept_draft += usize::from(accepted);
            }
            for token in 0..4 {
                let p = expected[token];
                let seen = counts[token] as f64 / trials as f64;
                let error = (p * (1.0 - p) / trials as f64).sqrt();
                assert!(
                    (seen - p).abs() < 5.0 * error + 1e-9,
                    "draft {draft}, token {token}: {seen} vs {p}"
                );
            }
            assert_eq!(kept_draft, counts[draft as usize]);
        }
    }

    #[test]
    fn a_greedy_draft_is_kept_only_when_it_is_the_argmax() {
        let sampler = Sampler::new(
            SamplingOptions {
                temperature: 0.0,
                ..SamplingOptions::default()
            },
            0,
        );
        let best = argmax(&logits()).unwrap() as u32;
        assert_eq!(
            sampler.choose_or_accept(&mut logits(), &[], Some(best)),
            Some((best as usize, true))
        );
        let other = (best + 1) % 3;
        assert_eq!(
            sampler.choose_or_accept(&mut logits(), &[], Some(other)),
            Some((best as usize, false))
        );
    }
}
