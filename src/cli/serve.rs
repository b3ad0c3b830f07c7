//! `rollama serve`: open the store, prune it as Ollama does, bind `OLLAMA_HOST`, print the
//! bound address and serve until SIGINT/SIGTERM.

use crate::env::{self, HostAddress};
use crate::server::{self, AppState};
use crate::store::Store;
use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

pub async fn serve() -> Result<()> {
    crate::memory::limit_arenas();
    let root = env::models_dir();
    let store = Store::open(&root)
        .with_context(|| format!("{}: ensure path elements are traversable", root.display()))?;
    match store.remove_temp_files() {
        0 => {}
        n => eprintln!("removed {n} temp file(s) of unfinished writes"),
    }
    if !env::bool_var(env::OLLAMA_NOPRUNE, false) {
        match store.prune() {
            Ok(0) => {}
            Ok(n) => eprintln!("pruned {n} unused blob file(s)"),
            Err(e) => eprintln!("not pruning blobs: {e}"),
        }
        crate::engine::weights::remove_orphans(&store.blobs_dir());
    }
    let host = HostAddress::from_env();
    let bind = host.bind_address();
    let listener =
        std::net::TcpListener::bind(&bind).with_context(|| format!("listen tcp {bind}"))?;
    let address = listener.local_addr()?;
    let server = server::start(listener, AppState::new(store))?;
    let handle = server.handle();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    actix_web::rt::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("shutting down");
        handle.stop(true).await;
    });
    eprintln!("Listening on {address} (version {})", crate::VERSION);
    server.await?;
    Ok(())
}
