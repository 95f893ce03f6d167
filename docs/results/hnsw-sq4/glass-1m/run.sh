#!/bin/bash
cd /work/main
date > /tmp/run7/times.txt
OMP_NUM_THREADS=1 python3 ../shared/data/peers_bench.py --data /tmp/vdb-data/minilm-gen-1m --nq 1000 --only glass --out /tmp/run7/peers.json > /tmp/run7/peers.txt 2>&1
date >> /tmp/run7/times.txt
/root/.cache/ab-target/release/examples/ab_sq4 /tmp/vdb-data/minilm-gen-1m /tmp/g1m.0 10,12,16,24,32,48,64,96 sq8:0:4:4,sq4:0.01:4:4,sq8:0:4:4,sq4:0.01:4:4 3 1000 > /tmp/run7/quiver_ab_1m.txt 2>&1
date >> /tmp/run7/times.txt
echo done >> /tmp/run7/times.txt
