//! Embeds the built web client (`web/dist`) into the binary.
//!
//! Generates `$OUT_DIR/assets.rs` with one `(path, bytes)` entry per file. When the web
//! client has not been built, a minimal page says how to build it, so `cargo run` still
//! gives a working server.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, root, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
            out.push((url, path));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = manifest.join("../../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    let mut code = String::from(
        "/// The web client's files: (URL path, contents).\npub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (url, path) in &files {
        writeln!(
            code,
            "    ({url:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("string");
    }
    code.push_str("];\n");
    let built = files.iter().any(|(u, _)| u == "/index.html");
    writeln!(code, "/// True when the real web client is embedded.\npub const WEB_CLIENT_BUILT: bool = {built};").expect("string");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("assets.rs");
    std::fs::write(out, code).expect("write assets.rs");
}
