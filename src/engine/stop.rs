//! Stop sequences for streamed text: text that could be the start of a stop sequence is held
//! back until it is known not to be one, so a stop sequence never reaches the client, even
//! split across chunks (mistralrs 0.8.1 streams stop strings before it notices them).

#[derive(Debug, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    pending: String,
}

/// What a chunk of model output turns into.
#[derive(Debug, PartialEq, Eq)]
pub struct Filtered {
    /// Text safe to send now.
    pub text: String,
    /// A stop sequence was found: generation should end.
    pub stopped: bool,
}

impl StopFilter {
    pub fn new(stops: &[String]) -> StopFilter {
        StopFilter {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> Filtered {
        self.pending.push_str(text);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|stop| self.pending.find(stop.as_str()))
            .min();
        if let Some(at) = first_stop {
            let text = self.pending[..at].to_string();
            self.pending.clear();
            return Filtered {
                text,
                stopped: true,
            };
        }
        let hold = self.longest_partial_stop();
        let emit_to = self.pending.len() - hold;
        let text = self.pending[..emit_to].to_string();
        self.pending.drain(..emit_to);
        Filtered {
            text,
            stopped: false,
        }
    }

    /// Whatever was held back, once the stream has ended without a stop sequence.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Length in bytes of the longest suffix of `pending` that is a proper prefix of a stop.
    fn longest_partial_stop(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (len, _) in stop.char_indices().skip(1) {
                if len > best && self.pending.ends_with(&stop[..len]) {
                    best = len;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], chunks: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut filter = StopFilter::new(&stops);
        let mut out = String::new();
        for chunk in chunks {
            let filtered = filter.push(chunk);
            out.push_str(&filtered.text);
            if filtered.stopped {
                return (out, true);
            }
        }
        out.push_str(&filter.finish());
        (out, false)
    }

    #[test]
    fn a_stop_sequence_split_across_chunks_never_leaks() {
        assert_eq!(
            run(&["<|im_end|>"], &["Hello <|im", "_e", "nd|> more"]),
            ("Hello ".into(), true)
        );
    }

    #[test]
    fn text_that_only_looks_like_a_stop_start_is_released() {
        assert_eq!(
            run(&["STOP"], &["ST", "ART and go"]),
            ("START and go".into(), false)
        );
        assert_eq!(run(&["STOP"], &["end ST"]), ("end ST".into(), false));
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        assert_eq!(run(&["b", "a"], &["xxabc"]), ("xx".into(), true));
    }

    #[test]
    fn multibyte_text_is_split_on_char_boundaries() {
        assert_eq!(run(&["éé"], &["caf", "é", "!"]), ("café!".into(), false));
        assert_eq!(run(&["éé"], &["café", "é"]), ("caf".into(), true));
    }

    #[test]
    fn no_stops_passes_everything_through() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
    }
}
