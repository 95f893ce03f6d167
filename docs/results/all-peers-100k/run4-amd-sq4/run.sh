#!/bin/bash
set -x
cd /work/main
Q=$HOME/.cache/quiver-target/release/quiver
D=/tmp/vdb-data/wordnet-minilm-100k
lscpu > /tmp/run4/machine.txt
date > /tmp/run4/times.txt
for p in a; do
  $Q bench --data $D --index hnsw-sq4 --build-threads 2 --queries 2000 --sweep ef=10,15,20,30,40,60,80,120,160 --runs 3 > /tmp/run4/quiver_sq4_$p.txt 2>&1
  $Q bench --data $D --index hnsw-sq8 --build-threads 2 --queries 2000 --sweep ef=10,15,20,30,40,60,80,120,160 --runs 3 > /tmp/run4/quiver_sq8_$p.txt 2>&1
done
date >> /tmp/run4/times.txt
OMP_NUM_THREADS=1 python3 ../shared/data/peers_bench.py --data $D --nq 2000 --only hnswlib,glass,scann,faiss-hnsw,qdrant-edge --out /tmp/run4/peers.json > /tmp/run4/peers.txt 2>&1
date >> /tmp/run4/times.txt
for p in b; do
  $Q bench --data $D --index hnsw-sq4 --build-threads 2 --queries 2000 --sweep ef=10,15,20,30,40,60,80,120,160 --runs 3 > /tmp/run4/quiver_sq4_$p.txt 2>&1
  $Q bench --data $D --index hnsw-sq8 --build-threads 2 --queries 2000 --sweep ef=10,15,20,30,40,60,80,120,160 --runs 3 > /tmp/run4/quiver_sq8_$p.txt 2>&1
done
date >> /tmp/run4/times.txt
echo done >> /tmp/run4/times.txt
