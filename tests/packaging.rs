//! Shipping, through the real scripts: scripts/release.sh packages the binary these tests run
//! (reproducibly), install.sh installs that tarball with no cargo on PATH and the starter model
//! answers, a tampered tarball is refused, the systemd service installs and uninstalls under
//! a scratch root with a unit `systemd-analyze verify` accepts, and the Homebrew formula
//! parses.
//!
//! The service test needs root, as install.sh's service set-up does; as another user it runs
//! install.sh inside a user namespace where it is root (`unshare --map-root-user`).

mod common;

use common::{as_root, stderr, stdout, test_gguf, Server, BIN};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A PATH with the system's tools and no Rust toolchain.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// scripts/release.sh OUT, packaging the binary under test; the tarball's path.
fn release(out: &Path) -> PathBuf {
    let output = Command::new(repo().join("scripts/release.sh"))
        .arg(out)
        .env("ROLLAMA_BINARY", BIN)
        .output()
        .unwrap();
    assert!(output.status.success(), "release.sh: {}", stderr(&output));
    let name = format!(
        "rollama-{}-linux-{}.tar.gz",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    let tarball = out.join(name);
    assert!(tarball.is_file(), "{}", stdout(&output));
    tarball
}

/// One release of the binary under test that the tests only read, made once per test run into
/// the test target's scratch directory (packaging it strips a 480 MB binary).
fn shared_release() -> &'static Path {
    static TARBALL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TARBALL.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packaging-release");
        let _ = std::fs::remove_dir_all(&out);
        release(&out)
    })
}

