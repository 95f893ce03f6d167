#!/usr/bin/env bash
# QuiverDB's HNSW beside hnswlib and FAISS HNSW on the generated 1M × 384 set (scripts/make_scale_set.py), in one
# run: peers one thread (../shared/data/peers_bench.py), QuiverDB queries one thread, one query per call.
# Usage: bash scripts/bench_1m.sh [OUT_DIR]   (PEERS=hnswlib,faiss-hnsw by default)
#   (needs pip install numpy faiss-cpu hnswlib; makes the set first when it is missing: ~2 minutes, 1.5 GB)
# QuiverDB builds on BUILD_THREADS (default 2) threads; the peers' builds are one thread (peers_bench.py's rule),
# so compare build times per thread-second, not directly.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/bench-1m}
DATA=${DATA:-/tmp/vdb-data/minilm-gen-1m}
NQ=${NQ:-1000}
BUILD_THREADS=${BUILD_THREADS:-2}
mkdir -p "$OUT"
[ -f "$DATA/$(basename "$DATA")_base.fvecs" ] || python3 scripts/make_scale_set.py --n 1000000 --out "$DATA"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quiver-target}"
cargo build --release -q -p quiver-cli
Q="$CARGO_TARGET_DIR/release/quiver"
uname -a > "$OUT/machine.txt"; lscpu | grep -E "Model name|^CPU\(s\)|L2|L3" >> "$OUT/machine.txt"

# The graph is built on BUILD_THREADS; the queries then run on one thread, one query per call.
"$Q" bench --data "$DATA" --index hnsw --queries "$NQ" --threads 1 --build-threads "$BUILD_THREADS" --param m=16 \
    --param ef_construction=200 --param quantization=sq8 --sweep ef=10,20,40,80,160 | tee "$OUT/hnsw_sq8.txt"
OMP_NUM_THREADS=1 python3 ../shared/data/peers_bench.py --data "$DATA" --nq "$NQ" \
    --only "${PEERS:-hnswlib,faiss-hnsw}" --out "$OUT/peers.json" | tee "$OUT/peers.txt"
echo "results in $OUT"
