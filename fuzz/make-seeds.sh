#!/usr/bin/env sh
# Regenerates the seed corpora fuzz/corpus/<target>/seed-* with the storage crate's own writers.
# Any toolchain works (the seed generator does not link libFuzzer).
set -eu
cd "$(dirname "$0")"
exec cargo run --quiet --example make_seeds "$@"
