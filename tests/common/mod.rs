//! Test harness: starts the real `rollama serve` on a free loopback port with its own temp
//! `OLLAMA_MODELS` and `HOME`, reads the address it prints, and kills it on drop.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod llama_server;
pub mod registry;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_rollama");

pub struct Server {
    child: Child,
    pub addr: String,
    pub models: PathBuf,
    pub home: tempfile::TempDir,
    _models_dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server with an empty store of its own.
    pub fn start() -> Server {
        Server::start_with_env(&[])
    }

    /// A server with an empty store and extra environment variables.
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        Server::start_inner(models, Some(dir), env)
    }

    /// A server over an existing store directory.
    pub fn start_with_store(models: &Path) -> Server {
        Server::start_inner(models.to_path_buf(), None, &[])
    }

    /// A server over an existing store directory, with extra environment variables.
    pub fn start_with_store_env(models: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_inner(models.to_path_buf(), None, env)
    }

    /// A server with `home` as its `HOME` and no `OLLAMA_MODELS`: the store is wherever the
    /// server puts it by default (`~/.ollama/models`).
    pub fn start_in_home(home: tempfile::TempDir) -> Server {
        let models = home.path().join(".ollama/models");
        Server::spawn(models, None, &[], home, false)
    }

    fn start_inner(
        models: PathBuf,
        dir: Option<tempfile::TempDir>,
        env: &[(&str, &str)],
    ) -> Server {
        Server::spawn(models, dir, env, tempfile::tempdir().unwrap(), true)
    }

    fn spawn(
        models: PathBuf,
        dir: Option<tempfile::TempDir>,
        env: &[(&str, &str)],
        home: tempfile::TempDir,
        set_models: bool,
    ) -> Server {
        let mut command = Command::new(BIN);
        if set_models {
            command.env("OLLAMA_MODELS", &models);
        } else {
            command.env_remove("OLLAMA_MODELS");
        }
        command
            .arg("serve")
            .envs(env.iter().copied())
            .env("HOME", home.path());
        Server::launch(command, models, dir, home)
    }

    /// Starts `command`, a `rollama serve` with its store at `models` (e.g. one run through
    /// `chroot`), on a free loopback port.
    pub fn start_command(command: Command, models: PathBuf) -> Server {
        Server::launch(command, models, None, tempfile::tempdir().unwrap())
    }

    fn launch(
        mut command: Command,
        models: PathBuf,
        dir: Option<tempfile::TempDir>,
        home: tempfile::TempDir,
    ) -> Server {
        let mut child = command
            .env("OLLAMA_HOST", "127.0.0.1:0")
            .env_remove("XDG_DATA_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rollama serve");
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(rest) = line.strip_prefix("Listening on ") {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = sender.send(addr);
                        sent = true;
                    }
                }
                if std::env::var_os("ROLLAMA_TEST_LOG").is_some() {
                    eprintln!("[server] {line}");
                }
            }
        });
        let addr = match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("rollama serve did not print its address");
            }
        };
        Server {
            child,
            addr,
            models,
            home,
            _models_dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The CLI pointed at this server.
    pub fn rollama(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .env("OLLAMA_HOST", &self.addr)
            .env("HOME", self.home.path())
            .stdin(Stdio::null());
        command
    }

    /// Runs the CLI with `args` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.rollama().args(args).output().unwrap()
    }

    pub fn blobs(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.models.join("blobs"))
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the server has used, from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// Resident memory of the server, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        self.status_kib("VmRSS:") * 1024
    }

    /// Resident anonymous memory (heap, stacks): what a leak grows, without the pages of the
    /// binary and the model files that the kernel maps in as code paths are first used.
    pub fn anon_rss_bytes(&self) -> u64 {
        self.status_kib("RssAnon:") * 1024
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    }

    /// Asserts that the server stops computing: after a second to wind down, it uses under
    /// 0.3 s of CPU in the next second (a cancelled generation must not run on).
    pub async fn assert_goes_idle(&self) {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let before = self.cpu_time();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let used = self.cpu_time() - before;
        assert!(
            used < Duration::from_millis(300),
            "server kept computing: {used:?} of CPU in 1s"
        );
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Server {
    /// Stops the server as a service manager does (SIGTERM) and waits for it to exit.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let started = std::time::Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "rollama serve did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` as root: itself when this process is root, else inside a user namespace where it
/// is (`unshare --map-root-user`).
pub fn as_root(program: &str) -> Command {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if stdout(&uid).trim() == "0" {
        Command::new(program)
    } else {
        let mut command = Command::new("unshare");
        command.args(["--map-root-user", program]);
        command
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The real SmolLM2 GGUF: `ROLLAMA_TEST_GGUF`, or fetched with the project's script.
pub fn test_gguf() -> PathBuf {
    if let Some(path) = std::env::var_os("ROLLAMA_TEST_GGUF") {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-test-models.sh");
    let output = Command::new(script)
        .output()
        .expect("run fetch-test-models.sh");
    assert!(output.status.success(), "{}", stderr(&output));
    PathBuf::from(stdout(&output).trim())
}

/// A Modelfile next to a symlink of the test model, so `FROM ./model.gguf` is relative.
pub fn modelfile_dir(body: &str) -> tempfile::TempDir {
    modelfile_dir_for(&test_gguf(), body)
}

/// A Modelfile next to a symlink `model.gguf` of `gguf`.
pub fn modelfile_dir_for(gguf: &Path, body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(gguf, dir.path().join("model.gguf")).unwrap();
    std::fs::write(dir.path().join("Modelfile"), body).unwrap();
    dir
}

/// `rollama create NAME` from `gguf` (with `<|im_end|>` as stop), plus `extra` arguments.
pub fn create_from_gguf(server: &Server, name: &str, gguf: &Path, extra: &[&str]) -> Output {
    let dir = modelfile_dir_for(gguf, "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n");
    let modelfile = dir.path().join("Modelfile");
    let mut args = vec!["create", name, "-f", modelfile.to_str().unwrap()];
    args.extend_from_slice(extra);
    server.run(&args)
}

/// [`create_from_dir`] that must succeed; returns its progress log (stderr).
pub fn import_dir(server: &Server, name: &str, dir: &Path, extra: &[&str]) -> String {
    let output = create_from_dir(server, name, dir, extra);
    let log = stderr(&output);
    assert!(output.status.success(), "create {name} failed: {log}");
    log
}

/// The test model re-quantized to `target`, written as `dir/smollm2-<target>.gguf`.
pub fn requantized(dir: &Path, target: rollama::quantize::Target) -> PathBuf {
    let path = dir.join(format!("smollm2-{}.gguf", target.name()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    rollama::quantize::requantize(&test_gguf(), target, &mut file, |_, _| {}).unwrap();
    std::io::Write::flush(&mut file).unwrap();
    path
}

/// Creates `name` from the test model through the CLI.
pub fn create_model(server: &Server, name: &str, modelfile: &str) -> tempfile::TempDir {
    let dir = modelfile_dir(modelfile);
    let path = dir.path().join("Modelfile");
    let output = server.run(&["create", name, "-f", path.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "create failed: {}",
        stderr(&output)
    );
    dir
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A SmolLM2 model whose template shows tools, so it has the `tools` capability.
pub const TOOLS_MODEL: &str = r#"FROM ./model.gguf
TEMPLATE """{{ if .Tools }}<|im_start|>system
You can call these tools: {{ range .Tools }}{{ .Function.Name }} {{ end }}<|im_end|>
{{ end }}{{ range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""
PARAMETER stop <|im_end|>
"#;

/// GETs `path` and decodes the reply as JSON.
pub async fn get_json(server: &Server, path: &str) -> serde_json::Value {
    reqwest::get(server.url(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POSTs a JSON body; the status and the reply as JSON (a string when it is not JSON).
pub async fn post(
    server: &Server,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let (status, text) = post_text(server, path, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// POSTs a JSON body; the status and the whole reply as text (NDJSON or SSE streams).
pub async fn post_text(server: &Server, path: &str, body: serde_json::Value) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A short greedy chat answer from `model` (asserting a 200).
pub async fn greedy_answer(server: &Server, model: &str, prompt: &str) -> String {
    let (status, body) = post(
        server,
        "/api/chat",
        serde_json::json!({"model": model, "messages": [{"role": "user", "content": prompt}],
               "stream": false, "options": {"temperature": 0, "num_predict": 12}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A model directory fetched beside the SmolLM2 GGUF by scripts/fetch-test-models.sh
/// (`all-minilm-l6-v2`, `smollm2-safetensors`).
pub fn test_model_dir(name: &str) -> PathBuf {
    let dir = test_gguf()
        .parent()
        .expect("the test GGUF has a directory")
        .join(name);
    assert!(
        dir.is_dir(),
        "{} is missing: run scripts/fetch-test-models.sh",
        dir.display()
    );
    dir
}

/// `rollama create NAME` with `FROM <dir>` (a model directory), plus `extra` arguments.
pub fn create_from_dir(server: &Server, name: &str, dir: &Path, extra: &[&str]) -> Output {
    let modelfile_dir = tempfile::tempdir().unwrap();
    let modelfile = modelfile_dir.path().join("Modelfile");
    std::fs::write(&modelfile, format!("FROM {}\n", dir.display())).unwrap();
    let mut args = vec!["create", name, "-f", modelfile.to_str().unwrap()];
    args.extend_from_slice(extra);
    server.run(&args)
}

/// `quantization_level` from `/api/show` and the size `/api/tags` lists for `name`.
pub async fn level_and_size(server: &Server, name: &str) -> (String, u64) {
    let (status, show) = post(server, "/api/show", serde_json::json!({"model": name})).await;
    assert_eq!(status, 200, "{show}");
    let tags = get_json(server, "/api/tags").await;
    let size = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == format!("{name}:latest"))
        .unwrap_or_else(|| panic!("{name} is not listed: {tags}"))["size"]
        .as_u64()
        .unwrap();
    let level = show["details"]["quantization_level"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (level, size)
}

/// A SmolLM2 model that thinks, made as a user would: its TEMPLATE shows earlier reasoning
/// between `<think>` tags (so the server infers the tags, and the `thinking` capability), and
/// with thinking on it opens the reasoning for the model, whose reply is then reasoning until
/// it writes `</think>`. With thinking off it asks for a direct answer instead.
pub const THINKING_MODEL: &str = r#"FROM ./model.gguf
TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>
{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ if .Think }}<think>
{{ else }}I will answer at once, without thinking it over first.
{{ end }}"""
PARAMETER stop <|im_end|>
"#;

/// The server's `/metrics` text.
pub async fn metrics_text(server: &Server) -> String {
    reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The sum of a metric's samples over all its labels, from `/metrics`.
pub async fn metric(server: &Server, name: &str) -> f64 {
    metrics_text(server)
        .await
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test model with `template` as its GGUF chat template (`tokenizer.chat_template`),
/// written to `dir`: the same weights and vocabulary, another chat format.
pub fn gguf_with_chat_template(dir: &Path, template: &str) -> PathBuf {
    use candle_core::quantized::gguf_file;
    let mut source = std::fs::File::open(test_gguf()).unwrap();
    let content = gguf_file::Content::read(&mut source).unwrap();
    let mut metadata: std::collections::BTreeMap<String, gguf_file::Value> = content
        .metadata
        .iter()
        .filter(|(key, _)| key.as_str() != "general.alignment")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    metadata.insert(
        "tokenizer.chat_template".into(),
        gguf_file::Value::String(template.into()),
    );
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let tensors: Vec<(String, candle_core::quantized::QTensor)> = names
        .into_iter()
        .map(|name| {
            let tensor = content
                .tensor(&mut source, name, &candle_core::Device::Cpu)
                .unwrap();
            (name.clone(), tensor)
        })
        .collect();
    let path = dir.join("templated.gguf");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    rollama::quantize::write_gguf(&mut out, &metadata, &tensors).unwrap();
    path
}

/// The Python with the official client libraries: `ROLLAMA_TEST_PYTHON`, else the virtual
/// environment scripts/python-clients.sh makes.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("ROLLAMA_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/python-clients.sh");
    let output = Command::new(script)
        .output()
        .expect("run python-clients.sh");
    assert!(output.status.success(), "{}", stderr(&output));
    PathBuf::from(stdout(&output).trim())
}

/// Runs `tests/clients/<script>` with `args` and asserts that it succeeded; a generation that
/// runs away fails the test after five minutes instead of hanging the suite.
pub fn run_client_script(script: &str, args: &[&str]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let mut child = Command::new(python())
        .arg(path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the client script");
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{script} failed:\n{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    output
}

/// A PNG of `width` x `height` RGB pixels from `pixel`, its image data in stored (not
/// compressed) deflate blocks.
pub fn png(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65521;
        b = (b + a) % 65521;
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The model blob of `name` in the store `models`.
pub fn model_blob(models: &Path, name: &str) -> PathBuf {
    let manifest = models.join(format!(
        "manifests/registry.ollama.ai/library/{name}/latest"
    ));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let layer = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mediaType"] == "application/vnd.ollama.image.model")
        .unwrap();
    models
        .join("blobs")
        .join(layer["digest"].as_str().unwrap().replace(':', "-"))
}
