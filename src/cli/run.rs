//! `rollama run` and `rollama stop`: one-shot generation (a prompt argument or piped stdin)
//! streamed to stdout, the interactive chat otherwise, and unloading a model.

use crate::cli::RunArgs;
use crate::client::{Client, ClientError};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::io::{IsTerminal, Read, Write};

/// Ollama's `--think` values.
pub fn think_value(raw: Option<&str>) -> Result<Option<Value>> {
    Ok(match raw {
        None => None,
        Some("" | "true") => Some(json!(true)),
        Some("false") => Some(json!(false)),
        Some(level @ ("high" | "medium" | "low" | "max")) => Some(json!(level)),
        Some(other) => bail!(
            "invalid value for --think: \"{other}\" (must be true, false, high, medium, low, or max)"
        ),
    })
}

pub async fn run(client: &Client, args: RunArgs) -> Result<()> {
    let think = think_value(args.think.as_deref())?;
    if let Some(keep_alive) = &args.keepalive {
        crate::server::keep_alive::parse_go_duration(keep_alive).map_err(anyhow::Error::msg)?;
    }
    // A model that is not here is pulled first, as Ollama's `run` does.
    let show = match client
        .post_json::<Value>("/api/show", &json!({ "model": args.model }))
        .await
    {
        Ok(show) => show,
        Err(ClientError::Status { status: 404, .. }) => {
            let pull = super::TransferArgs {
                model: args.model.clone(),
                insecure: args.insecure,
            };
            super::pull::pull(client, &pull).await?;
            client
                .post_json::<Value>("/api/show", &json!({ "model": args.model }))
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let has = |capability: &str| {
        show["capabilities"]
            .as_array()
            .is_some_and(|caps| caps.iter().any(|c| c == capability))
    };
    let is_embedding = has("embedding");
    if has("rerank") {
        bail!(
            "{} is a reranking model: it scores documents against a query and does not chat; \
             send {{\"query\": …, \"documents\": […]}} to /api/rerank or /v1/rerank",
            args.model
        );
    }

    let mut prompt = args.prompt.join(" ");
    let stdin_is_terminal = std::io::stdin().is_terminal();
    if !stdin_is_terminal {
        let mut piped = String::new();
        std::io::stdin().read_to_string(&mut piped)?;
        let piped = piped.trim_end_matches('\n');
        if !piped.is_empty() {
            prompt = if prompt.is_empty() {
                piped.to_string()
            } else {
                format!("{piped} {prompt}")
            };
        }
    }
    if is_embedding {
        return embed(client, &args, &prompt).await;
    }
    let interactive =
        args.prompt.is_empty() && stdin_is_terminal && std::io::stdout().is_terminal();
    if interactive {
        return super::interactive::run(client, &args, think).await;
    }

    // Image paths in the prompt of a model that reads images are attached (Ollama's
    // `extractFileData`).
    let mut images = Vec::new();
    if has("vision") {
        match crate::chat::files::extract_images(&prompt, &mut std::io::stderr())? {
            Ok((text, found)) => (prompt, images) = (text, found),
            Err(e) => bail!(e),
        }
    }
    let mut request = json!({"model": args.model, "prompt": prompt, "options": {}});
    if !images.is_empty() {
        request["images"] = json!(images);
    }
    if let Some(format) = &args.format {
        request["format"] = json!(format);
    }
    if let Some(keep_alive) = &args.keepalive {
        request["keep_alive"] = json!(keep_alive);
    }
    if let Some(think) = think {
        request["think"] = think;
    }
    let plain = !std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout().lock();
    let mut last = Value::Null;
    let mut write_error = None;
    // Reasoning is shown before the answer, set apart as Ollama does (grey on a terminal),
    // unless --hidethinking.
    let mut reasoning = Reasoning::default();
    client
        .stream("/api/generate", &request, |chunk| {
            let thinking = chunk["thinking"].as_str().unwrap_or_default();
            let text = chunk["response"].as_str().unwrap_or_default();
            let mut shown = String::new();
            if !thinking.is_empty() && !args.hidethinking {
                shown.push_str(&reasoning.open(plain, thinking));
                shown.push_str(thinking);
            }
            if !text.is_empty() {
                shown.push_str(&reasoning.close(plain));
                shown.push_str(text);
            }
            if let Err(e) = stdout
                .write_all(shown.as_bytes())
                .and_then(|_| stdout.flush())
            {
                write_error.get_or_insert(e);
            }
            if chunk["done"].as_bool() == Some(true) {
                last = chunk.clone();
            }
        })
        .await?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if !prompt.is_empty() {
        writeln!(stdout)?;
        writeln!(stdout)?;
    }
    if args.verbose {
        eprint!("{}", crate::chat::metrics_summary(&last));
    }
    Ok(())
}

/// An embedding model's `run`: the vector of the prompt, as one compact JSON array.
async fn embed(client: &Client, args: &RunArgs, prompt: &str) -> Result<()> {
    if prompt.is_empty() {
        bail!(
            "embedding models require input text. Usage: rollama run {} \"your text here\"",
            args.model
        );
    }
    let mut request = json!({"model": args.model, "input": prompt});
    if let Some(keep_alive) = &args.keepalive {
        request["keep_alive"] = json!(keep_alive);
    }
    if let Some(truncate) = args.truncate {
        request["truncate"] = json!(truncate);
    }
    if let Some(dimensions) = args.dimensions.filter(|d| *d > 0) {
        request["dimensions"] = json!(dimensions);
    }
    let reply: Value = client.post_json("/api/embed", &request).await?;
    let first = reply["embeddings"]
        .get(0)
        .ok_or_else(|| anyhow::anyhow!("no embeddings received"))?;
    println!("{first}");
    Ok(())
}

/// `rollama stop MODEL`: unload it now.
pub async fn stop(client: &Client, model: &str) -> Result<()> {
    let request = json!({"model": model, "keep_alive": 0});
    match client.post_json::<Value>("/api/generate", &request).await {
        Ok(_) => Ok(()),
        Err(ClientError::Status { status: 404, .. }) => {
            bail!("couldn't find model \"{model}\" to stop")
        }
        Err(e) => Err(e.into()),
    }
}

/// Where the reasoning shown by a one-shot `run` stands: the heading before its first piece,
/// the closing line before the answer's first piece.
#[derive(Default)]
struct Reasoning {
    opened: bool,
    closed: bool,
    ends_with_newline: bool,
}

const GREY_BOLD: &str = "\x1b[38;5;245m\x1b[1m";
const GREY: &str = "\x1b[38;5;245m";
const DEFAULT_COLOR: &str = "\x1b[0m";

impl Reasoning {
    /// What goes before a piece of reasoning.
    fn open(&mut self, plain: bool, piece: &str) -> String {
        self.ends_with_newline = piece.ends_with('\n');
        if self.opened {
            return String::new();
        }
        self.opened = true;
        if plain {
            "Thinking...\n".to_string()
        } else {
            format!("{GREY_BOLD}Thinking...\n{DEFAULT_COLOR}{GREY}")
        }
    }

    fn close(&mut self, plain: bool) -> String {
        if !self.opened || self.closed {
            return String::new();
        }
        self.closed = true;
        let newline = if self.ends_with_newline { "" } else { "\n" };
        if plain {
            format!("{newline}...done thinking.\n\n")
        } else {
            format!("{newline}{GREY_BOLD}...done thinking.\n\n{DEFAULT_COLOR}")
        }
    }
}