/// install.sh with ARGS, no cargo on PATH, HOME at `home`, and OLLAMA_HOST at a port nothing
/// listens on (so it starts a server of its own for the starter model).
fn install(args: &[&str], home: &Path, env: &[(&str, &str)]) -> Command {
    // The service set-up under DESTDIR needs root.
    let mut command = if env.iter().any(|(k, _)| *k == "DESTDIR") {
        as_root("bash")
    } else {
        Command::new("bash")
    };
    command
        .arg(repo().join("install.sh"))
        .args(args)
        .env("PATH", SYSTEM_PATH)
        .env("HOME", home)
        .env("OLLAMA_HOST", format!("127.0.0.1:{}", common::free_port()))
        .env_remove("OLLAMA_MODELS")
        .env_remove("DESTDIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

fn succeeded(output: &Output) -> String {
    let log = format!("{}{}", stdout(output), stderr(output));
    assert!(output.status.success(), "install.sh failed: {log}");
    log
}

/// install.sh failed with `message` and installed nothing under `prefix`.
fn refused(output: &Output, message: &str, prefix: &Path) {
    assert!(!output.status.success());
    assert!(stderr(output).contains(message), "{}", stderr(output));
    assert!(!prefix.exists(), "nothing is installed");
}

/// How many of the DWARF sections with line tables and debug info `binary` has (not counting
/// `.debug_gdb_scripts`, which rustc puts in loaded memory and `strip` keeps).
fn debug_sections(binary: &Path) -> usize {
    let output = Command::new("readelf")
        .arg("-S")
        .arg(binary)
        .output()
        .unwrap();
    let sections = stdout(&output);
    [" .debug_info ", " .debug_line "]
        .iter()
        .filter(|name| sections.contains(*name))
        .count()
}

#[test]
fn release_is_reproducible_and_ships_a_stripped_binary_with_its_files() {
    let tarball = shared_release();
    let first = tarball.parent().unwrap();
    let second = tempfile::tempdir().unwrap();
    release(second.path());
    let sums = std::fs::read_to_string(first.join("SHA256SUMS")).unwrap();
    assert_eq!(
        sums,
        std::fs::read_to_string(second.path().join("SHA256SUMS")).unwrap(),
        "two runs differ"
    );
    for artefact in [".tar.gz", ".debug", "-src.tar.gz", "rollama.rb"] {
        assert!(
            sums.lines().any(|l| l.ends_with(artefact)),
            "SHA256SUMS lacks {artefact}: {sums}"
        );
    }

    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(tarball)
        .output()
        .unwrap();
    let listing = stdout(&listing);
    let top = tarball
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".tar.gz");
    for file in [
        "rollama",
        "SHA256SUMS",
        "LICENSE",
        "README.md",
        "install.sh",
        "completions/rollama.bash",
        "completions/_rollama",
        "completions/rollama.fish",
        "man/rollama.1",
        "man/rollama-serve.1",
        "scripts/fetch-starter-model.sh",
    ] {
        assert!(
            listing.lines().any(|l| l == format!("{top}/{file}")),
            "{file} missing from {listing}"
        );
    }

    let unpacked = tempfile::tempdir().unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(tar.success());
    let binary = unpacked.path().join(top).join("rollama");
    assert!(
        debug_sections(Path::new(BIN)) > 0,
        "the test build has line tables"
    );
    assert_eq!(debug_sections(&binary), 0, "the shipped binary is stripped");
    let debug = first.join(format!("{top}.debug"));
    assert!(
        debug_sections(&debug) > 0,
        "the debug info is kept beside it"
    );
    let size = std::fs::metadata(&binary).unwrap().len();
    eprintln!("shipped binary: {:.1} MB", size as f64 / 1e6);

    // The formula names the source tarball by its sha256; both copies parse.
    let src = format!("rollama-{}-src.tar.gz", env!("CARGO_PKG_VERSION"));
    let sha = sums
        .lines()
        .find(|l| l.ends_with(&src))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let formula = std::fs::read_to_string(first.join("rollama.rb")).unwrap();
    assert!(formula.contains(&format!("sha256 \"{sha}\"")), "{formula}");
    assert!(formula.contains(&format!("/{src}\"")), "{formula}");
    for file in [
        repo().join("packaging/homebrew/rollama.rb"),
        first.join("rollama.rb"),
    ] {
        let ruby = Command::new("ruby").arg("-c").arg(&file).output();
        let ruby = ruby.expect("ruby is missing: scripts/build-deps.sh --test installs it");
        assert!(
            ruby.status.success(),
            "{}: {}",
            file.display(),
            stderr(&ruby)
        );
    }
}

#[test]
fn the_tarball_installs_without_cargo_and_the_starter_model_answers() {
    let check = Command::new("bash")
        .args(["-c", "command -v cargo"])
        .env("PATH", SYSTEM_PATH)
        .output()
        .unwrap();
    assert!(!check.status.success(), "cargo is on {SYSTEM_PATH}");

    let tarball = shared_release();
    let home = tempfile::tempdir().unwrap();
    let prefix = home.path().join("prefix");
    let models = home.path().join("models");
    let starter = test_gguf();
    let started = std::time::Instant::now();
    let output = install(
        &[
            "--from",
            tarball.to_str().unwrap(),
            "--prefix",
            prefix.to_str().unwrap(),
        ],
        home.path(),
        &[
            ("OLLAMA_MODELS", models.to_str().unwrap()),
            // The starter GGUF the tests already fetched (the script verifies and reuses it).
            (
                "ROLLAMA_STARTER_DIR",
                starter.parent().unwrap().to_str().unwrap(),
            ),
        ],
    )
    .output()
    .unwrap();
    let log = succeeded(&output);
    eprintln!(
        "install --from took {:.1} s:\n{log}",
        started.elapsed().as_secs_f64()
    );
    assert!(log.contains("checked rollama-"), "{log}");
    assert!(log.contains("SHA256SUMS"), "{log}");
    assert!(
        log.contains("start the server with 'rollama serve'"),
        "{log}"
    );
    let installed = prefix.join("bin/rollama");
    for file in [
        "share/bash-completion/completions/rollama",
        "share/man/man1/rollama.1",
        "share/rollama/installed",
    ] {
        assert!(prefix.join(file).is_file(), "{file}");
    }

    // The installed binary serves the store install.sh created the starter model in.
    let mut serve = Command::new(&installed);
    serve.arg("serve").env("OLLAMA_MODELS", &models);
    let server = Server::start_command(serve, models.clone());
    let run = Command::new(&installed)
        .args(["run", "smollm2", "Why is the sky blue?"])
        .env("OLLAMA_HOST", &server.addr)
        .env("ROLLAMA_NO_AUTOSTART", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stdout(&run).split_whitespace().count() >= 3,
        "{:?}",
        stdout(&run)
    );

    // Again from standard input, into another prefix; then uninstalled.
    let piped = home.path().join("piped");
    let output = install(
        &[
            "--from",
            "-",
            "--prefix",
            piped.to_str().unwrap(),
            "--no-model",
        ],
        home.path(),
        &[],
    )
    .stdin(std::fs::File::open(tarball).unwrap())
    .output()
    .unwrap();
    succeeded(&output);
    assert!(piped.join("bin/rollama").is_file());
    let output = install(
        &["--uninstall", "--prefix", piped.to_str().unwrap()],
        home.path(),
        &[],
    )
    .output()
    .unwrap();
    succeeded(&output);
    assert!(!piped.join("bin/rollama").exists());
    assert!(!piped.join("share/man/man1/rollama.1").exists());
}

#[test]
fn a_tampered_tarball_is_refused_and_nothing_is_installed() {
    let shared = shared_release();
    let dist = tempfile::tempdir().unwrap();
    let tarball = dist.path().join(shared.file_name().unwrap());
    std::fs::copy(shared, &tarball).unwrap();
    std::fs::copy(
        shared.with_file_name("SHA256SUMS"),
        dist.path().join("SHA256SUMS"),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let prefix = home.path().join("prefix");
    let args = |tarball: &Path| {
        vec![
            "--from".to_string(),
            tarball.to_str().unwrap().to_string(),
            "--prefix".to_string(),
            prefix.to_str().unwrap().to_string(),
            "--no-model".to_string(),
        ]
    };
    let run = |tarball: &Path| {
        let args = args(tarball);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        install(&args, home.path(), &[]).output().unwrap()
    };

    // One byte changed: it no longer matches the SHA256SUMS beside it.
    let mut bytes = std::fs::read(&tarball).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&tarball, &bytes).unwrap();
    refused(&run(&tarball), "does not match", &prefix);

    // A repacked tarball whose binary changed, with no SHA256SUMS beside it: the sums inside
    // catch it.
    let work = tempfile::tempdir().unwrap();
    let top = shared
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".tar.gz");
    let script = format!(
        "tar -xzf '{}' -C '{dir}' && printf x >> '{dir}/{top}/rollama' && tar -czf '{dir}/repacked.tar.gz' -C '{dir}' '{top}'",
        shared.display(),
        dir = work.path().display()
    );
    assert!(Command::new("bash")
        .args(["-c", &script])
        .status()
        .unwrap()
        .success());
    let repacked = run(&work.path().join("repacked.tar.gz"));
    refused(&repacked, "do not match its SHA256SUMS", &prefix);
}

