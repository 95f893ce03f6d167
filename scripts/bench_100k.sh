#!/usr/bin/env bash
# Reproduces the figures in docs/benchmarks.md: QuiverDB and its peers on the same data, in one run, one thread.
# Usage: bash scripts/bench_100k.sh [OUT_DIR]   (needs: python3 ../shared/data/make_dataset.py --out /tmp/vdb-data,
#        pip install numpy faiss-cpu hnswlib usearch scikit-learn threadpoolctl)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/bench-100k}
DATA=${DATA:-/tmp/vdb-data/wordnet-minilm-100k}
NQ=${NQ:-2000}
mkdir -p "$OUT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quiver-target}"
cargo build --release -q -p quiver-cli
Q="$CARGO_TARGET_DIR/release/quiver"
uname -a > "$OUT/machine.txt"; lscpu | grep -E "Model name|^CPU\(s\)|L2|L3" >> "$OUT/machine.txt"

# Exact search: single-query scan against a plain memory read; batch against numpy and FAISS brute force.
"$Q" bench --data "$DATA" --index flat --queries 1000 --runs 3 --json > "$OUT/flat_single.jsonl"
"$Q" bench --data "$DATA" --index flat --batch --queries "$NQ" --runs 3 --json > "$OUT/flat_batch.jsonl"
python3 scripts/numpy_bruteforce.py --data "$DATA" --nq "$NQ" --runs 3 --out "$OUT/numpy.json" | tee "$OUT/numpy.txt"

# Graph indexes, peers first (same queries, one thread).
OMP_NUM_THREADS=1 python3 ../shared/data/peers_bench.py --data "$DATA" --nq "$NQ" \
    --only faiss-flat,hnswlib,faiss-hnsw,usearch-f32,usearch-i8 --out "$OUT/peers.json" | tee "$OUT/peers.txt"
"$Q" bench --data "$DATA" --index hnsw --queries "$NQ" --param m=16 --param ef_construction=200 \
    --sweep ef=10,20,30,40,80,160 --json > "$OUT/hnsw_f32.jsonl"
"$Q" bench --data "$DATA" --index hnsw --queries "$NQ" --param m=16 --param ef_construction=200 \
    --param quantization=sq8 --sweep ef=10,20,30,40,80,160 --json > "$OUT/hnsw_sq8.jsonl"
# Build on two threads (queries then also run two at a time; only build_s is read from this row).
"$Q" bench --data "$DATA" --index hnsw --queries 200 --threads 2 --param m=16 --param ef_construction=200 \
    --json > "$OUT/hnsw_build_2threads.jsonl"
"$Q" bench --data "$DATA" --index hnsw --queries "$NQ" --param m=16 --param ef_construction=200 \
    --param quantization=sq8 --sweep ef=10,20,30,40,80,160 --plot "$OUT/hnsw_vs_peers.png" --peers "$OUT/peers.json" \
    > "$OUT/hnsw_sq8_plot.txt"
echo "results in $OUT"
