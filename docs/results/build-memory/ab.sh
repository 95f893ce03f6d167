#!/bin/bash
# Seals and merges with a heap copy of the rows' vectors (old: a038735~1) against streaming them to a scratch file
# (new: a038735), alternating, the same 300k set through `quiver serve` (bench/serve_load.py, SQ8).
# /tmp/vdb-data/sub300k: the first 300,000 base vectors and first 1,000 queries of minilm-gen-1m, top-100 ground
# truth by FAISS IndexFlatIP. /tmp/quiver-old and /tmp/quiver-new: release builds of the two commits.
cd /work/main
for b in new old new old; do
  python3 bench/serve_load.py --quiver /tmp/quiver-$b --data /tmp/vdb-data/sub300k --index '{"kind": "hnsw", "params": {"quantization": "sq8"}}' --concurrency 8 --duration 5 > /tmp/sl/ab_$b.$(date +%H%M).md 2>&1
  pkill -9 -f "quiver-$b serve"; rm -rf /tmp/quiver-load-*
  date >> /tmp/sl/ab_times.txt
done
echo done >> /tmp/sl/ab_times.txt
