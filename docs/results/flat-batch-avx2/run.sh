#!/bin/bash
cd /work/main
Q=/root/.cache/quiver-target/release/quiver
D=/tmp/vdb-data/wordnet-minilm-100k
for r in 1 2; do
  $Q bench --data $D --index flat --batch --queries 2000 --runs 3 > /tmp/flat/quiver_$r.txt 2>&1
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python3 ../shared/data/peers_bench.py --data $D --nq 2000 --only faiss-flat --out /tmp/flat/faiss_$r.json > /tmp/flat/faiss_$r.txt 2>&1
done
echo done > /tmp/flat/done
