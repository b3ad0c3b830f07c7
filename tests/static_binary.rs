//! The binary as it ships, on its own: stripped, copied alone into an empty directory and run
//! there under `chroot`, where there are no shared libraries, no NSS modules, no /proc and no
//! /sys. Only the test model and `/etc/hosts` + `/etc/resolv.conf` (which any system has, and
//! the Rust resolver reads) are copied in. Inside, `--version` works, `serve` answers, a model
//! created from the GGUF generates, and a `pull` by host name from the loopback test registry
//! succeeds.
//!
//! `chroot` needs root; as another user the test runs it inside a user namespace
//! (`unshare --map-root-user`).

mod common;

use common::registry::Registry;
use common::{as_root, create_model, stderr, stdout, test_gguf, Server, BIN};
use std::path::Path;
use std::process::{Command, Output};

/// `chroot ROOT` with a clean environment (`HOME=/home`), ready for the program and arguments.
fn chroot(root: &Path) -> Command {
    let mut command = as_root("chroot");
    // A clean environment; PATH only so that `chroot` itself is found.
    command
        .arg(root)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/home");
    command
}

/// The CLI inside `root`, talking to `server`.
fn rollama_in(root: &Path, server: &Server, args: &[&str]) -> Output {
    chroot(root)
        .arg("/rollama")
        .args(args)
        .env("OLLAMA_HOST", &server.addr)
        .env("ROLLAMA_NO_AUTOSTART", "1")
        .output()
        .unwrap()
}

#[test]
fn the_stripped_binary_alone_in_an_empty_chroot_serves_generates_and_pulls() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let binary = root.join("rollama");
    std::fs::copy(BIN, &binary).unwrap();
    let strip = Command::new("strip").arg(&binary).output().unwrap();
    assert!(strip.status.success(), "{}", stderr(&strip));
    let size = std::fs::metadata(&binary).unwrap().len();
    eprintln!("stripped binary: {:.1} MB", size as f64 / 1e6);

    // Static: nothing for the dynamic loader to do.
    let ldd = Command::new("ldd").arg(&binary).output().unwrap();
    let said = format!("{}{}", stdout(&ldd), stderr(&ldd));
    assert!(
        said.contains("statically linked") || said.contains("not a dynamic executable"),
        "ldd: {said}"
    );

    for dir in ["home", "models", "tmp", "etc"] {
        std::fs::create_dir(root.join(dir)).unwrap();
    }
    for file in ["etc/hosts", "etc/resolv.conf"] {
        std::fs::copy(Path::new("/").join(file), root.join(file)).unwrap();
    }
    std::fs::copy(test_gguf(), root.join("model.gguf")).unwrap();
    std::fs::write(
        root.join("Modelfile"),
        "FROM /model.gguf\nPARAMETER stop <|im_end|>\n",
    )
    .unwrap();

    // --version with no server: the warnings and the build line, exit 0.
    let version = chroot(root)
        .args(["/rollama", "--version"])
        .output()
        .unwrap();
    assert!(version.status.success(), "{}", stderr(&version));
    assert!(
        stderr(&version).contains(&format!("rollama {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{}",
        stderr(&version)
    );

    // serve, inside the chroot, with its store there.
    let mut serve = chroot(root);
    serve
        .args(["/rollama", "serve"])
        .env("OLLAMA_MODELS", "/models");
    let server = Server::start_command(serve, root.join("models"));

    let create = rollama_in(root, &server, &["create", "smol", "-f", "/Modelfile"]);
    assert!(create.status.success(), "create: {}", stderr(&create));
    let run = rollama_in(root, &server, &["run", "smol", "Why is the sky blue?"]);
    assert!(run.status.success(), "run: {}", stderr(&run));
    assert!(
        stdout(&run).split_whitespace().count() >= 3,
        "answer: {:?}",
        stdout(&run)
    );

    // A model pushed to the loopback registry from an ordinary server, pulled inside the
    // chroot by host name (`localhost`, resolved without glibc's NSS modules).
    let registry = Registry::start();
    let outside = Server::start();
    let _dir = create_model(&outside, "smollm2", "FROM ./model.gguf\n");
    let remote = format!("127.0.0.1:{}/library/smollm2:static", registry.port());
    let cp = outside.run(&["cp", "smollm2", &remote]);
    assert!(cp.status.success(), "{}", stderr(&cp));
    let push = outside.run(&["push", "--insecure", &remote]);
    assert!(push.status.success(), "push: {}", stderr(&push));

    let by_name = format!("localhost:{}/library/smollm2:static", registry.port());
    let pull = rollama_in(root, &server, &["pull", "--insecure", &by_name]);
    assert!(pull.status.success(), "pull: {}", stderr(&pull));
    assert!(stderr(&pull).contains("success"), "{}", stderr(&pull));
    let list = rollama_in(root, &server, &["list"]);
    assert!(stdout(&list).contains(&by_name), "{}", stdout(&list));
}
