#!/usr/bin/env bash
# Run openmls 0.9.2's own RFC 9420 test-vector (KAT) tests offline.
# The crates.io package excludes /test_vectors, so they are taken from an openmls git
# checkout (any recent commit: the files have not changed since 2023-2024).
# Usage: scripts/openmls-kats.sh /path/to/openmls-git-checkout-or-bare-repo [rev]
set -euo pipefail
SRC=${1:?path to an openmls git repository}
REV=${2:-HEAD}
WORK=${WORK:-$HOME/.cache/openmls-kat}
CRATE=$(ls -d "$HOME"/.cargo/registry/src/*/openmls-0.9.2 | head -1)
mkdir -p "$WORK"
rm -rf "$WORK/openmls-0.9.2"
cp -r "$CRATE" "$WORK/"
cd "$WORK/openmls-0.9.2"
mkdir -p test_vectors
for f in $(git -C "$SRC" ls-tree --name-only "$REV" openmls/test_vectors/); do
  git -C "$SRC" show "$REV:$f" > "test_vectors/$(basename "$f")" 2>/dev/null || rm -f "test_vectors/$(basename "$f")"
done
# The published crate's lib tests refer to `openmls::` in one file (secret_tree.rs); in the
# upstream workspace that resolves, in the standalone package it does not.
echo '#[cfg(test)] extern crate self as openmls;' >> src/lib.rs
export CARGO_TARGET_DIR="$WORK/target"
cargo test --release --lib --features test-utils --no-run
BIN=$(ls -t "$CARGO_TARGET_DIR"/release/deps/openmls-* | grep -v '\.d$' | head -1)
TESTS=$("$BIN" --list 2>/dev/null | sed 's/: test$//' | grep -E 'read_test_vectors|test_read_vectors')
"$BIN" --exact --test-threads=2 $TESTS
