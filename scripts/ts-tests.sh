#!/usr/bin/env bash
# The TypeScript client's tests: installs its pinned dev dependencies (typescript, @types/node) from npm, compiles
# with tsc, and runs node's test runner against a real `quiver serve` (built as `cargo test --workspace` builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed (Node 18+)" >&2; exit 1; }
# The same build `cargo test --workspace` makes (a no-op after it), which includes target/debug/quiver.
cargo test -q --workspace --locked --no-run
cd clients/typescript
npm ci --no-audit --no-fund --loglevel=error
npx tsc -p .
QUIVER_BIN="$CARGO_TARGET_DIR/debug/quiver" node --test dist/test/
