//! The crates' layering (ARCHITECTURE.md, "Code map" and "Architecture invariants"),
//! checked on the resolved graph of normal dependencies, direct and indirect, as
//! `cargo tree` prints it for this machine's target:
//! - the server never depends on `streamchat-crypto`: it never holds a key;
//! - the client library and the load generator hold no terminal or command-line code:
//!   no clap, no ratatui, no crossterm. Those belong to the `streamchat` binary;
//! - the benchmark suite's socketioxide baseline (`crates/bench-baseline`) uses none of
//!   StreamChat's crates: it stands for bare socketioxide, so nothing of StreamChat's own
//!   code may make it faster or slower (it shares only the vendored socketioxide stack).

// A failed check panics with what it found: that is the report we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;

/// Names of every package `package` depends on as a normal dependency (itself included).
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--package",
            package,
            "--edges",
            "normal",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: BTreeSet<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(
        names.contains(package),
        "{package} is not in its own tree: {names:?}"
    );
    names
}

fn assert_free_of(package: &str, banned: &[&str]) {
    let found: Vec<String> = normal_dependencies(package)
        .into_iter()
        .filter(|name| {
            name != package
                && banned.iter().any(|b| {
                    name == b
                        || name.starts_with(&format!("{b}_"))
                        || name.starts_with(&format!("{b}-"))
                })
        })
        .collect();
    assert!(
        found.is_empty(),
        "{package} must not depend on {banned:?}, directly or not; it does on {found:?}"
    );
}

#[test]
fn the_server_never_depends_on_crypto() {
    assert_free_of("streamchat-server", &["streamchat-crypto"]);
}

#[test]
fn the_client_library_has_no_terminal_or_command_line_code() {
    // "clap" also covers clap_builder, clap_derive and clap_lex; "ratatui" ratatui-core,
    // ratatui-crossterm and the rest of its family.
    assert_free_of("streamchat-client", &["clap", "ratatui", "crossterm"]);
}

#[test]
fn the_load_generator_has_no_terminal_or_command_line_code() {
    assert_free_of("streamchat-loadgen", &["clap", "ratatui", "crossterm"]);
}

#[test]
fn the_socketioxide_baseline_uses_nothing_of_streamchat() {
    // "streamchat" covers every streamchat-* crate (the baseline's own name excepted).
    assert_free_of("streamchat-bench-baseline", &["streamchat"]);
}

#[test]
fn the_checks_see_what_they_look_for() {
    // The same query on the binary finds all three, so an empty answer above means
    // something (and not, say, a format that no longer names packages).
    let binary = normal_dependencies("streamchat");
    for name in [
        "clap",
        "ratatui",
        "crossterm",
        "streamchat-client",
        "streamchat-crypto",
    ] {
        assert!(binary.contains(name), "{name} not found in: {binary:?}");
    }
}
