//! The committed completions and man page match the clap definitions.

use std::path::Path;

#[test]
fn completions_and_man_page_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("ROLLAMA_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, content) in rollama::cli::docs::generated_files() {
        let target = root.join(&path);
        if bless {
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(&target, &content).unwrap();
        } else if std::fs::read(&target).ok().as_deref() != Some(content.as_slice()) {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files {stale:?}: run `ROLLAMA_BLESS=1 cargo test --release --test docs`"
    );
}
