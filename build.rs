//! Build facts for `rollama -v`: the git commit this binary was built from and the versions of
//! the engine crates in Cargo.lock, as one line in the `ROLLAMA_BUILD_INFO` compile-time
//! variable.
//!
//! The commit comes from `ROLLAMA_GIT_COMMIT` when set (a source tarball has no `.git`), else
//! from `git`, else "unknown".
//!
//! With the llama.cpp engine it also compiles `src/engine/chat_shim.cpp`, rollama's C++ shim
//! around llama.cpp's chat code, against the llama.cpp sources `llama-cpp-sys-2` built.

use std::path::Path;
use std::process::Command;

/// The crates whose versions say which engines are inside.
const ENGINE_CRATES: [&str; 3] = ["llama-cpp-2", "llama-cpp-sys-2", "mistralrs"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=ROLLAMA_GIT_COMMIT");

    let commit = std::env::var("ROLLAMA_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            watch_git();
            git(&["rev-parse", "--short=12", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".to_string());

    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let engines: Vec<String> = ENGINE_CRATES
        .iter()
        .map(|name| match locked_version(&lock, name) {
            Some(version) => format!("{name} {version}"),
            None => format!("{name} ?"),
        })
        .collect();
    println!(
        "cargo:rustc-env=ROLLAMA_BUILD_INFO=commit {commit}; engines: {}",
        engines.join(", ")
    );

    if std::env::var_os("CARGO_FEATURE_LLAMACPP").is_some() {
        build_chat_shim();
    }
}

/// Compiles the chat shim against the llama.cpp tree `llama-cpp-sys-2` configured. That crate
/// (`links = "llama"`) tells its direct dependents where it installed ggml's CMake package
/// (`DEP_LLAMA_GGML_CMAKE_DIR`, `<out>/lib/cmake`); its CMake cache in `<out>/build` names the
/// source directory. Its static `llama-common` library, which the shim calls, is linked by
/// that crate, after this one.
fn build_chat_shim() {
    println!("cargo:rerun-if-changed=src/engine/chat_shim.cpp");
    println!("cargo:rerun-if-changed=src/engine/device_shim.cpp");
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_GGML_CMAKE_DIR");
    let cmake_dir = std::env::var("DEP_LLAMA_GGML_CMAKE_DIR")
        .expect("llama-cpp-sys-2 did not say where it built llama.cpp (DEP_LLAMA_GGML_CMAKE_DIR)");
    let out = Path::new(&cmake_dir)
        .ancestors()
        .nth(2)
        .expect("<out>/lib/cmake has an <out>");
    let cache = std::fs::read_to_string(out.join("build").join("CMakeCache.txt"))
        .expect("llama-cpp-sys-2's CMake cache");
    let source = cache
        .lines()
        .find_map(|line| line.strip_prefix("CMAKE_HOME_DIRECTORY:INTERNAL="))
        .expect("CMAKE_HOME_DIRECTORY in llama-cpp-sys-2's CMake cache");
    let source = Path::new(source.trim());
    cc::Build::new()
        .cpp(true)
        .file("src/engine/chat_shim.cpp")
        .file("src/engine/device_shim.cpp")
        .include(source.join("common"))
        .include(source.join("include"))
        .include(source.join("ggml/include"))
        .include(source.join("vendor"))
        .flag_if_supported("-std=c++17")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-unused-function")
        .pic(true)
        // llama-cpp-sys-2 links the C++ library (statically in rollama's static build).
        .cpp_link_stdlib(None)
        .compile("rollama_chat_shim");
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// Reruns this script when HEAD moves: HEAD itself, the branch it names, and packed refs.
/// Only existing files are watched (cargo reruns every build for a missing one).
fn watch_git() {
    let mut files = vec!["HEAD".to_string(), "packed-refs".to_string()];
    files.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for file in files {
        if let Some(path) = git(&["rev-parse", "--git-path", &file]) {
            if Path::new(&path).is_file() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}

/// The version Cargo.lock records for `name` (the first, should there be several).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return version.strip_suffix('"').map(str::to_string);
        }
    }
    None
}
