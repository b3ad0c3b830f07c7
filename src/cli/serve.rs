//! `rollama serve`: open the store, prune it as Ollama does, bind `OLLAMA_HOST`, print the
//! bound address and serve until SIGINT/SIGTERM.

use crate::env::{self, HostAddress};
use crate::server::{self, AppState};
use crate::store::Store;
use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

/// Moves the store an earlier rollama kept at `legacy` to Ollama's location `root`, once,
/// when `root` holds no models yet; says what it did, or why the old store stays where it is.
fn adopt_legacy_store(legacy: &std::path::Path, root: &std::path::Path) {
    if !legacy.join("manifests").is_dir() {
        return;
    }
    let has_models = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("manifests")).is_ok_and(|mut entries| entries.next().is_some())
    };
    if has_models(root) {
        eprintln!(
            "warning: a model store of an earlier rollama is still at {}; this server uses {} \
             (Ollama's location). Move its models over, or set OLLAMA_MODELS={} to use it.",
            legacy.display(),
            root.display(),
            legacy.display()
        );
        return;
    }
    // An empty store at the new place (a server started once before) gives way.
    let _ = std::fs::remove_dir(root.join("manifests"));
    let _ = std::fs::remove_dir(root.join("blobs"));
    let _ = std::fs::remove_dir(root);
    let moved = root
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::rename(legacy, root));
    match moved {
        Ok(()) => eprintln!(
            "moved the model store from {} to {} (Ollama's location, shared with Ollama)",
            legacy.display(),
            root.display()
        ),
        Err(e) => eprintln!(
            "warning: could not move the model store from {} to {}: {e}; set OLLAMA_MODELS={} \
             to keep using it",
            legacy.display(),
            root.display(),
            legacy.display()
        ),
    }
}

pub async fn serve() -> Result<()> {
    crate::memory::limit_arenas();
    let root = env::models_dir();
    if env::var(env::OLLAMA_MODELS).is_empty() {
        if let Some(legacy) = env::legacy_models_dir() {
            adopt_legacy_store(&legacy, &root);
        }
    }
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
        store.remove_orphaned_derived();
    }
    let host = HostAddress::from_env();
    let bind = host.bind_address();
    let listener =
        std::net::TcpListener::bind(&bind).with_context(|| format!("listen tcp {bind}"))?;
    let address = listener.local_addr()?;
    let state = AppState::new(store);
    let scheduler = state.scheduler.clone();
    let server = server::start(listener, state)?;
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
    eprintln!(
        "Listening on {address} (version {}, Ollama API {})",
        crate::VERSION,
        crate::OLLAMA_VERSION
    );
    eprintln!("build: {}", crate::BUILD_INFO);
    log_inference_compute();
    server.await?;
    // Models unload before the process ends, so that their conversations are saved.
    scheduler.shutdown(std::time::Duration::from_secs(60)).await;
    Ok(())
}

/// One line per device models run on, as Ollama's "inference compute" lines: each GPU ggml
/// found (after the `*_VISIBLE_DEVICES` variables), or the CPU when there is none.
fn log_inference_compute() {
    use crate::engine::gpu;
    let devices = gpu::devices();
    for device in &devices {
        eprintln!(
            "inference compute: id={} library={} name={} description=\"{}\" type={} total=\"{}\" available=\"{}\"",
            device.index,
            device.library,
            device.name,
            device.description,
            if device.integrated { "iGPU" } else { "discrete" },
            gpu::gib(device.total),
            gpu::gib(device.free)
        );
    }
    if devices.is_empty() {
        let total = crate::memory::total().unwrap_or(0);
        eprintln!(
            "inference compute: id=cpu library=cpu name=cpu description=cpu type=\"\" total=\"{}\" available=\"{}\"",
            gpu::gib(total),
            gpu::gib(crate::memory::available().unwrap_or(0))
        );
    }
}
