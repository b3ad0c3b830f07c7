//! `rollama`: parse the command line, run it, print `Error: …` once on failure.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
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
