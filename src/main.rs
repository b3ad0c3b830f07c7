//! `rollama`: parse the command line, run it, print `Error: …` once on failure.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = rollama::cli::Cli::parse();
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
