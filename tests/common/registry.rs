//! Debian's `docker-registry` (distribution 2.8) on a loopback port with a temp storage dir:
//! the registry the pull/push tests and the static-binary test talk to.

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A plain `GET` over a fresh connection; the whole reply, or "" if none.
pub fn raw_get(host: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// `docker-registry serve` on a fixed port over a storage dir; it can be killed and started
/// again on the same port and storage.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let binary = std::env::var("ROLLAMA_TEST_REGISTRY")
            .unwrap_or_else(|_| "/usr/bin/docker-registry".to_string());
        assert!(
            Path::new(&binary).exists(),
            "{binary} is missing: install Debian's docker-registry (.ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let mut registry = Registry {
            child: None,
            port,
            config,
            _dir: dir,
        };
        registry.restart();
        registry
    }

    pub fn restart(&mut self) {
        let binary = std::env::var("ROLLAMA_TEST_REGISTRY")
            .unwrap_or_else(|_| "/usr/bin/docker-registry".to_string());
        let child = Command::new(binary)
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        self.child = Some(child);
        for _ in 0..200 {
            if raw_get(&self.host(), "/v2/").starts_with("HTTP/1.0 200")
                || raw_get(&self.host(), "/v2/").starts_with("HTTP/1.1 200")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start");
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}
