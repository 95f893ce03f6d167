#!/usr/bin/env bash
# Fuzzes the REST API from its own OpenAPI document: schemathesis (PyPI) generates requests for every route
# (examples, coverage, fuzzing and stateful phases) against a real `quiver serve`, and the run fails on any 5xx
# answer or if the server dies.
#
#   bash scripts/api-fuzz.sh [SECONDS]      # default 120; needs `pip install schemathesis` and a built quiver
#
# The server runs on a fresh data directory with a collection named `fuzz` (see tests/fuzz/schemathesis.toml);
# QUIVER_BIN picks the binary (default: $CARGO_TARGET_DIR/debug/quiver). FUZZ_CHECKS=all adds schemathesis'
# conformance checks (request and response shapes against the document) to the default `not_a_server_error`;
# FUZZ_SEED=N replays one fixed generation.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-120}
bin=${QUIVER_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/quiver}
[ -x "$bin" ] || { echo "no quiver binary at $bin (cargo build -p quiver-cli, or set QUIVER_BIN)" >&2; exit 2; }
command -v schemathesis >/dev/null || { echo "schemathesis not found: pip install -r requirements-test.txt" >&2; exit 2; }

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
"$bin" serve --data-dir "$work/data" --bind "127.0.0.1:$port" > "$work/server.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "$url/readyz" > /dev/null && break; sleep 0.2; done
curl -sf "$url/readyz" > /dev/null || { echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }

# A collection with points, payloads and indexes for the generated requests to work on.
curl -sf -X PUT "$url/collections/fuzz" -H 'content-type: application/json' \
     -d '{"vectors": {"size": 4, "distance": "Cosine"}}' > /dev/null
curl -sf -X PUT "$url/collections/fuzz/points?wait=true" -H 'content-type: application/json' -d '{"points": [
  {"id": 1, "vector": [0.1, 0.9, 0.1, 0.0], "payload": {"lang": "en", "n": 1, "text": "the cat sat"}},
  {"id": 2, "vector": [0.9, 0.1, 0.0, 0.1], "payload": {"lang": "de", "n": 2, "text": "der Hund lief"}},
  {"id": 3, "vector": [0.5, 0.5, 0.5, 0.5], "payload": {"lang": "en", "n": 3}}]}' > /dev/null
curl -sf -X PUT "$url/collections/fuzz/index?wait=true" -H 'content-type: application/json' \
     -d '{"field_name": "text", "field_schema": "text"}' > /dev/null

cd "$work"   # schemathesis writes its state beside where it runs
# One worker: with two, schemathesis' coverage phase compiles Python code from two threads at once, which CPython
# 3.11 can answer with "SystemError: AST constructor recursion depth mismatch" (a tool error, seen in CI).
# FUZZ_CHECKS=all leaves the checks to the config file (every check, with the per-operation exceptions it lists and
# explains); a --checks flag would override those.
checks=(--checks "${FUZZ_CHECKS:-not_a_server_error}")
[ "${FUZZ_CHECKS:-}" = all ] && checks=()
# FUZZ_SEED fixes schemathesis' generation (the same requests in the same order), so a run that passed once
# passes again; unset, every run draws new requests.
[ -n "${FUZZ_SEED:-}" ] && checks+=(--seed "$FUZZ_SEED")
status=0
schemathesis --config-file "$root/tests/fuzz/schemathesis.toml" run "$url/openapi.json" \
    "${checks[@]}" --phases examples,coverage,fuzzing,stateful --max-time "$secs" \
    --workers 1 --suppress-health-check all --request-timeout 30 || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
    echo "FAIL: the server died during the run; its log ends:" >&2
    tail -40 "$work/server.log" >&2
    exit 1
fi
if grep -q "panicked" "$work/server.log"; then
    echo "FAIL: the server logged a panic:" >&2
    grep -B2 -A10 "panicked" "$work/server.log" | head -60 >&2
    exit 1
fi
exit "$status"
