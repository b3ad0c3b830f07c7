//! The interactive `rollama run`: wires the REPL in `chat/` to a running server. The REPL
//! runs on a blocking thread; each backend call blocks on the async client. Ctrl-C while an
//! answer streams sets the cancel flag, which drops the request (the server stops generating)
//! and returns to the prompt.

use crate::chat::{self, Backend};
use crate::cli::RunArgs;
use crate::client::Client;
use anyhow::Result;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

/// The REPL's [`Backend`] over HTTP. Its calls block: use it from a blocking thread.
pub struct ClientBackend {
    client: Client,
    runtime: Handle,
    keep_alive: Option<String>,
    think: Option<Value>,
}

impl ClientBackend {
    pub fn new(
        client: Client,
        runtime: Handle,
        keep_alive: Option<String>,
        think: Option<Value>,
    ) -> ClientBackend {
        ClientBackend {
            client,
            runtime,
            keep_alive,
            think,
        }
    }
}

/// Watches the terminal for Ctrl-C while an answer streams. rustyline keeps the terminal in
/// raw mode (no ISIG), so Ctrl-C arrives as the byte 0x03 on stdin rather than as SIGINT.
/// Other keys typed meanwhile are dropped.
fn watch_for_ctrl_c(cancel: &AtomicBool, done: &AtomicBool) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::io::Read;
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    if !std::io::IsTerminal::is_terminal(&stdin) {
        return;
    }
    while !done.load(Ordering::SeqCst) {
        let ready = {
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(50u8)).unwrap_or(0)
        };
        if ready > 0 {
            let mut buffer = [0u8; 64];
            let n = stdin.lock().read(&mut buffer).unwrap_or(0);
            if n == 0 {
                return;
            }
            if buffer[..n].contains(&0x03) {
                cancel.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl Backend for ClientBackend {
    fn chat(
        &mut self,
        request: &Value,
        on_chunk: &mut dyn FnMut(&Value),
        cancel: &AtomicBool,
    ) -> Result<Value, String> {
        let mut last = Value::Null;
        let client = &self.client;
        let done = AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            scope.spawn(|| watch_for_ctrl_c(cancel, &done));
            let result = self.runtime.block_on(async {
                let streaming = client.stream("/api/chat", request, |chunk| {
                    if chunk["done"].as_bool() == Some(true) {
                        last = chunk.clone();
                    }
                    on_chunk(chunk);
                });
                let cancelled = async {
                    while !cancel.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                };
                tokio::select! {
                    result = streaming => result.map_err(|e| e.to_string()),
                    _ = cancelled => Err("canceled".to_string()),
                }
            });
            done.store(true, Ordering::SeqCst);
            result
        });
        result.map(|_| last)
    }

    fn show(&mut self, request: &Value) -> Result<Value, String> {
        self.runtime
            .block_on(self.client.post_json("/api/show", request))
            .map_err(|e| e.to_string())
    }

    fn create(&mut self, request: &Value) -> Result<(), String> {
        self.runtime
            .block_on(self.client.stream("/api/create", request, |_| {}))
            .map_err(|e| e.to_string())
    }

    fn list(&mut self) -> Result<String, String> {
        let tags: Value = self
            .runtime
            .block_on(self.client.get_json("/api/tags"))
            .map_err(|e| e.to_string())?;
        Ok(super::list::render_list(&tags, None))
    }

    fn load(&mut self, model: &str) -> Result<(), String> {
        let mut request = json!({ "model": model });
        if let Some(keep_alive) = &self.keep_alive {
            request["keep_alive"] = json!(keep_alive);
        }
        if let Some(think) = &self.think {
            request["think"] = think.clone();
        }
        self.runtime
            .block_on(self.client.post_json::<Value>("/api/generate", &request))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

pub async fn run(_client: &Client, args: &RunArgs, think: Option<Value>) -> Result<()> {
    let show: Value = Client::from_env()
        .post_json("/api/show", &json!({ "model": args.model }))
        .await?;
    let mut options = chat::Options::new(args.model.clone());
    options.format = args.format.clone();
    options.keep_alive = args.keepalive.clone();
    options.think = think.clone();
    options.hide_thinking = args.hidethinking;
    options.verbose = args.verbose;
    options.word_wrap = !args.nowordwrap;
    options.width = terminal_size::terminal_size()
        .map(|(w, _)| w.0 as usize)
        .unwrap_or(0);
    options.loaded_messages = show["messages"].as_array().cloned().unwrap_or_default();
    options.multimodal = show["capabilities"]
        .as_array()
        .is_some_and(|caps| caps.iter().any(|c| c == "vision"));
    options.show_info = Some(|v| super::show::render(v, false));

    // The session gets a runtime of its own: actix's single-threaded runtime cannot run the
    // SIGINT watcher while this thread blocks on HTTP calls.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let on_interrupt = cancel.clone();
    // rustyline is built with `signal-hook`, so it leaves SIGINT to this handler (without
    // it, rustyline's own handler swallows Ctrl-C for the whole session).
    let mut interrupts = {
        let _context = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?
    };
    runtime.spawn(async move {
        while interrupts.recv().await.is_some() {
            on_interrupt.store(true, Ordering::SeqCst);
        }
    });
    let backend = ClientBackend::new(
        Client::from_env(),
        runtime.handle().clone(),
        args.keepalive.clone(),
        think,
    );
    let history = if crate::env::bool_var(crate::env::OLLAMA_NOHISTORY, false) {
        None
    } else {
        Some(super::autostart::state_dir().join("history"))
    };
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut backend = backend;
        let mut lines = chat::Readline::new(history)?;
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        let result = chat::run(
            options,
            &mut lines,
            &mut backend,
            &mut out,
            &mut err,
            &cancel,
        );
        drop(backend);
        runtime.shutdown_background();
        result
    })
    .await;
    result??;
    Ok(())
}
