#!/usr/bin/env bash
# Copy ts-mls's own RFC 9420 test-vector tests (test/test-vectors/*.test.ts, MIT,
# (c) the ts-mls authors) and the vector JSON files from a ts-mls git repository into
# ./vectors, rewriting imports of ../../src/X to the installed npm package (ts-mls/X),
# so the tests run against the npm build. 1.6.4 is not tagged in the ts-mls repository;
# v1.6.2 is the newest 1.6.x tag.
# Usage: ./setup-vectors.sh /path/to/ts-mls-git-repo [rev]   then: npm run vectors
set -euo pipefail
R=${1:?path to a ts-mls git repository}
REV=${2:-v1.6.2}
cd "$(dirname "$0")"
rm -rf vectors && mkdir -p vectors/test_vectors
for f in $(git -C "$R" ls-tree --name-only "$REV" test/test-vectors/); do git -C "$R" show "$REV:$f" > "vectors/$(basename "$f")"; done
for f in $(git -C "$R" ls-tree --name-only "$REV" test_vectors/); do git -C "$R" show "$REV:$f" > "vectors/test_vectors/$(basename "$f")"; done
git -C "$R" show "$REV:test/crypto/keyMatch.ts" > vectors/keyMatch.ts
git -C "$R" show "$REV:LICENSE" > vectors/LICENSE
sed -i 's#"\.\./\.\./src/#"ts-mls/#g; s#"\.\./src/#"ts-mls/#g; s#"\.\./crypto/keyMatch.js"#"./keyMatch.js"#; s#"\.\./\.\./test_vectors/#"./test_vectors/#' vectors/*.ts
echo "copied $(ls vectors/*.test.ts | wc -l) test files, $(ls vectors/test_vectors | wc -l) vector files"
