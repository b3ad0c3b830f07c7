//! The inference engine boundary: the only module that names `mistralrs`. Loading and
//! generation arrive with the inference work; today it answers which GGUF architectures the
//! engine can run, so callers can refuse the others before mistralrs would panic on them.

/// GGUF `general.architecture` values mistralrs 0.8.1 loads and runs on CPU.
/// (`qwen3moe` loads but panics at the first forward pass on CPU, so it is not listed.)
pub const SUPPORTED_ARCHITECTURES: &[&str] = &[
    "llama",
    "mistral3",
    "phi2",
    "phi3",
    "starcoder2",
    "qwen2",
    "qwen3",
];

/// Whether the engine can run a model of this architecture.
pub fn supports_architecture(architecture: &str) -> bool {
    SUPPORTED_ARCHITECTURES.contains(&architecture)
}

/// The engine's name and the mistralrs tokenizer-source type, referenced so the dependency
/// is compiled and linked from the first release.
pub fn engine_name() -> &'static str {
    let _source = mistralrs::TokenSource::None;
    "mistralrs 0.8.1"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_architectures_that_panic_in_mistralrs() {
        assert!(supports_architecture("llama"));
        assert!(!supports_architecture("qwen3moe"));
        assert!(!supports_architecture("gemma3"));
        assert!(!supports_architecture("bert"));
    }
}
