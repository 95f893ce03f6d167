#!/usr/bin/env bash
# The Python package's tests: builds the `quiverdb` wheel with maturin (dev profile, the shared cargo target
# directory), installs it, and runs its pytest suite against the wheel and a real `quiver serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
python3 -m pip install -q --disable-pip-version-check -r requirements-test.txt
# The same build `cargo test --workspace` makes (a no-op after it), which includes target/debug/quiver.
cargo test -q --workspace --locked --no-run
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
maturin build -q --profile dev --locked -m crates/quiver-python/Cargo.toml -o "$wheels"
python3 -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheels"/quiverdb-*.whl
QUIVER_BIN="$CARGO_TARGET_DIR/debug/quiver" python3 -m pytest -q -p no:cacheprovider crates/quiver-python/tests
