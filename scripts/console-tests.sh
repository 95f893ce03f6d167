#!/usr/bin/env bash
# The web console's browser test: Debian's headless Chromium driven by playwright-core (from npm; it downloads no
# browser) against a real `quiver serve` loaded by `quiver demo --url`. Needs /usr/bin/chromium (apt-get install
# chromium; .ci/run installs it) and the embedding model (QUIVER_MODEL_DIR, as the other tests).
# QUIVER_SCREENSHOTS=docs bash scripts/console-tests.sh refreshes the screenshots in docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed (Node 18+)" >&2; exit 1; }
# The same build `cargo test --workspace` makes (a no-op after it), which includes target/debug/quiver.
cargo test -q --workspace --locked --no-run
if [ -n "${QUIVER_SCREENSHOTS:-}" ]; then QUIVER_SCREENSHOTS=$(cd "$QUIVER_SCREENSHOTS" && pwd); export QUIVER_SCREENSHOTS; fi
cd tests/console
npm ci --no-audit --no-fund --loglevel=error
QUIVER_BIN="$CARGO_TARGET_DIR/debug/quiver" node --test --test-concurrency=1 console.test.mjs