#[test]
fn the_service_installs_and_uninstalls_under_a_scratch_root() {
    let tarball = shared_release();
    let home = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let destdir = [("DESTDIR", root.to_str().unwrap())];
    let from = [
        "--from",
        tarball.to_str().unwrap(),
        "--prefix",
        "/usr/local",
    ];

    let output = install(&from, home.path(), &destdir).output().unwrap();
    let log = succeeded(&output);
    let unit_path = root.join("etc/systemd/system/rollama.service");
    let unit = std::fs::read_to_string(&unit_path).expect("the unit is written");
    for line in [
        "ExecStart=/usr/local/bin/rollama serve",
        "User=rollama",
        "Restart=on-failure",
        "Environment=\"OLLAMA_MODELS=/usr/share/rollama/.ollama/models\"",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line:?} not in {unit}");
    }
    assert!(
        unit.contains("OLLAMA_HOST"),
        "the environment is documented"
    );
    assert!(root.join("usr/local/bin/rollama").is_file());
    assert!(root.join("usr/share/rollama/.ollama/models").is_dir());
    assert!(log.contains("wrote"), "{log}");

    // systemd-analyze resolves the unit's dependencies inside --root: give it the system's.
    let units = root.join("usr/lib/systemd");
    std::fs::create_dir_all(&units).unwrap();
    let copied = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(&units)
        .status()
        .unwrap();
    assert!(copied.success());
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("/etc/systemd/system/rollama.service")
        .output()
        .expect("systemd-analyze is missing: scripts/build-deps.sh --test installs it");
    let said = format!("{}{}", stdout(&verify), stderr(&verify));
    assert!(verify.status.success(), "systemd-analyze verify: {said}");
    assert_eq!(said.trim(), "", "systemd-analyze warns");

    // Uninstall removes the unit and the files and keeps the models; --purge deletes them.
    let uninstall = ["--uninstall", "--prefix", "/usr/local"];
    let output = install(&uninstall, home.path(), &destdir).output().unwrap();
    let log = succeeded(&output);
    assert!(!unit_path.exists());
    assert!(!root.join("usr/local/bin/rollama").exists());
    assert!(!root.join("usr/local/share/man/man1/rollama.1").exists());
    assert!(root.join("usr/share/rollama/.ollama/models").is_dir());
    assert!(log.contains("kept the service's models"), "{log}");

    succeeded(&install(&from, home.path(), &destdir).output().unwrap());
    let purge = ["--uninstall", "--purge", "--prefix", "/usr/local"];
    succeeded(&install(&purge, home.path(), &destdir).output().unwrap());
    assert!(!root.join("usr/share/rollama").exists());
    assert!(!unit_path.exists());
}

