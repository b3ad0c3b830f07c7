//! Starting a server on demand: when no server answers on a local address, client commands
//! start `rollama serve` in the background (as Ollama's desktop app does) and wait for it.
//! `ROLLAMA_NO_AUTOSTART=1` turns this off; remote addresses are never started.

use crate::client::{Client, ClientError};
use crate::env::HostAddress;
use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set to a true value to never start a server automatically.
pub const ROLLAMA_NO_AUTOSTART: &str = "ROLLAMA_NO_AUTOSTART";

/// How long to wait for a started server to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where an automatically started server writes its log and pid.
pub fn state_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "rollama")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .unwrap_or_else(crate::env::ollama_home)
}

fn is_local(host: &HostAddress) -> bool {
    matches!(
        host.host.as_str(),
        "" | "localhost" | "0.0.0.0" | "::" | "::1"
    ) || host.host.starts_with("127.")
}

/// Makes sure a server answers, starting one if allowed.
pub async fn ensure_server(client: &Client) -> Result<()> {
    match client.heartbeat().await {
        Err(ClientError::Connect) => {}
        other => return other.map_err(Into::into),
    }
    let host = HostAddress::from_env();
    if crate::env::bool_var(ROLLAMA_NO_AUTOSTART, false) || !is_local(&host) {
        return Err(ClientError::Connect.into());
    }
    let dir = state_dir();
    fs_err::create_dir_all(&dir)?;
    let log_path = dir.join("server.log");
    let log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let exe = std::env::current_exe().context("locating the rollama binary")?;
    let mut child = Command::new(exe)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?.into_parts().0)
        .stderr(log.into_parts().0)
        // Its own process group: Ctrl-C in this terminal must not stop the server.
        .process_group(0)
        .spawn()
        .context("starting rollama serve")?;
    fs_err::write(dir.join("server.pid"), child.id().to_string())?;
    eprintln!(
        "Started rollama serve in the background (log: {})",
        log_path.display()
    );
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if client.heartbeat().await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "rollama serve exited ({status}) before it was ready; see {}",
                log_path.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "rollama serve did not answer within {}s; see {}",
                READY_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
