//! `rollama`: parse the command line, run it, print `Error: …` once on failure.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_library_backtraces();
    if let Err(message) = check_cpu() {
        eprintln!("Error: {message}");
        return ExitCode::FAILURE;
    }
    let cli = match rollama::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let result = actix_web::rt::System::new().block_on(rollama::cli::run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A closed pipe (`rollama list | head`) is not an error worth reporting.
            if error.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Keeps `RUST_BACKTRACE=1` (common in developers' shells) for panics only. mistralrs formats
/// a candle error for every optional GGUF key a model lacks, and candle's errors carry a
/// `Backtrace::capture()`: with library backtraces on, each one is symbolized, which maps the
/// whole binary and parses its debug info. Measured after one model load: idle RSS 665 MB
/// with `RUST_BACKTRACE=1` against 301 MB without. `RUST_LIB_BACKTRACE` (which std reads
/// before `RUST_BACKTRACE` for library captures) is set to 0 unless the user set it.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // Still single-threaded here: nothing else reads the environment concurrently.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}

/// Help goes to stdout with exit 0, as clap does; a usage mistake is reported like every
/// other error (`Error: …`, exit 1), as Ollama's CLI reports it.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let rendered = error.render().to_string();
    let message = rendered.strip_prefix("error: ").unwrap_or(&rendered);
    eprint!("Error: {message}");
    ExitCode::FAILURE
}

/// The binary is compiled for x86-64-v3 (`.cargo/config.toml`): candle's quantized kernels
/// only use AVX2 when compiled with it. On an older CPU, say so instead of dying with SIGILL
/// somewhere inside a matrix multiplication.
fn check_cpu() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        let missing: Vec<&str> = [
            ("avx2", std::is_x86_feature_detected!("avx2")),
            ("fma", std::is_x86_feature_detected!("fma")),
            ("f16c", std::is_x86_feature_detected!("f16c")),
        ]
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "this rollama build needs an x86-64-v3 CPU; this one lacks {}. \
                 Rebuild without .cargo/config.toml's target features to run it here (slower)",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}
