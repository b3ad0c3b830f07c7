//! Shell completions and the man page, generated from the clap definitions. The generated
//! files are committed under `completions/` and `man/`; `tests/docs.rs` fails when they are
//! stale and rewrites them when run with `ROLLAMA_BLESS=1`.

use clap_complete::Shell;

/// `(path relative to the repository root, content)` for every generated file.
pub fn generated_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "completions/rollama.bash"),
        (Shell::Zsh, "completions/_rollama"),
        (Shell::Fish, "completions/rollama.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut super::command(), "rollama", &mut out);
        files.push((name.to_string(), out));
    }
    let root = super::command();
    let mut pages = vec![("rollama".to_string(), root.clone())];
    for sub in root.get_subcommands() {
        let name = format!("rollama-{}", sub.get_name());
        let command = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("rollama {}", sub.get_name()));
        pages.push((name, command));
    }
    for (name, command) in pages {
        let mut man = Vec::new();
        // Rendering into a Vec cannot fail for I/O reasons.
        let _ = clap_mangen::Man::new(command).render(&mut man);
        files.push((format!("man/{name}.1"), man));
    }
    files
}
