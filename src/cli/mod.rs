//! The command line: clap definitions mirroring `ollama`'s command tree and help, and the
//! dispatch to one file per command. Every command except `serve` is an HTTP client.

pub(crate) mod autostart;
mod create;
pub mod docs;
pub mod interactive;
pub mod list;
mod manage;
mod progress;
mod pull;
mod run;
mod serve;
pub mod show;

use crate::client::Client;
use anyhow::Result;
use clap::{Args, CommandFactory, Parser, Subcommand};

const HOST_ENV_HELP: &str = "Environment Variables:
      OLLAMA_HOST                   IP Address for the rollama server (default 127.0.0.1:11434)";

const RUN_ENV_HELP: &str = "Environment Variables:
      OLLAMA_EDITOR                 Path to editor for interactive prompt editing (Ctrl+G)
      OLLAMA_HOST                   IP Address for the rollama server (default 127.0.0.1:11434)
      OLLAMA_NOHISTORY              Do not preserve readline history";

const SERVE_ENV_HELP: &str = "Environment Variables:
      OLLAMA_HOST                   IP Address for the rollama server (default 127.0.0.1:11434)
      OLLAMA_MODELS                 The path to the models directory (default ~/.ollama/models)
      OLLAMA_NOPRUNE                Do not prune model blobs on startup
      OLLAMA_KEEP_ALIVE             The duration that models stay loaded in memory (default \"5m\")
      OLLAMA_CONTEXT_LENGTH         Context length to use unless otherwise specified (default 4096)
      OLLAMA_ORIGINS                A comma separated list of allowed origins
      OLLAMA_DEBUG                  Show additional debug information (e.g. OLLAMA_DEBUG=1)
      ROLLAMA_API_KEY               Comma separated API keys that requests must present
      ROLLAMA_API_KEY_FILE          A file of API keys, one per line";

#[derive(Parser, Debug)]
#[command(
    name = "rollama",
    about = "Large language model runner",
    disable_version_flag = true,
    arg_required_else_help = true,
    after_help = HOST_ENV_HELP
)]
pub struct Cli {
    /// Show version information
    #[arg(short = 'v', long = "version")]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start rollama
    #[command(visible_alias = "start", after_help = SERVE_ENV_HELP)]
    Serve,
    /// Create a model
    #[command(after_help = HOST_ENV_HELP)]
    Create(CreateArgs),
    /// Show information for a model
    #[command(after_help = HOST_ENV_HELP)]
    Show(ShowArgs),
    /// Run a model
    #[command(after_help = RUN_ENV_HELP)]
    Run(RunArgs),
    /// Stop a running model
    #[command(after_help = HOST_ENV_HELP)]
    Stop {
        /// Name of the model
        model: String,
    },
    /// Pull a model from a registry
    #[command(after_help = HOST_ENV_HELP)]
    Pull(TransferArgs),
    /// Push a model to a registry
    #[command(after_help = HOST_ENV_HELP)]
    Push(TransferArgs),
    /// List models
    #[command(visible_alias = "ls", after_help = HOST_ENV_HELP)]
    List {
        /// Only list models whose name starts with this (case-insensitive)
        filter: Option<String>,
    },
    /// List running models
    #[command(after_help = HOST_ENV_HELP)]
    Ps {
        /// Only list models whose name starts with this
        filter: Option<String>,
    },
    /// Copy a model
    #[command(after_help = HOST_ENV_HELP)]
    Cp {
        /// Name of the model to copy
        source: String,
        /// Name of the new model
        destination: String,
    },
    /// Remove a model
    #[command(after_help = HOST_ENV_HELP)]
    Rm {
        /// Names of the models to remove
        #[arg(required = true)]
        models: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Name of the model to create
    pub model: String,
    /// Name of the Modelfile (default "Modelfile")
    #[arg(short = 'f', long = "file")]
    pub file: Option<std::path::PathBuf>,
    /// Quantize model to this level (e.g. q4_K_M)
    #[arg(short = 'q', long = "quantize")]
    pub quantize: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Name of the model
    pub model: String,
    /// Show license of a model
    #[arg(long)]
    pub license: bool,
    /// Show Modelfile of a model
    #[arg(long)]
    pub modelfile: bool,
    /// Show parameters of a model
    #[arg(long)]
    pub parameters: bool,
    /// Show system message of a model
    #[arg(long)]
    pub system: bool,
    /// Show template of a model
    #[arg(long)]
    pub template: bool,
    /// Show detailed model information
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Name of the model
    pub model: String,
    /// Prompt to send (otherwise an interactive chat starts)
    pub prompt: Vec<String>,
    /// Duration to keep a model loaded (e.g. 5m)
    #[arg(long)]
    pub keepalive: Option<String>,
    /// Show timings for response
    #[arg(long)]
    pub verbose: bool,
    /// Use an insecure registry
    #[arg(long)]
    pub insecure: bool,
    /// Don't wrap words to the next line automatically
    #[arg(long)]
    pub nowordwrap: bool,
    /// Response format (e.g. json)
    #[arg(long)]
    pub format: Option<String>,
    /// Enable thinking mode: true/false or high/medium/low for supported models
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub think: Option<String>,
    /// Hide thinking output (if provided)
    #[arg(long)]
    pub hidethinking: bool,
    /// For embedding models: truncate inputs that exceed the context length (default: true).
    /// Set --truncate=false to error instead
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub truncate: Option<bool>,
    /// Truncate output embeddings to specified dimension (embedding models only)
    #[arg(long)]
    pub dimensions: Option<i64>,
}

#[derive(Args, Debug)]
pub struct TransferArgs {
    /// Name of the model
    pub model: String,
    /// Use an insecure registry
    #[arg(long)]
    pub insecure: bool,
}

/// The clap command, for completions and the man page.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    if cli.version {
        return manage::version(&Client::from_env()).await;
    }
    let Some(command) = cli.command else {
        Cli::command().print_help()?;
        return Ok(());
    };
    if let Command::Serve = command {
        return serve::serve().await;
    }
    let client = Client::from_env();
    autostart::ensure_server(&client).await?;
    match command {
        Command::Serve => unreachable!("handled above"),
        Command::Create(args) => create::create(&client, args).await,
        Command::Show(args) => show::show(&client, args).await,
        Command::List { filter } => list::list(&client, filter.as_deref()).await,
        Command::Ps { filter } => list::ps(&client, filter.as_deref()).await,
        Command::Cp {
            source,
            destination,
        } => manage::copy(&client, &source, &destination).await,
        Command::Rm { models } => manage::remove(&client, &models).await,
        Command::Run(args) => run::run(&client, args).await,
        Command::Stop { model } => run::stop(&client, &model).await,
        Command::Pull(args) => pull::pull(&client, &args).await,
        Command::Push(args) => pull::push(&client, &args).await,
    }
}
