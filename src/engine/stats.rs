//! Counters the llama.cpp engine keeps for `/metrics`: where prompt tokens' keys and values
//! came from, the KV files saved and restored, and how many drafted tokens were accepted.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::OnceLock;

type Labels = Vec<(String, String)>;

#[derive(Default)]
pub struct Stats {
    /// Prompt tokens whose keys and values were copied rather than computed, by source:
    /// `sequence` (another sequence in the context), `host` (a parked sequence's copy in host
    /// memory) or `disk` (a saved conversation).
    pub copied: Family<Labels, Counter>,
    /// Prompt tokens the model evaluated.
    pub computed: Counter,
    pub files_saved: Counter,
    pub files_restored: Counter,
    /// Files refused (corrupt, truncated, mismatched) and removed.
    pub files_refused: Counter,
    /// Tokens proposed by drafting, and those the model confirmed.
    pub drafted: Counter,
    pub accepted: Counter,
}

pub fn stats() -> &'static Stats {
    static STATS: OnceLock<Stats> = OnceLock::new();
    STATS.get_or_init(Stats::default)
}

impl Stats {
    pub fn copied(&self, source: &str, tokens: usize) {
        if tokens > 0 {
            self.copied
                .get_or_create(&vec![("source".to_string(), source.to_string())])
                .inc_by(tokens as u64);
        }
    }
}