#[test]
fn a_source_install_is_a_stripped_binary_with_its_debug_info_beside_it() {
    // install.sh from this checkout, given the binary under test (ROLLAMA_BINARY) rather than
    // building one: the same steps after the build. The prefix is inside HOME, so no service
    // is set up.
    let real_home = PathBuf::from(std::env::var("HOME").unwrap());
    let home = tempfile::Builder::new()
        .prefix(".rollama-install-test")
        .tempdir_in(&real_home)
        .unwrap();
    let prefix = home.path().join("prefix");
    let output = Command::new("bash")
        .arg(repo().join("install.sh"))
        .args(["--no-model", "--prefix", prefix.to_str().unwrap()])
        .env("ROLLAMA_BINARY", BIN)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = succeeded(&output);
    let installed = prefix.join("bin/rollama");
    let size = std::fs::metadata(&installed).unwrap().len();
    // 79.3 MB before llama.cpp's multimodal library (images) came in, 81.2 MB with it.
    assert!(size < 84_000_000, "{size} bytes installed: {log}");
    assert_eq!(
        debug_sections(&installed),
        0,
        "the installed binary is stripped"
    );
    let debug = prefix.join("bin/.debug/rollama.debug");
    assert!(debug_sections(&debug) > 0, "its debug info is beside it");
    let sections = stdout(
        &Command::new("readelf")
            .arg("-S")
            .arg(&installed)
            .output()
            .unwrap(),
    );
    assert!(
        sections.contains(".gnu_debuglink"),
        "gdb finds the debug file"
    );
    let version = Command::new(&installed).arg("-v").output().unwrap();
    assert!(version.status.success(), "{}", stderr(&version));

    let uninstall = Command::new("bash")
        .arg(repo().join("install.sh"))
        .args(["--uninstall", "--prefix", prefix.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    succeeded(&uninstall);
    assert!(
        !installed.exists() && !debug.exists(),
        "uninstall removes both"
    );
}
