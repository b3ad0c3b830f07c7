//! rollama: an Ollama-compatible model runner. The binary's `main.rs` is a thin shell over
//! this library so integration tests can reach the same code.

// A build without engines (the fuzz targets') leaves the code that only feeds them unused.
#![cfg_attr(
    not(any(feature = "llamacpp", feature = "mistralrs")),
    allow(dead_code, unused_variables, unused_imports, unreachable_code)
)]

pub mod chat;
pub mod cli;
pub mod client;
pub mod convert;
pub mod engine;
pub mod env;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod gguf;
pub mod memory;
pub mod modelfile;
pub mod ollama_layout;
pub mod quantize;
pub mod registry;
pub mod server;
pub mod store;
pub mod template;

/// rollama's own version: `rollama -v`, `/api/version`'s `rollama_version`, `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What this binary was built from, for `rollama -v` and the server log: the git commit and
/// the engine crates' versions (build.rs).
pub const BUILD_INFO: &str = env!("ROLLAMA_BUILD_INFO");

/// The Ollama release whose API rollama answers as: `/api/version`'s `version`. Clients gate
/// features on it (VS Code's Copilot Chat refuses servers older than 0.6.4), so it is the
/// version of the Ollama source the project's API reference was read from.
pub const OLLAMA_VERSION: &str = "0.33.0-rc2";

/// `User-Agent` of rollama's HTTP clients (of its server, and of registries).
pub fn user_agent() -> String {
    format!(
        "rollama/{VERSION} ({} {})",
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}
